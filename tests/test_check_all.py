"""``publisher check --all`` (issue 12): what is already published, checked again.

Items go out through the real workflow and the real Dispatcher to a website site folder and a memory
channel, on both engines; the command runs as a subprocess (tests/clirun.py) against that store and
is judged by its exit code, its output and the store's rows, which it must leave unchanged.

Exposures are made as they happen in an office's past: items published before the privacy check
existed have no findings recorded (their rows are deleted here after publication, as in
tests/test_privacy_worker.py), and a page file changed on the web server's disk.
"""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from publisher.models import Delivery, ItemVersion, PrivacyFinding
from publisher.pipeline import content, workflow
from publisher.pipeline.worker import Dispatcher
from tests.clirun import Cli, dump
from tests.privacy.makers import make_id, make_mobile, xlsx_file

RNG = random.Random(20261203)
MOBILE, MOBILE2, MOBILE3, MOBILE4 = (make_mobile(RNG) for _ in range(4))
ID = make_id(RNG)
RAW = (MOBILE, MOBILE2, MOBILE3, MOBILE4, ID)

SETTINGS = """\
data_dir = "{data_dir}"
[worker]
threads = 2
poll_seconds = 0.05
[channels.website]
type = "website"
[channels.mem]
type = "memory"
"""
CHANNELS = {"website": {"type": "website"}, "mem": {"type": "memory"}}
JSON_KEYS = ["item_id", "channel", "url", "published_at", "findings"]
FINDING_KEYS = ["kind", "where", "masked", "rule"]


def cli_for(tmp_path: Path, store_url: str) -> Cli:
    """The command of this source tree (not whichever copy is installed), with website and mem."""
    cli = Cli(tmp_path, store_url, SETTINGS.format(data_dir=tmp_path))
    cli.env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), cli.env["PYTHONPATH"]])
    return cli


def masked_mobile(m: str) -> str:
    return m[:3] + "****" + m[-4:]


def masked_id(n: str) -> str:
    return n[:4] + "*" * 10 + n[-4:]


def _user(s: Any, name: str) -> Any:
    return workflow.get_user(s, name)


def publish(app: Any, folder: Path, name: str, body: str, *, channels: str, attachments: str = "") -> int:
    """An item file read as `publisher item add` reads it, its findings cleared, approved twice and
    sent through the real worker."""
    f = folder / f"{name}.md"
    extra = f"attachments: [{attachments}]\n" if attachments else ""
    f.write_text(
        f"---\ntitle: 关于{name}的公示\ncategory: 公告公示\nchannels: [{channels}]\n{extra}---\n{body}",
        encoding="utf-8",
    )
    with app.session() as s:
        draft = content.read_item_file(f, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**7)
        item_id = workflow.create_item(app.ctx, s, author=_user(s, "ed"), draft=draft).id
        workflow.submit(app.ctx, s, item_id=item_id, actor=_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "head"), approve=True)
        for row in workflow.unresolved(s, workflow.get_item(s, item_id)):
            workflow.clear_finding(app.ctx, s, item_id=item_id, number=row.number, actor=_user(s, "sec"), reason="同意")
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item_id, at=datetime.now(UTC))
    outcomes = Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes
    assert outcomes.get("done") == len(channels.split(",")), outcomes
    return item_id


def from_before_the_check(app: Any, item_id: int) -> None:
    """The item as one published before the privacy check existed: no findings, no decisions recorded."""
    pf, iv = PrivacyFinding.__table__, ItemVersion.__table__
    with app.engine.begin() as conn:
        conn.execute(sa.delete(pf).where(pf.c.item_id == item_id))
        conn.execute(sa.update(iv).where(iv.c.item_id == item_id).values(privacy_checked_at=None))


@pytest.fixture
def office(make_app: Any, tmp_path: Path, store_url: str) -> dict[str, Any]:
    """Five items published: a mobile in the body (website and mem), an ID in a hidden XLSX column
    (website), a clean notice (website, mem), one withdrawn (mobile, website), one whose mobile the
    保密审查 reviewer cleared (mem)."""
    app = make_app(channels=CHANNELS)
    src = tmp_path / "src"
    src.mkdir()
    xlsx_file(
        src / "名单.xlsx",
        {"公示": [["姓名", "等级", "身份证号"], ["张三", "一等", ID]]},
        hidden_cols={"公示": ["C"]},
    )
    ids = {
        "mobile": publish(app, src, "助学金", f"联系人：张老师\n\n手机 {MOBILE}\n", channels="website, mem"),
        "xlsx": publish(app, src, "奖学金", "名单见附件。\n", channels="website", attachments="名单.xlsx"),
        "clean": publish(app, src, "停水", "明日上午停水，电话 0452-2712345。\n", channels="website, mem"),
        "withdrawn": publish(app, src, "旧名单", f"王五 {MOBILE2}\n", channels="website"),
        "cleared": publish(app, src, "联系人", f"联系人手机 {MOBILE3}（本人同意公开）\n", channels="mem"),
    }
    for key in ("mobile", "xlsx", "withdrawn"):
        from_before_the_check(app, ids[key])
    with app.session() as s:
        workflow.withdraw(app.ctx, s, item_id=ids["withdrawn"], actor="ed")
    assert Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes == {"done": 1}
    cli = cli_for(tmp_path, store_url)
    return {"app": app, "cli": cli, "ids": ids, "url": store_url, "site": tmp_path / "site"}


