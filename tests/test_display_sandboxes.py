"""The test issue 12 asks for: a 公示 with ``display_working_days: 5`` published before 国庆 2026 comes
down at the right moment on every channel, through the real sandboxes (each channel's emulator, over
HTTP or SMTP) and the real worker; channels that cannot withdraw (e-mail, a by-hand place) get a
take-down on the by-hand queue. The ending job runs at end − 1 s (nothing comes down) and at the end
(everything does), with ``now`` injected into the service function; nothing is lost and the counts
do not change. Also: the website's "公示期已结束" notice and its "remove" setting."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from publisher.channel import DeliveryContext, Post, available_sandboxes, site_page_path
from publisher.demo import _sample_image
from publisher.models import Delivery, DeliveryOp, DeliveryStatus, ItemStatus
from publisher.pipeline import content, workflow
from publisher.pipeline.worker import Dispatcher
from tests.test_display_period import END, LIVE, SH, end, item_row, known_years, per_channel, replay_from

pytestmark = pytest.mark.slow


@pytest.fixture
def sandboxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every channel's sandbox that ships with the package, running; yields their ``[channels.NAME]`` tables."""
    handles = []
    tables: dict[str, dict[str, Any]] = {}
    try:
        for name, start in sorted(available_sandboxes().items()):
            h = start(tmp_path / "sandbox")
            handles.append(h)
            for k, v in h.environ.items():
                monkeypatch.setenv(k, v)
            if h.config:  # the campus sign-in servers are sandboxes too, of no channel
                tables[name] = h.config
        yield tables
    finally:
        for h in handles:
            with contextlib.suppress(Exception):  # a sandbox that will not stop cannot fail the test
                h.stop()


def _write_item(folder: Path, channels: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _sample_image(folder / "campus.png")
    md = folder / "gs.md"
    md.write_text(
        "---\ntitle: 2026年国家助学金评审结果公示\ncategory: 公告公示\n"
        f"channels: [{', '.join(channels)}]\ncover: campus.png\ncover_alt: 校园一角\n"
        "display_working_days: 5\n"
        "summary: 拟资助名单公示，公示期5个工作日。\n---\n"
        "经个人申请、系部推荐、学校评审，拟资助以下同学，现予公示。公示期 5 个工作日。\n\n"
        "联系电话：0452-2712345（学生资助管理中心）\n",
        encoding="utf-8",
    )
    return md


def test_a_gongshi_comes_down_on_every_channel_at_the_end_of_its_fifth_working_day(
    make_app: Any, sandboxes: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    channels = {
        "website": {"type": "website", "folder": "site"},
        "city_portal": {"type": "manual", "place": "city_portal"},
        **sandboxes,
    }
    app = make_app(channels=channels, calendar=known_years())
    names = sorted(channels)
    with app.session() as s:
        draft = content.read_item_file(
            _write_item(tmp_path / "items", names),
            media_dir=app.settings.media_dir,
            max_body_bytes=10**6,
            max_asset_bytes=10**7,
        )
        ed = workflow.get_user(s, "ed")
        item = workflow.create_item(app.ctx, s, author=ed, draft=draft).id
        workflow.submit(app.ctx, s, item_id=item, actor=ed)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item, at=datetime.now(UTC))
    replay_from(app, item, LIVE).run(once=True, horizon=timedelta(seconds=30))
    with app.session() as s:
        portal = s.exec(select(Delivery).where(Delivery.item_id == item, Delivery.channel == "city_portal")).one()
        workflow.record_manual(
            app.ctx, s, delivery_id=portal.id, actor="ed", url="https://www.qqhr.gov.cn/art/2026/9/29/1.html"
        )
    with app.session() as s:
        ds = {d.channel: d for d in s.exec(select(Delivery).where(Delivery.item_id == item))}
        assert {c: d.status for c, d in ds.items()} == dict.fromkeys(names, DeliveryStatus.DONE), {
            c: d.last_error for c, d in ds.items()
        }
        first = min(d.published_at for d in ds.values())
    assert LIVE <= first < LIVE + timedelta(minutes=5)
    assert item_row(app, item).status == ItemStatus.PUBLISHED
    before = per_channel(app)
    assert before == dict.fromkeys(names, (1, 1))
    site = app.settings.path("site")
    page = site / site_page_path(item)
    assert "公示期至" in page.read_text(encoding="utf-8") and "2026-10-10" in page.read_text(encoding="utf-8")
    api = [n for n in names if app.channels[n].channel.supports_withdraw]
    assert sorted(set(names) - set(api)) == ["city_portal", "email"]

    # one second before the end: nothing comes down, whatever the worker does
    early = end(app, END - timedelta(seconds=1))
    assert early.ended == {} and early.known == {item: END}
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {}
    assert item_row(app, item).status == ItemStatus.PUBLISHED
    assert "拟资助以下同学" in page.read_text(encoding="utf-8")

    # at the end: every channel with an API takes it down; the others go to the by-hand queue
    owed = end(app, END).ended[item]
    assert (sorted(owed.queued), sorted(owed.by_hand)) == (api, ["city_portal", "email"])
    summary = Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True, horizon=timedelta(seconds=30))
    assert dict(summary.outcomes) == {"done": len(api)}
    with app.session() as s:
        ds = {d.channel: d for d in s.exec(select(Delivery).where(Delivery.item_id == item))}
    for name, d in ds.items():
        assert d.op == DeliveryOp.WITHDRAW and d.published_at is not None, name  # nothing lost
        if name in api:
            assert (d.status, d.withdrawn_at is not None) == (DeliveryStatus.DONE, True), (name, d.last_error)
        else:
            assert d.status == DeliveryStatus.FAILED and "take it down by hand" in (d.last_error or ""), name
    it = item_row(app, item)
    assert (it.status, it.display_ended_at) == (ItemStatus.WITHDRAWN, END)
    assert per_channel(app) == before  # the counts still count the publication
    # the website: a notice without the list, listed nowhere
    notice = page.read_text(encoding="utf-8")
    assert "公示期已结束" in notice and "2026-09-29" in notice and "2026-10-10" in notice
    assert "拟资助以下同学" not in notice and "campus" not in notice
    # the home page, the feed, every sitemap file (sitemap.xml is their index) and listing page
    listings = [site / "index.html", site / "feed.xml", *site.glob("sitemap*.xml"), *site.glob("**/page/*.html")]
    assert site / "sitemap-lists.xml" in listings
    for listing in listings:
        assert site_page_path(item) not in listing.read_text(encoding="utf-8"), listing
    assert not list((site / "media").glob("*")), "the item's images stay online"


