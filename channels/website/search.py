"""Search of the static site (搜索): a Pagefind index in the folder, queried in the reader's browser.

No server process: ``publisher site search-index`` (or the ``site-search-index`` periodic job) runs
Pagefind's extended build (PyPI ``pagefind[extended]``, which segments Chinese at indexing time; the
browser segments the query with ``Intl.Segmenter``) over the item pages and writes a bundle of small
files — word chunks, one fragment per page, its JavaScript and WebAssembly — that ``search.html``
loads from the site itself. Publishing does not touch the index, so a publish costs the same as
before; a new item is findable after the next build.

Layout::

    search.html  search.js          the search page and its script (written with the other common pages)
    search/current.json             {"bundle": "<id>", "gone": [fragment ids]}, read on every query
    search/<id>/pagefind.js …       the bundle of one build; its fragment/<fragment id>.pf_fragment
                                    holds one page's title, text and 索引号/发文字号
    search/<id>/ids/<xx>.json       exact 索引号/发文字号 → fragment, in 256 files (id_key, id_shard)

What the reader can find is what is live *now*, not what was live when the index was built: the
state keeps which fragment is which item (``search_doc``). An update or a withdrawal of an indexed
item (a 公示期 ending included) deletes its fragment — the page's text, title and URL — and adds
its id to ``gone``, which the page drops from every result list before showing anything. The word
chunks of the bundle still count the item until the next build (they hold words, not text).

A build indexes outside the lock (workers keep publishing), then, under the lock, drops from the
new bundle every page that is not live or has changed since the build began, points
``current.json`` at it and removes the old bundle.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gzip
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from channels.website.files import Batch, translate_errors
from channels.website.store import SiteStore
from publisher.channel import FolderStore, PermanentChannelError

SEARCH_DIR = "search"
POINTER = f"{SEARCH_DIR}/current.json"
#: what Pagefind writes at the head of every (gzipped) fragment file before its JSON
_FRAGMENT_SIGNATURE = b"pagefind_dcd"
#: files of the exact 索引号/发文字号 lookup (ids/00.json … ids/ff.json)
ID_SHARDS = 256

SEARCH_TEMPLATES = {
    "search.html": """\
{% extends "base.html" %}
{% block title %}搜索 - {{ site_title }}{% endblock %}
{% block wasm %} 'wasm-unsafe-eval'{% endblock %}
{% block header_search %}{% endblock %}
{% block head %}<meta name="robots" content="noindex">
<script src="{{ root }}search.js" defer></script>{% endblock %}
{% block main %}
<div class="crumbs"><a href="{{ root }}index.html">首页</a> › 搜索</div>
<h1>搜索</h1>
<form class="search" id="search-form" role="search" action="search.html" method="get">\
<label for="search-q" class="sr">搜索关键词</label>\
<input id="search-q" name="q" type="search" placeholder="标题、正文、索引号或发文字号" autocomplete="off">\
<button type="submit">搜索</button></form>
<p id="search-status" role="status" aria-live="polite">\
<noscript>搜索需要浏览器启用 JavaScript；也可以按\
<a href="{{ root }}index.html#directory">信息公开目录</a>浏览。</noscript></p>
<ol class="hits" id="search-hits"></ol>
<p class="more"><button type="button" id="search-more" hidden>显示更多结果</button></p>
<p class="count">新发布的信息在下一次建立索引后可以搜到；已撤下的信息不会出现在结果中。</p>
{% endblock %}
""",
}

# The search page's script: the site's own file (the CSP allows only 'self'), no framework. It
# reads search/current.json on every query (a withdrawal since the page was opened counts), loads
# the bundle it names, drops the ids listed as gone before loading any result's text, and puts a
# result whose 索引号 or 发文字号 is exactly the query first.
SEARCH_SCRIPT = """\
"use strict";
(function () {
  const root = new URL(".", document.currentScript.src);
  const PAGE = 10;
  let engine = null, bundle = null, hits = [], shown = 0, asked = 0;
  const $ = (id) => document.getElementById(id);
  // the same key and shard as channels/website/search.py (id_key, id_shard)
  const key = (s) =>
    (s || "").replace(/\\s+/g, "").replace(/[\\[【〔(（]/g, "〔").replace(/[\\]】〕)）]/g, "〕").toLowerCase();
  function shard(k) {
    let h = 0x811c9dc5;
    for (const b of new TextEncoder().encode(k)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    return (h % 256).toString(16).padStart(2, "0");
  }

  async function pointer() {
    const res = await fetch(new URL("search/current.json", root), { cache: "no-store" });
    if (res.status === 404) return null;
    if (!res.ok) throw new Error("search/current.json: HTTP " + res.status);
    return res.json();
  }

  async function load(current) {
    if (bundle !== current.bundle) {
      const pf = await import(new URL("search/" + current.bundle + "/pagefind.js", root).href);
      await pf.options({ baseUrl: root.pathname, excerptLength: 40 });
      await pf.init();
      engine = pf;
      bundle = current.bundle;
    }
    return engine;
  }

  function excerpt(html) {
    // Pagefind's excerpt is text with <mark>s; rebuild it from text nodes and marks only
    const p = document.createElement("p");
    p.className = "excerpt";
    const doc = new DOMParser().parseFromString("<p>" + html + "</p>", "text/html");
    for (const node of doc.body.firstChild.childNodes) {
      if (node.nodeName === "MARK") {
        const m = document.createElement("mark");
        m.textContent = node.textContent;
        p.append(m);
      } else {
        p.append(node.textContent);
      }
    }
    return p;
  }

  function item(data) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = data.url;
    a.textContent = (data.meta && data.meta.title) || data.url;
    li.append(a, excerpt(data.excerpt || ""));
    const bits = [];
    const m = data.meta || {};
    if (m.index_no) bits.push("索引号：" + m.index_no);
    if (m.doc_number) bits.push("发文字号：" + m.doc_number);
    if (m.date) bits.push("发布日期：" + m.date);
    if (bits.length) {
      const line = document.createElement("p");
      line.className = "meta-line";
      line.textContent = bits.join("　");
      li.append(line);
    }
    return li;
  }

  // the one document whose 索引号 or 发文字号 the query is, read from its fragment (gzip, after
  // Pagefind's signature) as Pagefind itself would
  async function exact(current, query) {
    const k = key(query);
    if (!/[0-9]/.test(k)) return null;
    const res = await fetch(new URL("search/" + current.bundle + "/ids/" + shard(k) + ".json", root));
    if (!res.ok) return null;
    const id = (await res.json())[k];
    if (!id || (current.gone || []).includes(id)) return null;
    const frag = await fetch(new URL("search/" + current.bundle + "/fragment/" + id + ".pf_fragment", root));
    if (!frag.ok) return null;
    const text = await new Response(frag.body.pipeThrough(new DecompressionStream("gzip"))).text();
    const data = JSON.parse(text.slice(text.indexOf("{")));
    const plain = data.content.replace(/\u200b/g, "");
    return { id, data: async () => ({
      url: root.pathname + data.url.replace(/^\\//, ""), meta: data.meta,
      excerpt: plain.slice(0, 80).replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]),
    }) };
  }

  async function more(query, first) {
    const n = asked;
    const batch = await Promise.all(hits.slice(shown, shown + PAGE).map((h) => h.data()));
    if (n !== asked) return;
    for (const d of batch) $("search-hits").append(item(d));
    shown += batch.length;
    $("search-more").hidden = shown >= hits.length;
  }

  function done(query) {
    $("search-hits").setAttribute("aria-busy", "false");
    $("search-hits").dataset.doneFor = query;
  }

  async function run(query) {
    const n = ++asked;
    const status = $("search-status");
    $("search-hits").replaceChildren();
    $("search-hits").setAttribute("aria-busy", "true");
    $("search-more").hidden = true;
    hits = [];
    shown = 0;
    const url = new URL(location.href);
    if (query) url.searchParams.set("q", query); else url.searchParams.delete("q");
    history.replaceState(null, "", url);
    if (!query.trim()) { status.textContent = "请输入要搜索的词语、索引号或发文字号。"; done(query); return; }
    status.textContent = "正在搜索…";
    try {
      const current = await pointer();
      if (!current) { status.textContent = "本站的搜索索引尚未建立，请稍后再试。"; done(query); return; }
      const pf = await load(current);
      const [found, top] = await Promise.all([pf.search(query), exact(current, query)]);
      if (n !== asked) return;
      const gone = new Set(current.gone || []);
      hits = found.results.filter((h) => !gone.has(h.id) && !(top && h.id === top.id));
      if (top) hits.unshift(top);
      status.textContent = hits.length ? "找到 " + hits.length + " 条结果。" : "没有找到与“" + query + "”相关的信息。";
      await more(query, true);
    } catch (e) {
      if (n === asked) status.textContent = "搜索暂时不可用（" + e.message + "），请稍后再试。";
    }
    if (n === asked) done(query);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = $("search-form"), box = $("search-q");
    if (!form) return;
    let timer = null;
    form.addEventListener("submit", (ev) => { ev.preventDefault(); clearTimeout(timer); run(box.value); });
    box.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => run(box.value), 250); });
    $("search-more").addEventListener("click", () => more(box.value, false));
    const q = new URL(location.href).searchParams.get("q") || "";
    box.value = q;
    if (q) run(q);
  });
})();
"""


@dataclass(frozen=True)
class SearchBuild:
    """What one build did."""

    bundle: str
    indexed: int  #: pages in the bundle that readers can find
    dropped: int  #: pages left out because they changed or went while the build ran
    files: int
    bytes: int
    seconds: float


def _pagefind() -> Any:
    try:
        from pagefind.index import IndexConfig, PagefindIndex
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise PermanentChannelError(
            "the site search needs Pagefind: pip install 'pagefind[extended]' (a dependency of publisher)"
        ) from exc
    return PagefindIndex, IndexConfig


async def _index(site: Path, output: Path) -> None:
    PagefindIndex, IndexConfig = _pagefind()  # noqa: N806
    # the item pages only; a page's data-pagefind-body (the title, catalogue table, body and
    # attachments) is what is indexed, so a 公示期-ended notice (which has none) is left out
    # (the table's labels and the date line are the same on every page: noise in every result)
    config = IndexConfig(
        force_language="zh-cn", output_path=str(output), exclude_selectors=["table.catalogue th", "dl.meta"]
    )
    async with PagefindIndex(config=config) as index:
        await index.add_directory(path=str(site), glob="items/*.html")
        await index.write_files(output_path=str(output))


def _run_async(fn: Callable[..., Any], *args: Any) -> Any:
    """``asyncio.run(fn(*args))`` — in a thread of its own when the caller already runs an event loop
    (Pagefind's Python API is async; the channel's callers are not, but they may sit in one)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(fn(*args))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(fn(*args))).result()