def no_raw(*texts: str) -> None:
    for value in RAW:
        for text in texts:
            assert value not in text


def test_json_lists_the_exposures_and_writes_nothing(office: dict[str, Any]) -> None:
    cli, ids = office["cli"], office["ids"]
    before = dump(office["url"])
    r = cli("check", "--all", "--format", "json")
    assert r.code == 3, r.err
    assert dump(office["url"]) == before  # read-only: every row of every table as it was
    no_raw(r.out, r.err)
    doc = json.loads(r.out)
    assert list(doc) == ["exposures", "cleared", "checked"]
    # live: mobile ×2, xlsx, clean ×2, cleared; the withdrawn page is not
    assert doc["checked"] == 6
    got = {(e["item_id"], e["channel"]) for e in doc["exposures"]}
    assert got == {(ids["mobile"], "website"), (ids["mobile"], "mem"), (ids["xlsx"], "website")}
    for e in doc["exposures"]:
        assert list(e) == JSON_KEYS
        assert datetime.fromisoformat(e["published_at"]).utcoffset().total_seconds() == 8 * 3600
        for f in e["findings"]:
            assert list(f) == FINDING_KEYS and f["rule"]
    by = {(e["item_id"], e["channel"]): e for e in doc["exposures"]}
    web = by[(ids["mobile"], "website")]
    assert [(f["kind"], f["where"], f["masked"]) for f in web["findings"]] == [
        ("mobile", "body:3", masked_mobile(MOBILE))
    ]
    assert web["url"].endswith(f"items/{ids['mobile']}.html")
    assert [(c["item_id"], c["channel"]) for c in doc["cleared"]] == [(ids["cleared"], "mem")]
    sheet = {(f["kind"], f["where"], f["masked"]) for f in by[(ids["xlsx"], "website")]["findings"]}
    assert ("id_card", "名单.xlsx:公示!C2", masked_id(ID)) in sheet
    assert any(k == "hidden_content" and w.startswith("名单.xlsx:公示") for k, w, _ in sheet), sheet


def test_text_groups_by_publication_and_shows_cleared_apart(office: dict[str, Any]) -> None:
    cli, ids = office["cli"], office["ids"]
    r = cli("check", "--all")
    assert r.code == 3, r.err
    no_raw(r.out, r.err)
    out = r.out
    assert f"item {ids['mobile']} version 1 on website" in out and f"item {ids['mobile']} version 1 on mem" in out
    assert masked_mobile(MOBILE) in out and masked_id(ID) in out and "名单.xlsx:公示!C2" in out
    cleared_line = next(line for line in out.splitlines() if line.startswith(f"item {ids['cleared']} "))
    assert "cleared only 已核准公开" in cleared_line
    assert masked_mobile(MOBILE3) in out and "cleared 已核准" in out
    assert f"item {ids['withdrawn']} " not in out and masked_mobile(MOBILE2) not in out
    assert f"item {ids['clean']} " not in out
    assert "checked 6 live publications: 3 exposed (暴露), 1 with cleared findings only" in out


def test_channel_narrows_the_scan(office: dict[str, Any]) -> None:
    cli, ids = office["cli"], office["ids"]
    r = cli("check", "--all", "--channel", "mem", "--format", "json")
    assert r.code == 3, r.err
    doc = json.loads(r.out)
    assert doc["checked"] == 3  # mobile, clean, cleared
    assert [(e["item_id"], e["channel"]) for e in doc["exposures"]] == [(ids["mobile"], "mem")]


