"""The website channel writing a real site folder (and serving it over HTTP where a test needs it)."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from channels.website import WebsiteChannel, WebsiteConfig, category_slug
from publisher.channel import (
    Asset,
    PermanentChannelError,
    Published,
    TransientChannelError,
    site_page_path,
    validate_channel_config,
)
from publisher.errors import ConfigError
from publisher.testing import make_ctx, make_env, make_post

BASE = "https://xxgk.example.edu.cn/"
ATOM = "{http://www.w3.org/2005/Atom}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


@pytest.fixture
def channel(tmp_path):
    return WebsiteChannel("website", WebsiteConfig(title="示例大学信息公开网", base_url=BASE), make_env(tmp_path))


def site(ch: WebsiteChannel) -> Path:
    return ch.folder


def read(ch: WebsiteChannel, rel: str) -> str:
    return (ch.folder / rel).read_text("utf-8")


def asset_from(path: Path, content_type: str, role: str = "image", filename: str | None = None) -> Asset:
    data = path.read_bytes()
    return Asset(
        sha256=hashlib.sha256(data).hexdigest(),
        path=path,
        filename=filename or path.name,
        content_type=content_type,
        role=role,
    )


def sitemap_locs(folder: Path) -> list[str]:
    """Every URL the sitemap index leads to (each file checked to be a sitemap in the index)."""
    index = ET.fromstring((folder / "sitemap.xml").read_bytes())
    assert index.tag == f"{SITEMAP}sitemapindex"
    locs = []
    for part in index.findall(f"{SITEMAP}sitemap"):
        url = part.find(f"{SITEMAP}loc").text
        assert url.startswith(BASE)
        urlset = ET.fromstring((folder / url[len(BASE) :]).read_bytes())
        assert urlset.tag == f"{SITEMAP}urlset"
        locs += [u.find(f"{SITEMAP}loc").text for u in urlset.findall(f"{SITEMAP}url")]
    return locs


def jpeg_with_exif(path: Path, size=(4000, 1000), orientation=6) -> Path:
    im = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS 5D (serial 1234567)"
    im.save(path, "JPEG", exif=exif.tobytes(), comment=b"taken at home")
    return path


# --------------------------------------------------------------------------------------------- pages
def test_publish_writes_page_indexes_feed_and_sitemap(channel):
    shanghai_next_day = datetime(2026, 1, 4, 18, 30, tzinfo=UTC)  # 2026-01-05 02:30 in Asia/Shanghai
    posts = [
        make_post(
            1,
            title="2025年度信息公开工作报告",
            category="基本信息",
            checklist_item=1,
            checklist_name="办学规模等办学基本情况",
            publish_at=shanghai_next_day,
            updated_at=shanghai_next_day,
        ),
        make_post(
            2,
            title="2026年本科招生章程",
            category="招生考试信息",
            department="招生办公室",
            publish_at=shanghai_next_day + timedelta(days=1),
            updated_at=shanghai_next_day + timedelta(days=1),
        ),
        make_post(
            3,
            title="学校章程",
            category="基本信息",
            checklist_item=2,
            checklist_name="学校章程及制定的各项规章制度",
            publish_at=shanghai_next_day + timedelta(days=2),
            updated_at=shanghai_next_day + timedelta(days=3),
        ),
    ]
    for p in posts:
        out = channel.publish(p, make_ctx(p.item_id))
        assert out == Published(url=BASE + site_page_path(p.item_id), remote_id=str(p.item_id))

    page = read(channel, "items/1.html")
    assert '<html lang="zh-CN">' in page
    assert "<h1>2025年度信息公开工作报告</h1>" in page
    assert "校长办公室" in page and "基本信息" in page
    assert "2026-01-05" in page  # shown in Asia/Shanghai, not UTC
    assert "第1项 办学规模等办学基本情况" in page
    assert 'href="../style.css"' in page
    # the one script is the site's own large-text switch (大字模式), a file beside style.css
    assert page.count("<script") == 1 and '<script src="../textsize.js"></script>' in page
    assert "localStorage" in read(channel, "textsize.js")
    assert "更新日期" in read(channel, "items/3.html")

    index = read(channel, "index.html")
    titles = re.findall(r'<a href="items/(\d+)\.html">', index)
    assert titles == ["3", "2", "1"]  # latest first
    assert "基本信息" in index and "（2）" in index

    basic = read(channel, f"categories/{category_slug('基本信息')}.html")
    assert re.findall(r'href="\.\./items/(\d+)\.html"', basic) == ["3", "1"]
    assert "2026年本科招生章程" not in basic
    checklist = read(channel, "checklist/2.html")
    assert "学校章程及制定的各项规章制度" in checklist and "items/3.html" in checklist

    feed = ET.fromstring((site(channel) / "feed.xml").read_bytes())
    assert feed.tag == f"{ATOM}feed"
    rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
    assert rfc3339.match(feed.find(f"{ATOM}updated").text)
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == [
        "学校章程",
        "2026年本科招生章程",
        "2025年度信息公开工作报告",
    ]
    ids = [e.find(f"{ATOM}id").text for e in entries]
    assert len(set(ids)) == 3 and all(i.startswith(BASE) for i in ids)
    for e in entries:
        assert rfc3339.match(e.find(f"{ATOM}updated").text)
        assert e.find(f"{ATOM}link").get("href").startswith(BASE + "items/")
    assert feed.find(f"{ATOM}updated").text == "2026-01-07T18:30:00Z"

    locs = set(sitemap_locs(site(channel)))
    assert locs == {
        BASE + "index.html",
        BASE + "items/1.html",
        BASE + "items/2.html",
        BASE + "items/3.html",
        BASE + f"categories/{category_slug('基本信息')}.html",
        BASE + f"categories/{category_slug('招生考试信息')}.html",
        BASE + "checklist/1.html",
        BASE + "checklist/2.html",
    }

    manifest = list(channel.manifest().values())
    assert [e["item_id"] for e in manifest] == [1, 2, 3]
    first = manifest[0]
    for key in (
        "item_id",
        "title",
        "summary",
        "category",
        "department",
        "checklist_item",
        "checklist_name",
        "published_at",
        "updated_at",
        "path",
    ):
        assert key in first
    assert first["published_at"] == "2026-01-04T18:30:00+00:00"
    assert first["path"] == "items/1.html"


def test_every_file_is_written_atomically_and_readable(channel):
    for i in range(1, 4):
        channel.publish(make_post(i), make_ctx(i))
    channel.withdraw(make_post(2), make_ctx(2))
    for path in site(channel).rglob("*"):
        assert not path.name.startswith(".tmp-"), path
        if path.is_file() and path.name != ".lock":
            assert path.stat().st_mode & 0o044 == 0o044, f"{path} is not world-readable"


def test_publishing_again_is_idempotent(channel):
    channel.publish(make_post(1), make_ctx(1))
    channel.publish(make_post(1), make_ctx(1, attempt=2))
    channel.publish(make_post(1), make_ctx(2))
    assert list(channel.manifest()) == ["1"]
    assert read(channel, "index.html").count('href="items/1.html"') == 1
    assert len(ET.fromstring((site(channel) / "feed.xml").read_bytes()).findall(f"{ATOM}entry")) == 1


def test_update_rewrites_and_an_older_version_never_wins(channel):
    channel.publish(make_post(1, title="旧标题", category="旧类别"), make_ctx(1))
    out = channel.update(make_post(1, title="新标题", category="新类别", version=2), make_ctx(1))
    assert out.url == BASE + "items/1.html"
    assert "<h1>新标题</h1>" in read(channel, "items/1.html")
    assert "新标题" in read(channel, "index.html") and "旧标题" not in read(channel, "index.html")
    # the old category lost its only item: its listing goes too
    assert not (site(channel) / f"categories/{category_slug('旧类别')}.html").exists()
    assert (site(channel) / f"categories/{category_slug('新类别')}.html").exists()
    # a late retry of version 1 must not bring the old title back
    channel.publish(make_post(1, title="旧标题", category="旧类别"), make_ctx(1, attempt=3))
    assert "<h1>新标题</h1>" in read(channel, "items/1.html")


def test_withdraw_removes_page_and_index_entries(channel, tmp_path):
    img = asset_from(jpeg_with_exif(tmp_path / "photo.jpg", size=(300, 200), orientation=1), "image/jpeg")
    keep = make_post(1, title="保留的通知", checklist_item=5, checklist_name="事项五")
    gone = make_post(
        2,
        title="撤回的通知",
        category="唯一类别",
        checklist_item=6,
        checklist_name="事项六",
        body_html=f'<p><img src="{img.ref}" alt="照片"></p>',
        assets=(img,),
    )
    channel.publish(keep, make_ctx(1))
    channel.publish(gone, make_ctx(2))
    media = list((site(channel) / "media").iterdir())
    assert len(media) == 1

    channel.withdraw(gone, make_ctx(2))

    assert not (site(channel) / "items/2.html").exists()
    assert list(channel.manifest()) == ["1"]
    for rel in ("index.html", "feed.xml", "sitemap.xml", f"categories/{category_slug('公告公示')}.html"):
        text = read(channel, rel)
        assert "撤回的通知" not in text and "items/2.html" not in text, rel
    assert not (site(channel) / f"categories/{category_slug('唯一类别')}.html").exists()
    assert not (site(channel) / "checklist/6.html").exists()
    assert (site(channel) / "checklist/5.html").exists()
    assert not media[0].exists(), "a withdrawn item's image must not stay online"
    # withdrawing again is harmless
    channel.withdraw(gone, make_ctx(2))
    assert list(channel.manifest()) == ["1"]


# ------------------------------------------------------------------------------------------ safety
PAYLOADS = [
    "<script>alert(1)</script>",
    '"><script>alert(2)</script>',
    "<img src=x onerror=alert(3)>",
    "javascript:alert(4)",
]


def test_no_script_reaches_any_page(channel):
    evil_body = (
        "<p>正文<script>alert('body')</script></p>"
        '<img src="x" onerror="alert(5)"><a href="javascript:alert(6)">链接</a>'
        '<a href="JaVaScRiPt:alert(7)">2</a><svg onload="alert(8)"></svg>'
        '<iframe src="https://evil.example/"></iframe><p style="background:url(javascript:alert(9))">x</p>'
        '<a href="data:text/html,<script>alert(10)</script>">d</a>'
    )
    for i, payload in enumerate(PAYLOADS, start=1):
        channel.publish(
            make_post(
                i,
                title=payload,
                summary=payload,
                category=payload,
                department=payload,
                checklist_item=i,
                checklist_name=payload,
                body_html=evil_body,
            ),
            make_ctx(i),
        )
    pages = [p for p in site(channel).rglob("*.html")]
    assert len(pages) > 8
    for path in pages:
        problems = _active_content(path.read_text("utf-8"))
        assert not problems, (path, problems)
        # escaped payload text is inert, and there is no raw tag anywhere but the site's own script
        assert path.read_text("utf-8").lower().count("<script") == (2 if path.name == "search.html" else 1), path
    # and the feed still parses: the payloads are text in it
    feed = ET.fromstring((site(channel) / "feed.xml").read_bytes())
    assert {e.find(f"{ATOM}title").text for e in feed.findall(f"{ATOM}entry")} == set(PAYLOADS)


class _Scanner(HTMLParser):
    """Everything in a page that a browser would run: script tags, on* handlers, javascript: URLs.

    Only the site's own scripts (``textsize.js``; ``search.js`` on the search page) and its search box
    (a GET form to its own ``search.html``) are expected."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "script" and len(attrs) == 1 and re.fullmatch(r"src=(\.\./)*textsize\.js", "=".join(attrs[0])):
            return
        if tag == "script" and attrs == [("src", "search.js"), ("defer", None)]:
            return
        if tag == "form" and re.fullmatch(r"(\.\./)*search\.html", dict(attrs).get("action") or ""):
            return
        if tag in ("script", "iframe", "svg", "object", "embed", "form"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            if name in ("href", "src", "action", "style") and ("javascript:" in value or value.startswith("data:text")):
                self.found.append(f"{tag} {name}={value}")


def _active_content(html: str) -> list[str]:
    scanner = _Scanner()
    scanner.feed(html)
    return scanner.found


# ------------------------------------------------------------------------------------------ images
def test_images_are_upright_resized_and_stripped(tmp_path):
    ch = WebsiteChannel("website", WebsiteConfig(base_url=BASE, image_max_width=800), make_env(tmp_path))
    rotated = asset_from(jpeg_with_exif(tmp_path / "rotated.jpg", size=(1600, 400), orientation=6), "image/jpeg")
    wide = asset_from(jpeg_with_exif(tmp_path / "wide.jpg", size=(2400, 600), orientation=1), "image/jpeg")
    info = PngInfo()
    info.add_text("Author", "张三 13800000000")
    Image.new("RGBA", (1000, 500), (0, 0, 255, 128)).save(tmp_path / "chart.png", pnginfo=info)
    png = asset_from(tmp_path / "chart.png", "image/png")
    body = "".join(f'<p><img src="{a.ref}" alt="图{i}"></p>' for i, a in enumerate((rotated, wide, png)))
    ch.publish(make_post(1, body_html=body, assets=(rotated, wide, png)), make_ctx(1))

    media = site(ch) / "media"
    out_rot = media / f"{rotated.sha256}-800.jpg"
    out_wide = media / f"{wide.sha256}-800.jpg"
    out_png = media / f"{png.sha256}-800.png"
    with Image.open(out_rot) as im:
        assert im.size == (400, 1600)  # orientation 6 applied; narrow enough to keep its size
        assert len(im.getexif()) == 0
        assert "exif" not in im.info and "comment" not in im.info
    with Image.open(out_wide) as im:
        assert im.size == (800, 200)
        assert len(im.getexif()) == 0
    with Image.open(out_png) as im:
        assert im.size == (800, 400) and im.mode == "RGBA"
        assert "Author" not in im.info
    page = read(ch, "items/1.html")
    assert f'src="../media/{rotated.sha256}-800.jpg"' in page
    assert "asset://" not in page

    # never processed twice: the second publish finds the files and leaves them alone
    before = {p.name: p.stat().st_mtime_ns for p in media.iterdir()}
    ch.publish(make_post(2, body_html=body, assets=(rotated, wide, png)), make_ctx(2))
    assert {p.name: p.stat().st_mtime_ns for p in media.iterdir()} == before


def test_attachments_are_download_links(channel, tmp_path):
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4 fake report\n" * 100)
    att = asset_from(pdf, "application/pdf", role="attachment", filename="2025年度信息公开工作报告.pdf")
    channel.publish(make_post(1, assets=(att,)), make_ctx(1))
    page = read(channel, "items/1.html")
    assert f'href="../files/{att.sha256}.pdf" download="2025年度信息公开工作报告.pdf"' in page
    assert (site(channel) / f"files/{att.sha256}.pdf").read_bytes() == pdf.read_bytes()


# ------------------------------------------------------------------------------------- concurrency
def test_eight_threads_keep_one_consistent_manifest(tmp_path):
    env = make_env(tmp_path)
    errors = []

    def work(t):
        ch = WebsiteChannel("website", WebsiteConfig(base_url=BASE), env)  # one instance per worker
        try:
            for i in range(5):
                ch.publish(make_post(t * 5 + i + 1, category=f"类别{i % 3}"), make_ctx(t * 5 + i + 1))
                ch.publish(make_post(100, title="每个线程都发布的通知"), make_ctx(100))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _assert_consistent(WebsiteChannel("website", WebsiteConfig(base_url=BASE), env), set(range(1, 41)) | {100})


WORKER = """
import sys, threading
from channels.website import WebsiteChannel, WebsiteConfig
from publisher.testing import make_env, make_ctx, make_post
folder, first = sys.argv[1], int(sys.argv[2])
ch = WebsiteChannel("website", WebsiteConfig(base_url="https://xxgk.example.edu.cn/"), make_env(folder))
def work(offset):
    for i in range(4):
        ch.publish(make_post(first + offset + i), make_ctx(first + offset + i))
        ch.publish(make_post(999, title="共享的通知"), make_ctx(999))
threads = [threading.Thread(target=work, args=(o,)) for o in (0, 4)]
[t.start() for t in threads]
[t.join() for t in threads]
"""


def test_processes_and_threads_keep_one_consistent_manifest(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(first)], stderr=subprocess.PIPE)
        for first in (1, 101, 201)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    expected = {f + o + i for f in (1, 101, 201) for o in (0, 4) for i in range(4)} | {999}
    _assert_consistent(WebsiteChannel("website", WebsiteConfig(base_url=BASE), make_env(tmp_path)), expected)


