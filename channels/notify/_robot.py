"""What the two group robots share: a JSON POST whose answer is ``{"errcode": 0, "errmsg": "ok"}``.

A refused or timed-out connection, a 5xx and a body that is not the robot's JSON are transient; the
robot's own errcode is mapped by the transport (:meth:`RobotNotifier.refusal`). The URL carries the
secret (企业微信's key, 钉钉's access_token and sign): it is masked in every error text, and the
chained cause is dropped, so no traceback reaches a log with it.
"""

from __future__ import annotations

from typing import Any

import requests

from publisher.notifier import Notifier, NotifyError, NotifyTransient


class RobotNotifier(Notifier):
    """Base of the robot transports: subclasses build the URL and body and map an errcode."""

    #: seconds for the whole request
    timeout: float = 10.0

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.session = requests.Session()

    def secrets(self) -> tuple[str, ...]:
        """Values to mask in every error text."""
        return ()

    def _mask(self, text: str) -> str:
        for s in self.secrets():
            if s:
                text = text.replace(s, "***")
        return text

    def post(self, url: str, body: dict[str, Any]) -> None:
        """POST ``body``; raises the NotifyError the answer means."""
        what = f"{self.name} robot"
        try:
            resp = self.session.post(url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise NotifyTransient(
                f"{what}: cannot reach the service ({type(exc).__name__}: {self._mask(str(exc))})"
            ) from None
        if resp.status_code >= 500:
            raise NotifyTransient(f"{what}: HTTP {resp.status_code}")
        try:
            answer = resp.json()
            code = int(answer.get("errcode", -1))
        except (ValueError, AttributeError, TypeError):
            raise NotifyTransient(f"{what}: HTTP {resp.status_code}, an answer that is not the robot's JSON") from None
        if code == 0:
            return
        raise self.refusal(code, self._mask(str(answer.get("errmsg", ""))))

    def refusal(self, code: int, errmsg: str) -> NotifyError:
        """The error an errcode other than 0 means."""
        raise NotImplementedError

    def close(self) -> None:
        self.session.close()