def fragments(bundle: Path) -> dict[str, dict[str, Any]]:
    """The URL and metadata of each fragment of a bundle, by fragment id (the id a result carries)."""
    found = {}
    for path in (bundle / "fragment").glob("*.pf_fragment"):
        data = json.loads(gzip.decompress(path.read_bytes()).removeprefix(_FRAGMENT_SIGNATURE))
        found[path.stem] = {"url": data["url"], "meta": data.get("meta") or {}}
    return found


_OPEN, _CLOSE = re.compile(r"[\[【〔(（]"), re.compile(r"[\]】〕)）]")


def id_key(text: str) -> str:
    """A 索引号 or 发文字号 as looked up: no spaces, any bracket as 〔〕 (readers type [2022] or
    （2022） for 〔2022〕), lower case. search.js normalises the query the same way."""
    return _CLOSE.sub("〕", _OPEN.sub("〔", re.sub(r"\s+", "", text))).lower()


def id_shard(key: str) -> str:
    """Which of the ``ID_SHARDS`` files holds ``key``: FNV-1a (32 bit) of its UTF-8, as search.js."""
    h = 0x811C9DC5
    for b in key.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return f"{h % ID_SHARDS:02x}"


def write_id_shards(bundle: Path, docs: dict[str, dict[str, Any]]) -> None:
    """``ids/<xx>.json``: the fragment of each exact 索引号 and 发文字号. Pagefind ranks by words, and
    a 发文字号 shares all but its number with hundreds of others; this finds the one document."""
    shards: dict[str, dict[str, str]] = {}
    for fragment, doc in docs.items():
        for field in ("index_no", "doc_number"):
            value = doc["meta"].get(field)
            if value:
                key = id_key(value)
                shards.setdefault(id_shard(key), {})[key] = fragment
    (bundle / "ids").mkdir(exist_ok=True)
    for name, table in shards.items():
        (bundle / "ids" / f"{name}.json").write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")


