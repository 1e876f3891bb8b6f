"""``publisher demo``: the whole job in this folder, with no credentials.

It starts the sandbox emulator of every channel that ships one (entry-point group
``publisher.sandboxes``), writes sample items, has two different people review them (the
department head, then 保密审查), publishes them to the website and the sandboxes, and prints the
per-channel counts and where to look. The demo's sample items go into the store named by the
settings (``queue.db`` by default) like any others, marked with the 示例 (sample) prefix.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from publisher.app import open_app
from publisher.channel import SandboxHandle, available_sandboxes
from publisher.counting import periods, stats
from publisher.errors import PublisherError
from publisher.models import ChannelKV, ItemStatus
from publisher.pipeline import content, workflow
from publisher.pipeline.notify import open_sender
from publisher.pipeline.worker import Dispatcher, make_worker_id
from publisher.pipeline.workflow import outbox
from publisher.settings import SETTINGS_TEMPLATE, AuthSettings, load_settings

#: a campus account of the CAS sandbox (channels/sandbox/campus.py; the faces do not import the channels)
DEMO_CAMPUS_PASSWORD = "campus-demo-2026"

#: who the demo tells of what waits, over which transport's sandbox (publisher notify set; docs/notify.md)
DEMO_NOTIFY = [
    ("demo.head", "wecom", "wangzhuren"),
    ("demo.secrecy", "dingtalk", "zhangshencha"),
    ("demo.editor", "wecom_app", "libianji"),
]

DEMO_USERS = [
    ("demo.editor", "editor", "校长办公室", "李编辑"),
    ("demo.head", "department_head", "校长办公室", "王主任"),
    ("demo.secrecy", "confidentiality_reviewer", None, "张审查"),
]

SAMPLES: list[dict[str, Any]] = [
    {
        "title": "学校信息公开工作管理办法（修订）",
        "category": "规章制度",
        "checklist_item": 2,
        "body": "## 第一章 总则\n\n第一条 为规范学校信息公开工作，保障师生员工和社会公众的知情权，"
        "根据《高等学校信息公开办法》制定本办法。\n\n第二条 学校信息公开坚持**依法公开、真实准确、"
        "及时便民**的原则。\n\n| 事项 | 责任部门 |\n|---|---|\n| 规章制度 | 校长办公室 |\n| 招生信息 | 招生就业处 |\n",
    },
    {
        "title": "2026年公开招聘专任教师公告",
        "category": "招聘信息",
        "checklist_item": 25,
        "body": "根据工作需要，学校面向社会公开招聘专任教师 **12 名**。\n\n1. 报名时间：12月1日至12月15日\n"
        "2. 报名方式：网上报名\n\n![校园](campus.png)\n",
    },
    {
        "title": "关于2026年寒假放假安排的通知",
        "category": "公告公示",
        "checklist_item": None,
        "body": "各部门、各系部：\n\n根据校历安排，现将寒假放假时间通知如下：学生 1 月 12 日起放假，"
        "2 月 28 日报到注册。\n\n> 请各部门做好放假前安全检查工作。\n",
    },
    {
        "title": "图书馆智慧化改造项目招标公告",
        "category": "招标公告",
        "checklist_item": 18,
        "body": "学校就图书馆智慧化改造项目进行公开招标，欢迎合格的供应商参加投标。\n\n"
        "- 预算金额：人民币 1,280,000.00 元\n"
        "- 投标截止时间：2026年12月20日 09:30（北京时间）\n",
    },
    {
        "title": "我校举办第十二届教职工代表大会",
        "category": "新闻",
        "checklist_item": 3,
        "body": "11月20日，学校第十二届教职工代表大会第三次会议在学术报告厅召开。\n\n![会场](campus.png)\n",
    },
    {
        "title": "2025-2026学年国家奖学金评审结果公示",
        "category": "公告公示",
        "checklist_item": 37,
        "body": "经个人申请、系部推荐、学校评审，拟推荐以下同学获得国家奖学金，现予公示。公示期 5 个工作日。\n\n"
        # an office landline, not a person's mobile: the privacy check passes it, so the demo's
        # 保密审查 approval goes through (a mobile here would stop it until masked or cleared)
        "联系电话：0452-2712345（学生资助管理中心）\n",
        # a 公示 comes down by itself when its period ends (an end time here, not working days: a
        # count reaching a year the installed chinese-calendar does not know would refuse the item)
        "display_days": 7,
    },
]


def _sample_image(path: Path) -> None:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (1600, 900), (18, 78, 140))
    d = ImageDraw.Draw(im)
    for i in range(0, 900, 6):
        d.line([(0, i), (1600, i)], fill=(18 + i // 12, 78 + i // 20, 140))
    d.rectangle([200, 500, 1400, 820], fill=(236, 232, 220))
    for x in range(260, 1400, 160):
        d.rectangle([x, 560, x + 90, 700], fill=(120, 40, 40))
    d.polygon([(150, 500), (800, 250), (1450, 500)], fill=(160, 50, 45))
    im.save(path)


def run_demo(settings_path: Path | None, *, items: int = 6, console: Console | None = None) -> None:
    console = console or Console()
    path = settings_path or Path("settings.toml")
    if not path.exists():
        path.write_text(SETTINGS_TEMPLATE, encoding="utf-8")
        console.print(f"wrote {path}")
    base = load_settings(path)
    folder = base.base_dir
    handles: list[tuple[str, SandboxHandle]] = []
    auth: dict[str, Any] = {}
    try:
        channels: dict[str, dict[str, Any]] = {
            name: table for name, table in base.channels.items() if table.get("type", name) == "website"
        } or {"website": {"type": "website", "folder": "site", "title": "信息公开网"}}
        transports: dict[str, dict[str, Any]] = {}
        cdn: dict[str, Any] = {}
        for name, start in sorted(available_sandboxes().items()):
            try:
                h = start(folder / "sandbox")
            except Exception as exc:  # one sandbox that cannot start must not spoil the demo
                console.print(f"sandbox {name} did not start: {exc}", style="yellow")
                continue
            handles.append((name, h))
            os.environ.update(h.environ)
            if h.config:
                channels[name] = h.config
            auth.update(h.auth)
            transports.update(h.notify)  # the 企业微信 robot and corp app, the 钉钉 robot (docs/notify.md)
            cdn.update(h.cdn)
        if cdn:  # each website without a CDN of its own purges through the CDN's sandbox
            channels = {
                name: {**table, "cdn": cdn} if table.get("type", name) == "website" and not table.get("cdn") else table
                for name, table in channels.items()
            }
        notify = base.notify.model_copy(update={"transports": {**base.notify.transports, **transports}})
        settings = base.model_copy(
            update={
                "channels": channels,
                "auth": AuthSettings.model_validate({**base.auth.model_dump(), **auth}),
                "notify": notify,
            }
        )
        settings.source = base.source
        app = open_app(settings, run_migrations=True)
        # every sandbox starts empty, so what the channels cached from the last demo (tokens, uploaded
        # images, CMS category ids) names things the new sandboxes never issued: a second demo in the
        # same folder failed on the CMS (invalid term id) and WeChat
        with app.engine.begin() as conn:
            kv = ChannelKV.__table__
            for name, _ in handles:
                conn.execute(sa.delete(kv).where(kv.c.key.startswith(f"{name}:", autoescape=True)))
        console.print(f"store: {app.engine.url.render_as_string()}   channels: {', '.join(app.channels)}")
        with app.session() as s:
            for d in settings.departments:
                workflow.add_department(s, d)
            for name, role, dept, display in DEMO_USERS:
                try:
                    workflow.get_user(s, name)
                except PublisherError:
                    workflow.add_user(s, name=name, role=role, department=dept, display_name=display)
            for name, transport, address in DEMO_NOTIFY:
                if transport in settings.notify.transports:
                    known = settings.notify.transports
                    outbox.set_pref(s, user=name, transport=transport, address=address, known=known, actor="demo")
        work = folder / "sandbox" / "demo-items"
        work.mkdir(parents=True, exist_ok=True)
        _sample_image(work / "campus.png")
        ids = []
        stamp = datetime.now(settings.zone).strftime("%H%M%S")
        for n in range(items):
            sample = SAMPLES[n % len(SAMPLES)]
            md = work / f"item-{n}.md"
            fm = {
                "title": f"示例 {sample['title']}" + (f"（{n // len(SAMPLES) + 1}）" if n >= len(SAMPLES) else ""),
                "category": sample["category"],
                "department": "校长办公室",
                "channels": list(app.channels),
                "summary": content.plain_text(sample["body"], 80),
                "cover": "campus.png",
                "cover_alt": "校园一角",  # a cover needs its alt text at submit
            }
            if sample["checklist_item"]:
                fm["checklist_item"] = sample["checklist_item"]
            if sample.get("display_days"):
                until = datetime.now(settings.zone).replace(hour=17, minute=0, second=0, microsecond=0)
                fm["display_until"] = (until + timedelta(days=sample["display_days"])).isoformat()
            import yaml

            md.write_text("---\n" + yaml.safe_dump(fm, allow_unicode=True) + "---\n" + sample["body"], encoding="utf-8")
            with app.session() as s:
                draft = content.read_item_file(
                    md,
                    media_dir=settings.media_dir,
                    max_body_bytes=settings.review.max_body_bytes,
                    max_asset_bytes=settings.review.max_asset_bytes,
                )
                author = workflow.get_user(s, "demo.editor")
                item = workflow.create_item(app.ctx, s, author=author, draft=draft, idempotency_key=f"demo-{stamp}-{n}")
                workflow.submit(app.ctx, s, item_id=item.id, actor=author)
                ids.append(item.id)
            console.print(f"  written  {item.id}: {item.title}")
        for item_id in ids:
            with app.session() as s:
                workflow.review(app.ctx, s, item_id=item_id, actor=workflow.get_user(s, "demo.head"), approve=True)
            with app.session() as s:
                it = workflow.review(
                    app.ctx,
                    s,
                    item_id=item_id,
                    actor=workflow.get_user(s, "demo.secrecy"),
                    approve=True,
                    reason="保密审查通过",
                )
                workflow.schedule(app.ctx, s, item_id=item_id, at=datetime.now(settings.zone), actor="demo.editor")
            console.print(f"  approved {item_id} by 王主任 (department head) and 张审查 (保密审查): {it.status}")
        console.print("delivering…")
        summary = Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True, horizon=timedelta(seconds=30))
        console.print("  " + ", ".join(f"{k}: {v}" for k, v in sorted(summary.outcomes.items())))
        sender = open_sender(app.engine, settings, make_worker_id())
        if sender is not None:  # what 王主任, 张审查 and 李编辑 were told, through the transports' sandboxes
            told = sender.run(once=True)
            sender.close()
            console.print("notifications: " + (", ".join(f"{k}: {v}" for k, v in sorted(told.items())) or "none"))
        with app.session() as s:
            states = [workflow.get_item(s, i).status for i in ids]
        published = sum(1 for st in states if st == ItemStatus.PUBLISHED)
        start, end = periods.period(None, None, settings.zone)
        rows = stats.counts(app.engine, stats.StatsQuery(start=start, end=end, by=("channel",), tz=settings.zone))
        t = Table(
            "channel",
            "published",
            "items",
            "failed",
            "pending",
            title="per-channel counts this year",
        )
        for r in rows:
            t.add_row(str(r["channel"]), str(r["published"]), str(r["items"]), str(r["failed"]), str(r["pending"]))
        console.print(t)
        console.print(f"{published} of {len(ids)} sample items published on every channel.")
        site = next(
            (
                app.settings.path(sp.channel.config.folder)
                for sp in app.channels.values()
                if getattr(sp.channel.config, "folder", None)
            ),
            None,
        )
        console.print("Where to look:")
        if site:
            console.print(
                f"  the website:      {site / 'index.html'}  (or `publisher serve`, then {settings.site_base_url})"
            )
        for name, h in handles:
            if h.describe:
                console.print(f"  {name + ':':<17} {h.describe}")
        with app.session() as s:
            for line in campus_sign_in(settings.auth, s):
                console.print(line)
        console.print("  one item:         publisher item show " + str(ids[0]))
        console.print("  the counts:       publisher stats --by channel,category,department,month")
        console.print("  公示期 ending:     publisher item list --expiring")
        app.close()
    finally:
        for _, h in handles:
            with contextlib.suppress(Exception):  # stopping a sandbox at exit: nothing to do about a failure
                h.stop()


def campus_sign_in(auth: AuthSettings, session: Any) -> list[str]:
    """Sign the demo's campus account in through the CAS sandbox, as a browser would: the log-in form, the
    redirect with a service ticket, ``p3/serviceValidate``, the attribute mapping (docs/auth.md)."""
    import requests

    from publisher.sso import cas, mapping

    if auth.cas is None:
        return []
    client = cas.CasClient(auth.cas)
    r = requests.post(
        auth.cas.server_url + "/login",
        data={"username": "zhang.san", "password": DEMO_CAMPUS_PASSWORD, "service": client.service},
        allow_redirects=False,
        timeout=10,
    )
    ticket = r.headers.get("Location", "").partition("ticket=")[2]
    try:
        cas.burn(session, ticket)
        user = mapping.sign_in_user(session, client.validate(ticket), auth.mapping)
    except PublisherError as exc:
        return [f"  campus sign-in:   refused: {exc}"]
    return [
        f"  campus sign-in:   zhang.san signed in through CAS as {user.display_name} ({user.role}, "
        f'{user.department or "no department"}); for the browser, see docs/auth.md ("Try it")'
    ]
