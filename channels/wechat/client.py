"""The WeChat API client: wechatpy pointed at ``api_base``, its access token shared through ``env.kv``.

wechatpy is used with ``auto_retry=False`` (its own retry recurses without limit on a bad token); a
rejected token is refreshed once here, and only when no other process already replaced it. The
token lives in ``env.kv`` through a wechatpy session-storage adapter, so all workers share one.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from channels.wechat.errors import TOKEN_ERRORS, redacted, translate
from publisher.channel import TransientChannelError

log = logging.getLogger(__name__)
T = TypeVar("T")


class KVSessionStorage(SessionStorage):
    """wechatpy session storage over ``env.kv``: one access token for every worker process."""

    def __init__(self, kv: Any, prefix: str, clock: Callable[[], datetime]) -> None:
        self.kv, self.prefix, self.clock = kv, prefix, clock

    def get(self, key: str, default: Any = None) -> Any:
        raw = self.kv.get(self.prefix + key)
        return default if raw is None else json.loads(raw)

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        if value is None:
            return
        expires = self.clock() + timedelta(seconds=int(ttl)) if ttl else None
        self.kv.set(self.prefix + key, json.dumps(value), expires_at=expires)

    def delete(self, key: str) -> None:
        self.kv.delete(self.prefix + key)


class ApiClient(WeChatClient):
    """wechatpy's client pointed at ``api_base``, with a timeout and no secret in errors on token fetch.

    :meth:`call` is the boundary every API call of the channel goes through: it translates what goes
    wrong into channel errors and refreshes a rejected token once, not forever.
    """

    def __init__(
        self,
        *,
        api_base: str,
        appid: str,
        secret: str,
        session: SessionStorage,
        timeout: float,
        endpoint: str,
        clock: Callable[[], datetime],
        label: str = "",
    ):
        super().__init__(appid, secret, session=session, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = f"{api_base}/cgi-bin/"
        self.datacube.API_BASE_URL = f"{api_base}/datacube/"
        self._api_base = api_base
        self._endpoint = endpoint
        self._clock = clock
        #: who the client works for, in log lines (the channel's name)
        self._label = label
        self._token_url = f"{api_base}/cgi-bin/{endpoint}"
        #: set after a rejection so that stable_token hands out a new token, not the rejected one
        self.force_refresh = False

    def fetch_access_token(self) -> dict:
        try:
            if self._endpoint == "stable_token":
                body = {
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self.secret,
                    "force_refresh": self.force_refresh,
                }
                res = self._http.post(self._token_url, data=json.dumps(body).encode(), timeout=self.timeout)
            else:
                params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
                res = self._http.get(self._token_url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            # requests puts the URL (with ?secret=...) in its message: raise a same-kind error without it
            raise type(exc)(f"{type(exc).__name__} while fetching an access token from {self._token_url}") from None
        self.force_refresh = False
        if res.status_code >= 400:
            raise WeChatClientException(None, None, client=self, response=res)
        result = res.json()
        if result.get("errcode"):
            raise WeChatClientException(result["errcode"], result.get("errmsg"), client=self, response=res)
        expires_in = int(result.get("expires_in", 7200))
        # stored for a little less than its life, so no call goes out with a token about to lapse;
        # the margin shrinks with short-lived tokens instead of refetching on every call
        keep = max(1, expires_in - min(60, expires_in // 10))
        self.session.set(self.access_token_key, result["access_token"], keep)
        self.expires_at = int(time.time()) + keep
        return result

    @property
    def access_token(self) -> str:
        """The shared token while the store holds it (the store expires it), else a fresh one."""
        token = self.session.get(self.access_token_key)
        if token:
            return token
        return self.fetch_access_token()["access_token"]

    def call(self, what: str, fn: Callable[..., T], *args: Any, ambiguous: bool = False, **kw: Any) -> T:
        """Call wechatpy and translate what goes wrong; refresh a rejected token once, not forever.

        ``ambiguous`` marks calls that may take effect without our hearing of it (submit, mass send):
        a timeout or broken connection there is AmbiguousOutcome, never a plain retry.
        """
        refreshed = False
        while True:
            try:
                # the token is fetched outside the ambiguous part: failing to get one sent nothing
                used = self.access_token
            except Exception as exc:  # noqa: BLE001 - translated below, never swallowed
                raise self._translate("fetching an access token", exc, ambiguous=False) from redacted(exc)
            try:
                result = fn(*args, **kw)
            except WeChatClientException as exc:
                if exc.errcode in TOKEN_ERRORS and not refreshed:
                    refreshed = True
                    self.refresh_token(rejected=used)
                    continue
                raise self._translate(what, exc, ambiguous) from exc
            except Exception as exc:  # noqa: BLE001 - translated below, never swallowed
                raise self._translate(what, exc, ambiguous) from redacted(exc)
            if not isinstance(result, dict | str | list):
                raise TransientChannelError(f"WeChat gave a non-JSON answer to {what}")
            return result

    def _translate(self, what: str, exc: Exception, ambiguous: bool) -> Exception:
        return translate(what, exc, ambiguous, clock=self._clock, api_base=self._api_base)

    def refresh_token(self, rejected: str | None) -> None:
        """Fetch a new token unless another worker already stored one since ours was rejected."""
        current = self.session.get(self.access_token_key)
        if current is not None and rejected is not None and current != rejected:
            return
        self.session.delete(self.access_token_key)
        self.session.delete(self.access_token_expires_at_key)
        self.force_refresh = True
        log.info("wechat %s: access token rejected, fetching a new one", self._label)


def named(data: bytes, filename: str) -> tuple[str, io.BytesIO, str]:
    """The multipart ``media`` part: named (raw bytes give errcode 40005) and typed like a browser's."""
    ctype = "image/png" if filename.endswith(".png") else "image/jpeg"
    return filename, io.BytesIO(data), ctype
