"""The static information-disclosure website (信息公开网), generated from published posts.

A channel only ever sees the post it is asked to publish, but the site's index pages list every
published item. So the site folder carries a manifest (``_manifest.json``) of what is live, and each
publish, update or withdraw rewrites the one item page, the manifest and the index pages that list the
item, all under an inter-process lock (``fcntl.flock`` on ``.lock``) because several worker threads and
processes publish at once. Every file is written to a temporary file in the same folder, fsynced and
``os.replace``-d, so a web server never serves half a page and a crash never leaves one behind.

Layout of the site folder::

    index.html                 latest items, the category directory and the checklist directory
    items/<id>.html            one page per item (publisher.channel.site_page_path)
    categories/<slug>.html     one index per category (slug: a short hash of the Chinese name)
    checklist/<n>.html         one index per item of the 50-item disclosure checklist
    feed.xml  sitemap.xml      Atom feed of the latest items; sitemap of every page
    media/<sha256>-<w>.<ext>   images, EXIF orientation applied, metadata stripped, at most w pixels wide
    files/<sha256><.ext>       attachments, byte for byte
    style.css  _manifest.json  .lock

Only the post body is HTML; it was sanitised by the core and is sanitised again here with nh3 as
defence in depth. Everything else goes through Jinja2's autoescape or ElementTree.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname
from xml.sax.saxutils import escape as _x
from xml.sax.saxutils import quoteattr as _a

import jinja2
import nh3
from markupsafe import Markup
from PIL import Image, ImageOps
from pydantic import Field

from publisher.channel import (
    Asset,
    Channel,
    ChannelConfig,
    ChannelEnv,
    DeliveryContext,
    HealthReport,
    LinkStatus,
    PermanentChannelError,
    Post,
    Published,
    RemotePublication,
    TransientChannelError,
    site_page_path,
)

MANIFEST = "_manifest.json"
LOCK = ".lock"
TMP_PREFIX = ".tmp-"
#: how many items the home page and the Atom feed list
LATEST = 50
ATOM_NS = "http://www.w3.org/2005/Atom"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"

#: the categories of the disclosure checklist (../shared/domain/checklist.toml) in its order; the
#: directory lists them first, then any others by name, and 其他 (other) last
_CATEGORY_ORDER = {
    name: i
    for i, name in enumerate(
        (
            "基本信息",
            "招生考试信息",
            "财务、资产及收费信息",
            "人事师资信息",
            "教学质量信息",
            "学生管理服务信息",
            "学风建设信息",
            "学位、学科信息",
            "对外交流与合作信息",
        )
    )
}


def _category_key(name: str) -> tuple[int, str]:
    return (1000 if name == "其他" else _CATEGORY_ORDER.get(name, 100), name)


#: file-system failures worth retrying; anything else (EACCES, EROFS, ENOTDIR...) needs a person
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EIO,
        errno.EAGAIN,
        errno.EBUSY,
        errno.EINTR,
        errno.ENOLCK,
        errno.ETIMEDOUT,
        errno.ESTALE,
    }
)

#: image content type -> (Pillow format, file extension); anything else is re-encoded as PNG
_IMAGE_FORMATS = {
    "image/jpeg": ("JPEG", "jpg"),
    "image/jpg": ("JPEG", "jpg"),
    "image/png": ("PNG", "png"),
    "image/gif": ("GIF", "gif"),
    "image/webp": ("WEBP", "webp"),
}


class WebsiteConfig(ChannelConfig):
    #: the site folder; relative paths are under the office's folder (settings' data_dir)
    folder: str = "site"
    title: str = "信息公开网"
    #: the URL the folder is served at; default: the core's site_base_url
    base_url: str | None = None
    image_max_width: int = Field(default=1200, ge=16, le=10000)


# ------------------------------------------------------------------------------------------ helpers
def atomic_write(path: Path, data: bytes | str, *, sync_dir: bool = True) -> None:
    """Write ``path`` so readers see either the old file or the whole new one, never a part."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            # mkstemp makes 0600 files; the web server must be able to read the site
            os.fchmod(fh.fileno(), 0o644)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir:
        _fsync_dir(path.parent)


