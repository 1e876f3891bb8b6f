"""Alt text is published text (issue 12 × the alt-text rule): the cover's alt text (``cover_alt``, the
website's ``<img alt>``, the CMS's ``alt_text``), a body image's alt text and a channel's ``cover_alt``
are read by the privacy check (``cover.alt``, ``body:LINE``, ``CHANNEL.cover_alt``), held at the
保密审查 gate, masked by ``publisher mask`` into a new version, and checked again by the worker.

Through the real ``publisher`` command where a user would act, and the real Dispatcher with
MemoryChannel for the worker; on SQLite and PostgreSQL (``store_url``).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image
from sqlmodel import select

from publisher.errors import NotAllowed
from publisher.models import Asset, Delivery, DeliveryStatus, Item, ItemStatus
from publisher.pipeline import content, workflow
from publisher.pipeline.privacy import mask_text
from publisher.pipeline.worker import Dispatcher
from publisher.testing import MemoryChannel
from tests.clirun import Cli, dump, setup_store
from tests.privacy.makers import make_id, make_mobile

RNG = random.Random(2205)
ID = make_id(RNG)
MOBILE = make_mobile(RNG)


@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:
    c = Cli(tmp_path, store_url)
    setup_store(c)
    return c


def _picture(path: Path, colour: tuple[int, int, int]) -> None:
    Image.new("RGB", (640, 360), colour).save(path, "JPEG")


def write_item(folder: Path, *, cover_alt: str, body: str = "现将获奖名单公示如下。\n", extra: str = "") -> Path:
    _picture(folder / "cover.jpg", (30, 90, 160))
    path = folder / "item.md"
    path.write_text(
        "---\ntitle: 关于2026年校级奖学金评审结果的公示\ncategory: 公告公示\nchannels: [mem]\n"
        f"cover: cover.jpg\ncover_alt: {cover_alt}\n{extra}---\n{body}",
        encoding="utf-8",
    )
    return path


def _raw_tables(url: str, raw: str) -> set[str]:
    return {t for t, rows in dump(url).items() if any(raw in cell for row in rows for cell in row)}


def _listed(cli: Cli, item: str, *version: str) -> list[tuple[str, str, str | None]]:
    data = json.loads(cli.ok("privacy", "list", item, *version, "--json").out)
    return [(f["kind"], f["where"], f["decision"]) for f in data["findings"]]


def test_an_id_in_the_covers_alt_text_is_found_held_masked_and_then_passes(
    cli: Cli, tmp_path: Path, store_url: str
) -> None:
    _picture(tmp_path / "photo.jpg", (200, 200, 40))
    path = write_item(
        tmp_path,
        cover_alt=f"获奖学生张三（身份证号 {ID}）在颁奖台上",
        body=f"现将获奖名单公示如下。\n\n![颁奖现场，联系人手机 {MOBILE}](photo.jpg)\n",
    )
    # publisher check of the file reads the front matter's cover_alt and the image's alt text in the body
    checked = cli("check", str(path), "--format", "json")
    assert checked.code == 3, checked.err
    line = path.read_text(encoding="utf-8").splitlines().index(f"![颁奖现场，联系人手机 {MOBILE}](photo.jpg)") + 1
    assert [(f["kind"], f["where"]) for f in json.loads(checked.out)["findings"]] == [
        ("mobile", f"body:{line}"),
        ("id_card", "cover.alt"),
    ]
    assert ID not in checked.out and MOBILE not in checked.out

    r = cli.ok("item", "add", str(path), "--as", "ed")
    item = r.last_line
    assert "2 unresolved" in r.out and ID not in r.out
    assert _listed(cli, item) == [("mobile", "body:3", None), ("id_card", "cover.alt", None)]
    cli.ok("submit", item, "--as", "ed")
    cli.ok("review", "approve", item, "--as", "head")
    refused = cli("review", "approve", item, "--as", "sec")
    assert refused.code == 1 and f"item {item} version 1 has 2 unresolved privacy findings" in refused.err

    masked = cli.ok("mask", item, "--as", "ed")
    assert "version 2, submitted" in masked.out
    assert "-获奖学生张三（身份证号 [id_card]）在颁奖台上" in masked.out
    assert f"+获奖学生张三（身份证号 {mask_text(ID)}）在颁奖台上" in masked.out
    assert f"+![颁奖现场，联系人手机 {mask_text(MOBILE)}]" in masked.out
    assert ID not in masked.out and MOBILE not in masked.out
    assert _listed(cli, item, "--version", "1") == [("mobile", "body:3", "masked"), ("id_card", "cover.alt", "masked")]
    assert _listed(cli, item) == []
    cli.ok("review", "approve", item, "--as", "head")
    assert "approved" in cli.ok("review", "approve", item, "--as", "sec").out
    # the ID is gone from the store: the cover's row carries the masked alt text, nothing keeps the old
    # one (version 1's body, as the author wrote it, keeps the mobile, as for any masked body)
    assert _raw_tables(store_url, ID) == set()
    assert _raw_tables(store_url, MOBILE) <= {"item_version"}
    covers = [r for r in dump(store_url)["asset"] if "cover" in r]
    assert len(covers) == 1 and f"获奖学生张三（身份证号 {mask_text(ID)}）在颁奖台上" in covers[0]


def test_a_mobile_in_a_channels_cover_alt_is_found_held_masked_and_then_passes(
    cli: Cli, tmp_path: Path, store_url: str
) -> None:
    _picture(tmp_path / "mem-cover.jpg", (160, 40, 40))
    wording = f"overrides:\n  mem:\n    cover: mem-cover.jpg\n    cover_alt: 值班老师（手机 {MOBILE}）在报到处\n"
    path = write_item(tmp_path, cover_alt="学生在报到处排队", extra=wording)
    checked = cli("check", str(path), "--format", "json")
    assert checked.code == 3, checked.err
    assert [(f["kind"], f["where"]) for f in json.loads(checked.out)["findings"]] == [("mobile", "mem.cover_alt")]

    item = cli.ok("item", "add", str(path), "--as", "ed").last_line
    assert _listed(cli, item) == [("mobile", "mem.cover_alt", None)]
    cli.ok("submit", item, "--as", "ed")
    cli.ok("review", "approve", item, "--as", "head")
    assert "1 unresolved privacy finding" in cli("review", "approve", item, "--as", "sec").err

    masked = cli.ok("mask", item, "--as", "ed")
    assert "-值班老师（手机 [mobile]）在报到处" in masked.out
    assert f"+值班老师（手机 {mask_text(MOBILE)}）在报到处" in masked.out and MOBILE not in masked.out
    shown = json.loads(cli.ok("item", "show", item, "--json").out)
    assert shown["version"] == 2 and shown["status"] == "submitted"
    assert _listed(cli, item, "--version", "1") == [("mobile", "mem.cover_alt", "masked")]
    assert _listed(cli, item) == []
    cli.ok("review", "approve", item, "--as", "head")
    assert "approved" in cli.ok("review", "approve", item, "--as", "sec").out
    # the wording of version 1 is kept in item_version, as the author wrote it; nothing else holds it
    assert _raw_tables(store_url, MOBILE) <= {"item_version"}
    assert mask_text(MOBILE) in str(dump(store_url)["item"])


# ------------------------------------------------------------------------------------ the worker
def _user(s: Any, name: str) -> Any:
    return workflow.get_user(s, name)


def _approved(app: Any, folder: Path, *, cover_alt: str, extra: str = "") -> int:
    """An item with a cover (and perhaps a channel's), through both reviews, scheduled now."""
    path = write_item(folder, cover_alt=cover_alt, extra=extra)
    with app.session() as s:
        draft = content.read_item_file(
            path, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**7
        )
        item_id = workflow.create_item(app.ctx, s, author=_user(s, "ed"), draft=draft).id
        assert item_id is not None
        workflow.submit(app.ctx, s, item_id=item_id, actor=_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item_id, at=datetime.now(UTC))
    return item_id


def _refused_by_the_worker(app: Any, item_id: int, where: str, raw: str) -> None:
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {"permanent": 1}
    with app.session() as s:
        d = s.exec(select(Delivery).where(Delivery.item_id == item_id)).one()
    why = d.last_error or ""
    assert d.status == DeliveryStatus.FAILED
    assert why.startswith("refused: the post holds 1 privacy finding") and f"at {where}" in why, why
    assert raw not in why
    assert not [c for c in MemoryChannel.calls if c[3] == item_id]  # nothing reached the channel


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app(channels={"mem": {"type": "memory"}})


def test_the_worker_refuses_a_cover_alt_changed_after_approval(app: Any, tmp_path: Path) -> None:
    item_id = _approved(app, tmp_path, cover_alt="颁奖台上的获奖学生")
    at = Asset.__table__
    with app.engine.begin() as conn:  # written straight into the row: no new version, no check
        conn.execute(sa.update(at).where(at.c.item_id == item_id, at.c.role == "cover").values(alt=f"获奖学生 {ID}"))
    _refused_by_the_worker(app, item_id, "cover.alt", ID)


def test_the_worker_refuses_a_channels_cover_alt_changed_after_approval(app: Any, tmp_path: Path) -> None:
    _picture(tmp_path / "mem-cover.jpg", (160, 40, 40))
    extra = "overrides:\n  mem:\n    cover: mem-cover.jpg\n    cover_alt: 报到处的值班老师\n"
    item_id = _approved(app, tmp_path, cover_alt="学生在报到处排队", extra=extra)
    it = Item.__table__
    with app.session() as s:
        overrides = dict(workflow.get_item(s, item_id).overrides)
    overrides["mem"] = {**overrides["mem"], "cover_alt": f"值班老师 {MOBILE}"}
    with app.engine.begin() as conn:
        conn.execute(sa.update(it).where(it.c.id == item_id).values(overrides=overrides))
    _refused_by_the_worker(app, item_id, "mem.cover_alt", MOBILE)


def test_masked_alt_text_goes_out_masked(app: Any, tmp_path: Path) -> None:
    """Held at the gate, masked (service function), approved again: the worker sends the post, whose
    cover (the item's, and the channel's own) carries the masked alt text."""
    _picture(tmp_path / "mem-cover.jpg", (160, 40, 40))
    extra = f"overrides:\n  mem:\n    cover: mem-cover.jpg\n    cover_alt: 值班老师 {MOBILE}\n"
    path = write_item(tmp_path, cover_alt=f"获奖学生 {ID}", extra=extra)
    with app.session() as s:
        draft = content.read_item_file(
            path, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**7
        )
        item_id = workflow.create_item(app.ctx, s, author=_user(s, "ed"), draft=draft).id
        assert item_id is not None
        workflow.submit(app.ctx, s, item_id=item_id, actor=_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "head"), approve=True)
    with pytest.raises(NotAllowed, match="2 unresolved privacy findings"), app.session() as s:
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "sec"), approve=True)
    with app.session() as s:
        done = workflow.mask_item(app.ctx, s, item_id=item_id, actor=_user(s, "ed"))
        assert (done.item.version, done.masked_findings) == (2, 2)
    with app.session() as s:
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item_id, at=datetime.now(UTC))
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {"done": 1}
    with app.session() as s:
        it = workflow.get_item(s, item_id)
        assert it.status == ItemStatus.PUBLISHED
        own = workflow.build_post(app.ctx, s, it).cover
        mine = workflow.build_post(app.ctx, s, it, "mem").cover
    assert own is not None and own.alt == f"获奖学生 {mask_text(ID)}"
    assert mine is not None and mine.alt == f"值班老师 {mask_text(MOBILE)}" and mine.sha256 != own.sha256
    assert [i for _, i, _ in MemoryChannel.ledger["mem"]] == [item_id]