def test_a_page_changed_on_the_server_is_read_from_the_site_folder(office: dict[str, Any]) -> None:
    """The website's page file is what the public reads: a number written into it after publication
    (the store does not know) is reported at the page; the store's copy of the body is clean."""
    cli, ids = office["cli"], office["ids"]
    page = office["site"] / "items" / f"{ids['clean']}.html"
    html = page.read_text(encoding="utf-8")
    page.write_text(html.replace("明日上午停水", f"明日上午停水，值班 {MOBILE4}"), encoding="utf-8")
    r = cli("check", "--all", "--channel", "website", "--format", "json")
    assert r.code == 3
    no_raw(r.out, r.err)
    by = {(e["item_id"], e["channel"]): e for e in json.loads(r.out)["exposures"]}
    assert [(f["kind"], f["where"], f["masked"]) for f in by[(ids["clean"], "website")]["findings"]] == [
        ("mobile", f"items/{ids['clean']}.html", masked_mobile(MOBILE4))
    ]
    # the mobile already found in the body is not reported a second time from its page
    assert len(by[(ids["mobile"], "website")]["findings"]) == 1


def test_usage_errors(office: dict[str, Any], tmp_path: Path) -> None:
    cli = office["cli"]
    item = tmp_path / "x.md"
    item.write_text("---\ntitle: t\ncategory: 公告公示\n---\n正文\n", encoding="utf-8")
    r = cli("check", str(item), "--all")
    assert r.code == 2 and "--all" in r.err and "not both" in r.err
    r = cli("check", str(item), "--channel", "website")
    assert r.code == 2 and "--channel only goes with --all" in r.err
    r = cli("check", "--all", "--channel", "weixin")
    assert r.code == 2 and "unknown channel 'weixin' (known: mem, website)" in r.err
    r = cli("check")
    assert r.code == 2 and "ITEM.md" in r.err
    assert r.out == ""


def test_only_cleared_findings_exit_0(make_app: Any, tmp_path: Path, store_url: str) -> None:
    """A publication whose every finding the 保密审查 reviewer cleared is listed as cleared, and is no exposure."""
    app = make_app(channels=CHANNELS)
    src = tmp_path / "src"
    src.mkdir()
    cleared = publish(app, src, "联系人", f"联系人手机 {MOBILE3}\n", channels="website")
    publish(app, src, "停水", "明日上午停水。\n", channels="website, mem")
    cli = cli_for(tmp_path, store_url)
    r = cli("check", "--all")
    assert r.code == 0, r.out + r.err
    assert f"item {cleared} version 1 on website" in r.out and "cleared 已核准" in r.out
    assert "checked 3 live publications: 0 exposed (暴露), 1 with cleared findings only" in r.out
    no_raw(r.out, r.err)
    r = cli("check", "--all", "--format", "json")
    assert r.code == 0
    doc = json.loads(r.out)
    assert doc["exposures"] == [] and doc["checked"] == 3
    # the cleared-only publication is named, with the cleared finding (masked), in the same shape
    [entry] = doc["cleared"]
    assert list(entry) == JSON_KEYS and (entry["item_id"], entry["channel"]) == (cleared, "website")
    assert [(f["kind"], f["where"], f["masked"]) for f in entry["findings"]] == [
        ("mobile", "body:1", masked_mobile(MOBILE3))
    ]


def test_the_single_file_contract_is_unchanged(office: dict[str, Any], tmp_path: Path) -> None:
    cli = office["cli"]
    item = tmp_path / "one.md"
    item.write_text(f"---\ntitle: t\ncategory: 公告公示\n---\n手机 {MOBILE}\n", encoding="utf-8")
    r = cli("check", str(item), "--format", "json")
    assert r.code == 3
    assert json.loads(r.out) == {
        "findings": [
            {
                "kind": "mobile",
                "where": "body:5",
                "masked": masked_mobile(MOBILE),
                "rule": "手机号 (mainland mobile number, 11 digits starting 13–19) — personal data, do not publish",
            }
        ]
    }


def test_the_version_out_there_until_its_masked_update_goes_out(make_app: Any, tmp_path: Path, store_url: str) -> None:
    """Cleaning up the past: an exposed page is masked (a new version, reviewed twice); until the worker
    has sent the update, the page out there is still the old version and is still reported."""
    app = make_app(channels=CHANNELS)
    src = tmp_path / "src"
    src.mkdir()
    item_id = publish(app, src, "助学金", f"联系人：张老师\n\n手机 {MOBILE}\n", channels="website")
    from_before_the_check(app, item_id)
    with app.session() as s:
        workflow.mask_item(app.ctx, s, item_id=item_id, actor=_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item_id, at=datetime.now(UTC))
        assert workflow.get_item(s, item_id).version == 2
    cli = cli_for(tmp_path, store_url)
    r = cli("check", "--all")
    assert r.code == 3, r.out + r.err
    assert f"item {item_id} version 1 on website" in r.out and masked_mobile(MOBILE) in r.out
    assert "version 1 is out there (the item is at version 2)" in r.out
    no_raw(r.out, r.err)
    assert Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes == {"done": 1}
    r = cli("check", "--all", "--format", "json")
    assert r.code == 0, r.out + r.err
    assert json.loads(r.out) == {"exposures": [], "cleared": [], "checked": 1}


