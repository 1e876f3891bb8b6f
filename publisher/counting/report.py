"""The annual disclosure report (信息公开年度报告), its figures computed from the ledger.

Every number in the report is a :class:`Figure`: a value and the rows behind it (publications, or
register entries). The prose comes from a Jinja2 template, shipped with last year's text and
replaceable by the office's edited copy; the figures are the only variables it sees. Beside the
report a ``.figures.csv`` lists, for each figure, every row it was counted from, so any number in
the Word file can be checked against the ledger (``publisher report explain FIGURE`` prints the same).

Which channels are "the government portal and the campus site", which categories are tenders and
so on are settings (``[report]``), never names in this module. Items and publications are counted
apart: an item on two site channels is one of the site items, and one publication on each channel.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.engine import Engine
from sqlmodel import Session

from publisher.counting import csvcells
from publisher.counting.coverage import Coverage, coverage
from publisher.counting.ledger import Publication, publications
from publisher.counting.periods import period
from publisher.counting.registers import list_complaints, list_requests
from publisher.errors import ConfigError, InvalidInput
from publisher.models import Complaint, DisclosureRequest
from publisher.settings import Settings

APPENDIX_MARK = "[[APPENDIX]]"
PAGE_BREAK = "[[PAGEBREAK]]"
#: the template's places.<name> -> the [report] setting listing that place's channels
PLACE_SETTINGS = {
    "site": "site_channels",
    "wechat": "wechat_channels",
    "media": "media_channels",
    "journal": "journal_channels",
}
FIGURES_COLUMNS = [
    "figure",
    "value",
    "kind",
    "record_id",
    "item_id",
    "channel",
    "category",
    "department",
    "time",
    "origin",
    "url",
    "title",
    # the item's 索引号 (docs/catalogue.md): how a disclosure office names the item it counted
    "index_no",
]


@dataclass
class Figure:
    key: str
    label: str
    value: int
    #: the publications it was counted from (for item counts: every publication of every counted item)
    rows: list[Publication] = field(default_factory=list)
    requests: list[DisclosureRequest] = field(default_factory=list)
    complaints: list[Complaint] = field(default_factory=list)


@dataclass
class AnnualReport:
    start: date
    end: date
    org: str
    figures: dict[str, Figure]
    by_channel: list[tuple[str, str, int]]  # (name, label, publications)
    by_category: list[tuple[str, int]]  # (category, items)
    coverage: list[Coverage]
    places: dict[str, str]
    channel_labels: dict[str, str]
    tz: ZoneInfo
    #: settings that name channels or categories that do not exist (their figures are then 0); a place
    #: none of whose channels is configured is marked 【请核对 [report] KEY：…】 in the text as well
    warnings: list[str] = field(default_factory=list)

    def value(self, key: str) -> int:
        return self.figures[key].value


def _items(key: str, label: str, rows: list[Publication]) -> Figure:
    return Figure(key, label, len({p.item_id for p in rows}), rows)


def build(
    engine: Engine,
    settings: Settings,
    *,
    start: date | str,
    end: date | str,
    channel_labels: dict[str, str] | None = None,
) -> AnnualReport:
    """Compute every figure for the period [start, end] (whole days in the office's time zone)."""
    if not start or not end:
        raise InvalidInput("the report needs --from and --to (the period the provincial notice sets)")
    t0, t1 = period(start, end, settings.zone)
    r = settings.report
    labels = dict(channel_labels or {})
    pubs = publications(engine, start=t0, end=t1)

    def on(channels: list[str]) -> list[Publication]:
        return [p for p in pubs if p.channel in channels]

    def cat(rows: list[Publication], cats: list[str]) -> list[Publication]:
        return [p for p in rows if p.category in cats]

    site = on(r.site_channels)
    figs = [
        _items("total_items", "本期公开信息（各渠道合计，按条目）", pubs),
        _items("site_items", "通过网站公开信息（条）", site),
        _items("site_rules", "其中规章制度类信息（条）", cat(site, r.rules_categories)),
        _items("site_recruitment", "其中招聘信息（条）", cat(site, r.recruitment_categories)),
        _items("site_announcements", "其中各类公告公示（条）", cat(site, r.announcement_categories)),
        _items("media_items", "通过外界媒体发布新闻（条）", on(r.media_channels)),
        _items("journal_issues", "学报出版（期）", on(r.journal_channels)),
        _items("wechat_posts", "微信公众号（条）", on(r.wechat_channels)),
        _items("tenders", "招标公告（条）", cat(pubs, r.tender_categories)),
        _items("awards", "中标公告（条）", cat(pubs, r.award_categories)),
        _items("recruitment", "招聘信息（条，各渠道）", cat(pubs, r.recruitment_categories)),
    ]
    by_channel: list[tuple[str, str, int]] = []
    for ch in sorted({p.channel for p in pubs}):
        rows = [p for p in pubs if p.channel == ch]
        figs.append(Figure(f"channel:{ch}", f"{labels.get(ch, ch)} 发布（次）", len(rows), rows))
        by_channel.append((ch, labels.get(ch, ch), len(rows)))
    by_category: list[tuple[str, int]] = []
    for c in sorted(
        {p.category for p in pubs},
        key=lambda c: (
            c not in settings.categories,
            settings.categories.index(c) if c in settings.categories else 0,
            c,
        ),
    ):
        f = _items(f"category:{c}", f"{c}（条）", [p for p in pubs if p.category == c])
        figs.append(f)
        by_category.append((c, f.value))
    with Session(engine) as s:
        reqs = list_requests(s, start=t0, end=t1)
        comps = list_complaints(s, start=t0, end=t1)
    for key, label, sel in (
        ("requests_received", "收到依申请公开（件）", reqs),
        ("requests_disclosed", "予以公开（件）", [q for q in reqs if q.outcome == "disclosed"]),
        ("requests_partly", "部分公开（件）", [q for q in reqs if q.outcome == "partly"]),
        ("requests_not_disclosed", "不予公开（件）", [q for q in reqs if q.outcome == "not_disclosed"]),
        ("requests_not_held", "信息不存在（件）", [q for q in reqs if q.outcome == "not_held"]),
        ("requests_open", "正在办理（件）", [q for q in reqs if q.outcome == "open"]),
        ("requests_late", "超过答复期限（件）", [q for q in reqs if _late(q, settings, t1)]),
    ):
        figs.append(Figure(key, label, len(sel), requests=sel))
    figs.append(Figure("complaints_received", "收到举报、投诉（件）", len(comps), complaints=comps))
    upheld = [c for c in comps if c.outcome in ("upheld", "partly_upheld")]
    figs.append(Figure("complaints_upheld", "举报经核查属实（件）", len(upheld), complaints=upheld))
    cov = coverage(engine, settings, as_of=t1)
    for c in cov:
        figs.append(
            Figure(
                f"checklist:{c.number}",
                f"清单第{c.number}项 {c.status}",
                1 if c.status != "never" else 0,
                [p for p in c.rows if p.item_id == c.item_id],
            )
        )

    warnings = []
    if channel_labels is not None:
        for key in PLACE_SETTINGS.values():
            for ch in getattr(r, key):
                if ch not in labels:
                    warnings.append(f"[report] {key} names {ch!r}, which is not a configured channel")

    def place(key: str) -> str:
        # a channel not configured has published nothing; its settings key is no name for the report
        chs = getattr(r, key)
        if named := "以及".join(labels[c] for c in chs if c in labels):
            return named
        # nothing to name: the report says so where the name belongs, for whoever finishes the Word file
        marker = f"【请核对 [report] {key}：{'所列渠道 ' + '、'.join(chs) + ' 均未配置' if chs else '未列出渠道'}】"
        warnings.append(
            f"[report] {key} names no configured channel, so the report reads {marker} where the "
            f"channel's name belongs: configure the channel or correct {key} in settings.toml"
        )
        return marker

    for key in (
        "rules_categories",
        "recruitment_categories",
        "announcement_categories",
        "tender_categories",
        "award_categories",
    ):
        for c in getattr(r, key):
            if c not in settings.categories:
                warnings.append(f"[report] {key} names {c!r}, which is not one of the categories")
    places = {name: place(key) for name, key in PLACE_SETTINGS.items()}
    return AnnualReport(
        start=t0.date(),
        end=(t1 - timedelta(days=1)).date(),
        org=settings.organisation,
        figures={f.key: f for f in figs},
        by_channel=by_channel,
        by_category=by_category,
        coverage=cov,
        places=places,
        channel_labels=labels,
        tz=settings.zone,
        warnings=warnings,
    )


def _late(q: DisclosureRequest, settings: Settings, end: datetime) -> bool:
    done = q.answered_at or end
    return done.astimezone(settings.zone).date() > q.due_on


# ------------------------------------------------------------------------------------------- prose
def _cn_date(d: date | datetime) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def default_template() -> str:
    return files("publisher").joinpath("templates/annual_report.md.j2").read_text(encoding="utf-8")


def render_text(rep: AnnualReport, template: str | None = None) -> str:
    """The report as lightly marked-up text (headings #, signature >>, [[APPENDIX]] left in place)."""
    # sandboxed: the office edits the template in the browser, so a template must not reach Python's
    # internals ({{ ''.__class__.__mro__ }}…); what the report needs is plain variables and filters
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["cn_date"] = _cn_date
    try:
        tpl = env.from_string(template if template is not None else default_template())
    except jinja2.TemplateSyntaxError as exc:
        raise InvalidInput(f"report template, line {exc.lineno}: {exc.message}") from exc
    counts = Counter(c.status for c in rep.coverage)
    ctx: dict[str, Any] = {
        "org": rep.org,
        "start": rep.start,
        "end": rep.end,
        "report_date": rep.end,
        "year_label": f"{rep.start.year}-{rep.end.year}" if rep.start.year != rep.end.year else str(rep.start.year),
        "places": rep.places,
        "f": {k: f.value for k, f in rep.figures.items() if ":" not in k},
        "by_channel": [(label, n) for _, label, n in rep.by_channel],
        "by_category": rep.by_category,
        "coverage": {"current": counts["current"], "stale": counts["stale"], "never": counts["never"]},
    }
    try:
        return tpl.render(**ctx)
    except jinja2.UndefinedError as exc:
        raise InvalidInput(
            f"report template: {exc.message} (see the variables listed at the top of the "
            "shipped template: `publisher report template`)"
        ) from exc


def _appendix_rows(rep: AnnualReport) -> list[list[str]]:
    status = {"current": "已公开", "stale": "需更新", "never": "未公开"}
    out = []
    for c in rep.coverage:
        # labels only: the URLs are in the figures file (checklist:N) and `publisher coverage`
        where = "、".join(dict.fromkeys(rep.channel_labels.get(ch, ch) for ch, _ in c.places))
        out.append(
            [
                str(c.number),
                c.category,
                c.name,
                where or "—",
                c.latest_at.astimezone(rep.tz).strftime("%Y-%m-%d") if c.latest_at else "—",
                status[c.status],
            ]
        )
    return out


APPENDIX_HEADER = ["序号", "类别", "公开事项", "公开位置", "最近公开", "状态"]


def to_markdown(rep: AnnualReport, text: str) -> str:
    rows = _appendix_rows(rep)
    table = ["| " + " | ".join(APPENDIX_HEADER) + " |", "|" + "---|" * len(APPENDIX_HEADER)]
    table += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
    lines = []
    for line in text.splitlines():
        if line.strip() == APPENDIX_MARK:
            lines.extend(table)
        elif line.strip() == PAGE_BREAK:
            continue
        elif line.startswith(">> "):
            lines.append(line[3:])
        else:
            lines.append(line)
    return "\n".join(lines).strip() + "\n"


def to_docx(rep: AnnualReport, text: str, path: Path | IO[bytes]) -> None:
    """A Word file the office finishes by hand: 宋体 body, 黑体 headings, the appendix as a real table.

    ``path`` may be a binary file object (the web page sends the file without writing it to disk)."""
    from docx import Document
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt

    doc = Document()
    sec = doc.sections[0]
    sec.page_height, sec.page_width = Cm(29.7), Cm(21.0)  # A4
    sec.left_margin = sec.right_margin = Cm(2.6)

    def font(style_or_run: Any, name: str, size: float | None = None, bold: bool | None = None) -> None:
        f = style_or_run.font
        f.name = name
        if size:
            f.size = Pt(size)
        if bold is not None:
            f.bold = bold
        rpr = style_or_run.element.get_or_add_rPr()
        rfonts = rpr.find(qn("w:rFonts"))
        if rfonts is None:
            rfonts = rpr.makeelement(qn("w:rFonts"), {})
            rpr.append(rfonts)
        rfonts.set(qn("w:eastAsia"), name)

    font(doc.styles["Normal"], "宋体", 12)
    for lvl, size in ((1, 18), (2, 15), (3, 13)):
        st = doc.styles[f"Heading {lvl}"]
        font(st, "黑体", size, True)
        st.font.color.rgb = None
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            p = doc.add_paragraph("".join(s.strip() for s in paragraph))
            p.paragraph_format.first_line_indent = Pt(24)
            p.paragraph_format.line_spacing = 1.5
            paragraph.clear()

    for line in text.splitlines():
        s = line.rstrip()
        if not s.strip():
            flush()
        elif s.startswith("# "):
            flush()
            h = doc.add_heading(s[2:].strip(), level=1)
            h.alignment = WD_ALIGN_PARAGRAPH.CENTER
        elif s.startswith("## "):
            flush()
            doc.add_heading(s[3:].strip(), level=2)
        elif s.startswith("### "):
            flush()
            doc.add_heading(s[4:].strip(), level=3)
        elif s.startswith(">> "):
            flush()
            p = doc.add_paragraph(s[3:].strip())
            p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        elif s.strip() == PAGE_BREAK:
            flush()
            doc.add_page_break()
        elif s.strip() == APPENDIX_MARK:
            flush()
            rows = _appendix_rows(rep)
            table = doc.add_table(rows=1, cols=len(APPENDIX_HEADER))
            table.style = "Table Grid"
            table.alignment = WD_TABLE_ALIGNMENT.CENTER
            for cell, head in zip(table.rows[0].cells, APPENDIX_HEADER, strict=True):
                cell.text = head
                for run in cell.paragraphs[0].runs:
                    run.bold = True
            for r in rows:
                cells = table.add_row().cells
                for cell, value in zip(cells, r, strict=True):
                    cell.text = value
            widths = [Cm(0.9), Cm(2.0), Cm(5.4), Cm(3.3), Cm(2.6), Cm(1.6)]
            table.autofit = False
            for col, w in zip(table.columns, widths, strict=True):
                col.width = w
            for row in table.rows:
                for cell, w in zip(row.cells, widths, strict=True):
                    cell.width = w
                    for p in cell.paragraphs:
                        for run in p.runs:
                            run.font.size = Pt(9)
        else:
            paragraph.append(s)
    flush()
    doc.core_properties.title = f"{rep.org}信息公开年度报告"
    doc.save(str(path) if isinstance(path, Path) else path)


# --------------------------------------------------------------------------------------- traceability
def figures_csv(rep: AnnualReport, settings: Settings, keys: list[str] | None = None) -> str:
    """Each figure with the rows it was counted from: one line per row (a figure of 0 gets one line)."""
    tz = settings.zone
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csvcells.writer(buf, lineterminator="\r\n")
    w.writerow(FIGURES_COLUMNS)
    for key, f in rep.figures.items():
        if keys is not None and key not in keys:
            continue
        wrote = False
        for p in f.rows:
            w.writerow(
                [
                    key,
                    f.value,
                    "publication",
                    p.delivery_id,
                    p.item_id,
                    p.channel,
                    p.category,
                    p.department,
                    p.published_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                    p.origin,
                    p.url or "",
                    p.title,
                    p.index_no or "",
                ]
            )
            wrote = True
        for q in f.requests:
            w.writerow(
                [
                    key,
                    f.value,
                    "request",
                    q.id,
                    "",
                    "",
                    "",
                    "",
                    q.received_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                    q.outcome,
                    "",
                    q.subject,
                    "",
                ]
            )
            wrote = True
        for c in f.complaints:
            w.writerow(
                [
                    key,
                    f.value,
                    "complaint",
                    c.id,
                    "",
                    "",
                    "",
                    "",
                    c.received_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                    c.outcome,
                    "",
                    c.subject,
                    "",
                ]
            )
            wrote = True
        if not wrote:
            w.writerow([key, f.value, *[""] * (len(FIGURES_COLUMNS) - 2)])
    return buf.getvalue()


#: the office's copy of the template when ``[report] template`` names none (in data_dir)
OFFICE_TEMPLATE = "report-template.md.j2"


def office_template_path(settings: Settings) -> Path:
    """Where the office's edited template is kept: ``[report] template``, else OFFICE_TEMPLATE in data_dir.

    The CLI (``report annual`` without ``--template``) and the web page read and write the same file."""
    return settings.path(settings.report.template or OFFICE_TEMPLATE)


def load_template(settings: Settings, path: Path | None) -> str | None:
    """The template text: ``path`` if given, else the office's copy; None (the shipped one) when the
    office has none and no setting names one."""
    p = Path(path) if path is not None else office_template_path(settings)
    if path is None and settings.report.template is None and not p.exists():
        return None
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"report template {p} does not exist (write one with `publisher report template -o FILE`)"
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"report template {p} is not UTF-8 ({exc.reason}); save it as UTF-8") from exc