#: Pagefind's own search interfaces, which the site does not use (it has its own search.js)
_UNUSED = ("pagefind-ui.*", "pagefind-component-ui.*", "pagefind-modular-ui.*", "pagefind-highlight.js")


def _item_of(url: str) -> int | None:
    name = url.rsplit("/", 1)[-1]
    stem = name.removesuffix(".html")
    return int(stem) if url.lstrip("/").startswith("items/") and stem.isdigit() else None


class SiteSearch:
    """The search bundle of one site folder and its upkeep; ``locked`` holds the site lock.

    Not ``enabled`` for a site in a bucket: the bundle is built by the Pagefind binary reading the
    folder, so such a site has none; a change then has nothing to drop and a build is refused."""

    def __init__(
        self,
        folder: Path,
        store: SiteStore,
        locked: Callable[[], contextlib.AbstractContextManager[None]],
        *,
        enabled: bool = True,
    ):
        self.folder, self.store, self._locked, self.enabled = folder, store, locked, enabled

    # -- one change (under the lock) --------------------------------------------------------------
    def replaced(self, out: Batch, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        """An update: the indexed text is no longer the page's, so it leaves (found again, with the
        new text, after the next build). A retry of the same version changes nothing."""
        if old is not None and (old.get("version"), old.get("updated_at")) != (new["version"], new["updated_at"]):
            self.forget(out, int(new["item_id"]))

    def forget(self, out: Batch, item_id: int) -> None:
        """An indexed item changed or went: its text leaves the bundle and its id joins ``gone``.

        The files first, then the state: a crash in between is repeated by the retried change."""
        if not self.enabled:
            return
        fragment = self.store.search_fragment(item_id)
        if fragment is None:
            return
        bundle = self.store.get_meta("search_bundle")
        self._write_pointer(out, bundle, [*self.store.search_gone(), fragment])
        if bundle:
            out.unlink(f"{SEARCH_DIR}/{bundle}/fragment/{fragment}.pf_fragment")
        out.sync()
        self.store.search_drop(item_id, fragment)

    # -- the build ---------------------------------------------------------------------------------
    def build(self) -> SearchBuild:
        """Index every live item page into a new bundle and switch readers to it."""
        if not self.enabled:
            raise PermanentChannelError(
                "search of a site in a bucket is not supported yet (the index is built from a site folder); "
                'use storage = "folder" for a searchable site'
            )
        with translate_errors(self.folder):
            return self._build()

    def _build(self) -> SearchBuild:
        started = time.perf_counter()
        with self._locked():
            snapshot = self.store.search_snapshot()
            current = self.store.get_meta("search_bundle")
        self._sweep(current)
        # a random part: a bundle nothing points to yet (or any more) is not found by guessing its name
        bundle = "b" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + secrets.token_hex(6)
        target = self.folder / SEARCH_DIR / bundle
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            _run_async(_index, self.folder, target)
            for pattern in _UNUSED:
                for path in target.glob(pattern):
                    path.unlink()
            docs = fragments(target)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        old: str | None = None
        with self._locked():
            now = self.store.search_snapshot()
            keep: dict[int, str] = {}
            dropped: list[str] = []
            for fragment, doc in docs.items():
                item_id = _item_of(doc["url"])
                if item_id is not None and item_id in snapshot and now.get(item_id) == snapshot[item_id]:
                    keep[item_id] = fragment
                else:
                    dropped.append(fragment)
            out = Batch(FolderStore(self.folder))
            for fragment in dropped:
                out.unlink(f"{SEARCH_DIR}/{bundle}/fragment/{fragment}.pf_fragment")
            write_id_shards(target, {f: docs[f] for f in keep.values()})
            out.sync()
            old = self.store.get_meta("search_bundle")
            self.store.search_swap(bundle, keep, dropped)
            self._write_pointer(out, bundle, dropped)
            out.sync()
            if old and old != bundle and (self.folder / SEARCH_DIR / old).exists():
                # hidden at once (publisher serve and the documented nginx rule refuse dot paths),
                # deleted after the lock is released
                os.replace(self.folder / SEARCH_DIR / old, self.folder / SEARCH_DIR / f".old-{old}")
        for stale in (self.folder / SEARCH_DIR).glob(".old-*"):
            shutil.rmtree(stale, ignore_errors=True)
        files, size = 0, 0
        for path in _files(target):
            files += 1
            size += path.stat().st_size
        return SearchBuild(bundle, len(keep), len(dropped), files, size, time.perf_counter() - started)

    def _sweep(self, current: str | None) -> None:
        """Remove the bundles of builds that were killed (a day old and not current); a build that
        is running elsewhere is younger than that."""
        cutoff = time.time() - 86400
        for path in (self.folder / SEARCH_DIR).glob("b*"):
            if path.is_dir() and path.name != current and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)

    def _write_pointer(self, out: Batch, bundle: str | None, gone: list[str]) -> None:
        if bundle is None:
            return
        data = json.dumps({"bundle": bundle, "gone": sorted(set(gone))}, separators=(",", ":"))
        out.write(POINTER, data)


def _files(folder: Path) -> Iterator[Path]:
    for base, _, names in os.walk(folder):
        for name in names:
            yield Path(base, name)
