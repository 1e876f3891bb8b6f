"""The channels' shared key/value store (the ``channel_kv`` table) on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

from publisher.models import utcnow
from publisher.pipeline.registry import DatabaseKV


def test_set_get_delete_and_expiry(app):
    kv = DatabaseKV(app.engine, "wechat")
    assert kv.get("token") is None
    kv.set("token", "a")
    kv.set("token", "b", expires_at=utcnow() + timedelta(hours=1))
    assert kv.get("token") == "b"
    kv.set("token", "c", expires_at=utcnow() - timedelta(seconds=1))
    assert kv.get("token") is None
    kv.delete("token")
    assert kv.get("token") is None
    assert DatabaseKV(app.engine, "other").get("token") is None


def test_workers_setting_a_new_key_at_once_do_not_collide(app):
    """Every worker stores the WeChat token it fetched after an expiry: none of them may fail."""
    kv = DatabaseKV(app.engine, "wechat")
    errors: list[BaseException] = []
    rounds, threads = 15, 6

    def setter(n: int, gate: threading.Barrier) -> None:
        for r in range(rounds):
            try:
                gate.wait(timeout=30)
                kv.set(f"token-{r}", f"from-{n}")
            except BaseException as exc:  # noqa: BLE001 - collected and reported below
                errors.append(exc)

    gate = threading.Barrier(threads)
    pool = [threading.Thread(target=setter, args=(n, gate)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors[:3]
    assert all(kv.get(f"token-{r}").startswith("from-") for r in range(rounds))
