"""The ``publisher`` command's contract, each command run as a real subprocess against a real store.

Every run passes ``--settings PATH`` and ``PUBLISHER_DATABASE_URL`` (see tests/clirun.py); the
``--help`` check walks the command tree in-process through click (one subprocess per command
would take minutes on a shared machine) and spot-checks a few as subprocesses.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from publisher.channel import available_channel_types
from tests.clirun import Cli, dump, setup_store


@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:
    c = Cli(tmp_path, store_url)
    setup_store(c)
    return c


def write_item(
    folder: Path, title: str = "关于寒假放假安排的通知", channels: str = "[mem, mem2]", extra: str = ""
) -> Path:
    p = folder / f"item-{abs(hash(title)) % 10**6}.md"
    p.write_text(
        f'---\ntitle: "{title}"\ncategory: 公告公示\nchannels: {channels}\nchecklist_item: 3\n{extra}---\n'
        "根据学校校历，现将寒假放假安排通知如下。\n",
        encoding="utf-8",
    )
    return p


def show(cli: Cli, item_id: str) -> dict:
    return json.loads(cli.ok("item", "show", item_id, "--json").out)


def test_init_migrates_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    cli = Cli(tmp_path, url)
    before = cli.settings.read_text(encoding="utf-8")
    r = cli.ok("init")
    assert "database ready" in r.out and "channels: mem, mem2" in r.out
    first = dump(url)
    assert "item" in first and len(first["department"]) == 8
    cli.ok("init")
    assert dump(url) == first, "a second init changed the store"
    assert cli.settings.read_text(encoding="utf-8") == before, "init overwrote an existing settings file"


@pytest.mark.skipif(
    "website" not in available_channel_types(),
    reason="the settings template configures the website channel, not installed on this branch",
)
def test_init_creates_settings_when_absent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    cli = Cli(tmp_path, url)
    cli.settings.unlink()
    r = cli.ok("init")
    assert cli.settings.exists() and f"wrote {cli.settings}" in r.out
    cli.ok("init")


def test_whole_flow(cli: Cli, tmp_path: Path) -> None:
    r = cli.ok("user", "add", "wang.li", "--role", "editor", "--department", "人事处", "--display-name", "王丽")
    assert "wang.li" in r.out
    assert "wang.li" in cli.ok("user", "list").out
    r = cli.ok("item", "add", str(write_item(tmp_path, title="[通知] 关于放假 [/x]")), "--as", "ed")
    item_id = r.last_line
    assert item_id.isdigit(), r.out
    listed = json.loads(cli.ok("item", "list", "--json").out)
    assert [(i["id"], i["status"], i["title"]) for i in listed] == [(int(item_id), "draft", "[通知] 关于放假 [/x]")]
    assert json.loads(cli.ok("item", "list", "--json", "--status", "submitted").out) == []

    cli.ok("submit", item_id, "--as", "ed")
    cli.ok("review", "approve", item_id, "--as", "head")
    r = cli("review", "reject", item_id, "--as", "sec")
    assert r.code != 0 and "a rejection needs a reason" in r.err
    cli.ok("review", "reject", item_id, "--as", "sec", "--reason", "附件缺页")
    d = show(cli, item_id)
    assert d["status"] == "draft" and d["return_reason"] == "附件缺页"
    cli.ok("submit", item_id, "--as", "ed")
    r = cli.ok("schedule", item_id, "--at", "2099-01-05T09:00+08:00", "--as", "ed")
    assert "is submitted: it will publish at 2099-01-05 09:00 (Asia/Shanghai) once both reviews approve" in r.out
    cli.ok("review", "approve", item_id, "--as", "head")
    r = cli.ok("review", "approve", item_id, "--as", "sec", "--reason", "同意")
    assert "scheduled for 2099-01-05 09:00" in r.out
    r = cli.ok("schedule", item_id, "--at", "now", "--as", "ed")
    assert "scheduled" in r.out and "Asia/Shanghai" in r.out
    r = cli.ok("run", "--once")
    assert "done 2" in r.out
    d = show(cli, item_id)
    assert d["status"] == "published"
    assert sorted((x["channel"], x["status"]) for x in d["deliveries"]) == [("mem", "done"), ("mem2", "done")]
    assert [(r["level"], r["reviewer"], r["approved"]) for r in d["reviews"]] == [
        (1, "head", True),
        (2, "sec", False),
        (1, "head", True),
        (2, "sec", True),
    ]
    assert [a["to"] for a in d["audit"]][-1] == "published"
    table = cli.ok("item", "show", item_id).out
    assert "[通知] 关于放假 [/x]" in table and "memory://mem/" in table
    # the text view promises attempts and the audit trail, not only the JSON one
    assert "publish attempt 1: done" in table and "audit trail:" in table and "sec" in table
    assert "dept_approved → approved" in table and "None" not in table

    stats = json.loads(cli.ok("stats", "--format", "json", "--by", "channel").out)
    assert sorted((r["channel"], r["published"], r["items"]) for r in stats) == [
        ("mem", 1, 1),
        ("mem2", 1, 1),
    ]

    r = cli.ok("withdraw", item_id, "--reason", "信息有误", "--as", "ed")
    assert "run the worker to take it down from mem, mem2" in r.out, r.out
    draft_id = cli.ok("item", "add", str(write_item(tmp_path, title="未发出的稿件")), "--as", "ed").last_line
    r = cli.ok("withdraw", draft_id, "--as", "ed")
    assert "nothing to take down" in r.out and "run the worker" not in r.out, r.out
    assert "done 2" in cli.ok("run", "--once").out
    d = show(cli, item_id)
    assert d["status"] == "withdrawn"
    assert {x["op"] for x in d["deliveries"]} == {"withdraw"}


def test_taking_a_channel_off_a_published_item_says_it_is_taken_down(cli: Cli, tmp_path: Path) -> None:
    item_id = cli.ok("item", "add", str(write_item(tmp_path, title="撤下一个渠道")), "--as", "ed").last_line
    cli.ok("submit", item_id, "--as", "ed")
    cli.ok("review", "approve", item_id, "--as", "head")
    cli.ok("review", "approve", item_id, "--as", "sec")
    cli.ok("schedule", item_id, "--at", "now", "--as", "ed")
    assert "done 2" in cli.ok("run", "--once").out
    r = cli.ok("item", "edit", item_id, str(write_item(tmp_path, title="撤下一个渠道", channels="[mem]")), "--as", "ed")
    assert "removed from mem2; run the worker to take it down from mem2" in r.out, r.out
    assert "done 1" in cli.ok("run", "--once").out
    d = show(cli, item_id)
    assert {(x["channel"], x["op"], x["status"]) for x in d["deliveries"]} == {
        ("mem", "publish", "done"),
        ("mem2", "withdraw", "done"),
    }


def test_retry_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    # a title longer than mem's title_max would be refused at review; use a permanent failure instead:
    # the failed delivery is produced by the dispatcher in this process, then retried by the CLI
    from publisher.app import open_app
    from publisher.pipeline import content, workflow
    from publisher.pipeline.worker import Dispatcher
    from publisher.settings import load_settings
    from publisher.testing import MemoryChannel

    s = load_settings(cli.settings)
    s.database_url = cli.store_url
    a = open_app(s)
    try:
        MemoryChannel.script("mem", "p")
        with a.session() as ss:
            draft = content.ItemDraft(
                title="通知",
                body_markdown="正文",
                fields={"category": "公告公示", "channels": ["mem", "mem2"]},
            )
            item = workflow.create_item(a.ctx, ss, author=workflow.get_user(ss, "ed"), draft=draft)
            workflow.submit(a.ctx, ss, item_id=item.id, actor=workflow.get_user(ss, "ed"))
            workflow.review(a.ctx, ss, item_id=item.id, actor=workflow.get_user(ss, "head"), approve=True)
            workflow.review(a.ctx, ss, item_id=item.id, actor=workflow.get_user(ss, "sec"), approve=True)
            workflow.schedule(a.ctx, ss, item_id=item.id, at=datetime.now(UTC))
        Dispatcher(engine=a.engine, ctx=a.ctx).run(once=True)
    finally:
        a.close()
        MemoryChannel.reset()
    failed = json.loads(cli.ok("deliveries", "--status", "failed", "--json").out)
    assert [(x["channel"], x["last_error"]) for x in failed] == [("mem", "memory: scripted permanent failure")]
    assert "queued again" in cli.ok("retry", str(failed[0]["id"])).out
    r = cli("retry", str(failed[0]["id"]))
    assert r.code == 1 and "only a failed delivery can be retried" in r.err
    assert "done 1" in cli.ok("run", "--once").out
    assert show(cli, str(item.id))["status"] == "published"


def test_stats_periods_are_cut_in_beijing_time(cli: Cli, tmp_path: Path) -> None:
    """Published at 00:30 on 1 October Beijing time (16:30 UTC on 30 September): October's."""
    item_id = cli.ok("item", "add", str(write_item(tmp_path)), "--as", "ed").last_line
    cli.ok("submit", item_id, "--as", "ed")
    cli.ok("review", "approve", item_id, "--as", "head")
    cli.ok("review", "approve", item_id, "--as", "sec")
    cli.ok("schedule", item_id, "--at", "now")
    cli.ok("run", "--once")
    from publisher.db import make_engine

    eng = make_engine(cli.store_url)
    with eng.begin() as conn:  # test setup: move the publication to the edge of the month
        conn.execute(
            sa.text("UPDATE delivery SET published_at = :t WHERE channel = 'mem'"),
            {"t": datetime(2026, 9, 30, 16, 30)},
        )
        conn.execute(
            sa.text("UPDATE delivery SET published_at = :t WHERE channel = 'mem2'"),
            {"t": datetime(2026, 9, 30, 15, 59)},
        )  # 23:59 on 30 September Beijing time
    eng.dispose()

    def rows(*args: str) -> list[dict]:
        return list(csv.DictReader(io.StringIO(cli.ok("stats", "--format", "csv", *args).out)))

    october = rows("--from", "2026-10-01", "--to", "2026-10-31", "--by", "channel,category,department,month")
    assert [(r["channel"], r["category"], r["department"], r["month"], r["published"]) for r in october] == [
        ("mem", "公告公示", "校长办公室", "2026-10", "1")
    ]
    september = rows("--from", "2026-09-01", "--to", "2026-09-30", "--by", "channel,month")
    assert [(r["channel"], r["month"], r["published"]) for r in september] == [("mem2", "2026-09", "1")]
    both = json.loads(
        cli.ok("stats", "--format", "json", "--from", "2026-09-01", "--to", "2026-10-31", "--by", "month").out
    )
    assert [(r["month"], r["published"], r["items"]) for r in both] == [("2026-09", 1, 1), ("2026-10", 1, 1)]
    table = cli.ok("stats", "--from", "2026-10-01", "--to", "2026-10-31", "--by", "channel").out
    assert "published" in table and "mem" in table and "2026-10-01" in table
    r = cli("stats", "--from", "2026-10-31", "--to", "2026-10-01")
    assert r.code == 1 and "ends (2026-10-01) before it starts (2026-10-31)" in r.err
    r = cli("stats", "--by", "colour")
    assert r.code == 1 and "unknown dimension 'colour'" in r.err
    r = cli("stats", "--format", "xml")
    assert r.code == 1 and "unknown format 'xml'" in r.err