def _assert_consistent(ch: WebsiteChannel, expected: set[int]) -> None:
    manifest = ch.manifest()
    assert {int(k) for k in manifest} == expected
    pages = {int(p.stem) for p in (ch.folder / "items").glob("*.html")}
    assert pages == expected
    feed = ET.fromstring((ch.folder / "feed.xml").read_bytes())
    ids = [e.find(f"{ATOM}id").text for e in feed.findall(f"{ATOM}entry")]
    assert len(ids) == len(set(ids)) == min(len(expected), 50)
    item_locs = [u for u in sitemap_locs(ch.folder) if "/items/" in u]
    assert sorted(item_locs) == sorted(BASE + site_page_path(i) for i in expected)
    listed = 0
    for page in (ch.folder / "categories").glob("*.html"):
        hrefs = re.findall(r'href="\.\./items/(\d+)\.html"', page.read_text("utf-8"))
        assert len(hrefs) == len(set(hrefs))
        listed += len(hrefs)
    assert listed == len(expected)
    assert not [p for p in ch.folder.rglob(".tmp-*")]


# ------------------------------------------------------------------------------------------- checks
def test_check_url_for_files(tmp_path):
    folder = tmp_path / "site"
    ch = WebsiteChannel(
        "website", WebsiteConfig(folder=str(folder), base_url=folder.as_uri() + "/"), make_env(tmp_path)
    )
    out = ch.publish(make_post(1), make_ctx(1))
    assert out.url == folder.as_uri() + "/items/1.html"
    assert ch.check_url(out.url).ok
    ch.withdraw(make_post(1), make_ctx(1))
    status = ch.check_url(out.url)
    assert not status.ok and "does not exist" in status.reason


