"""The annual report: the real report's figures, computed from a year of imported records."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from datetime import datetime

import pytest
from typer.testing import CliRunner

from publisher.counting import registers, report
from publisher.errors import InvalidInput
from tests.data import make_year_csv
from tests.ledger_helpers import REPORT_SETTINGS, import_year, year_app

PERIOD = {"start": "2021-10-01", "end": "2022-10-25"}
SENTENCES = [
    "通过学校校园网主页以及齐齐哈尔市人民政府网站公开信息共计 406 条",
    "其中规章制度类信息 67 条、招聘信息 14 条、各类公告公示 68 条",
    "通过外界媒体（网络、报纸、电视台）发布新闻 4 条",
    "《学报》出版 7 期",
    "微信公众号 260 条",
    "本年度学校招标公告面向社会公开 37 条",
    "本年度发布招聘信息 14 条",
    "收到要求公开信息的申请0件",
    "学校信息公开工作没有收到任何举报和投诉",
    "2021年10月1日至2022年10月25日",
]


@pytest.fixture
def year(make_app, tmp_path):
    app = year_app(make_app, organisation="齐齐哈尔高等师范专科学校")
    import_year(app, tmp_path)
    return app


def _build(app):
    labels = {n: sp.label for n, sp in app.channels.items()}
    return report.build(app.engine, app.settings, channel_labels=labels, **PERIOD)


def test_figures_match_the_real_report(year):
    rep = _build(year)
    assert rep.warnings == []
    for key, value in make_year_csv.EXPECTED.items():
        assert rep.value(key) == value, key
    # items and publications are counted apart: recruitment notices are on three channels each
    assert rep.value("channel:hr_site") == 14 and rep.value("channel:city_portal") == 12 + 14
    assert rep.value("channel:website") == 406
    # every figure lists the rows behind it; item figures count distinct items among those rows
    f = rep.figures["site_recruitment"]
    assert len(f.rows) == 28 and len({p.item_id for p in f.rows}) == 14
    cov = {c.number: c for c in rep.coverage}
    assert cov[2].status == "current" and cov[25].status == "current" and cov[1].status == "never"
    assert cov[6].status == "stale"  # last year's report (28 September 2021) is over a year old at the end


def test_markdown_and_docx_state_the_numbers(year, tmp_path):
    rep = _build(year)
    md, md_csv = report.write_report(rep, year.settings, fmt="md", out=tmp_path / "report.md")
    text = md.read_text(encoding="utf-8")
    for s in SENTENCES:
        assert s in text, s
    for heading in (
        "一、概述",
        "（一）主动公开情况",
        "（二）依申请公开情况和不予公开情况",
        "（三）对信息公开的评议情况",
        "（四）因学校信息公开工作遭到举报的情况",
        "三、信息公开工作的不足和改进措施",
        "附件",
    ):
        assert heading in text, heading
    assert text.count("\n| ") == 51  # the appendix: header + 50 checklist items

    docx_path, docx_csv = report.write_report(rep, year.settings, fmt="docx", out=tmp_path / "report.docx")
    from docx import Document

    doc = Document(str(docx_path))
    body = "\n".join(p.text for p in doc.paragraphs)
    for s in SENTENCES:
        assert s in body, s
    assert [p.text for p in doc.paragraphs if p.style.name == "Heading 1"] == [
        "齐齐哈尔高等师范专科学校2021-2022学年信息公开年度报告"
    ]
    (table,) = doc.tables
    assert len(table.rows) == 51 and table.rows[0].cells[2].text == "公开事项"
    assert table.rows[2].cells[0].text == "2" and table.rows[2].cells[3].text == "学校校园网主页"
    assert table.rows[25].cells[3].text == "学校校园网主页、齐齐哈尔市人民政府网站、市人力资源网站"

    # the figures file: every figure with its rows, so each number can be checked against the ledger
    rows = list(csv.DictReader(io.StringIO(docx_csv.read_text(encoding="utf-8").lstrip("\ufeff"))))
    site = [r for r in rows if r["figure"] == "site_items"]
    assert {r["value"] for r in site} == {"406"} and len({r["item_id"] for r in site}) == 406
    assert {r["figure"] for r in rows if r["value"] == "0"} >= {"requests_received", "complaints_received"}
    # and where each checklist item is published, with the URLs
    (rule_row,) = [r for r in rows if r["figure"] == "checklist:2"]
    assert rule_row["url"].startswith("http://www.qqhrtc.com/") and rule_row["channel"] == "website"


def test_registers_are_counted(year):
    with year.session() as s:
        r1 = registers.add_request(
            s,
            year.settings,
            applicant="张三",
            subject="2022年招生计划",
            via="email",
            received="2022-03-01 10:00",
            actor="admin",
        )
        registers.close_request(
            s, year.settings, request_id=r1.id, outcome="disclosed", answered="2022-03-05", actor="admin"
        )
        r2 = registers.add_request(
            s, year.settings, applicant="李四", subject="某人工资", via="letter", received="2022-04-01", actor="admin"
        )
        registers.close_request(
            s,
            year.settings,
            request_id=r2.id,
            outcome="not_disclosed",
            legal_reason="privacy",
            answered="2022-05-30",
            actor="admin",
        )
        registers.add_complaint(
            s,
            year.settings,
            complainant="王五",
            subject="招聘公告未按时公开",
            via="phone",
            received="2022-06-01",
            actor="admin",
        )
    rep = _build(year)
    assert rep.value("requests_received") == 2 and rep.value("requests_not_disclosed") == 1
    assert rep.value("requests_late") == 1  # 1 April + 15 working days (Qingming, May Day) is 25 April
    text = report.render_text(rep)
    assert "收到要求公开信息的申请2件，其中予以公开 1 件、部分公开 0 件、不予公开 1 件" in text
    assert "超过答复期限 1 件" in text
    assert "收到举报和投诉 1 件" in text


def test_the_offices_template_is_used(year, tmp_path):
    rep = _build(year)
    custom = "# {{ org }}\n\n本年度共发布 {{ f.site_items }} 条，微信 {{ f.wechat_posts }} 条。\n\n[[APPENDIX]]\n"
    text = report.to_markdown(rep, report.render_text(rep, custom))
    assert "本年度共发布 406 条，微信 260 条。" in text
    with pytest.raises(InvalidInput, match="report template: 'dict object' has no attribute 'nonsense'"):
        report.render_text(rep, "{{ f.nonsense }}")
    with pytest.raises(InvalidInput, match="report template, line 1"):
        report.render_text(rep, "{% if %}")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_bad_period(make_app):
    app = year_app(make_app)
    with pytest.raises(InvalidInput, match=r"ends \(2021-10-01\) before it starts \(2022-10-25\)"):
        report.build(app.engine, app.settings, start="2022-10-25", end="2021-10-01")
    rep = report.build(
        app.engine, app.settings, start="2021-10-01", end="2022-10-25", channel_labels={"website": "网站"}
    )
    assert "[report] site_channels names 'city_portal', which is not a configured channel" in rep.warnings
    with pytest.raises(InvalidInput, match="'2022/10/25' is not a date"):
        report.build(app.engine, app.settings, start="2021-10-01", end="2022/10/25")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_cli_import_report_and_explain(make_app, store_url, tmp_path):
    from publisher.cli import app as cli

    app = year_app(make_app)
    settings = tmp_path / "settings.toml"
    chans = "".join(f'[channels.{n}]\ntype = "memory"\n' for n in make_year_csv.CHANNELS)
    settings.write_text(f'database_url = "{store_url}"\ndata_dir = "{tmp_path}"\n{chans}', encoding="utf-8")
    csv_path = make_year_csv.write(tmp_path / "year.csv")
    runner = CliRunner()
    base = ["--settings", str(settings)]
    r = runner.invoke(cli, [*base, "import", str(csv_path), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "would add" in r.output
    r = runner.invoke(cli, [*base, "import", str(csv_path)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "annual.docx"
    r = runner.invoke(
        cli,
        [*base, "report", "annual", "--from", "2021-10-01", "--to", "2022-10-25", "--format", "docx", "-o", str(out)],
    )
    assert r.exit_code == 0, r.output
    assert "site items 406 (rules 67, recruitment 14, announcements 68); WeChat 260" in r.output
    assert out.exists() and (tmp_path / "annual.figures.csv").exists()
    r = runner.invoke(cli, [*base, "report", "explain", "journal_issues", "--from", "2021-10-01", "--to", "2022-10-25"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("figure,value") and len(lines) == 1 + 7
    r = runner.invoke(cli, [*base, "export", "-o", str(tmp_path / "out.csv")])
    assert r.exit_code == 0, r.output
    app.close()

    _opens_in_an_office_suite(out, tmp_path)
    assert datetime  # noqa: B018


def _opens_in_an_office_suite(docx, tmp_path):
    """The DOCX converts to PDF in LibreOffice where it is installed (not on CI by default)."""
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    if exe is None:
        pytest.skip("LibreOffice is not installed: the DOCX was re-opened with python-docx only")
    subprocess.run(
        [exe, "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(docx)],
        check=True,
        timeout=180,
        capture_output=True,
    )
    assert (tmp_path / (docx.stem + ".pdf")).stat().st_size > 10_000


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_report_names_places_in_chinese_without_settings_keys(make_app):
    """The report goes to the regulator in Chinese: a by-hand channel is named by its place, and a
    channel named in [report] but not configured never passes its settings key off as a name: a place
    with no configured channel is an editor's note 【请核对 …】 that names the setting to fix."""
    app = make_app(
        channels={
            "website": {"type": "memory", "label": "学校校园网主页"},
            "city_portal": {"type": "manual", "place": "city_portal"},
        },
        report=dict(REPORT_SETTINGS),
    )
    rep = _build(app)
    text = report.render_text(rep, report.load_template(app.settings, None))
    assert "通过学校校园网主页以及齐齐哈尔市人民政府网站公开信息" in text
    body = text.split("## 附件")[0]
    for key in ("wechat", "media", "journal"):
        assert f"【请核对 [report] {key}_channels：所列渠道 {key} 均未配置】" in body, key
    body = re.sub(r"【请核对 [^】]*】", "", body)
    for key in ("wechat", "media", "journal", "by hand"):
        assert key not in body, key


