"""The static information-disclosure website (信息公开网), generated from published posts.

A channel only ever sees the post it is asked to publish, but the site's index pages list every
published item. So the site folder carries its state (``.site.sqlite3``, :mod:`channels.website.store`):
what is live and where each item is listed. Each publish, update or withdraw rewrites the one item
page, its rows of the state and the few index pages that show the item (the listings are paginated,
the sitemap split, the feed bounded), all under an inter-process lock (``fcntl.flock`` on ``.lock``)
because several worker threads and processes publish at once. Every file is written to a temporary
file in the same folder, fsynced and ``os.replace``-d, so a web server never serves half a page and a crash never
leaves one behind.

Layout of the site folder::

    index.html                 latest items, the category directory and the checklist directory
    items/<id>.html            one page per item (publisher.channel.site_page_path)
    page/<k>.html              every item, page k of the whole site (numbered from the oldest)
    categories/<slug>.html     one index per category (slug: a short hash of the Chinese name)
    categories/<slug>/page/<k>.html   and its pages
    checklist/<n>.html         one index per item of the 50-item disclosure checklist (and its pages)
    feed.xml                   Atom feed of the latest items
    sitemap.xml                sitemap index of sitemap-lists.xml and sitemap-<k>.xml
    media/<sha256>-<w>.<ext>   images, EXIF orientation applied, metadata stripped, at most w pixels wide
    files/<sha256><.ext>       attachments, byte for byte
    style.css  textsize.js      the stylesheet; the large-text switch (大字模式)
    .site.sqlite3  .lock

Only the post body is HTML; it was sanitised by the core and is sanitised again here with nh3 as
defence in depth. Everything else goes through Jinja2's autoescape or ElementTree.

The writing itself is in :mod:`channels.website.files`, the images in :mod:`channels.website.images`,
the templates in :mod:`channels.website.pages` and the index pages in :mod:`channels.website.indexes`.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from urllib.request import url2pathname

from apscheduler.triggers.cron import CronTrigger
from markupsafe import Markup
from PIL import Image
from pydantic import Field, field_validator

from channels.website.cdn import CdnConfig, open_purger
from channels.website.files import MANIFEST, Batch, SiteFolder, translate_errors
from channels.website.guide import SitePages
from channels.website.images import is_image, prepare_assets
from channels.website.indexes import SiteIndexes
from channels.website.pages import CLEANER, day, human_size, iso, make_jinja
from channels.website.purges import PurgeReport, SitePurges, purge_problem
from channels.website.related import links_of, own_section, refresh_others, section
from channels.website.search import Progress, SearchBuild, SiteSearch
from channels.website.store import SiteStore
from publisher.channel import (
    Channel,
    ChannelConfig,
    ChannelEnv,
    DeliveryContext,
    FolderStore,
    HealthReport,
    LinkStatus,
    ObjectStore,
    ObjectStoreError,
    Office,
    PermanentChannelError,
    Post,
    Published,
    RemotePublication,
    S3Config,
    S3Store,
    TransientChannelError,
    open_object_store,
    site_page_path,
)
from publisher.errors import ConfigError


def local_path(url: str, base_url: str, folder: Path) -> Path | None:
    """The file of ``folder`` that ``url`` names (a page of the site at ``base_url``, or a file: URL)."""
    if url.startswith(base_url):
        rel = url[len(base_url) :].split("?", 1)[0].split("#", 1)[0]
        candidate = (folder / rel).resolve()
        return candidate if candidate.is_relative_to(folder.resolve()) else None
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(url2pathname(parts.path))
    return None


def object_status(files: ObjectStore, base_url: str, url: str) -> LinkStatus:
    """Whether the page ``url`` (under ``base_url``) is in a bucket (a URL the sync cannot fetch)."""
    key = url[len(base_url) :].split("?", 1)[0].split("#", 1)[0] if url.startswith(base_url) else None
    if not key:
        return LinkStatus(ok=False, reason=f"not a page of this site ({base_url})")
    with translate_errors(files.where):
        if files.exists(key):
            return LinkStatus(ok=True, reason="page object exists")
    return LinkStatus(ok=False, status=404, reason=f"page object {files.url_for(key)} does not exist")


def storage_health(files: ObjectStore, folder: Path, base_url: str) -> HealthReport:
    """The bucket answers and the key may use it; or the folder is writable with room to spare."""
    if isinstance(files, S3Store):
        try:
            files.check()
        except ObjectStoreError as exc:
            return HealthReport(ok=False, detail=str(exc))
        return HealthReport(ok=True, detail=f"site in {files.where}, served at {base_url}")
    probe = folder if folder.exists() else folder.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        return HealthReport(ok=False, detail=f"cannot write to {probe}; fix the folder's permissions")
    usage = shutil.disk_usage(probe)
    warnings = ()
    if usage.free < 200 * 1024 * 1024:
        warnings = (f"only {usage.free // (1024 * 1024)} MB free under {probe}",)
    return HealthReport(ok=True, detail=f"site folder {folder}, served at {base_url}", warnings=warnings)


def open_site(name: str, config: WebsiteConfig, env: ChannelEnv, folder: Path) -> tuple[ObjectStore, SiteStore]:
    """Where the pages go and where the state is: the folder and its ``.site.sqlite3``, or a bucket and
    the publisher's store (rows keyed by the channel's name). ConfigError naming the table."""
    table = f"[channels.{name}]"
    files = open_object_store(config.storage, folder=folder, s3=config.s3, what=table)
    if config.storage == "folder":
        return files, SiteStore(folder)
    if not config.base_url:
        raise ConfigError(f"{table}: a site in a bucket needs base_url, the address readers reach it at")
    if env.sql is None:
        raise ConfigError(f"{table}: storage = \"s3\" keeps the site's state in the publisher's store; none was given")
    return files, SiteStore(folder, shared=env.sql, site=name)


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
    #: items on one page of a listing (the home page, a category, a checklist item)
    page_size: int = Field(default=50, ge=5, le=1000)
    #: item URLs in one sitemap file (the protocol allows 50,000; every publish rewrites one file)
    sitemap_urls: int = Field(default=1000, ge=10, le=50000)
    #: where the pages go: "folder" (``folder``, the default) or "s3" (the ``s3`` table: an S3-compatible
    #: bucket; the site's state then lives in the publisher's store, shared by workers on every host)
    storage: Literal["folder", "s3"] = "folder"
    s3: S3Config | None = None
    #: the category whose items are the annual reports (信息公开工作年度报告), listed on reports.html
    report_category: str = "年度报告"
    #: when the site's search index is rebuilt (a crontab line in the office's time zone; "" = only
    #: by ``publisher site search-index``); new items are findable from the next build on
    search_cron: str = "*/30 * * * *"
    #: the CDN in front of the site, purged after each change (channels.website.cdn); none: no purge
    cdn: CdnConfig | None = None

    @field_validator("search_cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        if value.strip():
            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(
                    f'search_cron {value!r} is not a crontab line ({exc}); e.g. "*/30 * * * *" or "" for none'
                ) from exc
        return value.strip()


#: how many listing pages a rebuild writes between checkpoints (and between releases of the lock)
REBUILD_STEP = 200


# ------------------------------------------------------------------------------------------- channel
class WebsiteChannel(Channel):
    """Writes the static site; the web app (or any web server) serves the folder at ``base_url``.

    One class over ~300 lines: its methods are the channel interface and the order of one change's
    writes (files, page, state, listings, the pages beside them, related pages, search), which must be
    read together to see that no page ever links to a missing one; the parts are in the modules beside it.
    """

    type_name = "website"
    label = "学校信息公开网"
    Config = WebsiteConfig
    supports_update = True
    supports_withdraw = True
    default_max_concurrency = 4

    @property
    def site_folder(self) -> Path | None:
        """Where the site is written; the web app serves this folder at ``/site/``. None for a bucket."""
        return self.folder if isinstance(self.files, FolderStore) else None

    @property
    def site_objects(self) -> ObjectStore:
        """What the public reads, folder or bucket: ``publisher check --all`` reads the pages from it and
        the web app serves a bucket site at ``/site/`` from it."""
        return self.files

    def __init__(self, name: str, config: WebsiteConfig, env: ChannelEnv) -> None:
        super().__init__(name, config, env)
        self.folder = env.resolve(config.folder)
        base = config.base_url or env.site_base_url
        self.base_url = base if base.endswith("/") else base + "/"
        self._jinja = make_jinja(self._localdate)
        self.files, self.store = open_site(name, config, env, self.folder)
        self.site = SiteFolder(self.folder)
        self.indexes = SiteIndexes(
            self.files,
            self.base_url,
            config.title,
            self._jinja,
            page_size=config.page_size,
            sitemap_urls=config.sitemap_urls,
        )
        office = env.office or Office(organisation=config.title)
        self.pages = SitePages(self._jinja, config.title, office, config.report_category)
        self.search = SiteSearch(self.files, self.store, self._locked, lambda keys: self._owe_purge(keys))
        self.search_cron = config.search_cron  # the scheduler's site-search-index job (publisher.scheduler)
        self.purges: SitePurges | None = None
        if config.cdn is not None:
            self.purges = SitePurges(
                name=name,
                cdn=open_purger(config.cdn),
                store=self.store,
                locked=self._locked,
                base_url=self.base_url,
                where=self.files.where,
                alert_after=config.cdn.alert_after,
            )

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
        with translate_errors(self.files.where):
            self._write_item(post)
        self._purge_now()
        return Published(url=self.page_url(post.item_id), remote_id=str(post.item_id))

    def update(self, post: Post, ctx: DeliveryContext) -> Published:
        return self.publish(post, ctx)

    def withdraw(self, post: Post, ctx: DeliveryContext) -> None:
        with translate_errors(self.files.where):
            self._withdraw(post)
        self._purge_now()

    def _withdraw(self, post: Post) -> None:
        with self._locked():
            self.site.maybe_fail()
            # first the item leaves the listings (kept in the state as "being withdrawn") and the
            # index pages drop it, committed together; then its page goes, then the state forgets it:
            # a crash anywhere leaves at worst an orphan page that a retried withdraw deletes, never
            # an index linking to a missing page
            found = self.store.mark_withdrawn(post.item_id, iso(datetime.now(UTC)))
            out = Batch(self.files)
            self.search.forget(out, post.item_id)  # out of the search results first: a privacy promise
            if found:
                self.indexes.refresh(out, self.store, found[1])
                self.pages.refresh(out, self.store, found[0])
                # the pages of its related items drop their links to it before its page goes
                refresh_others(out, self.files, self.store, found[0], found[0].get("related") or [], gone=True)
            out.sync()
            self.site.maybe_fail("indexes")
            page = site_page_path(post.item_id)
            # owed with the listings' commit: a crash after it still purges the page the retry deletes
            self._owe_purge(out.touched | {page})
            # durable before the page goes; the rest (forget) is tidying, not waited for on disk
            self.store.checkpoint(tidying=True)
            self.site.maybe_fail("committed")
            if post.display_ended and self.config.after_display == "notice":
                # listed nowhere (state, indexes, feed, sitemap), its files collected below
                out.write(page, self._render_notice(post, found[0] if found else None))
            else:
                out.unlink(page)
            if found:
                for rel in self.store.unused_files(found[0].get("files", [])):
                    out.unlink(rel)
            out.sync()
            self.site.maybe_fail("page")
            self._owe_purge(out.touched)  # the files collected (an attachment may hold the number too)
            if found:
                self.store.forget(post.item_id)

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
        if not isinstance(self.files, FolderStore):
            return object_status(self.files, self.base_url, url)
        path = self._local_path(url)
        if path is None:
            return LinkStatus(ok=False, reason=f"not a page of this site ({self.base_url})")
        if path.is_file():
            return LinkStatus(ok=True, reason="page file exists")
        return LinkStatus(ok=False, status=404, reason=f"page file {path} does not exist")

    def list_publications(self, since: datetime | None = None) -> list[RemotePublication]:
        found = []
        for e in self.manifest().values():
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
        health = storage_health(self.files, self.folder, self.base_url)
        if self.purges is None or not health.ok:
            return health
        with translate_errors(self.files.where), self._locked():
            stuck = self.purges.stuck()
        if stuck:
            return HealthReport(ok=False, detail=purge_problem(stuck), warnings=health.warnings)
        return health

    # -- the CDN ----------------------------------------------------------------------------------
    def retry_purges(self, now: datetime | None = None) -> PurgeReport:
        """The CDN purges owed and due, sent (channels.website.purges.SitePurges.retry): after every
        change, and each minute by the scheduler's ``cdn-purge:<channel>`` job."""
        return self.purges.retry(now) if self.purges is not None else PurgeReport()

    def _owe_purge(self, keys: set[str]) -> None:
        if self.purges is not None:
            self.purges.owe(keys)

    def _purge_now(self) -> None:
        if self.purges is not None:
            self.purges.after_change()

    # -- public helpers ---------------------------------------------------------------------------
    def page_url(self, item_id: int) -> str:
        return self.base_url + site_page_path(item_id)

    def rebuild(self, progress: Callable[[int, int], None] | None = None, *, restart: bool = False) -> int:
        """Rewrite every index page from the state (after a template change, a restore or a lost write).

        Resumable: it writes ``REBUILD_STEP`` pages at a time under the lock (workers publish in
        between) and records the last page written in the state, so a rebuild killed and run again
        continues there; ``restart`` starts from the beginning. ``progress(done, total)`` is called
        after each step. Returns the number of live items.
        """
        with translate_errors(self.files.where):
            with self._locked():
                units = self.indexes.units(self.store)
                mark = None if restart else self.store.get_meta("rebuild_after")
            start = 0
            if mark:
                after = tuple(json.loads(mark))
                start = next((n for n, u in enumerate(units) if u > after), len(units))
            if progress:
                progress(start, len(units))
            for at in range(start, len(units), REBUILD_STEP):
                chunk = units[at : at + REBUILD_STEP]
                with self._locked():
                    self.site.maybe_fail()
                    out = Batch(self.files)
                    self.indexes.write_units(out, self.store, chunk)
                    out.sync()
                    self.store.set_meta("rebuild_after", json.dumps(chunk[-1], ensure_ascii=False))
                if progress:
                    progress(at + len(chunk), len(units))
            with self._locked():
                out = Batch(self.files)
                self.indexes.finish_rebuild(out, self.store)
                self.pages.refresh(out, self.store, everything=True)
                out.sync()
                self.store.set_meta("rebuild_after", None)
                listing = self.store.listing("all")
                return int(listing["count"]) if listing else 0

    def search_index(self, progress: Progress | None = None) -> SearchBuild:
        """Build the search index from the live item pages and switch readers to it (channels.website.search);
        ``progress(what, done, total)`` hears of the pages read and the terms written."""
        build = self.search.build(progress)
        self._purge_now()  # current.json (channels.website.cdn)
        return build

    def manifest(self) -> dict[str, dict[str, Any]]:
        """The live entries by item id (read under the lock; the whole site, for checks and tests)."""
        with self._locked():
            return {str(e["item_id"]): e for e in self.store.live_entries()}

    def inject_os_error(self, err: int = errno.ENOSPC, times: int = 1, step: str = "start") -> None:
        """Make the next ``times`` changes fail with ``OSError(err)`` at ``step`` (one of
        ``channels.website.files.STEPS``; the default: before anything) — for tests and failure drills.

        A real full disk or read-only mount cannot be produced on demand in a test; this raises the
        same OSError at the point the real one would surface, so the error mapping is exercised.
        """
        self.site.inject_os_error(err, times, step)

    # -- internals --------------------------------------------------------------------------------
    def _localdate(self, value: datetime | str) -> str:
        if isinstance(value, str):
            return self._localdate_of(value)
        return day(value.astimezone(self.env.timezone))

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one cache per channel, bounded; listings repeat dates
    def _localdate_of(self, value: str) -> str:
        return day(datetime.fromisoformat(value).astimezone(self.env.timezone))

    def _local_path(self, url: str) -> Path | None:
        return local_path(url, self.base_url, self.folder)

    # .. one item ..................................................................................
    def _write_item(self, post: Post) -> None:
        for when in (post.publish_at, post.updated_at):
            if when.tzinfo is None:
                raise PermanentChannelError("the item's publish/updated time has no time zone")
        if not post.title.strip():
            raise PermanentChannelError("the item has no title; the website needs one")
        # images are the slow part: prepare them outside the lock (content-addressed, so two
        # writers racing on the same file write the same bytes)
        files = prepare_assets(self.files, post, self.config.image_max_width)
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
            # its related items, whose pages link back to it (channels/website/related.py)
            "related": links_of(post),
        }
        with self._locked():
            self.site.maybe_fail()
            found = self.store.get(post.item_id)
            old = found[0] if found and found[1] else None
            if old is not None and int(old.get("version", 0)) > post.version:
                return  # a newer version is already live; an older retry must not replace it
            # a concurrent withdraw may have collected a file this item shares; put it back
            prepare_assets(self.files, post, self.config.image_max_width)
            out = Batch(self.files)
            page = own_section(self.store, page, entry["related"])
            self.search.replaced(out, old, entry)
            # the files before the page, the page before the state and the indexes: an index never
            # links to a missing page, a page never to a missing file
            out.write(entry["path"], page)
            out.sync()
            self.site.maybe_fail("page")
            spots = self.store.put(entry)
            self.site.maybe_fail("committed")
            self.indexes.refresh(out, self.store, spots)
            self.pages.refresh(out, self.store, old, entry)
            before = (old or {}).get("related") or []
            if before or entry["related"]:
                refresh_others(out, self.files, self.store, entry, before)
            out.sync()
            self.site.maybe_fail("indexes")
            if old:
                # files the old text used and no live item uses now, once no page shows them
                for rel in self.store.unused_files(set(old.get("files", [])) - set(entry["files"])):
                    out.unlink(rel)
                out.sync()
            self._owe_purge(out.touched)  # committed with the change, or not at all

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The site's turn and the state's transaction (SiteStore.locked: a folder's flock, or a row
        lock in the publisher's store). A folder with the old ``_manifest.json`` is migrated on first
        use (imported in one transaction, its listings written, the file renamed)."""
        if not isinstance(self.files, FolderStore):
            with self.store.locked():
                yield
            return
        with self.store.locked(self.site.locked()):
            manifest = self.folder / MANIFEST
            if manifest.exists():
                if self.store.get_meta("migrated") is None:
                    self.store.import_entries(self.site.read_manifest().values(), mark="migrated")
                    self.store.checkpoint()
                out = Batch(self.files)
                units = self.indexes.units(self.store)
                self.indexes.write_units(out, self.store, units)
                self.indexes.finish_rebuild(out, self.store)
                self.pages.refresh(out, self.store, everything=True)
                out.sync()
                os.replace(manifest, manifest.with_name(MANIFEST + ".migrated"))
            yield

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
            related=section(links_of(post)),
            cover={"path": files[post.cover.sha256], "alt": post.cover.alt} if post.cover else None,
            published_iso=iso(post.publish_at),
            updated_iso=iso(post.updated_at),
            updated_differs=self._localdate(post.updated_at) != self._localdate(post.publish_at),
        )