# ------------------------------------------------------------------------------- the website alone
def _post(tmp_path: Path, *, ended: bool) -> Post:
    from publisher.channel import Asset

    f = tmp_path / "名单.xlsx"
    f.write_bytes(b"PK\x03\x04 not really a workbook, the site copies it byte for byte")
    return Post(
        item_id=7,
        title="奖学金公示",
        body_markdown="名单见附件。",
        body_html="<p>名单见附件。</p>",
        summary="名单见附件。",
        category="公告公示",
        department="学生工作部",
        author="ed",
        publish_at=LIVE,
        updated_at=LIVE,
        assets=(
            Asset(sha256="a" * 64, path=f, filename="名单.xlsx", content_type="application/zip", role="attachment"),
        ),
        display_ends_at=END,
        display_ended=ended,
    )


@pytest.mark.parametrize("after", ["notice", "remove"])
def test_the_website_after_the_end(tmp_path: Path, after: str) -> None:
    from channels.website.channel import WebsiteChannel, WebsiteConfig
    from publisher.channel import ChannelEnv
    from publisher.testing import MemoryKV

    env = ChannelEnv(data_dir=tmp_path, timezone=SH, kv=MemoryKV())
    site = WebsiteChannel("website", WebsiteConfig(folder="site", after_display=after), env)
    ctx = DeliveryContext(delivery_id=1, attempt=1, state={})
    site.publish(_post(tmp_path, ended=False), ctx)
    page = tmp_path / "site" / site_page_path(7)
    assert "名单.xlsx" in page.read_text(encoding="utf-8")
    assert len(list((tmp_path / "site" / "files").glob("*"))) == 1
    site.withdraw(_post(tmp_path, ended=True), ctx)
    assert not list((tmp_path / "site" / "files").glob("*")), "the attachment stays online"
    assert site.manifest() == {}
    if after == "remove":
        assert not page.exists()
    else:
        text = page.read_text(encoding="utf-8")
        assert "公示期已结束" in text and "2026-09-29" in text and "2026-10-10" in text
        assert "名单" not in text.replace("奖学金公示", "")
    # a withdrawal before the end (or of an item without a period) removes the page as before
    site.publish(_post(tmp_path, ended=False), ctx)
    site.withdraw(_post(tmp_path, ended=False), ctx)
    assert not page.exists()
