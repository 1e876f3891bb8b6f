"""Places with no API — the city portal, the HR and procurement sites, newspapers, TV, the journal,
Toutiao, the Ministry's platform: a person posts the item by hand and records where it went.

How a manual delivery moves
    ``publish`` answers :class:`InProgress` ("waiting to be posted by hand at <place>"), asking again
    every ``remind_after_hours``, until someone records the outcome in the delivery's state (the
    core's "record" command/page does it, through :func:`recorded_state`):

    * ``state["url"]`` — the address where the item now is (checked by :func:`validate_recorded_url`):
      the next ``publish`` answers ``Published(url=...)``;
    * ``state["not_applicable"]`` — a reason, for places where there is no address (a newspaper page,
      a TV report, a printed journal issue): the next ``publish`` answers ``Published(url=None)``.
      The reason stays in the delivery's state under ``not_applicable`` (and is repeated as
      ``state["note"]``), which is where the core reads it from to show and report it.

    ``state["waiting_since"]`` is set on the first call; once ``overdue_after_hours`` have passed
    the note says OVERDUE, so lists of waiting deliveries show which place is lagging, and the answer
    is marked ``overdue`` (the item's department editors are told once: docs/notify.md).

The helpers the core calls are pure functions: :func:`render_copy_kit` (what to paste),
:func:`validate_recorded_url`, :func:`recorded_state` and :func:`is_overdue`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field

from publisher.channel import (
    Channel,
    ChannelConfig,
    DeliveryContext,
    HealthReport,
    InProgress,
    Post,
    Published,
    web_address,
)
from publisher.errors import InvalidInput

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Preset:
    label: str
    hint: str


PRESETS: dict[str, Preset] = {
    "city_portal": Preset(
        "齐齐哈尔市人民政府网站",
        "登录市政府网站信息报送系统，在对应栏目（如“高校信息公开”）新建信息，粘贴标题与正文，上传图片后提交；"
        "审核通过后复制文章地址记录在此。",
    ),
    "hr_site": Preset(
        "市人力资源网站",
        "招聘类信息：在市人力资源和社会保障网站的招聘公告栏目提交，附件（报名表等）一并上传；发布后记录地址。",
    ),
    "procurement": Preset(
        "黑龙江省政府采购网",
        "招标、中标公告：经由省政府采购网的采购人账号发布，按网站模板填写项目编号与预算；发布后记录公告地址。",
    ),
    "newspaper": Preset(
        "报纸",
        "将稿件发给报社联系人；见报后记录电子版地址，没有电子版时记为“不适用”并写明报纸名称、日期与版次。",
    ),
    "tv": Preset(
        "电视台",
        "将新闻稿与图片提供给电视台；播出后记录节目网页或视频地址，没有时记为“不适用”并写明频道、栏目与播出日期。",
    ),
    "journal": Preset("学报", "交学报编辑部编入当期；出版后记录电子版地址，纸本期刊记为“不适用”并写明卷期。"),
    "toutiao": Preset(
        "今日头条",
        "登录头条号后台（mp.toutiao.com）发表文章，粘贴标题与正文并上传图片；发布后复制文章链接记录在此。",
    ),
    "moe_platform": Preset(
        "教育部云平台",
        "在教育部高校信息公开平台按填报要求录入对应条目；提交后记录条目地址（或记为“不适用”并写明提交日期）。",
    ),
    "douyin": Preset(
        "抖音号",
        "本账号没有开放平台接口权限：在抖音 App 或创作者中心（creator.douyin.com）发布图文，"
        "发布后复制作品分享链接记录在此。",
    ),
}


class ManualConfig(ChannelConfig):
    #: a key of PRESETS, or any label of a place without a preset
    place: str
    #: shown instead of the preset's label
    label: str | None = None
    remind_after_hours: float = Field(default=1.0, gt=0)
    overdue_after_hours: float = Field(default=72.0, gt=0)


class ManualChannel(Channel):
    type_name = "manual"
    label = "人工发布（无接口的平台）"
    Config = ManualConfig
    manual = True
    default_max_concurrency = 8

    config: ManualConfig

    @property
    def place_label(self) -> str:
        preset = PRESETS.get(self.config.place)
        return self.config.label or (preset.label if preset else self.config.place)

    @property
    def hint(self) -> str:
        preset = PRESETS.get(self.config.place)
        return preset.hint if preset else ""

    def publish(self, post: Post, ctx: DeliveryContext) -> InProgress | Published:
        if ctx.state.get("url"):
            return Published(url=ctx.state["url"], remote_id=None)
        if ctx.state.get("not_applicable"):
            if ctx.state.get("note") != ctx.state["not_applicable"]:
                ctx.save_state(note=ctx.state["not_applicable"])
            return Published(url=None, remote_id=None)
        if not ctx.state.get("waiting_since"):
            ctx.save_state(waiting_since=self.env.clock().isoformat())
        note = f"waiting to be posted by hand at {self.place_label}"
        overdue = is_overdue(ctx.state, self.env.clock(), self.config.overdue_after_hours)
        if overdue:
            since = datetime.fromisoformat(ctx.state["waiting_since"]).astimezone(self.env.timezone)
            note = f"OVERDUE: {note} since {since:%Y-%m-%d %H:%M} ({self.env.timezone.key})"
        # the reminder after the deadline comes at most remind_after_hours late: it is what tells people
        return InProgress(check_again_in=timedelta(hours=self.config.remind_after_hours), note=note, overdue=overdue)

    def copy_kit(self, post: Post) -> str:
        return f"发布位置 / post at: {self.place_label}\n{self.hint}\n\n" + render_copy_kit(post, self.env.timezone)

    def check_health(self) -> HealthReport:
        return HealthReport(ok=True, detail=f"posted by hand at {self.place_label}; nothing to check")


# ------------------------------------------------------------------------------------ helpers for the core
def validate_recorded_url(url: str) -> str:
    """The recorded address, trimmed; InvalidInput unless it is an http(s) URL with a host."""
    return web_address(url, hint=" (or mark the delivery not applicable, with a reason)")


def recorded_state(
    *,
    url: str | None = None,
    not_applicable: str | None = None,
    by: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """What the core saves into a manual delivery's state when a person records the outcome."""
    if (url is None) == (not_applicable is None):
        raise InvalidInput("record either the address where the item was posted or why there is none")
    out: dict[str, Any] = {}
    if url is not None:
        out["url"] = validate_recorded_url(url)
    else:
        reason = (not_applicable or "").strip()
        if not reason:
            raise InvalidInput("say why there is no address (e.g. “见报：齐齐哈尔日报 2026-11-20 第3版”)")
        out["not_applicable"] = out["note"] = reason
    if by:
        out["recorded_by"] = by
    if at is not None:
        if at.tzinfo is None:
            raise ValueError("recorded_state: 'at' must be time-zone aware")
        out["recorded_at"] = at.isoformat()
    return out


