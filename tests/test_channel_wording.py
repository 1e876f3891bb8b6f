"""Per-channel wording (issue 14) end to end: an item file's ``overrides`` for WeChat, Weibo and e-mail
go through review and the real worker to the real sandboxes (the WeChat API, the Weibo API, an SMTP
server), each carrying its own wording while another channel gets the item's own; the wording is
refused at save time by the channel's limits, shown in the reviewers' diff, and read by the privacy
check. On SQLite and PostgreSQL (``store_url``)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlmodel import select

from channels.sandbox.smtp import SmtpSandbox
from channels.sandbox.wechat.sandbox import WeChatSandbox
from channels.sandbox.weibo import WeiboSandbox
from channels.wechat import media
from publisher.errors import ContentNotAccepted, InvalidInput, NotAllowed
from publisher.models import Delivery, DeliveryStatus, Item, ItemStatus, PrivacyFinding
from publisher.pipeline import content, workflow
from publisher.pipeline.privacy import mask_text
from publisher.pipeline.worker import Dispatcher
from publisher.pipeline.workflow import wording
from publisher.pipeline.workflow.privacy import assets_of
from publisher.testing import MemoryChannel
from publisher.web import compose
from tests.privacy.makers import make_id, make_mobile

SECRET_ENV, WEIBO_ENV, SMTP_ENV = (
    "PUBLISHER_TEST_WORDING_WECHAT",
    "PUBLISHER_TEST_WORDING_WEIBO",
    "PUBLISHER_TEST_WORDING_SMTP",
)


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[dict[str, Any]]:
    """The three sandboxes, running for the module; yields them and their ``[channels.NAME]`` tables."""
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    wechat = WeChatSandbox(publish_delay=0.1)
    weibo = WeiboSandbox(access_token="wording-weibo-token", safe_domain="127.0.0.1")
    smtp = SmtpSandbox(users={"xxgk": "wording-smtp-password"}, security="starttls")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET_ENV, wechat.secret)
        mp.setenv(WEIBO_ENV, "wording-weibo-token")
        mp.setenv(SMTP_ENV, "wording-smtp-password")
        try:
            wechat_base, weibo_base = wechat.start(), weibo.start()
            smtp.start()
            tables = {
                "wechat": {
                    "type": "wechat",
                    "appid": wechat.appid,
                    "secret_env": SECRET_ENV,
                    "api_base": wechat_base,
                    "poll_intervals": [0.2, 0.3],
                },
                "weibo": {
                    "type": "weibo",
                    "api_base": weibo_base,
                    "web_base": weibo_base,
                    "safe_domain": "127.0.0.1",
                    "access_token_env": WEIBO_ENV,
                    "rate_per_minute": 600,
                },
                "email": {
                    "type": "email",
                    "host": smtp.host,
                    "port": smtp.port,
                    "security": "starttls",
                    "username": "xxgk",
                    "password_env": SMTP_ENV,
                    "sender": "xxgk@example.edu.cn",
                    "ca_file": str(smtp.cert_path),
                    "lists": {"subscribers": ["teachers@example.edu.cn"]},
                },
                "mem": {"type": "memory"},
            }
            yield {"wechat": wechat, "weibo": weibo, "smtp": smtp, "tables": tables}
        finally:
            for s in (wechat, weibo, smtp):
                with contextlib.suppress(Exception):
                    s.stop()


@pytest.fixture
def app(make_app: Any, sandboxes: dict[str, Any]) -> Any:
    return make_app(channels=sandboxes["tables"], site_base_url="http://127.0.0.1/site/")


def _cover(path: Path, colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", (900, 500), colour).save(path, "JPEG")
    return path


LONG = "齐齐哈尔高等师范专科学校关于2026年寒假放假及2027年春季学期开学时间安排的通知"  # 42: too long for WeChat


def _file(folder: Path, overrides: str, *, channels: str = "wechat, weibo, email, mem", title: str = LONG) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _cover(folder / "cover.jpg", (30, 90, 160))
    md = folder / "item.md"
    md.write_text(
        f"---\ntitle: {title}\n"
        f"category: 公告公示\nchannels: [{channels}]\ncover: cover.jpg\ncover_alt: 校门口的蓝色横幅\n"
        "summary: 学校2026年寒假自1月17日开始，2027年春季学期2月28日学生报到。\n"
        f"{overrides}---\n各学院、各部门：\n\n根据校历安排，现将寒假放假及开学时间通知如下。\n",
        encoding="utf-8",
    )
    return md


def _draft(app: Any, path: Path) -> content.ItemDraft:
    return content.read_item_file(path, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**7)


def _approved(app: Any, path: Path) -> int:
    with app.session() as s:
        ed = workflow.get_user(s, "ed")
        item = workflow.create_item(app.ctx, s, author=ed, draft=_draft(app, path)).id
        workflow.submit(app.ctx, s, item_id=item, actor=ed)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec"), approve=True)
    return item  # type: ignore[return-value]


WORDING = (
    "overrides:\n"
    "  wechat:\n    title: 寒假放假及春季开学安排\n    summary: 1月17日放寒假，2月28日报到。\n"
    "    cover: wechat-cover.jpg\n    cover_alt: 红色背景上的寒假安排字样\n"
    "  weibo:\n    title: 【通知】我校寒假1月17日开始，春季学期2月28日报到\n"
    "  email:\n    title: 寒假及开学时间通知\n"
)


def test_each_sandbox_gets_its_wording_and_another_channel_the_items_own(
    app: Any, sandboxes: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "items"
    folder.mkdir()
    own_cover = _cover(folder / "wechat-cover.jpg", (200, 40, 40))
    item = _approved(app, _file(folder, WORDING))
    with app.session() as s:
        workflow.schedule(app.ctx, s, item_id=item, at=datetime.now(UTC))
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True, horizon=timedelta(seconds=30))
    with app.session() as s:
        ds = {d.channel: d for d in s.exec(select(Delivery).where(Delivery.item_id == item))}
        title = workflow.get_item(s, item).title
    assert {c: d.status for c, d in ds.items()} == dict.fromkeys(ds, DeliveryStatus.DONE), {
        c: d.last_error for c, d in ds.items()
    }

    wechat: WeChatSandbox = sandboxes["wechat"]
    article = next(a for a in wechat.ledger()["articles"] if a["article_id"] == ds["wechat"].remote_id)
    assert article["title"] == "寒假放假及春季开学安排"
    with wechat._lock:  # the digest is kept only in the sandbox's state
        news = wechat._s.articles[article["article_id"]]["news_item"][0]
    assert news["digest"] == "1月17日放寒假，2月28日报到。"
    # the thumb is WeChat's cover: the one written for WeChat, not the item's
    thumb = media.prepare_thumb(own_cover, hashlib.sha256(own_cover.read_bytes()).hexdigest()[:16])
    assert wechat.ledger()["materials"][article["thumb_media_id"]]["sha256"] == hashlib.sha256(thumb.data).hexdigest()

    status = sandboxes["weibo"].statuses[int(ds["weibo"].remote_id)]
    assert status["sent"].startswith("【通知】我校寒假1月17日开始，春季学期2月28日报到 http://127.0.0.1/site/")
    mail = next(m for m in sandboxes["smtp"].messages if m["message_id"] == ds["email"].remote_id)["message"]
    assert mail["Subject"] == "寒假及开学时间通知"
    text = mail.get_body(("plain",)).get_content()
    assert text.startswith("寒假及开学时间通知") and "根据校历安排" in text  # the heading too; the body is the item's
    assert MemoryChannel.ledger["mem"] == [(ds["mem"].id, item, title)]  # no wording: the item's own
    # WeChat's cover is in WeChat's post alone; the others carry the item's own
    with app.session() as s:
        it = workflow.get_item(s, item)
        covers = {c: workflow.build_post(app.ctx, s, it, c).cover for c in ("wechat", "weibo", "email", "mem")}
    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (own_cover, folder / "cover.jpg")}
    assert {c: a.sha256 for c, a in covers.items() if a} == {
        "wechat": sha["wechat-cover.jpg"],
        **dict.fromkeys(("weibo", "email", "mem"), sha["cover.jpg"]),
    }
    # each described in its own words: WeChat's by its wording's cover_alt, the others by the item's
    assert {c: a.alt for c, a in covers.items()} == {
        "wechat": "红色背景上的寒假安排字样",
        **dict.fromkeys(("weibo", "email", "mem"), "校门口的蓝色横幅"),
    }


def test_a_channels_cover_needs_alt_text_at_submit(app: Any, tmp_path: Path) -> None:
    _cover(tmp_path / "mem-cover.jpg", (20, 160, 40))
    path = _file(tmp_path, "overrides:\n  mem:\n    cover: mem-cover.jpg\n", channels="mem")
    with app.session() as s:
        ed = workflow.get_user(s, "ed")
        item = workflow.create_item(app.ctx, s, author=ed, draft=_draft(app, path)).id
    with app.session() as s, pytest.raises(ContentNotAccepted) as err:
        workflow.submit(app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"))
    assert err.value.problems == [
        "mem wording: 封面图缺少替代文本 (alt text): the cover `mem-cover.jpg` — say what it shows with "
        "`mem.cover_alt` (front matter: `overrides: {mem: {cover_alt: 校门口合影}}`)"
    ]
    # written with --override as the CLI does (merge), it is kept through the edit and the submit passes
    with app.session() as s:
        ed = workflow.get_user(s, "ed")
        it = workflow.get_item(s, item)
        given = wording.merge(wording.public(it.overrides), ["mem.cover_alt=绿色的校园草坪"])
        workflow.edit_item(app.ctx, s, item_id=item, actor=ed, changes={"overrides": given})
        workflow.submit(app.ctx, s, item_id=item, actor=ed)
        it = workflow.get_item(s, item)
        assert it.status == ItemStatus.SUBMITTED
        assert workflow.build_post(app.ctx, s, it, "mem").cover.alt == "绿色的校园草坪"
        assert "[mem] cover_alt: 绿色的校园草坪" in wording.diff_lines(it.overrides)  # the reviewers' diff


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"mem": {"cover_alt": "校门"}}, "overrides for mem: cover_alt is set but there is no cover"),
        ({"mem": {"cover": "a" * 64, "cover_alt": "门" * 501}}, "cover_alt is 501 characters; at most 500"),
    ],
)
def test_a_channels_cover_alt_is_refused_without_a_cover_or_too_long(given: dict[str, Any], said: str) -> None:
    with pytest.raises(InvalidInput, match=said):
        wording.check(given, channels=["mem"], max_body_bytes=10**6)
    assert wording.check(
        {"mem": {"cover": "a" * 64, "cover_alt": " 校门 口 "}}, channels=["mem"], max_body_bytes=9
    ) == {"mem": {"cover": "a" * 64, "cover_alt": "校门 口"}}


def _refused(app: Any, path: Path) -> str:
    with pytest.raises(InvalidInput) as err, app.session() as s:
        workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=_draft(app, path))
    return str(err.value)


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        (
            "  wechat:\n    title: " + "寒" * 33 + "\n",
            "wechat wording: the title is 33 characters; WeChat takes at most 32",
        ),
        ("  wechat:\n    summary: " + "假" * 129 + "\n", "wechat wording: the digest (摘要) is 129 characters; WeChat"),
        ("  weibo:\n    title: " + "通" * 140 + "\n", "weibo wording: the Weibo text (its title and the link) counts"),
        ("  website:\n    title: 短\n", "overrides for 'website': it is not one of the item's channels"),
        ("  email:\n    subject: 短\n", "overrides for email: unknown field(s) subject"),
        ("  email: 短标题\n", "overrides for email: give its fields as field: text"),
    ],
)
def test_wording_a_channel_cannot_take_is_refused_at_save(app: Any, tmp_path: Path, overrides: str, said: str) -> None:
    assert said in _refused(app, _file(tmp_path, "overrides:\n" + overrides))
    with app.session() as s:
        assert s.exec(select(Item)).all() == []  # one transaction: nothing of the refused save stays


def test_an_edit_of_the_wording_needs_review_again_and_shows_in_the_diff(app: Any, tmp_path: Path) -> None:
    path = _file(
        tmp_path, "overrides:\n  email:\n    title: 寒假及开学时间通知\n", title="关于寒假放假及开学时间的通知"
    )
    item = _approved(app, path)
    with pytest.raises(ContentNotAccepted, match="wechat wording: the title is 40 characters"), app.session() as s:
        ed = workflow.get_user(s, "ed")
        workflow.edit_item(app.ctx, s, item_id=item, actor=ed, changes={"overrides": {"wechat": {"title": "寒" * 40}}})
    with app.session() as s:
        it = workflow.get_item(s, item)
        assert (it.version, it.status, it.overrides["email"]["title"]) == (1, ItemStatus.APPROVED, "寒假及开学时间通知")
        workflow.edit_item(
            app.ctx,
            s,
            item_id=item,
            actor=workflow.get_user(s, "ed"),
            changes={"overrides": {"email": {"title": "寒假通知"}, "weibo": {"title": "寒假1月17日开始"}}},
        )
    with app.session() as s:
        it = workflow.get_item(s, item)
        assert (it.version, it.status) == (2, ItemStatus.SUBMITTED)  # back to the first review
        since, lines = compose.changes_since_approval(s, it)  # type: ignore[misc]
    changed = [(ln.kind, ln.text) for ln in lines if ln.kind in ("add", "del")]
    assert since == 1
    assert changed == [
        ("del", "-[email] title: 寒假及开学时间通知"),
        ("add", "+[email] title: 寒假通知"),
        ("add", "+[weibo] title: 寒假1月17日开始"),
    ]


def test_a_number_in_the_wording_is_a_privacy_finding_the_gate_and_the_worker_see(app: Any, tmp_path: Path) -> None:
    mobile = "13945217788"
    path = _file(tmp_path, f"overrides:\n  weibo:\n    title: 寒假值班电话 {mobile}\n", channels="weibo, mem")
    with app.session() as s:
        ed = workflow.get_user(s, "ed")
        item = workflow.create_item(app.ctx, s, author=ed, draft=_draft(app, path)).id
        found = workflow.findings_of(s, workflow.get_item(s, item))
        assert [(f.kind, f.where) for f in found] == [("mobile", "weibo.title")]
        assert mobile not in found[0].masked
        workflow.submit(app.ctx, s, item_id=item, actor=ed)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
    with app.session() as s, pytest.raises(NotAllowed, match="finding"):
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec"), approve=True)
    # cleared with a reason, it goes out; the worker's re-check matches the decision by its place
    with app.session() as s:
        sec = workflow.get_user(s, "sec")
        workflow.clear_finding(app.ctx, s, item_id=item, number=1, actor=sec, reason="值班电话，对外公开")
        workflow.review(app.ctx, s, item_id=item, actor=sec, approve=True)
        workflow.schedule(app.ctx, s, item_id=item, at=datetime.now(UTC))
        it = workflow.get_item(s, item)
        # a number put into the approved wording by hand, past the workflow: the worker refuses it
        it.overrides = {"weibo": {"title": f"寒假值班电话 {mobile}"}, "mem": {"title": "寒假值班 13845210099"}}
        s.add(it)
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True, horizon=timedelta(seconds=30))
    with app.session() as s:
        ds = {d.channel: d for d in s.exec(select(Delivery).where(Delivery.item_id == item))}
        rows = s.exec(select(PrivacyFinding).where(PrivacyFinding.item_id == item)).all()
    assert ds["weibo"].status == DeliveryStatus.DONE, ds["weibo"].last_error
    assert ds["mem"].status == DeliveryStatus.FAILED
    assert "mem.title" in (ds["mem"].last_error or "") and "13845210099" not in (ds["mem"].last_error or "")
    assert len(rows) == 1


def test_masking_masks_the_wording_too_and_nothing_else(app: Any, tmp_path: Path) -> None:
    rng = random.Random(14)
    id_no, mobile = make_id(rng), make_mobile(rng)
    path = _file(
        tmp_path,
        "overrides:\n"
        f"  wechat:\n    title: 寒假放假安排\n    summary: 学生甲身份证号 {id_no}，1月17日离校。\n"
        "    cover: wechat-cover.jpg\n    cover_alt: 红色背景上的寒假安排字样\n"
        f"  email:\n    title: 寒假通知\n    body: |\n      各位老师：\n\n      值班手机 {mobile}，请知悉。\n",
        channels="wechat, email, mem",
        title="寒假放假及开学时间通知",
    )
    _cover(tmp_path / "wechat-cover.jpg", (160, 40, 40))
    with app.session() as s:
        ed, head = workflow.get_user(s, "ed"), workflow.get_user(s, "head")
        item_id = workflow.create_item(app.ctx, s, author=ed, draft=_draft(app, path)).id
        assert item_id is not None
        workflow.submit(app.ctx, s, item_id=item_id, actor=ed)
        workflow.review(app.ctx, s, item_id=item_id, actor=head, approve=True)
        before = workflow.get_item(s, item_id)
        found = workflow.findings_of(s, before)
        assert sorted((f.kind, f.where) for f in found) == [("id_card", "wechat.summary"), ("mobile", "email.body:3")]
        kept = {k: getattr(before, k) for k in ("title", "summary", "body_markdown", "channels", "category")}
        old_wording = {ch: dict(f) for ch, f in before.overrides.items()}
        assets = sorted((a.role, a.sha256, a.alt) for a in assets_of(s, item_id))
    with app.session() as s:
        done = workflow.mask_item(app.ctx, s, item_id=item_id, actor=workflow.get_user(s, "ed"))
        item = done.item
        assert (item.version, item.status) == (2, ItemStatus.SUBMITTED)  # back to the first review
        assert done.masked_findings == 2
        assert id_no not in done.diff and mobile not in done.diff
        assert "-学生甲身份证号 [id_card]，1月17日离校。" in done.diff and "+值班手机 " in done.diff
        wording = item.overrides
        assert (
            wording["wechat"]["summary"]
            == f"学生甲身份证号 {mask_text(id_no)}，1月17日离校。"
            != old_wording["wechat"]["summary"]
        )
        assert wording["email"]["body"] == f"各位老师：\n\n值班手机 {mask_text(mobile)}，请知悉。"
        assert mobile not in wording["email"]["body_html"] and mask_text(mobile) in wording["email"]["body_html"]
        # nothing else of the item changed: its own text, the other wording fields, the cover, the assets
        assert {k: getattr(item, k) for k in kept} == kept
        for ch, fields in old_wording.items():
            assert {k: v for k, v in wording[ch].items() if k not in ("summary", "body", "body_html")} == {
                k: v for k, v in fields.items() if k not in ("summary", "body", "body_html")
            }
        assert sorted((a.role, a.sha256, a.alt) for a in assets_of(s, item_id)) == assets
        # the check passes on the new version; the old version's findings are recorded as masked
        assert workflow.findings_of(s, item) == []
        old = s.exec(select(PrivacyFinding).where(PrivacyFinding.item_id == item_id, PrivacyFinding.item_version == 1))
        assert sorted(f.decision for f in old) == ["masked", "masked"]
    with app.session() as s:  # and so it goes through both reviews, the 保密审查 with nothing open
        workflow.review(app.ctx, s, item_id=item_id, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item_id, actor=workflow.get_user(s, "sec"), approve=True)
        assert workflow.get_item(s, item_id).status == ItemStatus.APPROVED


def test_the_items_own_cover_picked_for_a_channel_keeps_its_alt_text_unless_the_wording_gives_one(
    tmp_path: Path,
) -> None:
    import dataclasses

    from publisher.testing import make_post
    from tests.channels.contract_douyin import image_asset

    own = dataclasses.replace(image_asset(tmp_path, role="cover"), alt="校门口的蓝色横幅")
    mine = image_asset(tmp_path, role=wording.CHANNEL_COVER, color=(10, 200, 10))
    post = make_post(1, assets=(own, mine))
    assert wording.for_channel(post, {"cover": own.sha256}).cover.alt == "校门口的蓝色横幅"
    assert wording.for_channel(post, {"cover": own.sha256, "cover_alt": "横幅"}).cover.alt == "横幅"
    assert wording.for_channel(post, {"cover": mine.sha256}).cover.alt == ""  # asked for at submit