def test_settings_from_environment_variable(cli: Cli) -> None:
    r = cli.ok("item", "list", "--json", settings=False, env={"PUBLISHER_SETTINGS": str(cli.settings)})
    assert json.loads(r.out) == []
    # PUBLISHER_DATABASE_URL wins over the file's database_url
    cli.settings.write_text(
        'database_url = "sqlite:////nonexistent/x.db"\n' + cli.settings.read_text("utf-8"), encoding="utf-8"
    )
    assert json.loads(cli.ok("item", "list", "--json").out) == []


def _commands(group, path=()):  # noqa: ANN001, ANN202
    yield path
    if hasattr(group, "commands"):  # typer vendors click in newer releases: duck-type the group
        for name, sub in group.commands.items():
            yield from _commands(sub, (*path, name))


def test_help_on_every_command() -> None:
    import typer
    from typer.testing import CliRunner

    from publisher.cli import app

    root = typer.main.get_command(app)
    paths = list(_commands(root))
    assert len(paths) > 20
    runner = CliRunner()
    for path in paths:
        r = runner.invoke(app, [*path, "--help"])
        assert r.exit_code == 0, f"publisher {' '.join(path)} --help: {r.output}"
        assert "Usage:" in r.output


@pytest.mark.parametrize("args", [["--help"], ["item", "add", "--help"], ["stats", "--help"]])
def test_help_as_a_subprocess(tmp_path: Path, args: list[str]) -> None:
    r = Cli(tmp_path, f"sqlite:///{tmp_path / 'none.db'}")(*args)
    assert r.code == 0 and "Usage:" in r.out and r.err == ""