def test_recorded_publications_check_their_title_and_say_the_rest_cannot_be(
    make_app: Any, tmp_path: Path, store_url: str
) -> None:
    """An imported row has only a title and a URL: both are checked, and the output says so."""
    from publisher.counting import ledger

    app = make_app(channels=CHANNELS)
    csv_text = (
        "title,category,department,channel,published_at,url\n"
        f"2021年助学金名单（联系人 {MOBILE}）,公告公示,校长办公室,website,2021-10-08 09:00,"
        "https://www.example.edu.cn/art/2021/10/8/1.html\n"
        "2021年停水通知,公告公示,校长办公室,website,2021-11-01,https://www.example.edu.cn/art/2021/11/1/2.html\n"
    )
    with app.session() as s:
        ledger.import_csv(app.ctx, s, data=csv_text.encode(), source="past.csv", actor="admin")
    cli = cli_for(tmp_path, store_url)
    r = cli("check", "--all", "--format", "json")
    assert r.code == 3, r.err
    doc = json.loads(r.out)
    assert doc["checked"] == 2
    (e,) = doc["exposures"]
    assert e["url"] == "https://www.example.edu.cn/art/2021/10/8/1.html"
    assert e["published_at"] == "2021-10-08T09:00:00+08:00"
    assert [(f["kind"], f["where"], f["masked"]) for f in e["findings"]] == [("mobile", "title", masked_mobile(MOBILE))]
    r = cli("check", "--all")
    assert r.code == 3
    assert "2 of them were recorded, not published here" in r.out
    assert "only its title and URL are stored" in r.out
    no_raw(r.out, r.err)


def test_a_live_page_missing_from_the_site_folder_is_said(office: dict[str, Any]) -> None:
    cli, ids = office["cli"], office["ids"]
    (office["site"] / "items" / f"{ids['clean']}.html").unlink()
    r = cli("check", "--all", "--channel", "website")
    assert r.code == 3  # the other items are still exposed
    heading = next(line for line in r.out.splitlines() if line.startswith(f"item {ids['clean']} "))
    assert "no findings 未发现问题" in heading
    assert f"note: the page items/{ids['clean']}.html is not in the site folder" in r.out


def test_the_scan_pages_through_the_ledger(office: dict[str, Any]) -> None:
    """Read a page of publications at a time: a page smaller than the ledger yields every live
    publication once, in delivery order, with the same findings as one big page."""
    from publisher.counting import exposures

    app = office["app"]
    small = list(exposures.scan_live(app.ctx, app.engine, batch=2))
    big = list(exposures.scan_live(app.ctx, app.engine, batch=1000))
    assert [p.delivery_id for p in small] == sorted({p.delivery_id for p in big}) and len(small) == 6
    assert small == big
    assert exposures.count_live(app.engine) == 6 and exposures.count_live(app.engine, channel="mem") == 3


def test_an_update_superseded_before_it_went_out_leaves_the_old_page_reported(
    make_app: Any, tmp_path: Path, store_url: str
) -> None:
    """Masked (version 2, approved, its update owed), then edited again before the worker ran: the
    delivery row now owes nothing and names version 2, but version 1 is what is out there."""
    app = make_app(channels=CHANNELS)
    src = tmp_path / "src"
    src.mkdir()
    item_id = publish(app, src, "助学金", f"联系人：张老师\n\n手机 {MOBILE}\n", channels="website")
    from_before_the_check(app, item_id)
    with app.session() as s:
        workflow.mask_item(app.ctx, s, item_id=item_id, actor=_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item_id, at=datetime.now(UTC))
    with app.session() as s:
        workflow.edit_item(
            app.ctx, s, item_id=item_id, actor=_user(s, "ed"), changes={"title": "关于助学金的公示（更正）"}
        )
    with app.engine.connect() as conn:
        d = Delivery.__table__
        row = conn.execute(sa.select(d.c.status, d.c.op, d.c.item_version).where(d.c.item_id == item_id)).one()
    assert (row.status, row.op, row.item_version) == ("done", "update", 2)
    r = cli_for(tmp_path, store_url)("check", "--all", "--format", "json")
    assert r.code == 3, r.out + r.err
    (e,) = json.loads(r.out)["exposures"]
    assert [(f["kind"], f["where"], f["masked"]) for f in e["findings"]] == [
        ("mobile", "body:3", masked_mobile(MOBILE))
    ]


