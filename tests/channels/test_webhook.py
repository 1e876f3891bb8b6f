"""The webhook channel against the local sink, over real HTTP on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from channels.sandbox.sink import Sink
from channels.webhook import WebhookChannel, WebhookConfig, sign
from publisher.channel import (
    ChannelError,
    PermanentChannelError,
    Published,
    QuotaExceeded,
    TransientChannelError,
    validate_channel_config,
)
from publisher.errors import ConfigError
from publisher.testing import make_ctx, make_env, make_post

SECRET = "test-webhook-secret"


@pytest.fixture
def sink():
    s = Sink(secret=SECRET)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def make_channel(tmp_path, monkeypatch, sink):
    monkeypatch.setenv("PUBLISHER_WEBHOOK_SECRET", SECRET)
    made = []

    def make(**config):
        config.setdefault("url", sink.hook_url)
        config.setdefault("timeout", 2.0)
        ch = WebhookChannel("hook", WebhookConfig(**config), make_env(tmp_path))
        made.append(ch)
        return ch

    yield make
    for ch in made:
        ch.close()


@pytest.fixture
def channel(make_channel):
    return make_channel()


# -------------------------------------------------------------------------------------- happy path
def test_publish_sends_signed_json_with_idempotency_key(channel, sink):
    post = make_post(
        7,
        checklist_item=2,
        checklist_name="学校章程及制定的各项规章制度",
        publish_at=datetime(2026, 1, 4, 18, 30, tzinfo=UTC),
    )
    out = channel.publish(post, make_ctx(41))

    assert out == Published(url=f"{sink.url}/items/7", remote_id="7")
    led = sink.ledger()
    assert (led["accepted"], led["rejected"], led["duplicates"]) == (1, 0, 0)
    assert led["by_key"] == {"delivery-41": 1}
    got = sink.item(7)["payload"]
    assert got["event"] == "publish"
    assert got["item_id"] == 7 and got["delivery_id"] == 41
    assert got["title"] == post.title and got["summary"] == post.summary
    assert got["category"] == "公告公示" and got["department"] == "校长办公室"
    assert got["checklist_item"] == 2 and got["checklist_name"] == "学校章程及制定的各项规章制度"
    assert got["published_at"] == "2026-01-04T18:30:00+00:00"
    assert got["body_markdown"] == post.body_markdown and got["body_html"] == post.body_html
    assert got["site_url"] == post.site_url


def test_wrong_secret_is_refused_by_the_sink(make_channel, sink, monkeypatch):
    monkeypatch.setenv("OTHER_SECRET", "not-the-shared-secret")
    ch = make_channel(secret_env="OTHER_SECRET")
    with pytest.raises(PermanentChannelError) as info:
        ch.publish(make_post(1), make_ctx(1))
    assert info.value.code == 401
    assert "401" in str(info.value) and "bad signature" in str(info.value)
    assert "not-the-shared-secret" not in str(info.value)
    assert sink.ledger()["rejected"] == 1 and sink.ledger()["accepted"] == 0


def test_signature_scheme_matches_the_documented_receiver(sink):
    """What docs/channels/webhook.md tells a receiver to check, done by hand with requests."""
    body = json.dumps({"event": "publish", "item_id": 3}).encode()
    ts = str(int(time.time()))
    good = {
        "X-Publisher-Timestamp": ts,
        "X-Publisher-Signature": sign(SECRET.encode(), ts, body),
        "Idempotency-Key": "manual-1",
    }
    assert requests.post(sink.hook_url, data=body, headers=good, timeout=5).status_code == 200
    # the same signature with another timestamp is a forgery; an old timestamp is a replay
    moved = {**good, "X-Publisher-Timestamp": str(int(ts) + 1), "Idempotency-Key": "manual-2"}
    assert requests.post(sink.hook_url, data=body, headers=moved, timeout=5).status_code == 401
    old = str(int(time.time()) - 3600)
    stale = {
        "X-Publisher-Timestamp": old,
        "X-Publisher-Signature": sign(SECRET.encode(), old, body),
        "Idempotency-Key": "manual-3",
    }
    r = requests.post(sink.hook_url, data=body, headers=stale, timeout=5)
    assert r.status_code == 401 and "stale" in r.json()["error"]
    assert sink.ledger()["accepted"] == 1 and sink.ledger()["rejected"] == 2


def test_same_delivery_twice_is_deduplicated_by_the_sink(channel, sink):
    first = channel.publish(make_post(5), make_ctx(9))
    again = channel.publish(make_post(5), make_ctx(9, attempt=2))
    assert first == again
    led = sink.ledger()
    assert (led["accepted"], led["duplicates"]) == (1, 1)
    assert led["duplicate_keys"] == {"delivery-9": 1}


# -------------------------------------------------------------------------------------- failures
@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_5xx_is_transient_and_the_retry_succeeds(channel, sink, status):
    sink.fail_next(status)
    with pytest.raises(TransientChannelError) as info:
        channel.publish(make_post(1), make_ctx(1))
    assert info.value.code == int(status)
    assert channel.publish(make_post(1), make_ctx(1, attempt=2)).remote_id == "1"
    assert sink.ledger()["accepted"] == 1


def test_400_is_permanent_and_quotes_the_response(channel, sink):
    sink.fail_next("400")
    with pytest.raises(PermanentChannelError) as info:
        channel.publish(make_post(1), make_ctx(1))
    assert info.value.code == 400
    assert "HTTP 400" in str(info.value)
    assert "injected fault 400: the receiver refused this delivery" in str(info.value)


def test_long_error_bodies_are_cut_to_300_characters(tmp_path, monkeypatch):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Chatty(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            body = ("x" * 299 + "END" + "y" * 5000).encode()
            self.send_response(422)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Chatty)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        monkeypatch.setenv("PUBLISHER_WEBHOOK_SECRET", SECRET)
        ch = WebhookChannel(
            "hook", WebhookConfig(url=f"http://127.0.0.1:{server.server_address[1]}/"), make_env(tmp_path)
        )
        with pytest.raises(PermanentChannelError) as info:
            ch.publish(make_post(1), make_ctx(1))
        ch.close()
    finally:
        server.shutdown()
        server.server_close()
    msg = str(info.value)
    assert "HTTP 422" in msg and msg.endswith(": " + "x" * 299 + "E")


def test_429_is_a_quota_until_retry_after(channel, sink):
    sink.fail_next("429", retry_after=120)
    before = datetime.now(UTC)
    with pytest.raises(QuotaExceeded) as info:
        channel.publish(make_post(1), make_ctx(1))
    assert before + timedelta(seconds=119) <= info.value.until <= datetime.now(UTC) + timedelta(seconds=121)


def test_429_without_retry_after_waits_a_minute(channel, sink):
    sink.fail_next("429", retry_after=None)
    before = datetime.now(UTC)
    with pytest.raises(QuotaExceeded) as info:
        channel.publish(make_post(1), make_ctx(1))
    assert before + timedelta(seconds=59) <= info.value.until <= datetime.now(UTC) + timedelta(seconds=61)


def test_read_timeout_is_transient_and_the_retry_is_deduplicated(make_channel, sink):
    """The sink accepts the hung request after the client gave up: the retry must not double it."""
    ch = make_channel(timeout=0.3)
    sink.fail_next("timeout", hang_s=0.8)
    with pytest.raises(TransientChannelError) as info:
        ch.publish(make_post(3), make_ctx(12))
    assert "Idempotency-Key" in str(info.value)
    assert sink.wait_for(accepted=1, timeout=5)
    assert ch.publish(make_post(3), make_ctx(12, attempt=2)).remote_id == "3"
    led = sink.ledger()
    assert (led["accepted"], led["duplicates"]) == (1, 1)


def test_dropped_connection_is_transient(channel, sink):
    sink.fail_next("drop")
    with pytest.raises(TransientChannelError):
        channel.publish(make_post(1), make_ctx(1))
    assert channel.publish(make_post(1), make_ctx(1, attempt=2)).remote_id == "1"


def test_receiver_down_is_transient(channel, sink):
    channel.publish(make_post(1), make_ctx(1))  # leave a pooled keep-alive connection behind
    sink.stop()
    with pytest.raises(TransientChannelError):
        channel.publish(make_post(2), make_ctx(2))


def test_redirect_is_permanent_and_names_the_target(tmp_path, monkeypatch):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Moved(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(301)
            self.send_header("Location", "https://hooks.example.edu.cn/new")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("PUBLISHER_WEBHOOK_SECRET", SECRET)
        ch = WebhookChannel(
            "hook", WebhookConfig(url=f"http://127.0.0.1:{server.server_address[1]}/"), make_env(tmp_path)
        )
        with pytest.raises(PermanentChannelError, match="hooks.example.edu.cn/new"):
            ch.publish(make_post(1), make_ctx(1))
        ch.close()
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------- update and withdraw
def test_update_and_withdraw(channel, sink):
    out = channel.publish(make_post(4), make_ctx(20))
    ctx = make_ctx(20, remote_id=out.remote_id, url=out.url)
    assert channel.check_url(out.url).ok

    changed = make_post(4, title="关于2026年寒假放假安排的通知（更正）", version=2)
    assert channel.update(changed, ctx) == Published(url=out.url, remote_id="4")
    assert sink.item(4)["payload"]["title"] == "关于2026年寒假放假安排的通知（更正）"
    assert sink.item(4)["payload"]["event"] == "update"

    channel.withdraw(changed, ctx)
    assert sink.item(4)["live"] is False
    assert sink.item(4)["events"] == ["publish", "update", "withdraw"]
    assert sink.ledger()["by_key"] == {
        "delivery-20": 1,
        "delivery-20:update:v2": 1,
        "delivery-20:withdraw": 1,
    }
    status = channel.check_url(out.url)
    assert not status.ok and status.status == 410


def test_withdraw_by_delete_method(make_channel, sink):
    ch = make_channel(withdraw_method="DELETE")
    ch.publish(make_post(8), make_ctx(30))
    ch.withdraw(make_post(8), make_ctx(30, remote_id="8"))
    assert sink.item(8)["live"] is False


# -------------------------------------------------------------------------------------- config
def test_missing_secret_names_the_variable(tmp_path, monkeypatch, sink):
    monkeypatch.delenv("PUBLISHER_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ConfigError, match="PUBLISHER_WEBHOOK_SECRET"):
        WebhookChannel("hook", WebhookConfig(url=sink.hook_url), make_env(tmp_path))


def test_config_refuses_bad_urls_and_unknown_keys():
    with pytest.raises(ConfigError, match="url"):
        validate_channel_config(WebhookChannel, "hook", {"url": "ftp://example.org/x"})
    with pytest.raises(ConfigError, match="secret"):
        validate_channel_config(WebhookChannel, "hook", {"url": "https://example.org/x", "secret": "inline"})


def test_check_health_does_not_deliver(channel, sink):
    assert channel.check_health().ok
    assert sink.ledger()["requests"] == 0
    sink.stop()
    assert not channel.check_health().ok


# ----------------------------------------------------------------------------------- concurrency
def test_parallel_threads_share_one_channel(channel, sink):
    errors = []
    # a thread that finished before another started had its session pruned as dead, so on a busy
    # machine fewer than 8 were counted: every thread stays alive until all have delivered
    all_done = threading.Barrier(8, timeout=60)

    def work(offset):
        try:
            for i in range(25):
                channel.publish(make_post(offset + i), make_ctx(offset + i))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        all_done.wait()

    threads = [threading.Thread(target=work, args=(1000 * (t + 1),)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    led = sink.ledger()
    assert (led["accepted"], led["duplicates"], led["live"]) == (200, 0, 200)
    assert channel.open_sessions() == 8  # one pooled session per worker thread
    # the threads are gone: the next thread's first delivery closes their sessions
    channel.publish(make_post(1), make_ctx(1))
    assert channel.open_sessions() == 1


# ------------------------------------------------------------------------------------ sink itself
def test_sink_admin_endpoints(sink):
    r = requests.post(sink.url + "/__sink__/faults", json={"kind": "503", "count": 2}, timeout=5)
    assert r.status_code == 200 and sink.ledger()["pending_faults"] == 2
    assert requests.post(sink.hook_url, data=b"{}", timeout=5).status_code == 503
    requests.post(sink.url + "/__sink__/reset", timeout=5)
    led = requests.get(sink.url + "/__sink__/ledger", timeout=5).json()
    assert led["pending_faults"] == 0 and led["requests"] == 0
    bad = requests.post(sink.url + "/__sink__/faults", json={"kind": "teapot"}, timeout=5)
    assert bad.status_code == 400


def test_sink_runs_as_a_process(tmp_path):
    env = {**os.environ, "PUBLISHER_WEBHOOK_SECRET": SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "channels.sandbox.sink", "--port", "0", "--latency-ms", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("sink listening on http://127.0.0.1:")
        base = line.split()[3]
        body = b'{"event":"publish","item_id":1}'
        ts = str(int(time.time()))
        r = requests.post(
            base + "/hook",
            data=body,
            timeout=5,
            headers={"X-Publisher-Timestamp": ts, "X-Publisher-Signature": sign(SECRET.encode(), ts, body)},
        )
        assert r.status_code == 200
        assert requests.get(base + "/__sink__/ledger", timeout=5).json()["accepted"] == 1
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "accepted 1" in err


def test_contract_harness(tmp_path):
    from tests.channels.contract_webhook import make_harness

    h = make_harness(tmp_path)
    try:
        out = h.channel.publish(make_post(1), make_ctx(1))
        assert h.live_count() == 1
        assert "寒假" in h.remote_text(out.remote_id)
        h.inject("transient")
        with pytest.raises(TransientChannelError):
            h.channel.publish(make_post(2), make_ctx(2))
        h.inject("permanent")
        with pytest.raises(PermanentChannelError):
            h.channel.publish(make_post(2), make_ctx(2))
        h.channel.withdraw(make_post(1), make_ctx(1, remote_id=out.remote_id))
        assert h.live_count() == 0
    finally:
        h.close()


# -------------------------------------------------------------------------------- proxy settings
def _answering(seen: list[str], remote_id: str) -> type:
    """A request handler that records each POST's request target and answers ``{"id": remote_id}``."""
    from http.server import BaseHTTPRequestHandler

    body = json.dumps({"id": remote_id}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


class _RecordingProxy:
    """A stand-in HTTP proxy: answers every request itself and records the request line's target."""

    def __init__(self) -> None:
        from http.server import ThreadingHTTPServer

        self.seen: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _answering(self.seen, "via-proxy"))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("no_proxy", [None, "127.0.0.1"])
