"""The index pages of the site: listings in pages, the home page, the Atom feed and the sitemap index.

Each change rewrites only the pages that show what it changed (see :mod:`channels.website.store` for
the positions they are cut from), so a publish costs the same on a site of 100,000 items as on an
empty one:

* a listing (the whole site, a category, a checklist item) is cut into pages of ``page_size``
  positions, numbered from the oldest: ``<listing>/page/<k>.html`` holds positions
  ``(k-1)*page_size+1 .. k*page_size``, newest first. Positions never move, so a page changes only
  when one of its own items does; a new item lands on the newest page (and starts a new one when
  that is full, which also gives the previous page its "较新" link).
* a category's or checklist item's landing page (``categories/<slug>.html``, ``checklist/<n>.html``,
  the URLs of before) is its newest page (1 to ``page_size`` items) and links the older ones; the
  home page (``index.html``) shows the newest ``page_size`` items and links ``page/<k>.html``.
* the Atom feed holds the newest ``LATEST`` items; ``sitemap.xml`` is a sitemap index of
  ``sitemap-lists.xml`` (home and landing pages) and ``sitemap-<k>.xml`` (item pages by position in
  the whole site, ``sitemap_urls`` each, at most 50,000 as the protocol allows).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape as _x
from xml.sax.saxutils import quoteattr as _a

import jinja2

from channels.website.files import Batch
from channels.website.pages import CSS, SCRIPT, category_key, category_slug, rfc3339
from channels.website.searchpage import SEARCH_SCRIPT, SEARCH_TEMPLATES
from channels.website.store import ALL, SiteStore, Spot
from publisher.channel import ObjectStore

#: how many items the Atom feed lists
LATEST = 50
#: what a listing shows of each item (list.html)
SHOWN = ("path", "title", "department", "published_at", "validity")
ATOM_NS = "http://www.w3.org/2005/Atom"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"

PAGER_TEMPLATES = {
    "paged.html": """\
{% extends "base.html" %}{% from "list.html" import item_list %}
{% block title %}{{ heading }}{% if page_no %}（第{{ page_no }}页）{% endif %} - {{ site_title }}{% endblock %}
{% block main %}
<div class="crumbs"><a href="{{ root }}index.html">首页</a> › {{ kind }}{% if page_no %} › \
<a href="{{ root }}{{ landing }}">{{ heading }}</a>{% endif %}</div>
<h1>{{ heading }}{% if page_no %}<span class="count">（第{{ page_no }}页）</span>{% endif %}</h1>
{{ item_list(entries, root) }}
{{ pager(older, newer, landing if page_no else "", root) }}
{% endblock %}
""",
    "pager.html": """\
{% macro pager(older, newer, landing, root) -%}
{% if older or newer or landing %}<nav class="pager" aria-label="分页">\
{% if newer %}<a rel="prev" href="{{ root }}{{ newer }}">‹ 较新</a> {% endif %}\
{% if landing %}<a href="{{ root }}{{ landing }}">最新</a> {% endif %}\
{% if older %}<a rel="next" href="{{ root }}{{ older }}">更早 ›</a>{% endif %}</nav>{% endif %}
{%- endmacro %}
""",
}


def page_of(pos: int, size: int) -> int:
    return (pos - 1) // size + 1


class SiteIndexes:
    """Writes the indexes of the site into ``files`` (a folder or a bucket), served at ``base_url``,
    from a :class:`SiteStore`."""

    def __init__(
        self,
        files: ObjectStore,
        base_url: str,
        title: str,
        jinja: jinja2.Environment,
        *,
        page_size: int = 50,
        sitemap_urls: int = 1000,
    ) -> None:
        self.files, self.base_url, self.title = files, base_url, title
        self.page_size, self.sitemap_urls = page_size, sitemap_urls
        # the pager lives with the listings it pages; the item templates stay in pages.py
        jinja.loader = jinja2.ChoiceLoader(
            [jinja.loader, jinja2.DictLoader(PAGER_TEMPLATES), jinja2.DictLoader(SEARCH_TEMPLATES)]  # type: ignore[list-item]
        )
        jinja.globals["pager"] = jinja.get_template("pager.html").module.pager  # type: ignore[attr-defined]
        self._jinja = jinja

    # -- paths ------------------------------------------------------------------------------------
    @staticmethod
    def landing(key: str) -> str:
        if key == ALL:
            return "index.html"
        kind, name = key.split(":", 1)
        return f"categories/{category_slug(name)}.html" if kind == "c" else f"checklist/{name}.html"

    def numbered(self, key: str, page: int) -> str:
        return f"page/{page}.html" if key == ALL else f"{self.landing(key).removesuffix('.html')}/page/{page}.html"

    # -- one change -------------------------------------------------------------------------------
    def refresh(self, out: Batch, store: SiteStore, spots: Iterable[Spot]) -> None:
        """Rewrite what shows the positions ``spots``: their pages, the landings of their listings,
        the home page, the feed, their sitemap files and the sitemap index."""
        pages: set[tuple[str, int]] = set()
        parts: set[int] = set()
        for key, pos in spots:
            page = page_of(pos, self.page_size)
            pages.add((key, page))
            if page > 1 and (pos - 1) % self.page_size == 0:
                pages.add((key, page - 1))  # a new page: the previous one gains its "较新" link
            if key == ALL:
                parts.add(page_of(pos, self.sitemap_urls))
        listings = {row["key"]: row for row in store.listings()}
        for key in {k for k, _ in pages}:
            self._write_listing(out, store, key, listings.get(key), [p for k, p in pages if k == key])
        self._write_common(out, store, listings, parts)

    # -- everything, in steps (publisher site rebuild) -------------------------------------------
    def units(self, store: SiteStore) -> list[tuple[str, int]]:
        """Every page of every listing and every sitemap file, in the order a rebuild writes them."""
        found: list[tuple[str, int]] = []
        for row in store.listings():
            found += [(row["key"], p) for p in range(1, page_of(row["last_pos"], self.page_size) + 1)]
        last = store.listing(ALL)
        if last:
            found += [("sitemap", p) for p in range(1, page_of(last["last_pos"], self.sitemap_urls) + 1)]
        return sorted(found)

    def write_units(self, out: Batch, store: SiteStore, units: list[tuple[str, int]]) -> None:
        listings = {row["key"]: row for row in store.listings()}
        by_key: dict[str, list[int]] = {}
        for key, page in units:
            by_key.setdefault(key, []).append(page)
        for key, numbers in by_key.items():
            if key == "sitemap":
                for part in numbers:
                    self._write_part(out, store, part)
            else:
                self._write_listing(out, store, key, listings.get(key), numbers)

    def finish_rebuild(self, out: Batch, store: SiteStore) -> None:
        """The pages every change writes, and no listing page of a listing that no longer exists."""
        listings = {row["key"]: row for row in store.listings()}
        live = {self.landing(k) for k in listings}
        for sub in ("categories", "checklist"):
            for key in self.files.list(f"{sub}/"):
                if key.count("/") == 1 and key.endswith(".html") and key not in live:
                    out.unlink(key)
                    self._unlink_pages(out, key.removesuffix(".html") + "/page/")
        self._write_common(out, store, listings, set())

    # -- internals --------------------------------------------------------------------------------
    def _write_listing(
        self, out: Batch, store: SiteStore, key: str, row: dict[str, Any] | None, numbers: list[int]
    ) -> None:
        landing = self.landing(key)
        if row is None or row["count"] <= 0:
            # the listing lost its last item: its landing and pages go (a new item starts it again);
            # the home page stays, saying there is nothing yet
            if key != ALL:
                out.unlink(landing)
            self._unlink_pages(out, self.numbered(key, 1).removesuffix("1.html"))
            return
        last = page_of(row["last_pos"], self.page_size)
        depth = self.numbered(key, 1).count("/")
        kind, heading = self._heading(key, row)
        paged = self._jinja.get_template("paged.html")
        for page in sorted(set(numbers)):
            if page > last:
                continue
            first = (page - 1) * self.page_size + 1
            entries = store.between(key, first, first + self.page_size - 1, fields=SHOWN)
            older = self.numbered(key, page - 1) if page > 1 else ""
            common = {"site_title": self.title, "kind": kind, "heading": heading, "entries": entries, "older": older}
            out.write(
                self.numbered(key, page),
                paged.render(
                    **common,
                    root="../" * depth,
                    page_no=page,
                    landing=self.landing(key),
                    newer=self.numbered(key, page + 1) if page < last else "",
                ),
            )
            if page == last and key != ALL:
                # the landing is the newest page under the listing's old URL (the home page has its own)
                out.write(
                    landing,
                    paged.render(
                        **common,
                        root="../" * self.landing(key).count("/"),
                        page_no=None,
                        landing=self.landing(key),
                        newer="",
                    ),
                )

    def _heading(self, key: str, row: dict[str, Any]) -> tuple[str, str]:
        if key == ALL:
            return "最新公开", "全部公开信息"
        kind, name = key.split(":", 1)
        if kind == "c":
            return "信息公开目录", name
        return "信息公开事项清单", f"第{name}项 {row.get('label') or ''}".strip()

    def _unlink_pages(self, out: Batch, prefix: str) -> None:
        """The numbered pages ``<prefix><k>.html`` of a listing."""
        for key in self.files.list(prefix):
            if "/" not in key[len(prefix) :] and key.endswith(".html"):
                out.unlink(key)

    def _write_common(self, out: Batch, store: SiteStore, listings: dict[str, Any], parts: set[int]) -> None:
        out.write("style.css", CSS)
        out.write("textsize.js", SCRIPT)
        out.write("search.js", SEARCH_SCRIPT)
        out.write("search.html", self._jinja.get_template("search.html").render(site_title=self.title, root=""))
        categories = sorted(
            (k[2:] for k in listings if k.startswith("c:") and listings[k]["count"] > 0), key=category_key
        )
        cat_dir = [{"name": n, "slug": category_slug(n), "count": listings["c:" + n]["count"]} for n in categories]
        checklist = sorted(
            (int(k[2:]) for k in listings if k.startswith("k:") and listings[k]["count"] > 0),
        )
        check_dir = [
            {"number": n, "count": listings[f"k:{n}"]["count"], "name": listings[f"k:{n}"]["label"] or ""}
            for n in checklist
        ]
        latest = store.newest(ALL, max(LATEST, self.page_size))
        whole = listings.get(ALL)
        has_all = whole is not None and whole["count"] > 0
        out.write(
            "index.html",
            self._jinja.get_template("index.html").render(
                site_title=self.title,
                root="",
                latest=latest[: self.page_size],
                categories=cat_dir,
                checklist=check_dir,
                more=self.numbered(ALL, page_of(whole["last_pos"], self.page_size)) if has_all else "",
            ),
        )
        out.write("feed.xml", self._feed(latest[:LATEST]))
        last_part = page_of(whole["last_pos"], self.sitemap_urls) if has_all else 0
        for part in parts:
            if part <= last_part:
                self._write_part(out, store, part)
        for gone in store.drop_sitemap_parts_after(last_part):
            out.unlink(f"sitemap-{gone}.xml")
        self._write_lists_sitemap(out, listings)
        self._write_sitemap_index(out, store)

    def _write_part(self, out: Batch, store: SiteStore, part: int) -> None:
        first = (part - 1) * self.sitemap_urls + 1
        body, lastmod = store.sitemap_urls(first, first + self.sitemap_urls - 1, _x(self.base_url))
        out.write(f"sitemap-{part}.xml", self._urlset([body] if body else []))
        store.set_sitemap_part(part, lastmod)

    def _write_lists_sitemap(self, out: Batch, listings: dict[str, Any]) -> None:
        urls = [self._url("index.html", listings[ALL]["lastmod"] if ALL in listings else None)]
        for key in sorted(listings):
            if key != ALL and listings[key]["count"] > 0:
                urls.append(self._url(self.landing(key), listings[key]["lastmod"]))
        out.write("sitemap-lists.xml", self._urlset(urls))

    def _write_sitemap_index(self, out: Batch, store: SiteStore) -> None:
        lines = ['<?xml version="1.0" encoding="utf-8"?>', f'<sitemapindex xmlns="{SITEMAP_NS}">']
        lines.append(f"<sitemap><loc>{_x(self.base_url + 'sitemap-lists.xml')}</loc></sitemap>")
        for part, lastmod in store.sitemap_parts().items():
            mod = f"<lastmod>{lastmod}</lastmod>" if lastmod else ""  # stored as a UTC W3C datetime
            lines.append(f"<sitemap><loc>{_x(self.base_url + f'sitemap-{part}.xml')}</loc>{mod}</sitemap>")
        lines.append("</sitemapindex>\n")
        out.write("sitemap.xml", "\n".join(lines))

    def _url(self, path: str, lastmod: str | None) -> str:
        return _sitemap_url(self.base_url, path, lastmod)

    @staticmethod
    def _urlset(urls: list[str]) -> str:
        return "\n".join(
            ['<?xml version="1.0" encoding="utf-8"?>', f'<urlset xmlns="{SITEMAP_NS}">', *urls, "</urlset>\n"]
        )

    def _feed(self, entries: list[dict[str, Any]]) -> bytes:
        """Atom 1.0 (RFC 4287): ids are the pages' URLs, which never change for an item."""
        newest = max((e["updated_at"] for e in entries), default=None)
        updated = rfc3339(datetime.fromisoformat(newest)) if newest else "1970-01-01T00:00:00Z"
        out = [
            '<?xml version="1.0" encoding="utf-8"?>',
            f'<feed xmlns="{ATOM_NS}" xml:lang="zh-CN">',
            f"<id>{_x(self.base_url)}</id>",
            f"<title>{_x(self.title)}</title>",
            f"<updated>{updated}</updated>",
            f'<link rel="self" type="application/atom+xml" href={_a(self.base_url + "feed.xml")}/>',
            f'<link rel="alternate" type="text/html" href={_a(self.base_url + "index.html")}/>',
            f"<author><name>{_x(self.title)}</name></author>",
        ]
        for e in entries:
            out.append(
                _feed_entry(
                    self.base_url,
                    e["path"],
                    e["title"],
                    e["published_at"],
                    e["updated_at"],
                    e.get("department") or "",
                    e["category"],
                    e.get("summary") or "",
                )
            )
        out.append("</feed>\n")
        return "\n".join(out).encode("utf-8")


