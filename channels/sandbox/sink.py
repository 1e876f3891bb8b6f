"""A local webhook receiver: verifies signatures, de-duplicates, records, and fails on request.

It receives what :mod:`channels.webhook` sends and behaves as docs/channels/webhook.md tells a
receiver to: reject a bad or stale signature with 401, and answer a repeated ``Idempotency-Key`` with
the first answer without acting twice (counted as a duplicate). Every accepted delivery goes into the
ledger, so a test or the benchmark can assert "each item exactly once".

Use it in-process::

    sink = Sink(secret="s3cret", latency_ms=20)
    base = sink.start()            # "http://127.0.0.1:PORT"; POST deliveries to base + "/hook"
    sink.fail_next("500", count=2) # the next two deliveries get 500 (also "400", "429", "timeout", "drop")
    sink.ledger()                  # counts, duplicates, deliveries by key
    sink.stop()

or as a process (the secret comes from an environment variable, never the command line)::

    PUBLISHER_WEBHOOK_SECRET=s3cret python -m channels.sandbox.sink --port 8790 --latency-ms 20

Admin endpoints, never subject to faults or latency::

    GET  /__sink__/ledger          counts and every accepted delivery
    GET  /__sink__/health
    POST /__sink__/reset           forget everything (faults included)
    POST /__sink__/faults          {"kind": "500", "count": 3, "retry_after": 30, "hang_s": 2}
    POST /__sink__/latency         {"ms": 20}
    GET  /items/<id>               the item as last delivered (200), withdrawn (410) or unknown (404)

Built for the benchmark's 10,000 deliveries: HTTP/1.1 keep-alive, TCP_NODELAY, one write per
response, no per-request logging.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from channels.sandbox._http import QuietServer
from publisher.channel import SandboxHandle

FAULT_KINDS = ("500", "502", "503", "400", "401", "404", "429", "timeout", "drop")


@dataclass
class _Fault:
    kind: str
    #: seconds named in Retry-After; None sends no Retry-After header
    retry_after: int | None = 30
    hang_s: float = 2.0


@dataclass
class _State:
    """Everything the sink remembers; guarded by ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    faulted: int = 0
    responses: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    duplicate_keys: Counter[str] = field(default_factory=Counter)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: deque[_Fault] = field(default_factory=deque)

    def reset(self) -> None:
        with self.lock:
            self.requests = self.accepted = self.duplicates = self.rejected = self.faulted = 0
            self.responses.clear()
            self.duplicate_keys.clear()
            self.deliveries.clear()
            self.items.clear()
            self.faults.clear()


