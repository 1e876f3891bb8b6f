"""The 公示期 that ends by itself, on both engines with the real Dispatcher and service functions:
the fields and their refusals, the end worked out when the item goes live, the take-down at the end
(never a second early), a take-down racing a worker's claim, the counts unchanged, and a year the
calendar does not know (the item stays up and says why)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import select

from publisher.counting import ledger, stats
from publisher.errors import InvalidInput
from publisher.models import AuditLog, Delivery, DeliveryOp, DeliveryRequest, DeliveryStatus, Item, ItemStatus
from publisher.pipeline import content, workflow
from publisher.pipeline.worker import Dispatcher
from publisher.testing import MemoryChannel

SH = ZoneInfo("Asia/Shanghai")
#: 国庆 2026: live 9-29 10:00, five working days 9-29, 9-30, 10-08, 10-09, 10-10 (调休 Saturday)
LIVE = datetime(2026, 9, 29, 10, 0, tzinfo=SH)
END = datetime(2026, 10, 11, 0, 0, tzinfo=SH)


def known_years() -> dict[str, Any]:
    """[calendar] listing 元旦 of each year chinese-calendar may not know, up to next year: a count
    from today then never reaches an unknown year, whenever these tests run."""
    return {"holidays": [date(y, 1, 1) for y in range(2027, datetime.now(UTC).year + 2)]}


def new_item(app: Any, *, author: str = "ed", channels: list[str] | None = None, **fields: Any) -> int:
    with app.session() as s:
        draft = content.ItemDraft(
            title="2026年国家助学金评审结果公示",
            body_markdown="拟资助名单如下。",
            fields={"category": "公告公示", "channels": channels or ["mem"], **fields},
        )
        return workflow.create_item(app.ctx, s, author=workflow.get_user(s, author), draft=draft).id  # type: ignore[return-value]


def approve_and_schedule(app: Any, item: int, author: str = "ed") -> None:
    with app.session() as s:
        if workflow.get_item(s, item).status == ItemStatus.DRAFT:
            workflow.submit(app.ctx, s, item_id=item, actor=workflow.get_user(s, author))
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item, at=datetime.now(UTC))


def replay_from(app: Any, item: int, at: datetime) -> Dispatcher:
    """The item's publish time moved back to ``at`` (its deliveries due then), and a worker whose
    injected clock starts there: what it publishes is stamped from ``at`` on."""
    with app.engine.begin() as c:
        it, dl = Item.__table__, Delivery.__table__  # type: ignore[attr-defined]
        c.execute(sa.update(it).where(it.c.id == item).values(publish_at=at))
        c.execute(sa.update(dl).where(dl.c.item_id == item).values(due_at=at))
    offset = datetime.now(UTC) - at
    return Dispatcher(engine=app.engine, ctx=app.ctx, clock=lambda: datetime.now(UTC) - offset)


def item_row(app: Any, item: int) -> Item:
    with app.session() as s:
        return workflow.get_item(s, item)


def per_channel(app: Any) -> dict[str, tuple[int, int]]:
    rows = stats.counts(
        app.engine,
        stats.StatsQuery(start=datetime(2026, 1, 1, tzinfo=SH), end=datetime(2027, 1, 1, tzinfo=SH), by=("channel",)),
    )
    return {str(r["channel"]): (r["published"], r["items"]) for r in rows}


def end(app: Any, now: datetime) -> workflow.EndedDisplays:
    return workflow.end_displays(app.ctx, app.session, now=now)


# ------------------------------------------------------------------------------------- the fields
def test_both_kinds_of_end_are_refused_with_the_fix(make_app: Any) -> None:
    app = make_app()
    with pytest.raises(InvalidInput, match="not both: remove one"):
        new_item(app, display_until="2099-01-01T17:00+08:00", display_working_days=5)


@pytest.mark.parametrize("days", [0, 61, "five", True, -3])
def test_working_days_outside_1_to_60_are_refused(make_app: Any, days: Any) -> None:
    app = make_app()
    with pytest.raises(InvalidInput, match="display_working_days"):
        new_item(app, display_working_days=days)


def test_display_until_needs_a_zone_and_a_future_time(make_app: Any) -> None:
    app = make_app()
    with pytest.raises(InvalidInput, match="no time zone"):
        new_item(app, display_until="2099-11-01T17:00")
    with pytest.raises(InvalidInput, match="not after the publish time"):
        new_item(app, display_until="2022-11-01T17:00+08:00")


def test_front_matter_sets_the_end_and_it_is_known_at_once(make_app: Any, tmp_path: Path) -> None:
    app = make_app()
    f = tmp_path / "gs.md"
    f.write_text(
        "---\ntitle: 公示\ncategory: 公告公示\nchannels: [mem]\ndisplay_until: 2099-11-01T17:00+08:00\n---\n名单\n",
        encoding="utf-8",
    )
    with app.session() as s:
        draft = content.read_item_file(f, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**6)
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=draft)
        assert item.display_ends_at == datetime(2099, 11, 1, 9, 0, tzinfo=UTC)
        # an edit giving working days replaces the end time: one kind at a time
        workflow.edit_item(
            app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "ed"), changes={"display_working_days": 3}
        )
        assert (item.display_until, item.display_working_days, item.display_ends_at) == (None, 3, None)


def test_the_categorys_default_applies_to_an_item_naming_none(make_app: Any) -> None:
    app = make_app(display={"working_days": {"公告公示": 5}}, calendar=known_years())
    item = item_row(app, new_item(app))
    assert item.display_working_days == 5
    other = item_row(app, new_item(app, display_until="2099-01-01T00:00+08:00"))
    assert (other.display_working_days, other.display_until) == (None, datetime(2098, 12, 31, 16, tzinfo=UTC))


def test_working_days_reaching_an_unknown_year_are_refused_at_save(make_app: Any) -> None:
    app = make_app()
    far = datetime.now(UTC).replace(year=2030)  # chinese-calendar knows at most 2026
    with pytest.raises(InvalidInput, match=r"does not know 20\d\d.*\[calendar\].*display_until"):
        new_item(app, display_working_days=5, publish_at=far.isoformat())
    # a plain end time needs no calendar
    new_item(app, display_until=(far + timedelta(days=7)).isoformat(), publish_at=far.isoformat())


# ------------------------------------------------------------------------------------- the end
def test_comes_down_at_the_end_not_a_second_before_and_still_counts(make_app: Any) -> None:
    app = make_app(
        channels={
            "mem": {"type": "memory"},
            "mem2": {"type": "memory"},
            "byhand": {"type": "memory", "withdraw": False},
        },
        calendar=known_years(),
    )
    item = new_item(app, channels=["mem", "mem2", "byhand"], display_working_days=5)
    approve_and_schedule(app, item)
    assert item_row(app, item).display_ends_at is None  # not live yet: nothing to count from
    assert dict(replay_from(app, item, LIVE).run(once=True).outcomes) == {"done": 3}
    assert item_row(app, item).status == ItemStatus.PUBLISHED
    before = per_channel(app)
    assert before == {"mem": (1, 1), "mem2": (1, 1), "byhand": (1, 1)}

    early = end(app, END - timedelta(seconds=1))
    assert early.known == {item: END} and early.ended == {}
    it = item_row(app, item)
    assert (it.status, it.display_ends_at, it.display_ended_at) == (ItemStatus.PUBLISHED, END, None)
    assert MemoryChannel.withdrawn == {}

    done = end(app, END)
    owed = done.ended[item]
    assert (sorted(owed.queued), owed.by_hand) == (["mem", "mem2"], ["byhand"])
    it = item_row(app, item)
    assert (it.status, it.display_ended_at) == (ItemStatus.WITHDRAWN, END)
    assert end(app, END + timedelta(hours=1)).ended == {}  # once
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {"done": 2}
    assert sorted(MemoryChannel.withdrawn) == ["mem", "mem2"]
    with app.session() as s:
        ds = {d.channel: d for d in s.exec(select(Delivery).where(Delivery.item_id == item))}
        assert {c: (d.op, d.status) for c, d in ds.items()} == {
            "mem": (DeliveryOp.WITHDRAW, DeliveryStatus.DONE),
            "mem2": (DeliveryOp.WITHDRAW, DeliveryStatus.DONE),
            "byhand": (DeliveryOp.WITHDRAW, DeliveryStatus.FAILED),
        }
        assert "take it down by hand" in (ds["byhand"].last_error or "")
        assert all(d.published_at is not None for d in ds.values())  # the publication stays on record
        row = s.exec(
            select(AuditLog).where(AuditLog.entity == "item", AuditLog.entity_id == item, AuditLog.action == "withdraw")
        ).one()
        assert (row.actor, row.reason) == ("system", "公示期已结束 (display period ended 2026-10-11 00:00 +08:00)")
        assert row.detail["display_ends_at"] == END.astimezone(UTC).isoformat()
    assert per_channel(app) == before  # the counts still count the publication
    # the ledger keeps every publication and records the end
    pubs = {p.channel: p for p in ledger.publications(app.engine) if p.item_id == item}
    assert sorted(pubs) == ["byhand", "mem", "mem2"]
    assert {p.display_ended_at for p in pubs.values()} == {END}
    assert pubs["mem"].withdrawn_at is not None and pubs["byhand"].withdrawn_at is None


def test_the_end_waits_for_the_item_to_go_live(make_app: Any) -> None:
    app = make_app(calendar=known_years())
    item = new_item(app, display_working_days=1)
    approve_and_schedule(app, item)
    far = datetime.now(UTC) + timedelta(days=400)
    assert end(app, far).ended == {}  # scheduled, nothing out: the count has not started
    assert item_row(app, item).display_ends_at is None


def test_a_take_down_at_the_end_racing_a_workers_claim(make_app: Any) -> None:
    """The end comes while a worker is inside the call sending an update of the item: the take-down
    is recorded on the claimed delivery at once and applied when the call returns."""
    app = make_app(channels={"mem": {"type": "memory"}}, calendar=known_years())
    item = new_item(app, display_until=(datetime.now(UTC) + timedelta(days=3)).isoformat())
    approve_and_schedule(app, item)
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {"done": 1}
    # an update on its way out (an edit approved again) held inside the channel call
    with app.session() as s:
        workflow.edit_item(app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"), changes={"title": "更正公示"})
    approve_and_schedule(app, item)
    w = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="hostA:1:a")
    [claim] = w.claim(1)
    gate = MemoryChannel.hold("mem", claim.id)
    t = threading.Thread(target=w.execute, args=(claim.id,))
    t.start()
    MemoryChannel.wait_held("mem")
    try:
        ends = item_row(app, item).display_ends_at
        done = end(app, ends)
        assert done.ended[item].in_flight == ["mem"]
        with app.session() as s:
            d = s.exec(select(Delivery).where(Delivery.item_id == item)).one()
            assert (d.status, d.requested) == (DeliveryStatus.CLAIMED, DeliveryRequest.WITHDRAW)
    finally:
        gate.set()
        t.join(30)
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {"done": 1}
    assert MemoryChannel.withdrawn["mem"] == [item]
    with app.session() as s:
        d = s.exec(select(Delivery).where(Delivery.item_id == item)).one()
        assert (d.op, d.status) == (DeliveryOp.WITHDRAW, DeliveryStatus.DONE)
    assert item_row(app, item).status == ItemStatus.WITHDRAWN


def test_an_unknown_year_at_going_live_leaves_it_up_and_says_why(make_app: Any) -> None:
    """The office listed 2027 at save time, then took the list out: the job never guesses."""
    app = make_app(channels={"mem": {"type": "memory"}}, calendar=known_years())
    item = new_item(app, display_working_days=3)
    approve_and_schedule(app, item)
    live = datetime(2026, 12, 30, 10, 0, tzinfo=SH)  # 12-30, 12-31, then 2027
    replay_from(app, item, live).run(once=True)
    bare = make_app(channels={"mem": {"type": "memory"}}, users=False)  # the same store, no [calendar]
    done = workflow.end_displays(bare.ctx, bare.session, now=datetime(2027, 6, 1, tzinfo=SH))
    assert done.ended == {} and "does not know 2027" in done.problems[item]
    it = item_row(app, item)
    assert (it.status, it.display_ends_at) == (ItemStatus.PUBLISHED, None)
    assert "does not know 2027" in (it.display_problem or "")
    # doctor warns (it does not fail: publishing goes on)
    from publisher.doctor import run_checks

    f = Path(app.settings.data_dir) / "doctor.toml"
    f.write_text(f'database_url = "{app.settings.database_url}"\n', encoding="utf-8")
    check = {c.name: c for c in run_checks(f)}["display periods"]
    assert check.ok and check.warning and f"items {item}:" in check.detail and "2027" in check.detail
    # with the year listed again, the next run works it out: 12-30, 12-31, 01-04 (01-01 off)
    done = end(app, datetime(2027, 6, 1, tzinfo=SH))
    assert done.known[item] == datetime(2027, 1, 5, 0, 0, tzinfo=SH) and item in done.ended
    assert item_row(app, item).display_problem is None


# ------------------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_cli_item_add_and_list_expiring(tmp_path: Path, store_url: str) -> None:
    from tests.clirun import Cli, setup_store

    cli = Cli(tmp_path, store_url)
    setup_store(cli)
    now = datetime.now(SH).replace(second=0, microsecond=0)

    def item(name: str, extra: str) -> Path:
        p = tmp_path / f"{name}.md"
        p.write_text(f"---\ntitle: {name}\ncategory: 公告公示\nchannels: [mem]\n{extra}---\n名单\n", encoding="utf-8")
        return p

    both = item("两者", "display_until: 2099-01-01T17:00+08:00\ndisplay_working_days: 5\n")
    r = cli("item", "add", str(both), "--as", "ed")
    assert r.code != 0 and "not both" in r.err and "Traceback" not in r.err
    soon = cli.ok(
        "item", "add", str(item("三天后", f"display_until: {(now + timedelta(days=3)).isoformat()}\n")), "--as", "ed"
    )
    later = cli.ok(
        "item", "add", str(item("十天后", f"display_until: {(now + timedelta(days=10)).isoformat()}\n")), "--as", "ed"
    )
    sooner = cli.ok(
        "item", "add", str(item("明天", f"display_until: {(now + timedelta(days=1)).isoformat()}\n")), "--as", "ed"
    )
    out = cli.ok("item", "list", "--expiring").out
    assert "三天后" in out and "明天" in out and "十天后" not in out
    assert out.index("明天") < out.index("三天后")  # soonest first
    assert (now + timedelta(days=1)).strftime("%Y-%m-%d %H:%M") in out  # office time
    shown = cli.ok("item", "show", later.last_line).out
    assert "公示期 (until the time given) ends" in shown
    assert {soon.last_line, sooner.last_line} <= {line.split()[1] for line in out.splitlines() if line.startswith("│")}


def test_the_display_end_job_runs_once_a_minute_across_workers(make_app: Any) -> None:
    import time

    from publisher.scheduler import periodic_jobs, run_once_per_period

    app = make_app(channels={"mem": {"type": "memory"}})
    until = datetime.now(UTC) + timedelta(seconds=3)
    item = new_item(app, display_until=until.isoformat())
    approve_and_schedule(app, item)
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {"done": 1}
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.1)
    (job,) = [j for j in periodic_jobs(app) if j.name == "display-end"]
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    assert run_once_per_period(app, job, "hostA", minute) is True
    assert run_once_per_period(app, job, "hostB", minute) is False  # the other worker skips this minute
    it = item_row(app, item)
    assert it.status == ItemStatus.WITHDRAWN and it.display_ended_at is not None


def test_a_live_gongshi_sent_back_to_review_still_comes_down_at_the_end(make_app: Any) -> None:
    """An edit sends a published item back to the first review while its copies stay up: the end of
    the period takes them down all the same (the law's 公示期 does not wait for the review)."""
    app = make_app(channels={"mem": {"type": "memory"}})
    item = new_item(app, display_until=(datetime.now(UTC) + timedelta(days=2)).isoformat())
    approve_and_schedule(app, item)
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {"done": 1}
    with app.session() as s:
        workflow.edit_item(app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"), changes={"title": "更正"})
    assert item_row(app, item).status == ItemStatus.SUBMITTED
    ends = item_row(app, item).display_ends_at
    assert end(app, ends - timedelta(seconds=1)).ended == {}
    assert item in end(app, ends).ended
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {"done": 1}
    assert MemoryChannel.withdrawn["mem"] == [item]
    # a draft that never went out is left alone, whatever its end
    never = new_item(app, display_until=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    assert never not in end(app, datetime.now(UTC) + timedelta(days=30)).ended
    assert item_row(app, never).status == ItemStatus.DRAFT


def test_its_people_are_reminded_once_the_day_before_the_end(make_app: Any) -> None:
    from publisher.notification import Notification
    from publisher.pipeline.workflow import outbox

    app = make_app(calendar=known_years())
    with app.session() as s:
        outbox.set_pref(s, user="ed", transport="email", address="ed@example.edu.cn", known=["email"])
        outbox.set_pref(s, user="head", transport="email", address="head@example.edu.cn", known=["email"])
    item = new_item(app, display_working_days=5)
    approve_and_schedule(app, item)
    assert dict(replay_from(app, item, LIVE).run(once=True).outcomes) == {"done": 1}

    def reminders() -> list[Any]:
        with app.session() as s:
            return list(s.exec(select(Notification).where(Notification.event == "display_ends")))

    assert end(app, END - timedelta(days=2)).reminded == 0  # the end is known now, two days away
    assert end(app, END - timedelta(hours=12)).reminded == 1
    assert end(app, END - timedelta(hours=11)).reminded == 0  # once per item and end
    [note] = reminders()
    with app.session() as s:
        assert workflow.get_user(s, "ed").id == note.user_id  # the author; the head is not an editor
    assert note.item_id == item and "公示即将结束" in note.subject and "2026-10-11 00:00" in note.body
    assert item in end(app, END).ended and reminders() == [note]  # the end itself tells nobody again
