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

The writing itself is in :mod:`channels.website.files`, the images in :mod:`channels.website.images`,
the templates in :mod:`channels.website.pages` and the index pages in :mod:`channels.website.indexes`.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from urllib.request import url2pathname

from markupsafe import Markup
from PIL import Image
from pydantic import Field

from channels.website.files import Batch, SiteFolder, translate_errors
from channels.website.images import is_image, prepare_assets
from channels.website.indexes import SiteIndexes
from channels.website.pages import CLEANER, human_size, iso, make_jinja
from channels.website.rules import write_rules_library
from publisher.channel import (
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


class WebsiteConfig(ChannelConfig):
    #: the site folder; relative paths are under the office's folder (settings' data_dir)
    folder: str = "site"
    title: str = "信息公开网"
    #: the URL the folder is served at; default: the core's site_base_url
    base_url: str | None = None
    image_max_width: int = Field(default=1200, ge=16, le=10000)
    #: when an item's 公示期 ends: "notice" replaces its page with a short "公示期已结束" page (title and
    #: the period's dates; no body, no attachments), "remove" deletes the page as a withdrawal does
    after_display: Literal["notice", "remove"] = "notice"


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
        self._jinja = make_jinja(self._localdate)
        self.site = SiteFolder(self.folder)
        self.indexes = SiteIndexes(self.folder, self.base_url, config.title, self._jinja)

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
            if is_image(asset):
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
        with translate_errors(self.folder):
            self._write_item(post)
        return Published(url=self.page_url(post.item_id), remote_id=str(post.item_id))

    def update(self, post: Post, ctx: DeliveryContext) -> Published:
        return self.publish(post, ctx)

    def withdraw(self, post: Post, ctx: DeliveryContext) -> None:
        with translate_errors(self.folder), self.site.locked():
            self.site.maybe_fail()
            manifest = self.site.read_manifest()
            old = manifest.pop(str(post.item_id), None)
            out = Batch()
            # the manifest and indexes drop the item first: a crash before the unlink leaves an orphan
            # page that the retried withdraw deletes, never an index linking to a missing page
            self.site.save_manifest(out, manifest)
            self.indexes.regenerate(out, manifest, touched=[old] if old else [])
            self._rules(out, manifest)
            page = self.folder / site_page_path(post.item_id)
            if post.display_ended and self.config.after_display == "notice":
                # listed nowhere (manifest, indexes, feed, sitemap), its files collected below
                out.write(page, self._render_notice(post, old))
            else:
                out.unlink(page)
            if old:
                self.site.collect_garbage(out, manifest, set(old.get("files", [])))
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
        with self.site.locked():
            manifest = self.site.read_manifest()
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
        with translate_errors(self.folder), self.site.locked():
            manifest = self.site.read_manifest()
            out = Batch()
            self.indexes.regenerate(out, manifest, touched=list(manifest.values()), everything=True)
            self._rules(out, manifest)
            out.sync()
            return len(manifest)

    def manifest(self) -> dict[str, dict[str, Any]]:
        """The live entries by item id (a copy, read under the lock)."""
        with self.site.locked():
            return self.site.read_manifest()

    def inject_os_error(self, err: int = errno.ENOSPC, times: int = 1) -> None:
        """Make the next ``times`` writes fail with ``OSError(err)`` — for tests and failure drills.

        A real full disk or read-only mount cannot be produced on demand in a test; this raises the
        same OSError at the point the real one would surface, so the error mapping is exercised.
        """
        self.site.inject_os_error(err, times)

    # -- internals --------------------------------------------------------------------------------
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

    # .. one item ..................................................................................
    def _write_item(self, post: Post) -> None:
        for when in (post.publish_at, post.updated_at):
            if when.tzinfo is None:
                raise PermanentChannelError("the item's publish/updated time has no time zone")
        if not post.title.strip():
            raise PermanentChannelError("the item has no title; the website needs one")
        # images are the slow part: prepare them outside the lock (content-addressed, so two
        # writers racing on the same file write the same bytes)
        files = prepare_assets(self.folder, post, self.config.image_max_width)
        page = self._render_item(post, files)
        entry = {
            "item_id": post.item_id,
            "title": post.title,
            "summary": post.summary,
            "category": post.category,
            "department": post.department,
            "checklist_item": post.checklist_item,
            "checklist_name": post.checklist_name,
            "published_at": iso(post.publish_at),
            "updated_at": iso(post.updated_at),
            "version": post.version,
            "path": site_page_path(post.item_id),
            "files": sorted(set(files.values())),
            # listings mark a repealed rule; the 现行有效 ones make the rules library
            "validity": post.catalogue.validity,
            "index_no": post.catalogue.index_no,
        }
        with self.site.locked():
            self.site.maybe_fail()
            manifest = self.site.read_manifest()
            old = manifest.get(str(post.item_id))
            if old is not None and int(old.get("version", 0)) > post.version:
                return  # a newer version is already live; an older retry must not replace it
            # a concurrent withdraw may have collected a file this item shares; put it back
            prepare_assets(self.folder, post, self.config.image_max_width)
            out = Batch()
            out.write(self.folder / entry["path"], page)
            manifest[str(post.item_id)] = entry
            self.site.save_manifest(out, manifest)
            self.indexes.regenerate(out, manifest, touched=[e for e in (old, entry) if e])
            self._rules(out, manifest)
            if old:
                self.site.collect_garbage(out, manifest, set(old.get("files", [])) - set(entry["files"]))
            out.sync()

    def _rules(self, out: Batch, manifest: dict[str, dict[str, Any]]) -> None:
        write_rules_library(out, self.folder, self._jinja, self.config.title, manifest)

    def _render_notice(self, post: Post, entry: dict[str, Any] | None) -> str:
        """The page left where a 公示 was once its period ended: the title and the period, nothing else."""
        start = datetime.fromisoformat(entry["published_at"]) if entry else post.publish_at
        return self._jinja.get_template("ended.html").render(
            site_title=self.config.title,
            root="../",
            post=post,
            url=self.page_url(post.item_id),
            start=start,
            end=post.display_ends_at,
        )

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
                {"path": files[a.sha256], "filename": a.filename, "size": human_size(a.path.stat().st_size)}
            )
        return self._jinja.get_template("item.html").render(
            site_title=self.config.title,
            root=root,
            post=post,
            url=self.page_url(post.item_id),
            body=Markup(CLEANER.clean(body)),
            attachments=attachments,
            published_iso=iso(post.publish_at),
            updated_iso=iso(post.updated_at),
            updated_differs=self._localdate(post.updated_at) != self._localdate(post.publish_at),
        )