class _Server(QuietServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr: tuple[str, int], sink: Sink) -> None:
        self.sink = sink
        self.open_connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "publisher-sink/1"
    #: an idle keep-alive connection is closed after this many seconds
    timeout = 60
    server: _Server

    # -- connection ---------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.conn_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.open_connections.discard(self.connection)
        with contextlib.suppress(OSError):  # the client went away first
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # thousands of requests per second: no per-request logging

    # -- replies ------------------------------------------------------------------------------------
    def _reply(self, status: int, body: bytes | dict[str, Any], headers: dict[str, str] | None = None) -> None:
        if isinstance(body, dict):
            body = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        # headers and body in one write: no Nagle/delayed-ACK stall on keep-alive connections
        self._headers_buffer.append(b"\r\n" + body)
        self.flush_headers()

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            self._reply(411, {"error": "Content-Length required"})
            return None
        return self.rfile.read(int(length))

    # -- routes -------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        sink = self.server.sink
        path = self.path.split("?", 1)[0]
        if path == "/__sink__/ledger":
            self._reply(200, sink.ledger())
        elif path == "/__sink__/health":
            self._reply(200, {"ok": True})
        elif path.startswith("/items/"):
            item = sink.item(path.removeprefix("/items/"))
            if item is None:
                self._reply(404, {"error": "no such item"})
            elif not item["live"]:
                self._reply(410, {"error": "withdrawn", "item_id": item["item_id"]})
            else:
                self._reply(200, item["payload"])
        else:
            self._reply(404, {"error": f"no route GET {path}"})

    def do_DELETE(self) -> None:  # noqa: N802
        self._delivery()

    def do_PUT(self) -> None:  # noqa: N802
        self._delivery()

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if not path.startswith("/__sink__/"):
            self._delivery()
            return
        sink = self.server.sink
        raw = self._read_body()
        if raw is None:
            return
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            self._reply(400, {"error": "body is not JSON"})
            return
        if path == "/__sink__/reset":
            sink.reset()
            self._reply(200, {"ok": True})
        elif path == "/__sink__/faults":
            try:
                sink.fail_next(
                    str(data["kind"]),
                    count=int(data.get("count", 1)),
                    retry_after=None if data.get("retry_after", 30) is None else int(data.get("retry_after", 30)),
                    hang_s=float(data.get("hang_s", 2.0)),
                )
            except (KeyError, ValueError) as exc:
                self._reply(400, {"error": str(exc)})
                return
            self._reply(200, {"ok": True})
        elif path == "/__sink__/latency":
            sink.latency_ms = float(data.get("ms", 0))
            self._reply(200, {"ok": True})
        else:
            self._reply(404, {"error": f"no route POST {path}"})

    # -- a delivery ---------------------------------------------------------------------------------
    def _delivery(self) -> None:
        sink = self.server.sink
        state = sink.state
        raw = self._read_body()
        if raw is None:
            return
        if sink.latency_ms:
            time.sleep(sink.latency_ms / 1000)
        with state.lock:
            state.requests += 1
            fault = state.faults.popleft() if state.faults else None
            if fault is not None and fault.kind != "timeout":
                state.faulted += 1
        if fault is not None:
            if fault.kind == "timeout":
                # the request still takes effect after the hang, as a slow real receiver's would:
                # the client's retry then has to be de-duplicated by its Idempotency-Key
                time.sleep(fault.hang_s)
            elif fault.kind == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            elif fault.kind == "429":
                extra = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                self._reply(429, {"error": "too many requests (injected)"}, extra)
                return
            else:
                status = int(fault.kind)
                self._reply(status, {"error": f"injected fault {status}: the receiver refused this delivery"})
                return

        problem = sink.check_signature(self.headers, raw)
        if problem:
            with state.lock:
                state.rejected += 1
            self._reply(401, {"error": problem})
            return
        try:
            payload = json.loads(raw)
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            self._reply(400, {"error": "body is not a JSON object"})
            return

        key = self.headers.get("Idempotency-Key")
        with state.lock:
            if key and key in state.responses:
                state.duplicates += 1
                state.duplicate_keys[key] += 1
                status, body = state.responses[key]
                replay = True
            else:
                replay = False
                status, body = 200, sink.record(payload, key, self.command)
                if key:
                    state.responses[key] = (status, body)
        self._reply(status, body, {"Idempotent-Replayed": "true"} if replay else None)


