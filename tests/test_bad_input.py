"""Bad input through the real CLI: exit non-zero, ONE stderr line naming the problem, store unchanged.

Every case runs ``python -m publisher.cli`` in a subprocess against a real store and compares a dump
of every table before and after. Cases that reach the database run on SQLite and PostgreSQL
(``cli``); cases refused before any write (file and settings checks) run on SQLite only
(``sqlite_cli``), because each CLI start costs seconds on a shared machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import Cli, dump, setup_store

GOOD_FRONT = {"title": "关于寒假放假安排的通知", "category": "公告公示", "channels": "[mem]"}


@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:
    c = Cli(tmp_path, store_url)
    setup_store(c)
    return c


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Cli:
    return _fresh_cli(tmp_path)


def item_file(folder: Path, body: str = "正文\n", name: str = "item.md", **front: Any) -> Path:
    fields = {**GOOD_FRONT, **front}
    lines = [f"{k}: {v}" for k, v in fields.items() if v is not None]
    p = folder / name
    p.write_text("---\n" + "\n".join(lines) + "\n---\n" + body, encoding="utf-8")
    return p


def assert_refused(cli: Cli, args: list[str], *needles: str, **kw: Any) -> str:
    before = dump(cli.store_url)
    r = cli(*args, **kw)
    assert r.code != 0, f"accepted: {r.out}"
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{r.err}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    assert "Traceback" not in r.err
    assert dump(cli.store_url) == before, "the store changed"
    return lines[0]


# ------------------------------------------------------------------------------------ item files
@pytest.mark.parametrize(
    ("front", "needles"),
    [
        ({"category": "不存在的栏目"}, ["unknown category '不存在的栏目'", "公告公示"]),
        ({"department": "不存在的部门"}, ["unknown department '不存在的部门'", "department add"]),
        ({"channels": "[mem, nochan]"}, ["unknown channel(s) nochan", "configured: mem, mem2"]),
        ({"checklist_item": "0"}, ["checklist item 0 is outside 1-50"]),
        ({"checklist_item": "51"}, ["checklist item 51 is outside 1-50"]),
        ({"checklist_item": "abc"}, ["checklist item 'abc' is not a number"]),
        ({"publish_at": "2099-01-01 09:00"}, ["publish time 2099-01-01 09:00 has no time zone", "+08:00"]),
        ({"publish_at": "next tuesday"}, ["publish time 'next tuesday' is not a date-time", "ISO 8601"]),
        ({"publish_at": "2020-01-01T09:00+08:00"}, ["publish time 2020-01-01T09:00+08:00 is in the past"]),
        ({"colour": "red"}, ["unknown front matter key(s) colour"]),
        ({"title": "'[unclosed'"}, []),  # a valid quoted title: must be accepted (control case)
        ({"channels": "[mem"}, ["front matter is not valid YAML"]),
        ({"channels": "[]"}, ["the item has no channels"]),
        ({"department": "人事处"}, ["ed writes for 校长办公室, not 人事处"]),
    ],
)
def test_item_add_refuses_bad_front_matter(
    sqlite_cli: Cli, tmp_path: Path, front: dict[str, str], needles: list[str]
) -> None:
    f = item_file(tmp_path, **front)
    if not needles:
        r = sqlite_cli.ok("item", "add", str(f), "--as", "ed")
        assert r.last_line.isdigit()
        return
    assert_refused(sqlite_cli, ["item", "add", str(f), "--as", "ed"], *needles)


def test_missing_image(sqlite_cli: Cli, tmp_path: Path) -> None:
    f = item_file(tmp_path, body="正文\n\n![图](images/nope.png)\n")
    assert_refused(sqlite_cli, ["item", "add", str(f), "--as", "ed"], "image file", "nope.png", "does not exist")


def test_a_folder_where_a_file_belongs(sqlite_cli: Cli, tmp_path: Path) -> None:
    # "does not exist" about a folder that plainly exists sends the user looking in the wrong place
    (tmp_path / "pics").mkdir()
    assert_refused(sqlite_cli, ["item", "add", str(tmp_path), "--as", "ed"], "is a folder", ".md")
    f = item_file(tmp_path, cover="pics")
    assert_refused(sqlite_cli, ["item", "add", str(f), "--as", "ed"], "cover", "pics is a folder")


def test_corrupt_image_leaves_no_item_and_no_half_written_file(cli: Cli, tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (4, 4), "red").save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(os.urandom(2048))
    f = item_file(tmp_path, body="![好](good.png)\n\n![坏](bad.png)\n")
    assert_refused(cli, ["item", "add", str(f), "--as", "ed"], "bad.png is not a readable image", "JPEG or PNG")
    media = cli.workdir / "media"
    # good.png was already copied when bad.png was found wanting. Media files are named by their
    # content hash and shared between items, so an unreferenced one is harmless (the next item with
    # that picture reuses it) and deleting it could race with another item adding the same picture.
    left = [p for p in media.rglob("*") if p.is_file()]
    assert not [p for p in left if p.name.startswith(".tmp-")], "a half-written media file was left behind"
    assert len(left) <= 1


def test_non_utf8_file(sqlite_cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "gbk.md"
    f.write_bytes("---\ntitle: 关于寒假放假安排的通知\ncategory: 公告公示\nchannels: [mem]\n---\n正文\n".encode("gbk"))
    assert_refused(sqlite_cli, ["item", "add", str(f), "--as", "ed"], "gbk.md is not UTF-8", "GBK", "save it as UTF-8")


def test_ten_megabyte_item(sqlite_cli: Cli, tmp_path: Path) -> None:
    f = item_file(tmp_path, body="很长的正文。" * (10 * 1024 * 1024 // 18))
    assert f.stat().st_size > 10_000_000
    assert_refused(sqlite_cli, ["item", "add", str(f), "--as", "ed"], "item.md is 10.", "at most 2.0 MB", "attachments")


def test_unknown_author(sqlite_cli: Cli, tmp_path: Path) -> None:
    f = item_file(tmp_path)
    assert_refused(sqlite_cli, ["item", "add", str(f), "--as", "nobody"], "no user 'nobody'", "user add")
    assert_refused(
        sqlite_cli, ["item", "add", str(f), "--as", "viewer"], "viewer is a viewer; only editors write items"
    )


# --------------------------------------------------------------------------------- times via CLI
@pytest.mark.parametrize(
    ("at", "needles"),
    [
        ("2099-01-01T09:00", ["has no time zone", "2099-01-01T09:00+08:00"]),
        ("tomorrow 9am", ["'tomorrow 9am' is not a date-time"]),
        ("2020-01-01T09:00+08:00", ["is in the past", "allow_past_publish_time"]),
    ],
)
def test_schedule_refuses_bad_times(cli: Cli, tmp_path: Path, at: str, needles: list[str]) -> None:
    item_id = cli.ok("item", "add", str(item_file(tmp_path)), "--as", "ed").last_line
    assert_refused(cli, ["schedule", item_id, "--at", at], *needles)


def test_review_refusals(cli: Cli, tmp_path: Path) -> None:
    item_id = cli.ok("item", "add", str(item_file(tmp_path)), "--as", "ed").last_line
    cli.ok("submit", item_id, "--as", "ed")
    assert_refused(cli, ["review", "reject", item_id, "--as", "head"], "a rejection needs a reason", "--reason")
    assert_refused(cli, ["review", "approve", item_id, "--as", "head2"], "waits for the head of 校长办公室")
    assert_refused(cli, ["review", "approve", item_id, "--as", "sec"], "waits for the head of 校长办公室")
    assert_refused(cli, ["review", "approve", "999", "--as", "head"], "no item 999")
    cli.ok("review", "approve", item_id, "--as", "head")
    assert_refused(cli, ["review", "approve", item_id, "--as", "head"], "waits for the confidentiality review")


# -------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (
            'databse_url = "sqlite:///x.db"\n',
            ["unknown setting 'databse_url'", "did you mean 'database_url'?"],
        ),
        (
            "[review]\nallow_past_publish_tme = true\n",
            ["unknown setting 'review.allow_past_publish_tme'", "did you mean 'allow_past_publish_time'?"],
        ),
        ('timezone = "Asia/Shangai"\n', ["unknown time zone 'Asia/Shangai'"]),
        (
            '[channels.mem3]\ntype = "memory"\ntitel_max = 30\n',
            ["[channels.mem3]", "titel_max", "did you mean 'title_max'?"],
        ),
        (
            '[channels.mem3]\ntype = "memory"\nmax_concurency = 3\n',
            ["[channels.mem3]", "max_concurency", "did you mean 'max_concurrency'?"],
        ),
        (
            '[channels.mem3]\ntype = "memroy"\n',
            ["[channels.mem3]", "unknown channel type 'memroy'", "memory"],
        ),
        ('[channels.mem3]\ntype = "memory"\nschedule = "every day"\n', ["not a crontab line"]),
        ("[worker\nthreads = 2\n", ["not valid TOML"]),
    ],
)
def test_bad_settings(sqlite_cli: Cli, extra: str, needles: list[str]) -> None:
    # top-level keys must come before the first table
    text = sqlite_cli.settings.read_text(encoding="utf-8")
    sqlite_cli.settings.write_text(extra + text if not extra.startswith("[") else text + extra, encoding="utf-8")
    assert_refused(sqlite_cli, ["item", "list"], *needles)


def test_a_missing_secret_stops_only_what_uses_that_channel(sqlite_cli: Cli, tmp_path: Path) -> None:
    # a webhook's signing secret is not needed to list items or write one for the website
    sqlite_cli.settings.write_text(
        sqlite_cli.settings.read_text(encoding="utf-8")
        + '[channels.logged]\ntype = "filelog"\nfolder = "out"\nsecret_env = "PUBLISHER_TEST_NOT_SET"\n',
        encoding="utf-8",
    )
    missing = ["channel logged", "environment variable PUBLISHER_TEST_NOT_SET is not set"]
    sqlite_cli.ok("item", "list")
    sqlite_cli.ok("item", "add", str(item_file(tmp_path, name="a.md")), "--as", "ed")
    logged = sqlite_cli.ok("item", "add", str(item_file(tmp_path, name="b.md", channels="[logged]")), "--as", "ed")
    # the channel is used: by the worker and the sync (every enabled channel) and by a review of an item for it
    assert_refused(sqlite_cli, ["run", "--once"], *missing)
    assert_refused(sqlite_cli, ["sync"], *missing)
    assert_refused(sqlite_cli, ["submit", logged.last_line, "--as", "ed"], *missing)
    r = sqlite_cli("channels")  # the check of every channel shows it in that channel's row
    assert r.code == 1 and "Traceback" not in r.err and "PUBLISHER_TEST_NOT_SET is not set" in r.out, r.out + r.err
    sqlite_cli.ok("submit", logged.last_line, "--as", "ed", env={"PUBLISHER_TEST_NOT_SET": "s3cret"})
    sqlite_cli.ok("run", "--once", env={"PUBLISHER_TEST_NOT_SET": "s3cret"})


def test_settings_file_that_does_not_exist(sqlite_cli: Cli) -> None:
    assert_refused(
        sqlite_cli,
        ["item", "list"],
        "settings file",
        "does not exist",
        "publisher init",
        settings=False,
        env={"PUBLISHER_SETTINGS": str(sqlite_cli.workdir / "nope.toml")},
    )


def test_unknown_environment_setting(sqlite_cli: Cli) -> None:
    # the value came from the environment, not the file: the line must say so
    assert_refused(
        sqlite_cli,
        ["item", "list"],
        "worker.threads (from $PUBLISHER_WORKER__THREADS",
        env={"PUBLISHER_WORKER__THREADS": "many"},
    )


# --------------------------------------------------------------------------- images and YAML bombs
def big_png(path: Path, width: int, height: int) -> Path:
    """A real, valid grayscale PNG of width × height, written without ever holding its pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    parts = [z.compress(row) for _ in range(height)]
    idat = b"".join(parts) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(
    ("size", "where"),
    [((20000, 20000), "body"), ((20000, 20000), "cover"), ((10000, 10000), "body")],
    ids=["bomb-in-body", "bomb-as-cover", "100-megapixels"],
)
def test_too_many_pixels(sqlite_cli: Cli, tmp_path: Path, size: tuple[int, int], where: str) -> None:
    big_png(tmp_path / "huge.png", *size)
    if where == "cover":
        f = item_file(tmp_path, cover="huge.png")
    else:
        f = item_file(tmp_path, body="正文\n\n![图](huge.png)\n")
    assert_refused(
        sqlite_cli,
        ["item", "add", str(f), "--as", "ed"],
        f"huge.png is {size[0] * size[1] // 10**6} megapixels" if size[0] == 20000 else "huge.png is 10000×10000",
        "the limit is 40 megapixels",
        "review.max_image_pixels",
    )
    assert not list((sqlite_cli.workdir / "media").rglob("*.*")), "nothing may be left in the media store"