def test_environment_proxy_settings_are_honoured(make_channel, sink, monkeypatch, no_proxy):
    """The channel reads HTTP_PROXY / NO_PROXY once when it is built (not per request), as requests would."""
    proxy = _RecordingProxy()
    try:
        for name in (
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
        ):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        if no_proxy:
            monkeypatch.setenv("NO_PROXY", no_proxy)
        channel = make_channel()
        out = channel.publish(make_post(), make_ctx(delivery_id=7))
        if no_proxy:
            assert proxy.seen == [] and sink.ledger()["accepted"] == 1
        else:
            # through a proxy, the request line names the whole target URL
            assert proxy.seen == [sink.hook_url] and out.remote_id == "via-proxy"
            assert sink.ledger()["accepted"] == 0
    finally:
        proxy.stop()


class _TlsReceiver:
    """An HTTPS receiver whose certificate a throw-away authority (trustme) signed for 127.0.0.1."""

    def __init__(self, tmp_path) -> None:
        import ssl
        from http.server import ThreadingHTTPServer

        import trustme

        ca = trustme.CA()
        self.ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.seen: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _answering(self.seen, "over-tls"))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("trusted", [True, False], ids=["ca-bundle-set", "unknown-ca"])
def test_https_receiver_is_verified_against_the_environment_ca_bundle(make_channel, tmp_path, monkeypatch, trusted):
    """REQUESTS_CA_BUNDLE is read once, when the channel is built, and used for https:// receivers; a
    certificate no trusted authority signed is refused (the payload never reaches the receiver)."""
    receiver = _TlsReceiver(tmp_path)
    try:
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)
        if trusted:
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(receiver.ca_file))
        channel = make_channel(url=receiver.url)
        if trusted:
            out = channel.publish(make_post(), make_ctx(delivery_id=8))
            assert out.remote_id == "over-tls" and receiver.seen == ["/hook"]
        else:
            with pytest.raises(ChannelError, match="(?i)ssl|certificate"):
                channel.publish(make_post(), make_ctx(delivery_id=8))
            assert receiver.seen == []
    finally:
        receiver.stop()