class Sink:
    """The webhook receiver; see the module docstring."""

    def __init__(
        self,
        *,
        secret: str | None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        tolerance_s: int = 300,
    ) -> None:
        #: None accepts unsigned deliveries (only for trying things by hand)
        self.secret = secret.encode("utf-8") if secret else None
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.tolerance_s = tolerance_s
        self.state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> str:
        """Listen and serve in a background thread; return the base URL."""
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"sink:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop listening and cut open keep-alive connections (a stopped sink must look stopped)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.conn_lock:
            conns = list(server.open_connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def hook_url(self) -> str:
        """Where to POST deliveries (any path but /__sink__/ and /items/ works)."""
        return self.url + "/hook"

    # -- behaviour ----------------------------------------------------------------------------------
    def fail_next(self, kind: str, count: int = 1, *, retry_after: int | None = 30, hang_s: float = 2.0) -> None:
        """Fail the next ``count`` deliveries: an HTTP status ("500", "400", "429"...), "timeout"
        (answer only after ``hang_s``, still accepting the delivery) or "drop" (close, no answer)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {', '.join(FAULT_KINDS)}")
        with self.state.lock:
            self.state.faults.extend(_Fault(kind, retry_after, hang_s) for _ in range(count))

    def reset(self) -> None:
        self.state.reset()

    def check_signature(self, headers: Any, raw: bytes) -> str | None:
        """The receiver's side of the scheme in docs/channels/webhook.md; None when it holds."""
        if self.secret is None:
            return None
        ts = headers.get("X-Publisher-Timestamp", "")
        sig = headers.get("X-Publisher-Signature", "")
        if not ts.isdigit() or not sig.startswith("sha256="):
            return "missing or malformed X-Publisher-Timestamp / X-Publisher-Signature"
        if abs(time.time() - int(ts)) > self.tolerance_s:
            return "stale timestamp: the delivery is older than the replay window"
        expected = hmac.new(self.secret, ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig.removeprefix("sha256=")):
            return "bad signature"
        return None

    def record(self, payload: dict[str, Any], key: str | None, method: str) -> bytes:
        """Apply an accepted delivery (called under the state lock); return the response body."""
        state = self.state
        state.accepted += 1
        event = str(payload.get("event") or ("withdraw" if method == "DELETE" else "publish"))
        item_id = str(payload.get("item_id", ""))
        state.deliveries.append(
            {
                "n": state.accepted,
                "key": key,
                "event": event,
                "item_id": payload.get("item_id"),
                "delivery_id": payload.get("delivery_id"),
                "title": payload.get("title"),
                "at": time.time(),
            }
        )
        item = state.items.setdefault(
            item_id, {"item_id": payload.get("item_id"), "live": False, "payload": {}, "events": []}
        )
        item["events"].append(event)
        if event == "withdraw":
            item["live"] = False
        else:
            item["live"] = True
            item["payload"] = payload
        return json.dumps(
            {
                "ok": True,
                "id": item_id,
                "event": event,
                "n": state.accepted,
                "url": f"{self.url}/items/{item_id}",
            }
        ).encode("utf-8")

    # -- what was received --------------------------------------------------------------------------
    def ledger(self) -> dict[str, Any]:
        s = self.state
        with s.lock:
            by_key = Counter(d["key"] for d in s.deliveries if d["key"])
            return {
                "requests": s.requests,
                "accepted": s.accepted,
                "duplicates": s.duplicates,
                "rejected": s.rejected,
                "faulted": s.faulted,
                "live": sum(1 for i in s.items.values() if i["live"]),
                "pending_faults": len(s.faults),
                "by_key": dict(by_key),
                "duplicate_keys": dict(s.duplicate_keys),
                "deliveries": list(s.deliveries),
            }

    def wait_for(self, *, accepted: int, timeout: float = 30.0) -> bool:
        """Wait until at least ``accepted`` deliveries were accepted (for benchmarks); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.state.lock:
                if self.state.accepted >= accepted:
                    return True
            time.sleep(0.01)
        with self.state.lock:
            return self.state.accepted >= accepted

    def live_count(self) -> int:
        with self.state.lock:
            return sum(1 for i in self.state.items.values() if i["live"])

    def item(self, item_id: str | int) -> dict[str, Any] | None:
        with self.state.lock:
            item = self.state.items.get(str(item_id))
            return None if item is None else {**item, "events": list(item["events"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m channels.sandbox.sink", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 lets the OS choose (printed at start)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="sleep this long in every delivery")
    parser.add_argument(
        "--secret-env",
        default="PUBLISHER_WEBHOOK_SECRET",
        help="environment variable holding the shared signing secret",
    )
    parser.add_argument("--no-verify", action="store_true", help="accept unsigned deliveries")
    args = parser.parse_args(argv)
    secret = None
    if not args.no_verify:
        secret = os.environ.get(args.secret_env)
        if not secret:
            parser.error(f"environment variable {args.secret_env} is not set (or pass --no-verify)")
    sink = Sink(secret=secret, host=args.host, port=args.port, latency_ms=args.latency_ms)
    url = sink.start()
    print(f"sink listening on {url} (POST deliveries to {sink.hook_url})", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    sink.stop()
    led = sink.ledger()
    print(
        f"accepted {led['accepted']}, duplicates {led['duplicates']}, rejected {led['rejected']}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def demo_sandbox(workdir: Path) -> SandboxHandle:
    """The ``publisher.sandboxes`` entry point: a running sink and the webhook table that points at it."""
    import secrets

    secret = secrets.token_hex(16)
    sink = Sink(secret=secret)
    sink.start()
    return SandboxHandle(
        config={"type": "webhook", "url": sink.hook_url, "secret_env": "PUBLISHER_DEMO_WEBHOOK_SECRET"},
        environ={"PUBLISHER_DEMO_WEBHOOK_SECRET": secret},
        stop=sink.stop,
        describe=f"a local receiver at {sink.url}; it verified each signature and kept each delivery once",
    )