def test_data_folder_does_not_shadow_channel_packages(cli: Cli) -> None:
    """`python -m publisher.cli` puts the current folder first on sys.path. A ./channels folder
    made by the core there turned into a namespace package hiding the real `channels` package
    (an editable install's finder comes after the path finder): 'module channels.website has no
    attribute WebsiteChannel'. No folder the core makes may be named like an importable package."""
    from importlib.metadata import entry_points

    cli.ok("run", "--once")
    packages = {ep.value.split(":")[0].split(".")[0] for ep in entry_points(group="publisher.channels")}
    packages |= {"channels", "publisher"}
    made = {p.name for p in cli.workdir.iterdir() if p.is_dir()}
    assert not made & packages, f"folders {made & packages} in the data folder shadow packages"


def test_manual_list_shows_when_each_fell_due(tmp_path: Path, store_url: str) -> None:
    """The by-hand queue is read by a person who posts from it: a waiting delivery shows when it fell
    due (not the worker's next reminder), and one not due yet says so, so nobody posts it early."""
    from tests.clirun import SETTINGS

    text = SETTINGS.format(data_dir=tmp_path) + '[channels.city_portal]\ntype = "manual"\nplace = "city_portal"\n'
    cli = Cli(tmp_path, store_url, settings_text=text)
    setup_store(cli)
    ids = []
    for title, at in (("今天发的通知", "now"), ("明年发的通知", "2099-01-05T09:00+08:00")):
        item_id = cli.ok("item", "add", str(write_item(tmp_path, title, "[city_portal]")), "--as", "ed").last_line
        cli.ok("submit", item_id, "--as", "ed")
        cli.ok("review", "approve", item_id, "--as", "head")
        cli.ok("review", "approve", item_id, "--as", "sec")
        cli.ok("schedule", item_id, "--at", at, "--as", "ed")
        ids.append(item_id)
    cli.ok("run", "--once")
    due_now = show(cli, ids[0])["publish_at"]
    listed = cli.ok("manual", "list").out
    rows = {line.split("│")[2].strip(): line for line in listed.splitlines() if line.count("│") > 5}
    shown = datetime.strptime(rows[ids[0]].split("│")[4].strip(), "%Y-%m-%d %H:%M")
    fell_due = datetime.fromisoformat(due_now).astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    assert abs((shown - fell_due).total_seconds()) < 600 and "by hand" in rows[ids[0]], listed
    assert "2099-01-05 09:00" in rows[ids[1]] and "not due yet" in rows[ids[1]], listed


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_piped_tables_keep_whole_titles(cli: Cli, tmp_path: Path) -> None:
    """Piped output (cron mail, `| less`, a file) was cut to 80 columns and a Chinese title, which has
    no spaces to wrap at, ended in "…" after six characters."""
    cli.env.pop("COLUMNS")
    title = "关于2026年公开招聘专任教师及辅导员岗位人员的公告"
    cli.ok("item", "add", str(write_item(tmp_path, title=title)), "--as", "ed")
    listed = cli.ok("item", "list").out
    assert title in listed and "…" not in listed, listed


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_department_add_says_when_it_already_exists(cli: Cli) -> None:
    assert cli.ok("department", "add", " 档案馆 ").out.strip() == "department 档案馆 added"
    assert cli.ok("department", "add", "人事处").out.strip() == "department 人事处 already exists"
    assert cli.ok("department", "list").out.count("人事处") == 1