def check_template(rep: AnnualReport, text: str) -> None:
    """InvalidInput naming the line and the error when ``text`` does not parse, or does not render
    against ``rep`` (an unknown variable, a filter given the wrong thing)."""
    try:
        render_text(rep, text)
    except InvalidInput:
        raise
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f", line {line}" if line else ""
        raise InvalidInput(f"report template{where}: {exc.message or exc}") from exc
    except (TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise InvalidInput(f"report template: {type(exc).__name__}: {exc}") from exc


def save_template(rep: AnnualReport, settings: Settings, text: str) -> Path:
    """Check ``text`` (:func:`check_template`) and make it the office's copy; a refused text leaves the
    old copy as it was. The file is replaced whole (written beside it, then renamed)."""
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise InvalidInput("the report template is empty; start from the shipped one (`publisher report template`)")
    check_template(rep, text)
    path = office_template_path(settings)
    if not path.parent.is_dir():
        raise ConfigError(f"folder {path.parent} for the report template does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


#: the category of the report's item unless a website channel names another (``report_category``)
REPORT_CATEGORY = "年度报告"


def item_front_matter(rep: AnnualReport, settings: Settings) -> str:
    """Front matter that makes the Markdown report an item file (``publisher item add``): titled, in
    the reports' category, for the site channels of ``[report] site_channels`` that are configured.
    The report reaches the website the way every item does: through both reviews and the pipeline."""
    websites = [c for n, c in settings.channels.items() if str(c.get("type", n)) == "website"]
    category = str(websites[0].get("report_category", REPORT_CATEGORY)) if websites else REPORT_CATEGORY
    channels = [n for n in settings.report.site_channels if n in settings.channels]
    if not channels:
        raise InvalidInput(
            "none of [report] site_channels "
            f"({', '.join(settings.report.site_channels) or 'empty'}) is a configured channel; "
            "name the website channel there to publish the report as an item"
        )
    if category not in settings.categories:
        raise InvalidInput(f"category {category!r} is not among the settings' categories; add it to publish the report")
    fields = {
        "title": f"{rep.org}信息公开工作年度报告（{rep.start.isoformat()}至{rep.end.isoformat()}）",
        "category": category,
        "channels": channels,
    }
    return "---\n" + yaml.safe_dump(fields, allow_unicode=True, sort_keys=False) + "---\n"


def write_report(
    rep: AnnualReport,
    settings: Settings,
    *,
    fmt: str,
    out: Path,
    template: str | None = None,
    as_item: bool = False,
) -> tuple[Path, Path]:
    """Write the report and, beside it, ``<name>.figures.csv``; return both paths. ``as_item``: the
    Markdown starts with :func:`item_front_matter`, ready for ``publisher item add``."""
    if fmt not in ("md", "docx"):
        raise InvalidInput(f"unknown format {fmt!r}; use md or docx")
    if as_item and fmt != "md":
        raise InvalidInput("--item writes an item file: use it with --format md")
    if not out.parent.exists():
        raise InvalidInput(f"folder {out.parent} does not exist")
    text = render_text(rep, template)
    if fmt == "md":
        head = item_front_matter(rep, settings) if as_item else ""
        out.write_text(head + to_markdown(rep, text), encoding="utf-8")
    else:
        to_docx(rep, text, out)
    csv_path = out.with_name(out.stem + ".figures.csv")
    csv_path.write_text(figures_csv(rep, settings), encoding="utf-8", newline="")
    return out, csv_path