def test_a_broken_word_list_is_an_error(office: dict[str, Any], tmp_path: Path) -> None:
    cli = office["cli"]
    (tmp_path / "words.txt").write_text("某某校长\n", encoding="utf-8")  # no TAB and reason
    cli.settings.write_text(
        SETTINGS.format(data_dir=tmp_path) + '[privacy]\nwords_file = "words.txt"\n', encoding="utf-8"
    )
    before = dump(office["url"])
    r = cli("check", "--all")
    assert r.code == 1 and r.out == ""
    assert len(r.err.strip().splitlines()) == 1 and "line 1" in r.err, r.err
    assert dump(office["url"]) == before


BUCKET_SETTINGS = """\
data_dir = "{data_dir}"
[channels.website]
type = "website"
storage = "s3"
base_url = "https://xxgk.example.edu.cn/"
search_cron = ""
[channels.website.s3]
bucket = "{bucket}"
prefix = "xxgk/"
endpoint_url = "{endpoint}"
addressing_style = "path"
"""


def test_a_site_in_a_bucket_is_read_from_the_bucket(make_app: Any, tmp_path: Path, store_url: str, monkeypatch) -> None:
    """With ``storage = "s3"`` the page and the files it links are read from the bucket (moto's S3
    server): a number written into the page object and an ID in an attachment object replaced in the
    bucket (the store and the media store know neither) are both found; a page missing from the bucket
    is said; an unreadable bucket is an error, not a clean page."""
    from tests.s3server import KEYS, S3Server, set_keys

    set_keys(monkeypatch)
    with S3Server() as s3:
        table = s3.bucket()
        channels = {
            "website": {
                "type": "website",
                "storage": "s3",
                "base_url": "https://xxgk.example.edu.cn/",
                "search_cron": "",
                "s3": table,
            }
        }
        app = make_app(channels=channels)
        src = tmp_path / "src"
        src.mkdir()
        (src / "说明.txt").write_text("报名说明：见通知。\n", encoding="utf-8")
        page_only = publish(app, src, "停水", "明日上午停水。\n", channels="website")
        with_file = publish(app, src, "报名", "说明见附件。\n", channels="website", attachments="说明.txt")
        gone = publish(app, src, "讲座", "周五讲座。\n", channels="website")
        client, bucket = s3.client(), table["bucket"]
        page_key = f"xxgk/items/{page_only}.html"
        html = client.get_object(Bucket=bucket, Key=page_key)["Body"].read().decode("utf-8")
        client.put_object(
            Bucket=bucket, Key=page_key, Body=html.replace("明日上午停水", f"明日上午停水，值班 {MOBILE4}")
        )
        files = [k for k in s3.keys(table) if k.startswith("xxgk/files/")]
        assert len(files) == 1, files
        client.put_object(Bucket=bucket, Key=files[0], Body=f"报名说明：联系人身份证 {ID}\n".encode())
        client.delete_object(Bucket=bucket, Key=f"xxgk/items/{gone}.html")
        assert not (tmp_path / "site").exists()  # nothing of the site is in a folder to be read instead

        cli = Cli(tmp_path, store_url, BUCKET_SETTINGS.format(data_dir=tmp_path, endpoint=s3.endpoint, **table))
        r = cli("check", "--all", "--format", "json", env=KEYS)
        assert r.code == 3, r.err
        no_raw(r.out, r.err)
        doc = json.loads(r.out)
        by = {e["item_id"]: e for e in doc["exposures"]}
        assert set(by) == {page_only, with_file} and doc["checked"] == 3
        assert [(f["kind"], f["where"], f["masked"]) for f in by[page_only]["findings"]] == [
            ("mobile", f"items/{page_only}.html", masked_mobile(MOBILE4))
        ]
        assert [(f["kind"], f["masked"]) for f in by[with_file]["findings"]] == [("id_card", masked_id(ID))]
        assert by[with_file]["findings"][0]["where"].startswith(f"items/{with_file}.html 说明.txt")

        r = cli("check", "--all", env=KEYS)
        assert r.code == 3
        assert f"note: the page items/{gone}.html is not in the site bucket s3://{bucket}/xxgk/" in r.out

        # a bucket that cannot be read: an error naming it, never "no findings"
        cli.settings.write_text(cli.settings.read_text().replace(bucket, "no-such-bucket-here"), encoding="utf-8")
        r = cli("check", "--all", env=KEYS)
        assert r.code == 1, r.out + r.err
        assert "NoSuchBucket" in r.err and "no-such-bucket-here" in r.err and "no findings" not in r.out