def test_a_place_with_no_configured_channel_is_named_in_the_report_and_warned_about(year):
    """Not "通过（未设置）公开信息", "（未设置） 260 条": a placeholder nobody could trace to a setting."""
    labels = {n: sp.label for n, sp in year.channels.items() if n not in ("wechat", "journal")}
    rep = report.build(year.engine, year.settings, channel_labels=labels, **PERIOD)
    text = report.to_markdown(rep, report.render_text(rep))
    assert "未设置" not in text
    assert "【请核对 [report] wechat_channels：所列渠道 wechat 均未配置】 260 条" in text
    assert "【请核对 [report] journal_channels：所列渠道 journal 均未配置】出版 7 期" in text
    assert "通过学校校园网主页以及齐齐哈尔市人民政府网站公开信息共计 406 条" in text  # the configured places, unchanged
    assert rep.warnings == [
        "[report] wechat_channels names 'wechat', which is not a configured channel",
        "[report] journal_channels names 'journal', which is not a configured channel",
        "[report] wechat_channels names no configured channel, so the report reads 【请核对 [report] wechat_channels："
        "所列渠道 wechat 均未配置】 where the channel's name belongs: configure the channel or correct wechat_channels "
        "in settings.toml",
        "[report] journal_channels names no configured channel, so the report reads 【请核对 [report] "
        "journal_channels：所列渠道 journal 均未配置】 where the channel's name belongs: configure the channel or "
        "correct journal_channels in settings.toml",
    ]