def _atomic_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1024 * 1024)
            out.flush()
            os.fchmod(out.fileno(), 0o644)
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(dest.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a crash right after must not bring the old file back)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Batch:
    """The writes of one commit: unchanged files are left alone (no needless fsync), and each
    directory is fsynced once at the end instead of after every rename."""

    def __init__(self) -> None:
        self.dirs: set[Path] = set()

    def write(self, path: Path, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        try:
            if path.read_bytes() == data:
                return
        except FileNotFoundError:
            pass
        atomic_write(path, data, sync_dir=False)
        self.dirs.add(path.parent)

    def unlink(self, path: Path) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        self.dirs.add(path.parent)

    def sync(self) -> None:
        for folder in sorted(self.dirs):
            _fsync_dir(folder)


def category_slug(name: str) -> str:
    """A stable ASCII file name for a (Chinese) category name."""
    return "c" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def _rfc3339(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _human_size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


_SUFFIX_RE = re.compile(r"^\.[a-z0-9]{1,10}$")


def _attachment_name(asset: Asset) -> str:
    suffix = Path(asset.filename).suffix.lower()
    return f"files/{asset.sha256}{suffix if _SUFFIX_RE.match(suffix) else ''}"


def _is_image(asset: Asset) -> bool:
    return asset.role != "attachment" and asset.content_type.lower().startswith("image/")


# ------------------------------------------------------------------------------------------ sanitiser
_CLEANER = nh3.Cleaner(
    attributes={
        **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
        "a": {"href", "hreflang", "title", "download"},
        "img": {"alt", "src", "width", "height", "title"},
        "code": {"class"},
        "th": {"align", "colspan", "rowspan", "scope"},
        "td": {"align", "colspan", "rowspan"},
    },
    url_schemes={"http", "https", "mailto"},
)


# ----------------------------------------------------------------------------------------- templates
_CSS = """\
:root{--fg:#1f2328;--muted:#59636e;--line:#d8dee4;--accent:#9b1c1c;--bg:#fff;--soft:#f6f8fa}
*{box-sizing:border-box}
html{font-size:16px}
body{margin:0;color:var(--fg);background:var(--bg);line-height:1.75;
font-family:"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC",
"Source Han Sans SC",sans-serif}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.wrap{max-width:960px;margin:0 auto;padding:0 1rem}
header.site{background:var(--accent);color:#fff}
header.site .wrap{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;
padding:.8rem 1rem}
header.site a{color:#fff}.brand{font-size:1.35rem;font-weight:600;letter-spacing:.05em}
header.site nav a{margin-left:1.2rem}
main{padding:1.5rem 1rem 3rem}
.crumbs{font-size:.9rem;color:var(--muted);margin-bottom:1rem}.crumbs a{color:var(--muted)}
h1{font-size:1.6rem;line-height:1.4;margin:.2rem 0 1rem}
h2{font-size:1.2rem;border-left:4px solid var(--accent);padding-left:.6rem;margin:2rem 0 .8rem}
.meta{display:flex;flex-wrap:wrap;gap:.3rem 1.5rem;margin:0 0 1.5rem;padding:.7rem 1rem;
background:var(--soft);border:1px solid var(--line);border-radius:4px;font-size:.9rem;color:var(--muted)}
.meta dt{display:inline;font-weight:600}.meta dd{display:inline;margin:0}
article.body{font-size:1.05rem}
article.body img{max-width:100%;height:auto;display:block;margin:1rem auto}
article.body table{border-collapse:collapse;width:100%;margin:1rem 0}
article.body th,article.body td{border:1px solid var(--line);padding:.4rem .6rem}
article.body th{background:var(--soft)}
article.body pre{background:var(--soft);padding:.8rem;overflow:auto}
article.body blockquote{margin:1rem 0;padding:0 1rem;border-left:4px solid var(--line);color:var(--muted)}
ul.items{list-style:none;margin:0;padding:0}
ul.items li{display:flex;justify-content:space-between;gap:1rem;padding:.55rem 0;
border-bottom:1px dashed var(--line)}
ul.items .when{flex:none;color:var(--muted);font-size:.9rem;white-space:nowrap}
ul.items .dept{color:var(--muted);font-size:.85rem;margin-left:.5rem}
ul.dir{columns:2;padding-left:1.2rem}ul.dir li{break-inside:avoid}
.count{color:var(--muted);font-size:.85rem}
.attachments li{margin:.3rem 0}
.empty{color:var(--muted)}
footer{border-top:1px solid var(--line);color:var(--muted);font-size:.85rem;padding:1rem 0 2rem;
text-align:center}
@media (max-width:600px){ul.dir{columns:1}ul.items li{flex-direction:column;gap:0}}
"""

_TEMPLATES = {
    "base.html": """\
<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; img-src 'self' data: https:; \
style-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'">
<title>{% block title %}{{ site_title }}{% endblock %}</title>
{% block head %}{% endblock %}
<link rel="stylesheet" href="{{ root }}style.css">
<link rel="alternate" type="application/atom+xml" title="{{ site_title }}" href="{{ root }}feed.xml">
</head>
<body>
<header class="site"><div class="wrap">
<a class="brand" href="{{ root }}index.html">{{ site_title }}</a>
<nav><a href="{{ root }}index.html">首页</a><a href="{{ root }}index.html#directory">信息公开目录</a>\
<a href="{{ root }}feed.xml">订阅</a></nav>
</div></header>
<main class="wrap">
{% block main %}{% endblock %}
</main>
<footer><div class="wrap">{{ site_title }} · 依据《高等学校信息公开办法》公开</div></footer>
</body>
</html>
""",
    "list.html": """\
{% macro item_list(entries, root) -%}
{% if entries %}<ul class="items">
{% for e in entries %}<li><span><a href="{{ root }}{{ e.path }}">{{ e.title }}</a>\
<span class="dept">{{ e.department }}</span></span>\
<time class="when" datetime="{{ e.published_at }}">{{ e.published_at | localdate }}</time></li>
{% endfor %}</ul>
{% else %}<p class="empty">暂无公开信息。</p>{% endif %}
{%- endmacro %}
""",
    "item.html": """\
{% extends "base.html" %}
{% block title %}{{ post.title }} - {{ site_title }}{% endblock %}
{% block head %}{% if post.summary %}<meta name="description" content="{{ post.summary }}">{% endif %}
<link rel="canonical" href="{{ url }}">{% endblock %}
{% block main %}
<div class="crumbs"><a href="{{ root }}index.html">首页</a> › \
<a href="{{ root }}categories/{{ post.category | slug }}.html">{{ post.category }}</a></div>
<h1>{{ post.title }}</h1>
<dl class="meta">
<div><dt>发布机构：</dt><dd>{{ post.department }}</dd></div>
<div><dt>所属类别：</dt><dd><a href="{{ root }}categories/{{ post.category | slug }}.html">\
{{ post.category }}</a></dd></div>
{% if post.checklist_item %}<div><dt>公开事项：</dt><dd>\
<a href="{{ root }}checklist/{{ post.checklist_item }}.html">第{{ post.checklist_item }}项\
{% if post.checklist_name %} {{ post.checklist_name }}{% endif %}</a></dd></div>{% endif %}
<div><dt>发布日期：</dt><dd>\
<time datetime="{{ published_iso }}">{{ post.publish_at | localdate }}</time></dd></div>
{% if updated_differs %}<div><dt>更新日期：</dt><dd><time datetime="{{ updated_iso }}">\
{{ post.updated_at | localdate }}</time></dd></div>{% endif %}
</dl>
<article class="body">
{{ body }}
</article>
{% if attachments %}<section class="attachments"><h2>附件</h2><ul>
{% for a in attachments %}<li>\
<a href="{{ root }}{{ a.path }}" download="{{ a.filename }}">{{ a.filename }}</a> \
<span class="count">（{{ a.size }}）</span></li>
{% endfor %}</ul></section>{% endif %}
{% endblock %}
""",
    "index.html": """\
{% extends "base.html" %}{% from "list.html" import item_list %}
{% block main %}
<h2>最新公开</h2>
{{ item_list(latest, root) }}
<h2 id="directory">信息公开目录</h2>
{% if categories %}<ul class="dir">
{% for c in categories %}<li><a href="{{ root }}categories/{{ c.slug }}.html">{{ c.name }}</a> \
<span class="count">（{{ c.count }}）</span></li>
{% endfor %}</ul>{% else %}<p class="empty">暂无公开信息。</p>{% endif %}
{% if checklist %}<h2>信息公开事项清单</h2><ul class="dir">
{% for c in checklist %}<li>\
<a href="{{ root }}checklist/{{ c.number }}.html">第{{ c.number }}项 {{ c.name }}</a> \
<span class="count">（{{ c.count }}）</span></li>
{% endfor %}</ul>{% endif %}
{% endblock %}
""",
    "listing.html": """\
{% extends "base.html" %}{% from "list.html" import item_list %}
{% block title %}{{ heading }} - {{ site_title }}{% endblock %}
{% block main %}
<div class="crumbs"><a href="{{ root }}index.html">首页</a> › {{ kind }}</div>
<h1>{{ heading }}</h1>
{{ item_list(entries, root) }}
{% endblock %}
""",
}


# ------------------------------------------------------------------------------------------- channel
class WebsiteChannel(Channel):
    """Writes the static site; the web app (or any web server) serves the folder at ``base_url``."""

    type_name = "website"
    label = "学校信息公开网"
    Config = WebsiteConfig
    supports_update = True
    supports_withdraw = True
    default_max_concurrency = 4

    @property
    def site_folder(self) -> Path:
        """Where the site is written; the web app serves this folder at ``/site/``."""
        return self.folder

    def __init__(self, name: str, config: WebsiteConfig, env: ChannelEnv) -> None:
        super().__init__(name, config, env)
        self.folder = env.resolve(config.folder)
        base = config.base_url or env.site_base_url
        self.base_url = base if base.endswith("/") else base + "/"
        self._jinja = jinja2.Environment(
            loader=jinja2.DictLoader(_TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self._jinja.filters["localdate"] = self._localdate
        self._jinja.filters["slug"] = category_slug
        self._faults: deque[int] = deque()
        self._faults_lock = threading.Lock()

    # -- review time ------------------------------------------------------------------------------
    def validate(self, post: Post) -> list[str]:
        problems: list[str] = []
        if not post.title.strip():
            problems.append("the title is empty; every page of the website needs one")
        if not post.category.strip():
            problems.append("the item has no category; the website files every page under one")
        for when, label in ((post.publish_at, "publish_at"), (post.updated_at, "updated_at")):
            if when.tzinfo is None:
                problems.append(f"{label} has no time zone; store aware UTC times")
        known = {a.sha256 for a in post.assets}
        for sha in re.findall(r"asset://([0-9a-f]{64})", post.body_html):
            if sha not in known:
                problems.append(f"the body refers to image asset://{sha[:12]}… which is not among the item's files")
        for asset in post.assets:
            if not asset.path.is_file():
                problems.append(f"file {asset.filename!r} is missing on disk ({asset.path}); upload it again")
                continue
            if _is_image(asset):
                try:
                    with Image.open(asset.path) as im:
                        im.verify()
                except Exception as exc:  # Pillow raises many kinds for a broken file
                    problems.append(
                        f"image {asset.filename!r} cannot be read ({type(exc).__name__}: {exc}); "
                        "upload it again as JPEG or PNG"
                    )
        return problems

    # -- delivery ---------------------------------------------------------------------------------
    def publish(self, post: Post, ctx: DeliveryContext) -> Published:
        with _translate_errors(self.folder):
            self._write_item(post)
        return Published(url=self.page_url(post.item_id), remote_id=str(post.item_id))

    def update(self, post: Post, ctx: DeliveryContext) -> Published:
        return self.publish(post, ctx)

    def withdraw(self, post: Post, ctx: DeliveryContext) -> None:
        with _translate_errors(self.folder), self._locked():
            self._maybe_fail()
            manifest = self._read_manifest()
            old = manifest.pop(str(post.item_id), None)
            out = _Batch()
            # the manifest and indexes drop the item first: a crash before the unlink leaves an orphan
            # page that the retried withdraw deletes, never an index linking to a missing page
            self._save_manifest(out, manifest)
            self._regenerate(out, manifest, touched=[old] if old else [])
            out.unlink(self.folder / site_page_path(post.item_id))
            if old:
                self._collect_garbage(out, manifest, set(old.get("files", [])))
            out.sync()

    # -- after publication -----------------------------------------------------------------------
    def check_url(self, url: str) -> LinkStatus:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https"):
            status = super().check_url(url)
            if status.status is None:
                # no answer at all (server not running, DNS) says nothing about the page: the sync
                # trusts this channel's verdict, so "taken down" here would mark every page gone
                raise TransientChannelError(
                    f"no answer from {parts.netloc} ({status.reason.split(':', 1)[0]}), page not checked"
                )
            return status
        path = self._local_path(url)
        if path is None:
            return LinkStatus(ok=False, reason=f"not a page of this site ({self.base_url})")
        if path.is_file():
            return LinkStatus(ok=True, reason="page file exists")
        return LinkStatus(ok=False, status=404, reason=f"page file {path} does not exist")

    def list_publications(self, since: datetime | None = None) -> list[RemotePublication]:
        with self._locked():
            manifest = self._read_manifest()
        found = []
        for e in manifest.values():
            at = datetime.fromisoformat(e["published_at"])
            if since is None or at >= since:
                found.append(
                    RemotePublication(
                        remote_id=str(e["item_id"]),
                        title=e["title"],
                        url=self.base_url + e["path"],
                        published_at=at,
                    )
                )
        return found

    def check_health(self) -> HealthReport:
        probe = self.folder if self.folder.exists() else self.folder.parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not os.access(probe, os.W_OK | os.X_OK):
            return HealthReport(ok=False, detail=f"cannot write to {probe}; fix the folder's permissions")
        usage = shutil.disk_usage(probe)
        warnings = ()
        if usage.free < 200 * 1024 * 1024:
            warnings = (f"only {usage.free // (1024 * 1024)} MB free under {probe}",)
        return HealthReport(ok=True, detail=f"site folder {self.folder}, served at {self.base_url}", warnings=warnings)

    # -- public helpers ---------------------------------------------------------------------------
    def page_url(self, item_id: int) -> str:
        return self.base_url + site_page_path(item_id)

    def rebuild(self) -> int:
        """Rewrite every index page from the manifest (after a template change or a lost write)."""
        with _translate_errors(self.folder), self._locked():
            manifest = self._read_manifest()
            out = _Batch()
            self._regenerate(out, manifest, touched=list(manifest.values()), everything=True)
            out.sync()
            return len(manifest)

    def manifest(self) -> dict[str, dict[str, Any]]:
        """The live entries by item id (a copy, read under the lock)."""
        with self._locked():
            return self._read_manifest()

    def inject_os_error(self, err: int = errno.ENOSPC, times: int = 1) -> None:
        """Make the next ``times`` writes fail with ``OSError(err)`` — for tests and failure drills.

        A real full disk or read-only mount cannot be produced on demand in a test; this raises the
        same OSError at the point the real one would surface, so the error mapping is exercised.
        """
        with self._faults_lock:
            self._faults.extend([err] * times)

    # -- internals --------------------------------------------------------------------------------
    def _maybe_fail(self) -> None:
        with self._faults_lock:
            err = self._faults.popleft() if self._faults else None
        if err is not None:
            raise OSError(err, os.strerror(err), str(self.folder))

    def _localdate(self, value: datetime | str) -> str:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.astimezone(self.env.timezone).strftime("%Y-%m-%d")

    def _local_path(self, url: str) -> Path | None:
        if url.startswith(self.base_url):
            rel = url[len(self.base_url) :].split("?", 1)[0].split("#", 1)[0]
            candidate = (self.folder / rel).resolve()
            if candidate.is_relative_to(self.folder.resolve()):
                return candidate
            return None
        parts = urlsplit(url)
        if parts.scheme == "file":
            return Path(url2pathname(parts.path))
        return None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the site lock: flock conflicts between processes and between threads alike,
        because every acquisition opens its own file description."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read_manifest(self) -> dict[str, dict[str, Any]]:
        try:
            raw = (self.folder / MANIFEST).read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise PermanentChannelError(
                f"the site manifest {self.folder / MANIFEST} is corrupt ({exc}); restore it from a backup"
            ) from exc
        return {str(e["item_id"]): e for e in data.get("entries", [])}

    def _save_manifest(self, out: _Batch, manifest: dict[str, dict[str, Any]]) -> None:
        entries = sorted(manifest.values(), key=lambda e: int(e["item_id"]))
        out.write(
            self.folder / MANIFEST,
            json.dumps({"version": 1, "entries": entries}, ensure_ascii=False, indent=1),
        )

    # .. one item ..................................................................................
    def _write_item(self, post: Post) -> None:
        for when in (post.publish_at, post.updated_at):
            if when.tzinfo is None:
                raise PermanentChannelError("the item's publish/updated time has no time zone")
        if not post.title.strip():
            raise PermanentChannelError("the item has no title; the website needs one")
        # images are the slow part: prepare them outside the lock (content-addressed, so two
        # writers racing on the same file write the same bytes)
        files = self._prepare_assets(post)
        page = self._render_item(post, files)
        entry = {
            "item_id": post.item_id,
            "title": post.title,
            "summary": post.summary,
            "category": post.category,
            "department": post.department,
            "checklist_item": post.checklist_item,
            "checklist_name": post.checklist_name,
            "published_at": _iso(post.publish_at),
            "updated_at": _iso(post.updated_at),
            "version": post.version,
            "path": site_page_path(post.item_id),
            "files": sorted(set(files.values())),
        }
        with self._locked():
            self._maybe_fail()
            manifest = self._read_manifest()
            old = manifest.get(str(post.item_id))
            if old is not None and int(old.get("version", 0)) > post.version:
                return  # a newer version is already live; an older retry must not replace it
            # a concurrent withdraw may have collected a file this item shares; put it back
            self._prepare_assets(post)
            out = _Batch()
            out.write(self.folder / entry["path"], page)
            manifest[str(post.item_id)] = entry
            self._save_manifest(out, manifest)
            self._regenerate(out, manifest, touched=[e for e in (old, entry) if e])
            if old:
                self._collect_garbage(out, manifest, set(old.get("files", [])) - set(entry["files"]))
            out.sync()

    def _prepare_assets(self, post: Post) -> dict[str, str]:
        """Each asset's site-relative path (sha256 -> path), creating the file when missing."""
        out: dict[str, str] = {}
        for asset in post.assets:
            if not asset.path.is_file():
                raise PermanentChannelError(
                    f"file {asset.filename!r} of item {post.item_id} is missing ({asset.path}); upload it again"
                )
            if _is_image(asset):
                out[asset.sha256] = self._ensure_image(asset)
            else:
                rel = _attachment_name(asset)
                if not (self.folder / rel).is_file():
                    _atomic_copy(asset.path, self.folder / rel)
                out[asset.sha256] = rel
        return out

    def _ensure_image(self, asset: Asset) -> str:
        max_w = self.config.image_max_width
        fmt, ext = _IMAGE_FORMATS.get(asset.content_type.lower(), ("PNG", "png"))
        rel = f"media/{asset.sha256}-{max_w}.{ext}"
        dest = self.folder / rel
        if dest.is_file():
            return rel
        try:
            data = _render_image(asset.path, fmt, max_w)
        except OSError as exc:
            if getattr(exc, "errno", None) is not None:
                raise  # a real I/O failure, mapped by _translate_errors
            raise PermanentChannelError(f"image {asset.filename!r} cannot be read: {exc}") from exc
        except (Image.DecompressionBombError, ValueError, SyntaxError) as exc:
            raise PermanentChannelError(f"image {asset.filename!r} cannot be processed: {exc}") from exc
        atomic_write(dest, data)
        return rel

    def _render_item(self, post: Post, files: dict[str, str]) -> str:
        root = "../"
        try:
            body = post.html_with_assets(lambda a: root + files[a.sha256])
        except KeyError as exc:
            raise PermanentChannelError(
                f"the body refers to asset {exc.args[0][:12]}… which is not among the item's files"
            ) from exc
        attachments = []
        for a in post.attachments:
            attachments.append(
                {"path": files[a.sha256], "filename": a.filename, "size": _human_size(a.path.stat().st_size)}
            )
        return self._jinja.get_template("item.html").render(
            site_title=self.config.title,
            root=root,
            post=post,
            url=self.page_url(post.item_id),
            body=Markup(_CLEANER.clean(body)),
            attachments=attachments,
            published_iso=_iso(post.publish_at),
            updated_iso=_iso(post.updated_at),
            updated_differs=self._localdate(post.updated_at) != self._localdate(post.publish_at),
        )

    # .. indexes ...................................................................................
    def _regenerate(
        self,
        out: _Batch,
        manifest: dict[str, dict[str, Any]],
        *,
        touched: Iterable[dict[str, Any]],
        everything: bool = False,
    ) -> None:
        """Rewrite the home page, feed, sitemap and the listings that ``touched`` entries appear in."""
        entries = sorted(manifest.values(), key=lambda e: (e["published_at"], int(e["item_id"])), reverse=True)
        by_category: dict[str, list[dict[str, Any]]] = {}
        by_checklist: dict[int, list[dict[str, Any]]] = {}
        for e in entries:
            by_category.setdefault(e["category"], []).append(e)
            if e.get("checklist_item"):
                by_checklist.setdefault(int(e["checklist_item"]), []).append(e)

        categories = {e["category"] for e in touched}
        checklist = {int(e["checklist_item"]) for e in touched if e.get("checklist_item")}
        if everything:
            categories |= set(by_category)
            checklist |= set(by_checklist)
            self._remove_stale_listings(out, by_category, by_checklist)

        out.write(self.folder / "style.css", _CSS)
        listing = self._jinja.get_template("listing.html")
        for name in categories:
            path = self.folder / "categories" / f"{category_slug(name)}.html"
            if name in by_category:
                out.write(
                    path,
                    listing.render(
                        site_title=self.config.title,
                        root="../",
                        kind="信息公开目录",
                        heading=name,
                        entries=by_category[name],
                    ),
                )
            else:
                out.unlink(path)
        for number in checklist:
            path = self.folder / "checklist" / f"{number}.html"
            if number in by_checklist:
                name = next((e["checklist_name"] for e in by_checklist[number] if e.get("checklist_name")), "")
                out.write(
                    path,
                    listing.render(
                        site_title=self.config.title,
                        root="../",
                        kind="信息公开事项清单",
                        heading=f"第{number}项 {name}".strip(),
                        entries=by_checklist[number],
                    ),
                )
            else:
                out.unlink(path)

        cat_dir = [
            {"name": n, "slug": category_slug(n), "count": len(v)}
            for n, v in sorted(by_category.items(), key=lambda kv: _category_key(kv[0]))
        ]
        check_dir = [
            {
                "number": n,
                "count": len(v),
                "name": next((e["checklist_name"] for e in v if e.get("checklist_name")), ""),
            }
            for n, v in sorted(by_checklist.items())
        ]
        out.write(
            self.folder / "index.html",
            self._jinja.get_template("index.html").render(
                site_title=self.config.title,
                root="",
                latest=entries[:LATEST],
                categories=cat_dir,
                checklist=check_dir,
            ),
        )
        out.write(self.folder / "feed.xml", self._feed(entries[:LATEST]))
        out.write(self.folder / "sitemap.xml", self._sitemap(entries, by_category, by_checklist))

    def _remove_stale_listings(self, out: _Batch, by_category: dict[str, Any], by_checklist: dict[int, Any]) -> None:
        live = {f"{category_slug(n)}.html" for n in by_category}
        for path in (self.folder / "categories").glob("*.html"):
            if path.name not in live:
                out.unlink(path)
        live = {f"{n}.html" for n in by_checklist}
        for path in (self.folder / "checklist").glob("*.html"):
            if path.name not in live:
                out.unlink(path)

    def _feed(self, entries: list[dict[str, Any]]) -> bytes:
        """Atom 1.0 (RFC 4287): ids are the pages' URLs, which never change for an item."""
        newest = max((e["updated_at"] for e in entries), default=None)
        updated = _rfc3339(datetime.fromisoformat(newest)) if newest else "1970-01-01T00:00:00Z"
        out = [
            '<?xml version="1.0" encoding="utf-8"?>',
            f'<feed xmlns="{ATOM_NS}" xml:lang="zh-CN">',
            f"<id>{_x(self.base_url)}</id>",
            f"<title>{_x(self.config.title)}</title>",
            f"<updated>{updated}</updated>",
            f'<link rel="self" type="application/atom+xml" href={_a(self.base_url + "feed.xml")}/>',
            f'<link rel="alternate" type="text/html" href={_a(self.base_url + "index.html")}/>',
            f"<author><name>{_x(self.config.title)}</name></author>",
        ]
        for e in entries:
            url = self.base_url + e["path"]
            out += [
                "<entry>",
                f"<id>{_x(url)}</id>",
                f"<title>{_x(e['title'])}</title>",
                f'<link rel="alternate" type="text/html" href={_a(url)}/>',
                f"<published>{_rfc3339(datetime.fromisoformat(e['published_at']))}</published>",
                f"<updated>{_rfc3339(datetime.fromisoformat(e['updated_at']))}</updated>",
            ]
            if e.get("department"):
                out.append(f"<author><name>{_x(e['department'])}</name></author>")
            out.append(f"<category term={_a(e['category'])}/>")
            if e.get("summary"):
                out.append(f"<summary>{_x(e['summary'])}</summary>")
            out.append("</entry>")
        out.append("</feed>\n")
        return "\n".join(out).encode("utf-8")

    def _sitemap(
        self,
        entries: list[dict[str, Any]],
        by_category: dict[str, list[dict[str, Any]]],
        by_checklist: dict[int, list[dict[str, Any]]],
    ) -> bytes:
        out = ['<?xml version="1.0" encoding="utf-8"?>', f'<urlset xmlns="{SITEMAP_NS}">']

        def url(path: str, group: list[dict[str, Any]]) -> None:
            lastmod = max((e["updated_at"] for e in group), default=None)
            mod = f"<lastmod>{_rfc3339(datetime.fromisoformat(lastmod))}</lastmod>" if lastmod else ""
            out.append(f"<url><loc>{_x(self.base_url + path)}</loc>{mod}</url>")

        url("index.html", entries)
        for name, group in sorted(by_category.items()):
            url(f"categories/{category_slug(name)}.html", group)
        for number, group in sorted(by_checklist.items()):
            url(f"checklist/{number}.html", group)
        for e in entries:
            url(e["path"], [e])
        out.append("</urlset>\n")
        return "\n".join(out).encode("utf-8")

    def _collect_garbage(self, out: _Batch, manifest: dict[str, dict[str, Any]], candidates: set[str]) -> None:
        """Delete media no live item uses any more: a withdrawn item's images must not stay online."""
        if not candidates:
            return
        used = {f for e in manifest.values() for f in e.get("files", [])}
        for rel in candidates - used:
            out.unlink(self.folder / rel)


def _render_image(path: Path, fmt: str, max_width: int) -> bytes:
    """Re-encode an image upright, at most ``max_width`` wide, with no EXIF/XMP/comments."""
    with Image.open(path) as src:
        src.load()
        if fmt == "GIF" and getattr(src, "n_frames", 1) > 1 and src.width <= max_width:
            # re-encoding would drop the animation; GIF carries no EXIF, so the bytes can stay
            return path.read_bytes()
        im = ImageOps.exif_transpose(src) or src
        if im.width > max_width:
            if im.mode not in ("RGB", "RGBA", "L", "LA"):
                im = im.convert("RGBA" if "transparency" in im.info or im.mode in ("P", "PA") else "RGB")
            height = max(1, round(im.height * max_width / im.width))
            im = im.resize((max_width, height), Image.Resampling.LANCZOS)
        icc = src.info.get("icc_profile")
        params: dict[str, Any] = {}
        if fmt == "JPEG":
            if im.mode not in ("RGB", "L", "CMYK"):
                im = _flatten(im)
            params = {"quality": 85, "optimize": True, "progressive": True}
        elif fmt == "WEBP":
            params = {"quality": 85}
        elif fmt == "PNG":
            params = {"optimize": True}
        # colour profiles are colour data, not personal metadata; keep them so colours stay right
        if icc and fmt in ("JPEG", "PNG", "WEBP"):
            params["icc_profile"] = icc
        clean = im.copy()
        clean.info = {k: v for k, v in im.info.items() if k in ("transparency",)}
        buf = io.BytesIO()
        clean.save(buf, format=fmt, **params)
        return buf.getvalue()


def _flatten(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    back = Image.new("RGB", rgba.size, (255, 255, 255))
    back.paste(rgba, mask=rgba.getchannel("A"))
    return back


@contextlib.contextmanager
def _translate_errors(folder: Path) -> Iterator[None]:
    """File-system errors become channel errors: a full disk is retried, a wrong folder is not."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _TRANSIENT_ERRNOS:
            raise TransientChannelError(
                f"cannot write the site under {folder}: {exc.strerror or exc}; will retry"
            ) from exc
        raise PermanentChannelError(
            f"cannot write the site under {folder}: {exc.strerror or exc}; fix the folder "
            f"(permissions, mount, free space) and publish again",
            code=errno.errorcode.get(exc.errno or 0),
        ) from exc