USAGE_ERRORS = [
    (["submit"], "error: missing argument ITEM_ID — usage: publisher submit ITEM_ID --as USER"),
    (["submit", "seven", "--as", "ed"], "error: ITEM_ID must be a whole number, such as 7 — usage: publisher submit"),
    (
        ["review", "approve", "7", "--ass", "x"],
        "error: no such option --ass (did you mean --as or --reason?) — usage: "
        "publisher review approve ITEM_ID --as USER [OPTIONS]",
    ),
    (["user", "add", "li.ming"], "error: missing option --role ROLE — usage: publisher user add NAME --role ROLE "),
    (["item", "list", "--status"], "error: option --status needs a value — usage: publisher item list [OPTIONS]"),
    (["item", "shwo", "7"], "error: no such command 'shwo'. Did you mean 'show'? — usage: publisher item COMMAND"),
]


def test_usage_errors_are_one_line_naming_the_problem_and_the_usage(tmp_path: Path) -> None:
    """click printed a usage block, a "Try --help" line and the error after a blank line; scripts and people
    read the first line. Still exit 2 (a usage error), nothing on stdout, no store needed."""
    run = Cli(tmp_path, f"sqlite:///{tmp_path / 'none.db'}")
    for args, expected in USAGE_ERRORS:
        r = run(*args)
        assert (r.code, r.out) == (2, ""), (args, r)
        assert r.err.endswith("\n") and r.err.count("\n") == 1, (args, r.err)
        assert r.err.startswith(expected), (args, r.err)
    assert not (tmp_path / "none.db").exists()
    # a group named alone shows its help
    r = run("item")
    assert r.code == 2 and "Usage:" in r.err and "Commands:" in r.err
