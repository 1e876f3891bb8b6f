"""Related items on the item pages (政策解读 ↔ the document it explains, revisions, 中标公告 ↔ 招标公告),
kept both ways as items come and go (docs/catalogue.md).

A post carries its links to the related items live at the time (``Post.catalogue.related``), so its
own page is right when it is written. The other side is the older page: when a newer related item
goes live, is changed or is withdrawn, the older page's "相关文件" section must gain, rename or drop
its link at once, not at its own next update. The channel holds only posts, not the older item's
text, so the section sits between two HTML comments on every item page and is replaced in place
(the rest of the page is left byte for byte as it was). Each entry of the site state keeps its
links (``related``: label, item id, title, and this item's label from the other side); a page's
section shows those whose item is live on this site.
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

from channels.website.files import Batch
from channels.website.store import SiteStore
from publisher.channel import ObjectStore, Post, site_page_path

START, END = "<!--related-->", "<!--/related-->"
_SECTION = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
#: the section as pages written before the markers showed it
_OLD_SECTION = re.compile(r'<section class="related">.*?</section>\n?', re.S)
#: an older page's link back when the newer item did not say what it is from the other side
FALLBACK_LABEL = "相关文件"


def links_of(post: Post) -> list[dict[str, Any]]:
    """The post's links as the site state keeps them."""
    return [
        {"label": r.label, "item_id": r.item_id, "title": r.title, "back": r.back_label or FALLBACK_LABEL}
        for r in post.catalogue.related
    ]


def section(links: list[dict[str, Any]], root: str = "../") -> Markup:
    """The "相关文件" section between its markers (empty between them when there is no link)."""
    if not links:
        return Markup(START + END)
    rows = "".join(
        f'<li>{escape(link["label"])}：<a href="{escape(root + site_page_path(int(link["item_id"])))}">'
        f"{escape(link['title'])}</a></li>\n"
        for link in links
    )
    return Markup(f'{START}<section class="related"><h2>相关文件</h2><ul>\n{rows}</ul></section>{END}')


def splice(page: str, links: list[dict[str, Any]]) -> str:
    """``page`` with its related section replaced by one showing ``links``."""
    new = str(section(links))
    if START in page:
        return _SECTION.sub(lambda _: new, page, count=1)
    # a page written before the markers: drop its old section, put the new one where it stood
    page = _OLD_SECTION.sub("", page, count=1)
    at = page.rfind("</main>")
    return page if at < 0 else page[:at] + new + "\n" + page[at:]


def shown(store: SiteStore, links: list[dict[str, Any]], *, leaving: int | None = None) -> list[dict[str, Any]]:
    """Those of ``links`` whose item is live on the site (and is not ``leaving``, being withdrawn)."""
    out = []
    for link in links:
        found = store.get(int(link["item_id"]))
        if found and found[1] and int(link["item_id"]) != leaving:
            out.append(link)
    return out


def own_section(store: SiteStore, page: str, links: list[dict[str, Any]]) -> str:
    """An item's own page, rendered with all its post's links, showing only those live on the site."""
    return splice(page, shown(store, links)) if links else page


def refresh_others(
    out: Batch,
    files: ObjectStore,
    store: SiteStore,
    item: dict[str, Any],
    before: list[dict[str, Any]],
    *,
    gone: bool = False,
) -> None:
    """Bring the pages of the items ``item`` links (now, or ``before`` this change) up to date with
    it: each gains or renames its link back to ``item``, or drops it when the link went or ``gone``
    (a withdrawal). One small state change and one page each; pages of items not live are left."""
    me = int(item["item_id"])
    now = {} if gone else {int(link["item_id"]): link for link in item.get("related") or []}
    for other in sorted({int(link["item_id"]) for link in before} | set(now)):
        found = store.get(other)
        if not found or not found[1]:
            continue
        entry = found[0]
        links = [link for link in entry.get("related") or [] if int(link["item_id"]) != me]
        if other in now:
            links.append(
                {"label": now[other]["back"], "item_id": me, "title": item["title"], "back": now[other]["label"]}
            )
        if links != (entry.get("related") or []):
            store.set_related(other, links)
        text = files.get(entry["path"])
        if text is None:
            continue  # its page is being written by a publish that has not got here yet
        out.write(entry["path"], splice(text.decode("utf-8"), shown(store, links, leaving=me if gone else None)))
