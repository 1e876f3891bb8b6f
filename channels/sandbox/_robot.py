"""What the 企业微信 and 钉钉 robot sandboxes share: a per-robot rate limit, the messages, faults.

Both robots take at most ``per_minute`` messages in any ``window`` seconds (20 in 60, as both
document); 钉钉 then refuses for a penalty (10 minutes), 企业微信 until the window has room. Every
accepted message is kept in :attr:`RobotSandbox.messages` (one dict each, with what was mentioned).

Faults (``fail_next``): ``transient`` (HTTP 502 from the gateway, nothing taken), ``ambiguous``
(the message is taken, then the connection is closed before the answer), ``stall`` (the request
arrives — recorded as "stalled" in the ledger — and waits ``stall_seconds`` before it is dropped
untaken: a sender killed meanwhile has sent nothing that counts), ``taken_then_stall`` (the message is
taken, then the answer waits ``stall_seconds`` and never comes: a sender killed meanwhile cannot know
it was sent).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from channels.sandbox._http import DROP, HttpSandbox, Late, Reply, Request


class RobotSandbox(HttpSandbox):
    fault_kinds = ("transient", "ambiguous", "stall", "taken_then_stall")

    def __init__(
        self,
        *,
        per_minute: int = 20,
        window: float = 60.0,
        stall_seconds: float = 30.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.per_minute = per_minute
        self.window = window
        self.stall_seconds = stall_seconds
        #: accepted messages: dicts with robot, msgtype, content, mentioned
        self.messages: list[dict[str, Any]] = []
        #: per robot, when its recent messages were taken (monotonic seconds)
        self._sent: dict[str, deque[float]] = {}
        #: per robot, refused until (monotonic seconds)
        self._penalty: dict[str, float] = {}

    def _dispatch(self, req: Request) -> Reply | object:
        if not req.path.startswith("/__sandbox__/") and self._faults and self._faults[0] == "stall":
            with self.lock:
                self._faults.popleft()
                self.ledger.append({"action": "stalled", "path": req.path})
            time.sleep(self.stall_seconds)  # outside the lock: other requests go on
            return DROP
        return super()._dispatch(req)

    def over_limit(self, robot: str, penalty: float = 0.0) -> bool:
        """Count one message for ``robot``; True when it is over the limit (the message is refused)."""
        now = time.monotonic()
        if self._penalty.get(robot, 0.0) > now:
            return True
        sent = self._sent.setdefault(robot, deque())
        while sent and sent[0] <= now - self.window:
            sent.popleft()
        if len(sent) >= self.per_minute:
            if penalty:
                self._penalty[robot] = now + penalty
            return True
        sent.append(now)
        return False

    def take(self, robot: str, msgtype: str, content: str, mentioned: list[str]) -> Reply | object:
        """Keep an accepted message; the fault queue may drop the answer (``ambiguous``) or fail it."""
        fault = self.take_fault()
        if fault == "transient":
            return Reply(502, "<html><body>502 Bad Gateway</body></html>")
        self.messages.append({"robot": robot, "msgtype": msgtype, "content": content, "mentioned": mentioned})
        self.ledger.append({"action": "send", "robot": robot, "msgtype": msgtype, "mentioned": mentioned})
        if fault == "ambiguous":
            return DROP
        if fault == "taken_then_stall":
            self.ledger.append({"action": "stalled", "robot": robot})
            return Late(DROP, self.stall_seconds)
        return Reply(200, {"errcode": 0, "errmsg": "ok"})

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**super().snapshot(), "messages": list(self.messages)}