def test_check_url_over_http(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        ch = WebsiteChannel("website", WebsiteConfig(folder=str(folder), base_url=base), make_env(tmp_path))
        out = ch.publish(make_post(1), make_ctx(1))
        status = ch.check_url(out.url)
        assert status.ok and status.status == 200
        ch.withdraw(make_post(1), make_ctx(1))
        status = ch.check_url(out.url)
        assert not status.ok and status.status == 404
    finally:
        server.shutdown()
        server.server_close()
    # the server stopped (the usual case after `publisher demo` without `publisher serve`): the page
    # is not known to be gone, and saying so would make the weekly sync mark every page taken down
    with pytest.raises(TransientChannelError, match="no answer from 127.0.0.1"):
        ch.check_url(out.url)


def test_validate_finds_what_an_editor_must_fix(channel, tmp_path):
    assert channel.validate(make_post(1)) == []
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    bad_img = Asset(sha256="a" * 64, path=broken, filename="broken.jpg", content_type="image/jpeg")
    missing = Asset(
        sha256="b" * 64,
        path=tmp_path / "nope.pdf",
        filename="nope.pdf",
        content_type="application/pdf",
        role="attachment",
    )
    problems = channel.validate(
        make_post(1, title="  ", assets=(bad_img, missing), body_html=f'<img src="asset://{"c" * 64}">')
    )
    text = "\n".join(problems)
    assert "title is empty" in text
    assert "broken.jpg" in text and "cannot be read" in text
    assert "nope.pdf" in text and "missing" in text
    assert "asset://ccccccccc" in text
    assert not site(channel).exists(), "validate must not write anything"


def test_disk_errors_are_classified_and_leave_the_site_intact(channel):
    channel.publish(make_post(1), make_ctx(1))
    channel.inject_os_error(errno.ENOSPC)
    with pytest.raises(TransientChannelError, match="No space left"):
        channel.publish(make_post(2), make_ctx(2))
    channel.inject_os_error(errno.EACCES)
    with pytest.raises(PermanentChannelError, match="Permission denied") as info:
        channel.withdraw(make_post(1), make_ctx(1))
    assert info.value.code == "EACCES"
    assert list(channel.manifest()) == ["1"]
    channel.publish(make_post(2), make_ctx(2))
    assert sorted(channel.manifest()) == ["1", "2"]


def test_corrupt_image_at_publish_is_permanent(channel, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    asset = asset_from(broken, "image/png")
    with pytest.raises(PermanentChannelError, match="broken.png"):
        channel.publish(make_post(1, body_html=f'<img src="{asset.ref}">', assets=(asset,)), make_ctx(1))


def test_rebuild_and_listing(channel):
    for i in range(1, 4):
        channel.publish(make_post(i), make_ctx(i))
    (site(channel) / "index.html").unlink()
    (site(channel) / "categories" / "cstale.html").write_text("left over")
    assert channel.rebuild() == 3
    assert (site(channel) / "index.html").exists()
    assert not (site(channel) / "categories" / "cstale.html").exists()
    found = channel.list_publications()
    assert sorted(p.remote_id for p in found) == ["1", "2", "3"]
    assert found[0].url.startswith(BASE)


def test_config_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="image_max_width"):
        validate_channel_config(WebsiteChannel, "website", {"image_max_width": 0})
    with pytest.raises(ConfigError, match="folders"):
        validate_channel_config(WebsiteChannel, "website", {"folders": "x"})
    ch = WebsiteChannel("website", WebsiteConfig(), make_env(tmp_path, site_base_url="http://h/site"))
    assert ch.folder == tmp_path / "site"
    assert ch.page_url(3) == "http://h/site/items/3.html"
    assert ch.check_health().ok


def test_contract_harness(tmp_path):
    from tests.channels.contract_website import make_harness

    h = make_harness(tmp_path)
    try:
        out = h.channel.publish(make_post(1), make_ctx(1))
        assert h.live_count() == 1
        assert "寒假" in h.remote_text(out.remote_id)
        h.inject("transient")
        with pytest.raises(TransientChannelError):
            h.channel.publish(make_post(2), make_ctx(2))
        h.inject("permanent")
        with pytest.raises(PermanentChannelError):
            h.channel.publish(make_post(2), make_ctx(2))
        h.channel.withdraw(make_post(1), make_ctx(1))
        assert h.live_count() == 0
    finally:
        h.close()


def test_png_output_is_a_real_image(channel, tmp_path):
    """A BMP upload (no web format) is re-encoded as PNG under the configured width."""
    buf = io.BytesIO()
    Image.new("RGB", (50, 40), (1, 2, 3)).save(buf, "BMP")
    (tmp_path / "scan.bmp").write_bytes(buf.getvalue())
    asset = asset_from(tmp_path / "scan.bmp", "image/bmp")
    channel.publish(make_post(1, body_html=f'<img src="{asset.ref}">', assets=(asset,)), make_ctx(1))
    with Image.open(site(channel) / f"media/{asset.sha256}-1200.png") as im:
        assert im.format == "PNG" and im.size == (50, 40)


def test_files_on_disk_match_env_folder(tmp_path):
    ch = WebsiteChannel("website", WebsiteConfig(folder="public/site"), make_env(tmp_path))
    ch.publish(make_post(1), make_ctx(1))
    assert (tmp_path / "public/site/items/1.html").is_file()
    assert os.path.exists(tmp_path / "public/site/.site.sqlite3")


def test_directory_follows_the_checklist_order(channel):
    for i, cat in enumerate(["其他", "自定义栏目", "财务、资产及收费信息", "基本信息"], start=1):
        channel.publish(make_post(i, category=cat), make_ctx(i))
    index = read(channel, "index.html")
    directory = index[index.index('id="directory"') :]
    names = re.findall(r'<a href="categories/c[0-9a-f]+\.html">([^<]+)</a>', directory)
    assert names == ["基本信息", "财务、资产及收费信息", "自定义栏目", "其他"]
