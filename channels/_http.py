"""Network-error translation shared by the HTTP channels (an internal helper, not a channel).

The one distinction that matters for "never publish twice": did the request possibly reach the
service? A refused or timed-out *connection* never did, so it is transient. A connection that broke
after the request was sent may have done the work, so a call that creates something raises
AmbiguousOutcome and the next attempt looks before sending again.
"""

from __future__ import annotations

from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from publisher.channel import AmbiguousOutcome, TransientChannelError


def _never_sent(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


class RedactedError(Exception):
    """Stands in for a network error whose text held a secret (e.g. a token in the query string)."""


def _cause(exc: Exception, secrets: tuple[str, ...]) -> Exception:
    text = str(exc)
    if not any(s and s in text for s in secrets):
        return exc
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return RedactedError(f"{type(exc).__name__}: {text}")


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    creates: bool = False,
    secrets: tuple[str, ...] = (),
    **kwargs: Any,
) -> requests.Response:
    """``session.request`` with network errors translated; ``creates`` marks a non-idempotent call.

    ``secrets`` are masked in the chained cause: a token sent in the query string would otherwise
    reach the logs through the traceback.
    """
    try:
        return session.request(method, url, **kwargs)
    except (requests.ConnectionError, requests.Timeout) as exc:
        if creates and not _never_sent(exc):
            raise AmbiguousOutcome(
                f"{what}: the connection broke before the service answered; it may have taken effect, "
                "so the next attempt checks before sending again"
            ) from _cause(exc, secrets)
        raise TransientChannelError(f"{what}: cannot reach the service ({type(exc).__name__})") from _cause(
            exc, secrets
        )
    except requests.RequestException as exc:
        raise TransientChannelError(f"{what}: {type(exc).__name__}") from _cause(exc, secrets)


def retry_after_seconds(resp: requests.Response, default: int = 60) -> int:
    value = resp.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else default