# ----------------------------------------------------------------------------- publisher check --all
def test_check_all_reads_the_covers_alt_text_and_the_pages_img_alt(
    make_app: Any, tmp_path: Path, store_url: str
) -> None:
    """An item published before the check existed with an ID in its cover's alt text is an exposure at
    ``cover.alt``; a mobile written into the page's ``<img alt>`` on the server's disk is one at the page."""
    from tests.test_check_all import CHANNELS, cli_for, from_before_the_check

    app = make_app(channels=CHANNELS)
    src = tmp_path / "src"
    src.mkdir()
    path = write_item(src, cover_alt=f"获奖学生 {ID}")
    path.write_text(path.read_text(encoding="utf-8").replace("channels: [mem]", "channels: [website]"), "utf-8")
    with app.session() as s:
        draft = content.read_item_file(
            path, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**7
        )
        item_id = workflow.create_item(app.ctx, s, author=_user(s, "ed"), draft=draft).id
        assert item_id is not None
        workflow.submit(app.ctx, s, item_id=item_id, actor=_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "head"), approve=True)
        for row in workflow.unresolved(s, workflow.get_item(s, item_id)):
            workflow.clear_finding(app.ctx, s, item_id=item_id, number=row.number, actor=_user(s, "sec"), reason="同意")
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item_id, at=datetime.now(UTC))
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {"done": 1}
    from_before_the_check(app, item_id)
    cli = cli_for(tmp_path, store_url)

    def findings() -> list[tuple[str, str, str]]:
        r = cli("check", "--all", "--format", "json")
        assert r.code == 3, r.err
        assert ID not in r.out and MOBILE not in r.out
        [e] = json.loads(r.out)["exposures"]
        return [(f["kind"], f["where"], f["masked"]) for f in e["findings"]]

    assert findings() == [("id_card", "cover.alt", mask_text(ID))]  # the page's alt holds it too: said once
    page = tmp_path / "site" / "items" / f"{item_id}.html"
    html = page.read_text(encoding="utf-8")
    assert f'alt="获奖学生 {ID}"' in html
    page.write_text(html.replace(f'alt="获奖学生 {ID}"', f'alt="值班老师 {MOBILE}"'), encoding="utf-8")
    assert ("mobile", f"items/{item_id}.html", mask_text(MOBILE)) in findings()
