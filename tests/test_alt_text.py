"""Images need alt text (替代文本, issue 14): found by markdown-it, refused at submit with the line and the fix.

The CLI tests run the real ``publisher`` command against a real store (tests/clirun.py); the web side
is in tests/web/test_a11y_web.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from publisher.pipeline.content import images_without_alt
from tests.clirun import Cli, setup_store


def test_images_without_alt_text_are_found_with_their_line() -> None:
    body = (
        "第一段。\n"  # 1
        "\n"
        "![](a.png) 和 ![ ](b.png)\n"  # 3: both empty (spaces are no description)
        "\n"
        "![学生合影](c.png)\n"  # 5: described
        "\n"
        "```\n"
        "![](in-code.png)\n"  # 8: a code block shows Markdown, it is not an image
        "```\n"
        "\n"
        "行内 `![](span.png)` 也不是图片，但这一张是：\n"  # 11
        "![](https://www.example.edu.cn/gate.jpg)\n"  # 12: same paragraph, next line
    )
    assert images_without_alt(body) == [
        (3, "![](a.png)"),
        (3, "![ ](b.png)"),
        (12, "![](https://www.example.edu.cn/gate.jpg)"),
    ]
    assert images_without_alt("没有图片的正文") == []
    assert images_without_alt("![校门](x.png)\n\n| 表 |\n|---|\n| ![](t.png) |\n") == [(5, "![](t.png)")]


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (30, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:
    c = Cli(tmp_path, store_url)
    setup_store(c)
    return c


def _item(folder: Path, image_line: str) -> Path:
    (folder / "x.png").write_bytes(_png())
    body = "".join(f"第{n}段。\n\n" for n in range(1, 6)) + "\n" + image_line + "\n"  # the image on line 12
    p = folder / "notice.md"
    p.write_text(f"---\ntitle: 校园开放日通知\ncategory: 公告公示\nchannels: [mem]\n---\n{body}", encoding="utf-8")
    return p


def test_submit_refuses_an_image_without_alt_text_and_says_how_to_fix_it(cli: Cli, tmp_path: Path) -> None:
    item_id = cli.ok("item", "add", str(_item(tmp_path, "![](x.png)")), "--as", "ed").last_line
    r = cli("submit", item_id, "--as", "ed")
    assert r.code != 0
    assert (
        "图片缺少替代文本 (alt text): line 12 `![](x.png)` — write what the picture shows: ![校门口合影](x.png)"
        in r.err
    )
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert json.loads(cli.ok("item", "show", item_id, "--json").out)["status"] == "draft"

    cli.ok("item", "edit", item_id, str(_item(tmp_path, "![开放日当天的校门口](x.png)")), "--as", "ed")
    cli.ok("submit", item_id, "--as", "ed")
    assert json.loads(cli.ok("item", "show", item_id, "--json").out)["status"] == "submitted"


def _with_cover(folder: Path, alt: str | None) -> Path:
    (folder / "cover.png").write_bytes(_png())
    p = folder / "open-day.md"
    alt_line = f"cover_alt: {alt}\n" if alt is not None else ""
    p.write_text(
        "---\ntitle: 校园开放日通知\ncategory: 公告公示\nchannels: [mem]\ncover: cover.png\n"
        f"{alt_line}---\n开放日安排如下。\n",
        encoding="utf-8",
    )
    return p


def test_a_cover_needs_alt_text_at_submit_and_keeps_it_through_an_edit(cli: Cli, tmp_path: Path) -> None:
    item_id = cli.ok("item", "add", str(_with_cover(tmp_path, None)), "--as", "ed").last_line
    r = cli("submit", item_id, "--as", "ed")
    assert r.code != 0
    assert (
        "封面图缺少替代文本 (alt text): the cover `cover.png` — say what it shows with `cover_alt: 校门口合影`" in r.err
    )
    assert json.loads(cli.ok("item", "show", item_id, "--json").out)["status"] == "draft"

    # the edit's cover (the same picture, now described) replaces the one without alt text
    cli.ok("item", "edit", item_id, str(_with_cover(tmp_path, "开放日当天的校门口")), "--as", "ed")
    cli.ok("submit", item_id, "--as", "ed")
    assert json.loads(cli.ok("item", "show", item_id, "--json").out)["status"] == "submitted"


def test_cover_alt_without_a_cover_is_refused(cli: Cli, tmp_path: Path) -> None:
    p = tmp_path / "no-cover.md"
    p.write_text(
        "---\ntitle: 通知\ncategory: 公告公示\nchannels: [mem]\ncover_alt: 校门\n---\n正文。\n", encoding="utf-8"
    )
    r = cli("item", "add", str(p), "--as", "ed")
    assert r.code != 0
    assert "cover_alt is set but there is no cover; add `cover: FILE` or drop cover_alt" in r.err