@functools.lru_cache(maxsize=1024)
def _sitemap_url(base_url: str, path: str, lastmod: str | None) -> str:
    """One ``<url>`` of sitemap-lists.xml; cached, since every change rewrites the file and most of
    its listings' times have not moved."""
    mod = f"<lastmod>{rfc3339(datetime.fromisoformat(lastmod))}</lastmod>" if lastmod else ""
    return f"<url><loc>{_x(base_url + path)}</loc>{mod}</url>"


@functools.lru_cache(maxsize=1024)
def _feed_entry(
    base_url: str, path: str, title: str, published: str, updated: str, department: str, category: str, summary: str
) -> str:
    """One Atom entry; cached, since the feed is rewritten on every publish and its entries seldom change."""
    url = base_url + path
    out = [
        "<entry>",
        f"<id>{_x(url)}</id>",
        f"<title>{_x(title)}</title>",
        f'<link rel="alternate" type="text/html" href={_a(url)}/>',
        f"<published>{rfc3339(datetime.fromisoformat(published))}</published>",
        f"<updated>{rfc3339(datetime.fromisoformat(updated))}</updated>",
    ]
    if department:
        out.append(f"<author><name>{_x(department)}</name></author>")
    out.append(f"<category term={_a(category)}/>")
    if summary:
        out.append(f"<summary>{_x(summary)}</summary>")
    out.append("</entry>")
    return "\n".join(out)