# ------------------------------------------------------------------------------------- put-back
def test_put_back_after_a_take_down_is_a_new_publication_at_a_deduplicating_receiver(make_app, sink, monkeypatch):
    """Taken off the item's channels (the copy withdrawn), put back and approved again: the sink
    de-duplicates by Idempotency-Key as a real receiver does, so the put-back must carry a new key
    (else it is answered with the first publication and nothing is published); a retry of one
    publication keeps its key; the second take-down reaches the receiver too."""
    from publisher.channel import DeliveryContext
    from tests.test_dispatch import approved_item, deliveries, run_once
    from tests.test_withdraw_in_flight import _approve, _edit

    monkeypatch.setenv("PUBLISHER_WEBHOOK_SECRET", SECRET)
    app = make_app(channels={"mem": {"type": "memory"}, "hook": {"type": "webhook", "url": sink.hook_url}})
    item = approved_item(app, channels=["mem", "hook"])
    assert run_once(app) == {"done": 2}
    did = deliveries(app, item)["hook"].id
    _edit(app, item, channels=["mem"])
    _approve(app, item)
    assert run_once(app) == {"done": 2}  # hook's take-down, mem's update
    assert sink.item(item)["live"] is False
    _edit(app, item, channels=["mem", "hook"])
    _approve(app, item)
    assert run_once(app) == {"done": 2}
    led = sink.ledger()
    assert sink.item(item)["live"] is True, f"the put-back was answered as a duplicate: {led['duplicate_keys']}"
    assert led["duplicates"] == 0
    publishes = [d["key"] for d in led["deliveries"] if d["event"] == "publish"]
    assert publishes == [f"delivery-{did}", f"delivery-{did}-g1"]
    # a retry of the put-back publication (its answer lost, say) keeps its key: still one publication
    d = deliveries(app, item)["hook"]
    app.channels["hook"].channel.publish(make_post(item), DeliveryContext(delivery_id=did, attempt=2, state=d.state))
    led = sink.ledger()
    assert led["duplicate_keys"] == {f"delivery-{did}-g1": 1}
    assert [x["key"] for x in led["deliveries"] if x["event"] == "publish"] == publishes
    # taken down again: a new withdraw key, so the receiver takes the new copy down
    _edit(app, item, channels=["mem"])
    _approve(app, item)
    assert run_once(app) == {"done": 2}
    assert sink.item(item)["live"] is False
    withdraws = [x["key"] for x in sink.ledger()["deliveries"] if x["event"] == "withdraw"]
    assert withdraws == [f"delivery-{did}:withdraw", f"delivery-{did}-g1:withdraw"]
