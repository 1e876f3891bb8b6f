"""Search of the static site (搜索): an index of our own, static files queried in the reader's browser.

No server process: ``publisher site search-index`` (or the ``site-search-index`` periodic job) reads
every live item page through the site's object store (a folder or a bucket alike), indexes the
marked part of each (channels/website/searchindex.py: CJK bigrams, ranking precomputed as one
impact byte per term and page) and writes a bundle of small files through the same store, which
``search.html`` (channels/website/searchpage.py) loads from the site itself. Publishing does not touch
the index, so a publish costs the same as before; a new item is findable after the next build.

Layout::

    search.html  search.js          the search page and its script (written with the other common pages)
    search/current.json             {"bundle": "<id>", "gone": [page numbers], "shards": {"dict": <files>,
                                    "ids": <files>}}, read on every query
    search/<id>/dict/ post/ doc/ ids/   the bundle of one build (searchindex.py); doc/<n>.json holds
                                    one page's title, first text and 索引号/发文字号

What the reader can find is what is live *now*, not what was live when the index was built: the
state keeps which page number is which item (``search_doc``; the column is still called fragment).
An update or a withdrawal of an indexed item (a 公示期 ending included) deletes its ``doc/<n>.json``
— the page's text, title and URL — and adds its number to ``gone``, which the page drops from every
result list before showing anything. The postings still count the item until the next build (they
hold page numbers, not text).

A build indexes outside the lock (workers keep publishing), then, under the lock, drops from the
new bundle every page that is not live or has changed since the build began, points
``current.json`` at it and hides the old bundle; the old one is deleted after the lock is released.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.website.files import Batch, translate_errors
from channels.website.searchindex import (
    DICT_SHARD_TERMS,
    DICT_SHARDS,
    EXCERPT_CHARS,
    ID_SHARD_KEYS,
    ID_SHARDS,
    IndexBuilder,
    dict_entry,
    dict_shard_number,
    id_key,
    id_shard,
    page_text,
    shard_count,
)
from channels.website.store import SiteStore
from publisher.channel import FolderStore, ObjectStore, site_page_path

SEARCH_DIR = "search"
POINTER = f"{SEARCH_DIR}/current.json"
#: item pages read (or files written) per round of the thread pool
_CHUNK = 256
#: threads that read pages and write files of a site in a bucket
_THREADS = 8
_STAMP = "%Y%m%dT%H%M%S"

#: ``progress(what, done, total)``: "pages" read and indexed, then "terms" written
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SearchBuild:
    """What one build did."""

    bundle: str
    indexed: int  #: pages in the bundle that readers can find
    dropped: int  #: pages left out because they changed or went while the build ran
    files: int
    bytes: int
    seconds: float


@dataclass
class _Written:
    """The bundle as written outside the lock: page numbers by item, exact-number keys, sizes."""

    pages: dict[int, int]
    ids: list[tuple[str, int, int]]  #: (key, page number, item id)
    dict_shards: int = 1
    files: int = 0
    bytes: int = 0


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    for at in range(0, len(items), size):
        yield items[at : at + size]


class SiteSearch:
    """The search bundle of one site (in a folder or a bucket) and its upkeep; ``locked`` holds the site
    lock; ``owe_purge(keys)`` queues a CDN purge of what a build changed, in its transaction (a change's
    own writes, search files included, are purged with the change's)."""

    def __init__(
        self,
        files: ObjectStore,
        store: SiteStore,
        locked: Callable[[], contextlib.AbstractContextManager[None]],
        owe_purge: Callable[[set[str]], None] = lambda keys: None,
    ) -> None:
        self.files, self.store, self._locked, self._owe_purge = files, store, locked, owe_purge

    # -- one change (under the lock) --------------------------------------------------------------
    def replaced(self, out: Batch, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        """An update: the indexed text is no longer the page's, so it leaves (found again, with the
        new text, after the next build). A retry of the same version changes nothing."""
        if old is not None and (old.get("version"), old.get("updated_at")) != (new["version"], new["updated_at"]):
            self.forget(out, int(new["item_id"]))

    def forget(self, out: Batch, item_id: int) -> None:
        """An indexed item changed or went: its text leaves the bundle and its number joins ``gone``.

        The files first, then the state: a crash in between is repeated by the retried change."""
        number = self.store.search_fragment(item_id)
        if number is None:
            return
        bundle = self.store.get_meta("search_bundle")
        if bundle:
            out.unlink(f"{SEARCH_DIR}/{bundle}/doc/{number}.json")
        self._write_pointer(out, bundle, [*self.store.search_gone(), number])
        out.sync()
        self.store.search_drop(item_id, number)

    # -- the build ---------------------------------------------------------------------------------
    def build(self, progress: Progress | None = None) -> SearchBuild:
        """Index every live item page into a new bundle and switch readers to it."""
        with translate_errors(self.files.where):
            return self._build(progress or (lambda what, done, total: None))

    def _build(self, progress: Progress) -> SearchBuild:
        started = time.perf_counter()
        with self._locked():
            snapshot = self.store.search_snapshot()
            published = {int(e["item_id"]): str(e["published_at"]) for e in self.store.live_entries()}
            current = self.store.get_meta("search_bundle")
        self._sweep(current)
        # a random part: a bundle nothing points to yet (or any more) is not found by guessing its name
        bundle = "b" + datetime.now(UTC).strftime(_STAMP) + secrets.token_hex(6)
        # newest first: search.js orders equal scores by page number
        order = sorted(snapshot, key=lambda i: (published.get(i, ""), i), reverse=True)
        try:
            written = self._write_bundle(bundle, order, progress)
        except BaseException:
            self._remove(bundle)
            raise
        with self._locked():
            now = self.store.search_snapshot()
            keep = {i: str(n) for i, n in written.pages.items() if now.get(i) == snapshot[i]}
            dropped = [str(n) for i, n in written.pages.items() if i not in keep]
            out = Batch(self.files)
            for number in dropped:
                out.unlink(f"{SEARCH_DIR}/{bundle}/doc/{number}.json")
            count = shard_count(len(written.ids), ID_SHARD_KEYS, ID_SHARDS)
            shards: dict[str, dict[str, int]] = {f"{n:02x}": {} for n in range(count)}
            for key, number, item_id in written.ids:
                if item_id in keep:
                    shards[id_shard(key, count)][key] = number
            for name, table in shards.items():
                out.write(f"{SEARCH_DIR}/{bundle}/ids/{name}.json", json.dumps(table, ensure_ascii=False))
            out.sync()
            old = self.store.get_meta("search_bundle")
            self.store.search_swap(bundle, keep, dropped)
            self.store.set_meta("search_shards", json.dumps({"dict": written.dict_shards, "ids": count}))
            self._write_pointer(out, bundle, dropped)
            out.sync()
            # a CDN that kept the old current.json would send readers to a bundle about to be deleted
            self._owe_purge({POINTER})
            if old and old != bundle:
                self._hide(old)
        if old and old != bundle and not isinstance(self.files, FolderStore):
            self._remove(old)
        self._sweep(bundle)
        return SearchBuild(bundle, len(keep), len(dropped), written.files, written.bytes, time.perf_counter() - started)

    def _write_bundle(self, bundle: str, order: list[int], progress: Progress) -> _Written:
        """Read the pages, write one doc/ file each, then the dictionary and the postings files."""
        prefix = f"{SEARCH_DIR}/{bundle}/"
        index = IndexBuilder()
        written = _Written({}, [])

        put = self._bundle_writer(prefix)

        # a bucket answers each request in milliseconds: several at once; a folder's reads and writes
        # are quicker than handing them to threads
        threads = 1 if isinstance(self.files, FolderStore) else _THREADS
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            run = map if threads == 1 else pool.map

            def put_all(files: Iterable[tuple[str, bytes]]) -> None:
                batch = list(files)
                for _ in run(lambda f: put(*f), batch):
                    pass
                written.files += len(batch)
                written.bytes += sum(len(data) for _, data in batch)

            done = 0
            for chunk in _chunks(order):
                pages = run(lambda i: self.files.get(site_page_path(i)), chunk)
                docs = []
                for item_id, html in zip(chunk, pages, strict=True):
                    found = page_text(html) if html else None
                    if found is None:
                        continue  # gone meanwhile, or a 公示期-ended notice (no marked part)
                    number = index.add(found)
                    written.pages[item_id] = number
                    meta = found.meta
                    for field in ("index_no", "doc_number"):
                        if meta.get(field):
                            written.ids.append((id_key(meta[field]), number, item_id))
                    doc = {
                        "url": site_page_path(item_id),
                        "title": found.title,
                        "date": meta.get("date", ""),
                        "index_no": meta.get("index_no", ""),
                        "doc_number": meta.get("doc_number", ""),
                        "text": found.text[:EXCERPT_CHARS],
                    }
                    docs.append((f"doc/{number}.json", json.dumps(doc, ensure_ascii=False).encode()))
                put_all(docs)
                done += len(chunk)
                progress("pages", done, len(order))

            # shard by shard: one shard's entries in memory at a time, each postings list freed once written
            terms = len(index.postings)
            written.dict_shards = count = shard_count(terms, DICT_SHARD_TERMS, DICT_SHARDS)
            by_shard: list[list[str]] = [[] for _ in range(count)]
            for term in index.postings:
                by_shard[dict_shard_number(term, count)].append(term)
            posts: list[tuple[str, bytes]] = []
            numbered = at = 0
            for number, names in enumerate(by_shard):
                table: dict[str, Any] = {}
                for term, df, data in index.encoded(names):
                    entry = table[term] = dict_entry(df, data, numbered)
                    if isinstance(entry[1], int):
                        posts.append((f"post/{numbered}.bin", data))
                        numbered += 1
                posts.append(
                    (f"dict/{number:03x}.json", json.dumps(table, ensure_ascii=False, separators=(",", ":")).encode())
                )
                if len(posts) >= _CHUNK:
                    put_all(posts)
                    posts = []
                at += len(names)
                if number % 256 == 255:
                    progress("terms", at, terms)
            put_all(posts)
            progress("terms", terms, terms)
        if isinstance(self.files, FolderStore):
            os.sync()
        return written

    def _bundle_writer(self, prefix: str) -> Callable[[str, bytes], None]:
        """How the files of a new bundle are written. Through the store, except in a folder: there
        each put is a temporary file and an fsync (~3 ms a file, most of a 100,000-page build), which
        a bundle does not need — no reader sees it before current.json points to it, and one
        ``os.sync()`` at the end makes all of it durable before that."""
        if not isinstance(self.files, FolderStore):
            return lambda key, data: self.files.put(prefix + key, data, durable=False)
        base = self.files.path(prefix)
        made: set[str] = set()

        def write(key: str, data: bytes) -> None:
            folder = key.rpartition("/")[0]
            if folder not in made:
                (base / folder).mkdir(parents=True, exist_ok=True)
                made.add(folder)
            fd = os.open(base / key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)

        return write

    # -- bundles -----------------------------------------------------------------------------------
    def _bundles(self) -> set[str]:
        """The names under search/ (bundles, and hidden old ones in a folder)."""
        if isinstance(self.files, FolderStore):
            base = self.files.path(SEARCH_DIR)
            return {p.name for p in base.iterdir() if p.is_dir()} if base.is_dir() else set()
        return {key.split("/")[1] for key in self.files.list(f"{SEARCH_DIR}/") if key.count("/") >= 2}

    def _hide(self, bundle: str) -> None:
        """Under the lock, in a folder: the old bundle out of readers' reach at once (publisher serve
        and the documented nginx rule refuse dot paths), deleted after the lock is released. In a
        bucket it is deleted after the lock: it holds no text a reader may no longer see (each change
        deleted its doc/ file there too)."""
        if isinstance(self.files, FolderStore):
            path = self.files.path(f"{SEARCH_DIR}/{bundle}")
            if path.exists():
                os.replace(path, path.with_name(f".old-{bundle}"))

    def _remove(self, name: str) -> None:
        if isinstance(self.files, FolderStore):
            shutil.rmtree(self.files.path(f"{SEARCH_DIR}/{name}"), ignore_errors=True)
            return
        with concurrent.futures.ThreadPoolExecutor(_THREADS) as pool:
            for _ in pool.map(self.files.delete, self.files.list(f"{SEARCH_DIR}/{name}/")):
                pass

    def _sweep(self, current: str | None) -> None:
        """Remove hidden old bundles, and those of builds that were killed (a day old by their name
        and not current); a build that is running elsewhere is younger than that."""
        cutoff = "b" + (datetime.now(UTC) - timedelta(days=1)).strftime(_STAMP)
        for name in self._bundles():
            if name.startswith(".old-") or (name.startswith("b") and name != current and name[:16] < cutoff):
                self._remove(name)

    def _write_pointer(self, out: Batch, bundle: str | None, gone: list[str]) -> None:
        if bundle is None:
            return
        numbers = sorted({int(g) for g in gone if str(g).isdigit()})
        shards = json.loads(self.store.get_meta("search_shards") or '{"dict": 1, "ids": 1}')
        out.write(POINTER, json.dumps({"bundle": bundle, "gone": numbers, "shards": shards}, separators=(",", ":")))
