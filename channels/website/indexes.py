"""The index pages of the site: home page, one listing per category and per checklist item, Atom feed, sitemap.

They list every live item, so they are rewritten from the manifest; only the listings a changed item
appears in are rewritten, unchanged files are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as _x
from xml.sax.saxutils import quoteattr as _a

import jinja2

from channels.website.files import Batch
from channels.website.pages import CSS, SCRIPT, category_key, category_slug, rfc3339

#: how many items the home page and the Atom feed list
LATEST = 50
ATOM_NS = "http://www.w3.org/2005/Atom"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


class SiteIndexes:
    """Writes the indexes of the site in ``folder``, served at ``base_url``."""

    def __init__(self, folder: Path, base_url: str, title: str, jinja: jinja2.Environment) -> None:
        self.folder, self.base_url, self.title, self._jinja = folder, base_url, title, jinja

    def regenerate(
        self,
        out: Batch,
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

        out.write(self.folder / "style.css", CSS)
        out.write(self.folder / "textsize.js", SCRIPT)
        listing = self._jinja.get_template("listing.html")
        for name in categories:
            path = self.folder / "categories" / f"{category_slug(name)}.html"
            if name in by_category:
                out.write(
                    path,
                    listing.render(
                        site_title=self.title,
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
                        site_title=self.title,
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
            for n, v in sorted(by_category.items(), key=lambda kv: category_key(kv[0]))
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
                site_title=self.title,
                root="",
                latest=entries[:LATEST],
                categories=cat_dir,
                checklist=check_dir,
            ),
        )
        out.write(self.folder / "feed.xml", self._feed(entries[:LATEST]))
        out.write(self.folder / "sitemap.xml", self._sitemap(entries, by_category, by_checklist))

    def _remove_stale_listings(self, out: Batch, by_category: dict[str, Any], by_checklist: dict[int, Any]) -> None:
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
            url = self.base_url + e["path"]
            out += [
                "<entry>",
                f"<id>{_x(url)}</id>",
                f"<title>{_x(e['title'])}</title>",
                f'<link rel="alternate" type="text/html" href={_a(url)}/>',
                f"<published>{rfc3339(datetime.fromisoformat(e['published_at']))}</published>",
                f"<updated>{rfc3339(datetime.fromisoformat(e['updated_at']))}</updated>",
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
            mod = f"<lastmod>{rfc3339(datetime.fromisoformat(lastmod))}</lastmod>" if lastmod else ""
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