def test_pixel_limit_is_a_setting(sqlite_cli: Cli, tmp_path: Path) -> None:
    big_png(tmp_path / "wide.png", 3000, 1000)
    f = item_file(tmp_path, body="![图](wide.png)\n")
    sqlite_cli.settings.write_text(
        sqlite_cli.settings.read_text(encoding="utf-8") + "[review]\nmax_image_pixels = 2_000_000\n",
        encoding="utf-8",
    )
    assert_refused(sqlite_cli, ["item", "add", str(f), "--as", "ed"], "wide.png is 3000×1000", "limit is 2 megap")


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_image_formats_outside_the_documented_four(sqlite_cli: Cli, tmp_path: Path, fmt: str) -> None:
    from PIL import Image

    name = f"scan.{fmt.lower()}"
    Image.new("RGB", (8, 8), "red").save(tmp_path / name, fmt)
    f = item_file(tmp_path, body=f"![图]({name})\n")
    assert_refused(
        sqlite_cli, ["item", "add", str(f), "--as", "ed"], f"{name} is a {fmt} image", "JPEG, PNG, GIF or WebP"
    )


def test_yaml_alias_bomb(sqlite_cli: Cli, tmp_path: Path) -> None:
    import time

    # nine levels of nine aliases: 600 bytes that expand to 9**9 strings when the title is read
    levels = ['&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"&{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    f = tmp_path / "bomb.md"
    f.write_text("---\ntitle: [" + ", ".join(levels) + "]\ncategory: 公告公示\n---\n正文\n", encoding="utf-8")
    assert f.stat().st_size < 1000
    started = time.monotonic()
    assert_refused(sqlite_cli, ["item", "add", str(f), "--as", "ed"], "bomb.md", "front matter", "aliases", timeout=30)
    assert time.monotonic() - started < 15


# ------------------------------------------------------------------- the store's disk and file
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="needs root: mounts a small tmpfs / runs the command as the user nobody",
)