def is_overdue(state: dict[str, Any], now: datetime, overdue_after_hours: float) -> bool:
    since = state.get("waiting_since")
    if not since or state.get("url") or state.get("not_applicable"):
        return False
    return now - datetime.fromisoformat(since) > timedelta(hours=overdue_after_hours)


class _Text(HTMLParser):
    """HTML to plain text that keeps paragraphs and list items apart and names the images."""

    BLOCKS = {
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "li",
        "tr",
        "blockquote",
        "pre",
        "table",
        "ul",
        "ol",
    }

    def __init__(self, image_name) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.image_name = image_name

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.BLOCKS or tag == "br":
            self.out.append("\n")
        if tag == "li":
            self.out.append("• ")
        if tag == "img":
            a = dict(attrs)
            self.out.append(f"[图片：{self.image_name(a.get('src') or '', a.get('alt') or '')}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS:
            self.out.append("\n")
        if tag in ("td", "th"):
            self.out.append("\t")

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def text(self) -> str:
        lines = [" ".join(line.split()) for line in "".join(self.out).splitlines()]
        paragraphs, blank = [], False
        for line in lines:
            if line:
                paragraphs.append(line)
                blank = False
            elif not blank and paragraphs:
                paragraphs.append("")
                blank = True
        return "\n".join(paragraphs).strip()


def render_copy_kit(post: Post, timezone: ZoneInfo = SHANGHAI) -> str:
    """Everything a person needs to post the item by hand, ready to copy: title, summary, text, files."""

    def image_name(src: str, alt: str) -> str:
        if src.startswith("asset://"):
            try:
                return post.asset(src[len("asset://") :]).filename
            except KeyError:
                pass
        return alt or src

    parser = _Text(image_name)
    parser.feed(post.body_html)
    parser.close()
    files = []
    if post.cover is not None:
        files.append(f"  封面：{post.cover.filename}  ({post.cover.path})")
    for a in post.referenced_assets() or list(post.images):
        files.append(f"  图片：{a.filename}  ({a.path})")
    for a in post.attachments:
        files.append(f"  附件：{a.filename}  ({a.path})")
    sections = [
        f"标题：\n{post.title}",
        f"摘要：\n{post.summary}" if post.summary else "",
        f"正文：\n{parser.text()}",
        f"发布单位：{post.department}    发布日期：{post.publish_at.astimezone(timezone):%Y-%m-%d}",
        f"网站原文：{post.site_url}" if post.site_url else "",
        "需要上传的文件：\n" + "\n".join(files) if files else "需要上传的文件：无",
    ]
    return "\n\n".join(s for s in sections if s) + "\n"