def test_the_report_as_an_item_file_is_filed_for_review_in_the_reports_category(year, tmp_path):
    from publisher.pipeline import content, workflow

    rep = _build(year)
    md, _ = report.write_report(rep, year.settings, fmt="md", out=tmp_path / "report.md", as_item=True)
    s_ = year.settings
    draft = content.read_item_file(
        md,
        media_dir=s_.media_dir,
        max_body_bytes=s_.review.max_body_bytes,
        max_asset_bytes=s_.review.max_asset_bytes,
        max_image_pixels=s_.review.max_image_pixels,
    )
    assert draft.title == "齐齐哈尔高等师范专科学校信息公开工作年度报告（2021-10-01至2022-10-25）"
    assert draft.fields["category"] == "年度报告"
    assert draft.fields["channels"] == [n for n in s_.report.site_channels if n in s_.channels]
    assert "收到要求公开信息的申请0件" in draft.body_markdown
    with year.session() as s:
        item = workflow.create_item(year.ctx, s, author=workflow.get_user(s, "ed"), draft=draft)
        assert item.category == "年度报告" and item.status == "draft"

    with pytest.raises(InvalidInput, match="--item writes an item file: use it with --format md"):
        report.write_report(rep, s_, fmt="docx", out=tmp_path / "r.docx", as_item=True)
    s_.report.site_channels = ["nowhere"]
    with pytest.raises(InvalidInput, match=r"none of \[report\] site_channels \(nowhere\) is a configured channel"):
        report.write_report(rep, s_, fmt="md", out=tmp_path / "r2.md", as_item=True)