def _fresh_cli(folder: Path) -> Cli:
    from publisher.db import make_engine, migrate

    url = f"sqlite:///{folder / 'queue.db'}"
    eng = make_engine(url)
    migrate(eng)
    eng.dispose()
    c = Cli(folder, url)
    setup_store(c)
    return c


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    import subprocess

    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@as_root
def test_disk_full(small_disk: Path, tmp_path: Path) -> None:
    cli = _fresh_cli(small_disk)
    # an attachment larger than the free space: the media store's write fails
    (tmp_path / "report.pdf").write_bytes(os.urandom(4_000_000))
    f = item_file(tmp_path, name="att.md", attachments="[report.pdf]")
    assert_refused(cli, ["item", "add", str(f), "--as", "ed"], "disk", "is full", str(small_disk))
    assert not [p for p in (small_disk / "media").rglob("*") if p.is_file()], "a partial media file was left"
    # a large body when the disk is nearly full: the database's write fails
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * max(0, free - 64 * 1024))
    f = item_file(tmp_path, name="long.md", body="很长的正文。" * (1_500_000 // 18))
    line = assert_refused(cli, ["item", "add", str(f), "--as", "ed"], "disk", "is full", str(small_disk))
    assert "很长的正文" not in line


@as_root
def test_read_only_store_as_another_user(tmp_path: Path) -> None:
    import shutil
    import tempfile

    # pytest's own folders are private to root: use a folder the user nobody can reach
    folder = Path(tempfile.mkdtemp(prefix="publisher-ro-"))
    try:
        folder.chmod(0o777)
        cli = _fresh_cli(folder)
        for p in folder.rglob("*"):
            p.chmod(0o777 if p.is_dir() else 0o666)
        (folder / "queue.db").chmod(0o444)
        f = item_file(folder, title="机密标题XYZ", body="机密正文ABC\n")
        f.chmod(0o644)
        cli.prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        probe = subprocess.run(
            [*cli.prefix, sys.executable, "-c", "import publisher.cli"],
            capture_output=True,
            text=True,
            cwd=folder,
            env=cli.env,
        )
        if probe.returncode != 0:  # e.g. Python installed under /root, which nobody cannot enter
            pytest.skip(
                f"the user nobody cannot run {sys.executable} with this project: "
                f"{(probe.stderr.strip().splitlines() or ['?'])[-1]}"
            )
        line = assert_refused(cli, ["item", "add", str(f), "--as", "ed"], "queue.db", "read-only", "nobody")
        assert "机密" not in line and "XYZ" not in line and "ABC" not in line
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_init_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    for junk in (b"hello, this is not a database\n", os.urandom(5000)):
        db.write_bytes(junk)
        cli = Cli(tmp_path, f"sqlite:///{db}")
        for args in (["init"], ["item", "list"]):
            r = cli(*args)
            assert r.code != 0 and "Traceback" not in r.err, r.err
            assert len(r.err.strip().splitlines()) == 1, r.err
            assert f"{db} is not a SQLite database" in r.err and "database_url" in r.err, r.err
            assert db.read_bytes() == junk, "the file was changed"


def test_nul_in_an_item_file(cli: Cli, tmp_path: Path) -> None:
    # PostgreSQL refuses NUL in text; SQLite stores it: both must refuse it the same way
    f = item_file(tmp_path, body="正文\x00第二句\n")
    assert_refused(cli, ["item", "add", str(f), "--as", "ed"], "item.md", "NUL", "line 6")
    f = tmp_path / "heading.md"
    f.write_text("---\ncategory: 公告公示\nchannels: [mem]\n---\n# 标题\x00\n正文\n", encoding="utf-8")
    assert_refused(cli, ["item", "add", str(f), "--as", "ed"], "heading.md", "NUL", "line 5")
