"""The 企业微信 application-message transport (channels/notify/wecom_app.py) against its sandbox
(channels/sandbox/wecom_app.py), over real HTTP: the token cached and refreshed once when it expires,
the textcard with the link, the documented refusals, the duplicate check, and the outbox end to end
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from channels.notify.wecom_app import WecomAppConfig, WecomAppNotifier
from channels.sandbox.wecom_app import WecomAppSandbox
from publisher.errors import MissingSecret
from publisher.notification import NotificationStatus
from publisher.notifier import Message, NotifyPermanent, NotifyRateLimited, available_notifiers
from publisher.pipeline.notify import open_sender
from tests.test_notify import (
    _act,
    _item,
    _prefs,
    _rows,
    declared_notifiers,  # noqa: F401  (a fixture: this tree's declared transports)
)

CORP, SECRET, AGENT = "ww-test-corp", "test-app-secret-5f2c", 1000007
MEMBERS = ("WangZhuRen", "libianji", "zhangshencha")


@pytest.fixture
def corp(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("T_WECOM_APP_SECRET", SECRET)
    sandbox = WecomAppSandbox(corpid=CORP, secret=SECRET, agentid=AGENT, users=MEMBERS, unlicensed=("zhangshencha",))
    sandbox.start()
    yield sandbox
    sandbox.stop()


def _table(sb: WecomAppSandbox, **over: Any) -> dict[str, Any]:
    return {"api_base": sb.base_url, "corpid": CORP, "agentid": AGENT, "secret_env": "T_WECOM_APP_SECRET", **over}


def _notifier(sb: WecomAppSandbox, **over: Any) -> WecomAppNotifier:
    return WecomAppNotifier(WecomAppConfig(**_table(sb, **over)))


def _message(address: str = "libianji", n: int = 1) -> Message:
    link = f"https://xxgk.example.edu.cn/items/{n}"
    return Message(
        address=address,
        subject=f"待审核：《通知 {n}》",
        text=f"校长办公室提交的《通知 {n}》（第 1 版）等待您审核。\n\n{link}",
        link=link,
        key=f"submitted:item{n}:u1:wecom_app",
    )


def test_the_transport_is_declared() -> None:
    assert available_notifiers()["wecom_app"] is WecomAppNotifier


def test_a_textcard_reaches_the_member_and_the_token_is_cached(corp) -> None:
    n = _notifier(corp)
    for i in range(3):
        n.send(_message(n=i))
    assert n.token_fetches == 1 and [e["action"] for e in corp.ledger].count("gettoken") == 1
    assert [m["touser"] for m in corp.messages] == [["libianji"]] * 3
    card = corp.messages[0]
    assert card["msgtype"] == "textcard" and card["title"] == "待审核：《通知 0》"
    assert card["url"] == "https://xxgk.example.edu.cn/items/0" and card["btntxt"] == "去处理"
    assert "https://" not in card["description"]  # the link is the card's button, not repeated
    # a userid typed in another case is the same member (the service matches without regard to case)
    n.send(_message("LIBIANJI", n=9))
    assert corp.messages[-1]["touser"] == ["libianji"]


def test_an_expired_token_is_refreshed_once(corp) -> None:
    n = _notifier(corp, msgtype="text")
    n.send(_message(n=1))
    corp.expire_tokens()  # the 7200 s are over
    n.send(_message(n=2))
    assert n.token_fetches == 2
    assert [e.get("errcode") for e in corp.ledger if e["action"] == "refused"] == [42001]
    assert [m["content"].split("\n")[0] for m in corp.messages] == ["【待审核：《通知 1》】", "【待审核：《通知 2》】"]


def test_the_documented_refusals(corp, monkeypatch) -> None:
    # a wrong secret: permanent, and the secret never in the error
    monkeypatch.setenv("T_WECOM_APP_SECRET", "not-the-apps-secret")
    with pytest.raises(NotifyPermanent, match="40001") as wrong:
        _notifier(corp).send(_message())
    assert "not-the-apps-secret" not in str(wrong.value)
    monkeypatch.setenv("T_WECOM_APP_SECRET", SECRET)
    with pytest.raises(NotifyPermanent, match="40013"):
        _notifier(corp, corpid="ww-another").send(_message())
    with pytest.raises(NotifyPermanent, match="40056"):
        _notifier(corp, agentid=1).send(_message())
    # not a member: 81013; a member without a licence: named in unlicenseduser
    with pytest.raises(NotifyPermanent, match="81013.*可见范围"):
        _notifier(corp).send(_message("ghost"))
    with pytest.raises(NotifyPermanent, match="unlicenseduser"):
        _notifier(corp).send(_message("zhangshencha"))
    with pytest.raises(NotifyPermanent, match="not one userid"):
        _notifier(corp).send(_message("libianji|wangzhuren"))
    # this server's IP is not among the app's trusted IPs
    corp.trusted = False
    with pytest.raises(NotifyPermanent, match="60020.*企业可信IP"):
        _notifier(corp).send(_message())
    corp.trusted = True
    # over the frequency limit: wait a minute, no attempt used (the sender's NotifyRateLimited)
    corp.per_minute = 1
    n = _notifier(corp)
    n.send(_message(n=1))
    with pytest.raises(NotifyRateLimited, match="45009"):
        n.send(_message(n=2))
    assert len(corp.messages) == 1
    monkeypatch.delenv("T_WECOM_APP_SECRET")
    with pytest.raises(MissingSecret, match="T_WECOM_APP_SECRET is not set"):
        _notifier(corp)


def test_the_sandbox_answers_a_partial_success_with_invaliduser(corp) -> None:
    token = requests.get(
        f"{corp.base_url}/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET}, timeout=10
    ).json()
    assert token["errcode"] == 0 and token["expires_in"] > 7000
    answer = requests.post(
        f"{corp.base_url}/cgi-bin/message/send",
        params={"access_token": token["access_token"]},
        json={"touser": "libianji|Ghost|nobody", "msgtype": "text", "agentid": AGENT, "text": {"content": "x"}},
        timeout=10,
    ).json()
    assert answer["errcode"] == 0 and answer["invaliduser"] == "ghost|nobody"
    assert corp.messages[-1]["touser"] == ["libianji"]


def test_the_duplicate_check_drops_a_repeat_within_the_interval(corp) -> None:
    n = _notifier(corp, duplicate_check_seconds=2)
    n.send(_message(n=1))
    n.send(_message(n=1))  # the same message again (a sender killed before its record): not delivered twice
    assert len(corp.messages) == 1 and [e["action"] for e in corp.ledger].count("duplicate") == 1
    time.sleep(2.1)
    n.send(_message(n=1))  # after the interval it is a new message
    assert len(corp.messages) == 2
    # turned off: every send is delivered
    off = _notifier(corp, duplicate_check_seconds=0)
    off.send(_message(n=5))
    off.send(_message(n=5))
    assert len(corp.messages) == 4


def test_the_outbox_tells_each_person_through_the_corp_app_once(make_app, corp) -> None:
    a = make_app(
        notify={"transports": {"wecom_app": _table(corp)}, "web_base_url": "https://xxgk.example.edu.cn/"},
    )
    _prefs(a, head=("wecom_app", "WangZhuRen"), ed=("wecom_app", "libianji"), sec=("wecom_app", "ghost"))
    items = [_item(a, f"通知 {n}", ["mem"]) for n in range(2)]
    for i in items:
        _act(a, i, "submit", "approve:head")
    sender = open_sender(a.engine, a.settings, "test-sender:0:app")
    assert sender is not None
    try:
        assert sender.run(once=True) == {"sent": 2, "failed": 2}
        assert sender.run(once=True) == {}
    finally:
        sender.close()
    rows = _rows(a)
    assert {(r.address, r.status) for r in rows} == {
        ("WangZhuRen", NotificationStatus.SENT),
        ("ghost", NotificationStatus.FAILED),  # the reviewer's userid is not a member: not retried
    }
    assert all("81013" in r.last_error for r in rows if r.status == NotificationStatus.FAILED)
    assert sorted(m["url"] for m in corp.messages) == sorted(f"https://xxgk.example.edu.cn/items/{i}" for i in items)
    assert all(m["touser"] == ["WangZhuRen"] and m["title"].startswith("待审核") for m in corp.messages)


def test_doctor_checks_the_corp_app_with_gettoken_and_sends_nothing(make_app, corp, tmp_path, monkeypatch) -> None:
    from publisher.doctor import run_checks

    a = make_app()
    f = tmp_path / "settings.toml"
    f.write_text(
        f'database_url = "{a.settings.database_url}"\n[notify.transports.wecom_app]\n'
        f'api_base = "{corp.base_url}"\ncorpid = "{CORP}"\nagentid = {AGENT}\nsecret_env = "T_WECOM_APP_SECRET"\n',
        encoding="utf-8",
    )
    check = {c.name: c for c in run_checks(f)}["notify"]
    assert check.ok and "gettoken ok" in check.detail, check
    monkeypatch.setenv("T_WECOM_APP_SECRET", "a-wrong-secret")
    check = {c.name: c for c in run_checks(f)}["notify"]
    assert not check.ok and "40001" in check.detail and "a-wrong-secret" not in check.detail, check
    assert corp.messages == [] and [e["action"] for e in corp.ledger] == ["gettoken", "gettoken"]
