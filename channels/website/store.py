"""The site's state: what is live and where each item is listed.

One publish, update or withdrawal touches a handful of rows (its entry, one placement per listing it
appears in, its file references), never the whole set, so its cost does not grow with the site.

* ``site_entry`` — one row per item: the fields the index pages show (``data``, JSON), ``live`` (0
  while a withdrawal is half done: its placements are kept so a retried withdrawal knows what to
  rewrite), ``validity`` (有效性, indexed: the 现行有效 rules library reads by it), and the page's
  ``path`` and ``updated`` time again as columns, which a sitemap file reads by the thousand.
* ``site_listing`` — one row per listing (``all``, ``c:<category>``, ``k:<checklist number>``): the
  last position handed out, the count of live items, the checklist name, when it last changed.
* ``site_placement`` — (listing, position, item): positions are handed out in the order items go live
  and never move, so page *k* of a listing is positions ``(k-1)*size+1 .. k*size`` and a publish
  touches only the newest page (see docs/channels/website.md, "Pagination").
* ``site_file_ref`` — which media/attachment files each item uses (to collect a withdrawn item's files).
* ``site_sitemap_part`` — the lastmod of each numbered sitemap file, for the sitemap index.
* ``site_meta`` — the migration mark, the checkpoint of ``publisher site rebuild``, the current search bundle.
* ``site_search_doc`` — which page number ("fragment") of the current search bundle is which item;
  ``site_search_gone`` — the numbers dropped since the bundle was built (channels.website.search).
  A site in a bucket has them from migration 0024_site_search.
* ``site_purge`` — the CDN purges the site owes (``[channels.X.cdn]``, channels.website.cdn): one row
  per URL, queued in the change's own transaction, deleted once the CDN accepted it; its attempts
  and last failure (the error's class, the service's code, the message) kept for the retry and the
  admins. A site in a bucket has it from migration 0023.
* ``site_lock`` — one row per site: the row a change locks (PostgreSQL) to take its turn.

Every row carries ``site``, so one database can hold several sites. Where the state lives:

* **a site in a folder** (the default): ``.site.sqlite3`` in the folder (``site`` is ``""``), WAL with
  ``synchronous=FULL``; a change takes the folder's ``flock`` on ``.lock`` and ``BEGIN IMMEDIATE``.
* **a site in a bucket** (``storage = "s3"``): the publisher's own store (migration 0019), reached
  through ``ChannelEnv.sql``, so workers on several hosts share it; ``site`` is the channel's name.
  A change takes its turn with ``SELECT … FOR UPDATE`` on its ``site_lock`` row on PostgreSQL and
  ``BEGIN IMMEDIATE`` on SQLite, held for the whole change (the pages written meanwhile included),
  so no two hosts interleave their writes: no lost update. A process killed mid-change drops its
  connection, the database rolls the change back and frees the row.

Every method runs inside :meth:`SiteStore.locked`: one transaction, committed when the change ends;
:meth:`SiteStore.checkpoint` commits mid-way (a withdrawal commits "no longer listed" before its page
goes). The SQL is written once for both engines (``?`` placeholders; the few functions that differ
come from :class:`_Dialect`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from channels.website.purges import PurgeRows
from publisher.channel import PermanentChannelError, SharedSql, TransientChannelError

STATE = ".site.sqlite3"
ALL = "all"

#: the state's tables in a site folder's own file; in the publisher's store they come from migration 0019.
#: site_entry keeps its rowid: its rows (the JSON) are large, which WITHOUT ROWID tables handle badly
_SCHEMA = """
CREATE TABLE IF NOT EXISTS site_entry (
    site TEXT NOT NULL, item_id INTEGER NOT NULL, data TEXT NOT NULL, version INTEGER NOT NULL,
    live INTEGER NOT NULL, validity TEXT, path TEXT, updated TEXT, PRIMARY KEY (site, item_id)
);
CREATE TABLE IF NOT EXISTS site_listing (
    site TEXT NOT NULL, key TEXT NOT NULL, last_pos INTEGER NOT NULL, count INTEGER NOT NULL, label TEXT,
    lastmod TEXT, PRIMARY KEY (site, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS site_placement (
    site TEXT NOT NULL, listing TEXT NOT NULL, pos INTEGER NOT NULL, item_id INTEGER NOT NULL,
    PRIMARY KEY (site, listing, pos)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS site_placement_item ON site_placement (site, item_id);
CREATE TABLE IF NOT EXISTS site_file_ref (
    site TEXT NOT NULL, file TEXT NOT NULL, item_id INTEGER NOT NULL, PRIMARY KEY (site, file, item_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS site_file_ref_item ON site_file_ref (site, item_id);
CREATE TABLE IF NOT EXISTS site_sitemap_part (
    site TEXT NOT NULL, part INTEGER NOT NULL, lastmod TEXT, PRIMARY KEY (site, part)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS site_meta (
    site TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (site, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS site_entry_validity ON site_entry (site, validity) WHERE live = 1;
CREATE TABLE IF NOT EXISTS site_search_doc (
    site TEXT NOT NULL, item_id INTEGER NOT NULL, fragment TEXT NOT NULL, PRIMARY KEY (site, item_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS site_search_gone (
    site TEXT NOT NULL, fragment TEXT NOT NULL, PRIMARY KEY (site, fragment)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS site_purge (
    site TEXT NOT NULL, url TEXT NOT NULL, queued TEXT NOT NULL, due TEXT NOT NULL, attempts INTEGER NOT NULL,
    kind TEXT, code TEXT, error TEXT, PRIMARY KEY (site, url)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS site_purge_due ON site_purge (site, due);
"""

#: a folder's state file of earlier versions (tables without ``site``), copied over on first use
_OLD_TABLES = {
    "entry": "site_entry (site, item_id, data, version, live, validity, path, updated) "
    "SELECT '', item_id, data, version, live, json_extract(data, '$.validity'), json_extract(data, '$.path'), "
    "json_extract(data, '$.updated_at')",
    "listing": "site_listing (site, key, last_pos, count, label, lastmod) "
    "SELECT '', key, last_pos, count, label, lastmod",
    "placement": "site_placement (site, listing, pos, item_id) SELECT '', listing, pos, item_id",
    "file_ref": "site_file_ref (site, file, item_id) SELECT '', file, item_id",
    "sitemap_part": "site_sitemap_part (site, part, lastmod) SELECT '', part, lastmod",
    "meta": "site_meta (site, key, value) SELECT '', key, value",
    "search_doc": "site_search_doc (site, item_id, fragment) SELECT '', item_id, fragment",
    "search_gone": "site_search_gone (site, fragment) SELECT '', fragment",
}

#: a listing position that a change touched: (listing key, position)
Spot = tuple[str, int]


def _row(entry: dict[str, Any]) -> tuple[str, int, str | None, str, str]:
    """The ``site_entry`` columns after ``item_id``: the JSON, the version, and those read without it."""
    data = json.dumps(entry, ensure_ascii=False)
    return data, int(entry.get("version", 0)), entry.get("validity"), entry["path"], entry["updated_at"]


def listings_of(entry: dict[str, Any]) -> list[str]:
    """The listings an entry appears in: the whole site, its category and its checklist item."""
    keys = [ALL, "c:" + entry["category"]]
    if entry.get("checklist_item"):
        keys.append(f"k:{int(entry['checklist_item'])}")
    return keys


class _Dialect:
    """What differs between SQLite and PostgreSQL in the state's SQL."""

    def __init__(self, name: str) -> None:
        self.pg = name == "postgresql"

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.pg else text

    def field(self, column: str, name: str) -> str:
        return f"({column}::jsonb ->> '{name}')" if self.pg else f"json_extract({column}, '$.{name}')"

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})" if self.pg else f"max({a}, {b})"


class _Turn:
    """A site's turn and the transaction of its state: the connection, the lock, BEGIN and COMMIT."""

    def __init__(self, folder: Path, *, shared: SharedSql | None = None, site: str = "") -> None:
        self.path = folder / STATE
        self.shared = shared
        self.site = site if shared is not None else ""
        self.dialect = _Dialect(shared.dialect if shared is not None else "sqlite")
        self._conn: Any = None  # the connection of the change in progress (a folder's: kept open)
        self._mutex = threading.Lock()  # the threads of one process take turns before the database
        self._lock_row = False
        self._relaxed = False  # a folder's state: synchronous=NORMAL until this transaction ends

    # -- the lock and the transaction ---------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, folder_lock: Any = None) -> Iterator[None]:
        """Take this site's turn and open its transaction; commit at the end, roll back on an error.

        ``folder_lock`` (a context manager: the folder's flock) is taken first for a folder's state."""
        with self._mutex, self._store_errors(), folder_lock or contextlib.nullcontext(), self._connection() as conn:
            self._conn = conn
            try:
                self._full_sync()
                self._begin()
                try:
                    yield
                except BaseException:
                    with contextlib.suppress(Exception):
                        self._exec("ROLLBACK")
                    raise
                self._exec("COMMIT")
            finally:
                with contextlib.suppress(sqlite3.Error):  # if not now, before the next transaction
                    self._full_sync()
                if self.shared is not None:
                    self._conn = None

    @contextlib.contextmanager
    def _store_errors(self) -> Iterator[None]:
        """The publisher's store failing under a shared state (connection lost, a lock wait timed
        out) is worth a retry: the change was rolled back with the connection."""
        if self.shared is None:
            yield
            return
        try:
            yield
        except self.shared.errors as exc:
            raise TransientChannelError(
                f"the site's state in the publisher's store failed ({type(exc).__name__}: {exc}); will retry"
            ) from exc

    def checkpoint(self, *, tidying: bool = False) -> None:
        """Commit what is done so far and take the turn again (a folder's flock is held throughout; the
        store's row lock is let go for that moment). Safe because what follows reads the state afresh,
        and the pipeline never runs two changes of one item at once (one delivery per item and channel).

        ``tidying``: what the change still writes to the state may be lost to a power cut without harm
        (:meth:`SiteStore.forget`), so its commit does not wait for the disk: ``synchronous=NORMAL``
        for that one transaction of a folder's state (WAL keeps it atomic; a later commit makes it
        durable), ``synchronous_commit`` off for it on PostgreSQL. This commit still waits."""
        self._exec("COMMIT")
        if tidying and not self.dialect.pg and self.shared is None:
            self._exec("PRAGMA synchronous=NORMAL")  # not allowed inside a transaction
            self._relaxed = True
        self._begin()
        if tidying and self.dialect.pg:
            self._exec("SET LOCAL synchronous_commit TO OFF")

    def _full_sync(self) -> None:
        """Back to waiting for the disk on every commit after a tidying transaction (checkpoint)."""
        if self._relaxed:
            self._exec("PRAGMA synchronous=FULL")
            self._relaxed = False

    def _begin(self) -> None:
        if self.dialect.pg:
            self._exec("BEGIN")
            self._exec("SELECT site FROM site_lock WHERE site = ? FOR UPDATE", (self.site,))
        else:
            self._exec("BEGIN IMMEDIATE")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        if self.shared is not None:
            with self.shared.connect() as conn:
                if self.dialect.pg and not self._lock_row:  # the row to lock, made once, outside a transaction
                    conn.execute("INSERT INTO site_lock (site) VALUES (%s) ON CONFLICT (site) DO NOTHING", (self.site,))
                    self._lock_row = True
                yield conn
            return
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(_SCHEMA)
                self._upgrade(conn)
            except sqlite3.DatabaseError as exc:
                raise PermanentChannelError(
                    f"the site state {self.path} cannot be opened ({exc}); restore it from a backup "
                    "or delete it and run `publisher site rebuild`"
                ) from exc
            self._conn = conn
        yield self._conn

    @staticmethod
    def _upgrade(conn: sqlite3.Connection) -> None:
        """Copy a state file of earlier versions (one site, tables without ``site``) into today's tables."""
        old = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} & set(_OLD_TABLES)
        if not old:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in sorted(old):
                conn.execute(f"INSERT INTO {_OLD_TABLES[table]} FROM {table}")
                conn.execute(f"DROP TABLE {table}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def conn(self) -> Any:
        """The connection of the change in progress; a folder's state may also be read outside one."""
        if self._conn is None:
            if self.shared is not None:
                raise RuntimeError("the shared site state is read inside SiteStore.locked() only")
            with self._connection():
                pass
        return self._conn

    def close(self) -> None:
        if self.shared is None and self._conn is not None:
            self._conn.close()
            self._conn = None

    def _exec(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        return self.conn.execute(self.dialect.sql(sql), tuple(params))

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.conn.cursor().executemany(self.dialect.sql(sql), rows)


class SiteStore(PurgeRows, _Turn):
    """The state of one site; every method is called inside :meth:`locked`."""

    # -- reading ----------------------------------------------------------------------------------
    def get(self, item_id: int) -> tuple[dict[str, Any], bool] | None:
        row = self._exec("SELECT data, live FROM site_entry WHERE site = ? AND item_id = ?", (self.site, item_id))
        row = row.fetchone()
        return (json.loads(row[0]), bool(row[1])) if row else None

    def live_entries(self) -> Iterator[dict[str, Any]]:
        rows = self._exec("SELECT data FROM site_entry WHERE site = ? AND live = 1 ORDER BY item_id", (self.site,))
        for (data,) in rows.fetchall():
            yield json.loads(data)

    def in_force(self, validity: str) -> list[dict[str, Any]]:
        """The live entries whose 有效性 is ``validity`` (an index on it: not a scan of the site)."""
        rows = self._exec(
            "SELECT data FROM site_entry WHERE site = ? AND validity = ? AND live = 1", (self.site, validity)
        )
        return [json.loads(data) for (data,) in rows.fetchall()]

    def listing(self, key: str) -> dict[str, Any] | None:
        row = self._exec(
            "SELECT last_pos, count, label, lastmod FROM site_listing WHERE site = ? AND key = ?", (self.site, key)
        ).fetchone()
        return dict(zip(("last_pos", "count", "label", "lastmod"), row, strict=True)) if row else None

    def listings(self) -> list[dict[str, Any]]:
        rows = self._exec(
            "SELECT key, last_pos, count, label, lastmod FROM site_listing WHERE site = ? ORDER BY key", (self.site,)
        )
        return [dict(zip(("key", "last_pos", "count", "label", "lastmod"), r, strict=True)) for r in rows.fetchall()]

    def between(
        self, key: str, first: int, last: int, *, newest_first: bool = True, fields: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """The live entries at positions ``first..last`` of a listing; only ``fields`` of each when
        given (picked out by the database: a full page costs no JSON decoding in Python)."""
        order = "DESC" if newest_first else "ASC"
        return self._entries(
            f"AND p.listing = ? AND p.pos BETWEEN ? AND ? AND e.live = 1 ORDER BY p.pos {order}",
            (key, first, last),
            fields,
        )

    def newest(self, key: str, n: int, *, fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return self._entries("AND p.listing = ? AND e.live = 1 ORDER BY p.pos DESC LIMIT ?", (key, n), fields)

    def _entries(self, where: str, params: tuple[Any, ...], fields: tuple[str, ...]) -> list[dict[str, Any]]:
        join = "FROM site_placement p JOIN site_entry e ON e.site = p.site AND e.item_id = p.item_id WHERE p.site = ?"
        if not fields:
            rows = self._exec(f"SELECT e.data {join} {where}", (self.site, *params))
            return [json.loads(data) for (data,) in rows.fetchall()]
        picked = ", ".join(self.dialect.field("e.data", f) for f in fields if f.isidentifier())
        rows = self._exec(f"SELECT {picked} {join} {where}", (self.site, *params))
        return [dict(zip(fields, row, strict=True)) for row in rows.fetchall()]

    def sitemap_urls(self, first: int, last: int, prefix: str) -> tuple[str, str | None]:
        """The ``<url>`` elements of the whole-site positions ``first..last``, oldest first, and their
        newest lastmod. Built by the database: a sitemap file is rewritten on every publish and holds up
        to 50,000 URLs. ``prefix`` (the escaped base URL) and the page paths (``items/<id>.html``, made
        by site_page_path) need no escaping; the times are W3C datetimes in UTC as stored."""
        mod = "e.updated"
        url = f"'<url><loc>' || CAST(? AS TEXT) || e.path || '</loc><lastmod>' || {mod} || '</lastmod></url>'"
        where = (
            "FROM site_placement p JOIN site_entry e ON e.site = p.site AND e.item_id = p.item_id "
            "WHERE p.site = ? AND p.listing = ? AND p.pos BETWEEN ? AND ? AND e.live = 1"
        )
        if self.dialect.pg:
            sql = f"SELECT string_agg({url}, chr(10) ORDER BY p.pos), max({mod}) {where}"
        else:
            sql = (
                f"SELECT group_concat(u, char(10)), max(m) FROM (SELECT {url} AS u, {mod} AS m {where} ORDER BY p.pos)"
            )
        row = self._exec(sql, (prefix, self.site, ALL, first, last)).fetchone()
        return row[0] or "", row[1]

    def unused_files(self, candidates: Iterable[str]) -> list[str]:
        """Those of ``candidates`` no live item refers to."""
        unused = []
        for f in sorted(set(candidates)):
            row = self._exec(
                "SELECT 1 FROM site_file_ref r JOIN site_entry e ON e.site = r.site AND e.item_id = r.item_id "
                "WHERE r.site = ? AND r.file = ? AND e.live = 1",
                (self.site, f),
            ).fetchone()
            if row is None:
                unused.append(f)
        return unused

    def sitemap_parts(self) -> dict[int, str | None]:
        rows = self._exec("SELECT part, lastmod FROM site_sitemap_part WHERE site = ? ORDER BY part", (self.site,))
        return {int(p): m for p, m in rows.fetchall()}

    def get_meta(self, key: str) -> str | None:
        row = self._exec("SELECT value FROM site_meta WHERE site = ? AND key = ?", (self.site, key)).fetchone()
        return row[0] if row else None

    def search_snapshot(self) -> dict[int, tuple[int, str]]:
        """(version, updated_at) of every live item: what a search build may keep if unchanged."""
        rows = self._exec("SELECT item_id, version, updated FROM site_entry WHERE site = ? AND live = 1", (self.site,))
        return {int(i): (int(v), str(u)) for i, v, u in rows.fetchall()}

    def search_fragment(self, item_id: int) -> str | None:
        row = self._exec(
            "SELECT fragment FROM site_search_doc WHERE site = ? AND item_id = ?", (self.site, item_id)
        ).fetchone()
        return row[0] if row else None

    def search_gone(self) -> list[str]:
        rows = self._exec("SELECT fragment FROM site_search_gone WHERE site = ? ORDER BY fragment", (self.site,))
        return [r[0] for r in rows.fetchall()]

    # -- changing (inside the change's transaction) -----------------------------------------------
    def put(self, entry: dict[str, Any]) -> list[Spot]:
        """Make ``entry`` live; the positions whose pages must be rewritten (old and new)."""
        item_id = int(entry["item_id"])
        row = self._exec("SELECT live FROM site_entry WHERE site = ? AND item_id = ?", (self.site, item_id)).fetchone()
        was_live = bool(row and row[0])
        self._exec(
            "INSERT INTO site_entry (site, item_id, data, version, live, validity, path, updated) "
            "VALUES (?, ?, ?, ?, 1, ?, ?, ?) "
            "ON CONFLICT (site, item_id) DO UPDATE SET data = excluded.data, version = excluded.version, live = 1, "
            "validity = excluded.validity, path = excluded.path, updated = excluded.updated",
            (self.site, item_id, *_row(entry)),
        )
        placed = dict(
            self._exec(
                "SELECT listing, pos FROM site_placement WHERE site = ? AND item_id = ?", (self.site, item_id)
            ).fetchall()
        )
        wanted = listings_of(entry)
        spots: list[Spot] = []
        for key, pos in placed.items():
            if key not in wanted:  # moved to another category or checklist item
                self._exec(
                    "DELETE FROM site_placement WHERE site = ? AND listing = ? AND pos = ?", (self.site, key, pos)
                )
                if was_live:
                    self._count(key, -1)
                self._touch(key, entry["updated_at"])
                spots.append((key, pos))
        for key in wanted:
            if key in placed:
                if not was_live:
                    self._count(key, +1)
                pos = placed[key]
            else:
                pos = self._append(key, item_id)
            self._touch(key, entry["updated_at"], entry if key.startswith("k:") else None)
            spots.append((key, pos))
        self._exec("DELETE FROM site_file_ref WHERE site = ? AND item_id = ?", (self.site, item_id))
        self._many(
            "INSERT INTO site_file_ref (site, file, item_id) VALUES (?, ?, ?)",
            [(self.site, f, item_id) for f in entry.get("files", [])],
        )
        self._drop_empty([k for k, _ in spots])
        return spots

    def set_related(self, item_id: int, links: list[dict[str, Any]]) -> None:
        """Replace the related-item links kept on an entry (channels/website/related.py); nothing else
        moves. Read, changed and written back in the change's transaction (the same on both engines)."""
        row = self._exec("SELECT data FROM site_entry WHERE site = ? AND item_id = ?", (self.site, item_id)).fetchone()
        if row is None:
            return
        data = json.loads(row[0])
        data["related"] = links
        self._exec(
            "UPDATE site_entry SET data = ? WHERE site = ? AND item_id = ?",
            (json.dumps(data, ensure_ascii=False), self.site, item_id),
        )

    def mark_withdrawn(self, item_id: int, now: str) -> tuple[dict[str, Any], list[Spot]] | None:
        """First half of a withdrawal: the item leaves every listing but keeps its placements (so a
        retry after a crash knows which pages to rewrite). None when the item is not on the site."""
        row = self._exec(
            "SELECT data, live FROM site_entry WHERE site = ? AND item_id = ?", (self.site, item_id)
        ).fetchone()
        if row is None:
            return None
        spots = [
            (str(k), int(p))
            for k, p in self._exec(
                "SELECT listing, pos FROM site_placement WHERE site = ? AND item_id = ?", (self.site, item_id)
            ).fetchall()
        ]
        if row[1]:
            self._exec("UPDATE site_entry SET live = 0 WHERE site = ? AND item_id = ?", (self.site, item_id))
            for key, _ in spots:
                self._count(key, -1)
                self._touch(key, now)
        return json.loads(row[0]), spots

    def forget(self, item_id: int) -> None:
        """Second half of a withdrawal, once the pages no longer list the item and its page is gone.

        Only tidying: a withdrawn entry left behind (this change lost to a crash) is in no listing and
        no count, and a publish of the item again takes it up. So its commit is not waited for on
        disk (the withdrawal's ``checkpoint(tidying=True)``)."""
        keys = [
            r[0]
            for r in self._exec(
                "SELECT listing FROM site_placement WHERE site = ? AND item_id = ?", (self.site, item_id)
            ).fetchall()
        ]
        self._exec("DELETE FROM site_placement WHERE site = ? AND item_id = ?", (self.site, item_id))
        self._exec("DELETE FROM site_file_ref WHERE site = ? AND item_id = ?", (self.site, item_id))
        self._exec("DELETE FROM site_entry WHERE site = ? AND item_id = ? AND live = 0", (self.site, item_id))
        self._drop_empty(keys)

    def search_drop(self, item_id: int, fragment: str) -> None:
        self._exec("DELETE FROM site_search_doc WHERE site = ? AND item_id = ?", (self.site, item_id))
        self._exec(
            "INSERT INTO site_search_gone (site, fragment) VALUES (?, ?) ON CONFLICT DO NOTHING", (self.site, fragment)
        )

    def search_swap(self, bundle: str, docs: dict[int, str], gone: Iterable[str]) -> None:
        """A new search bundle: its fragments by item and those it was built with but must not show."""
        self._exec("DELETE FROM site_search_doc WHERE site = ?", (self.site,))
        self._exec("DELETE FROM site_search_gone WHERE site = ?", (self.site,))
        self._many(
            "INSERT INTO site_search_doc (site, item_id, fragment) VALUES (?, ?, ?)",
            [(self.site, i, f) for i, f in docs.items()],
        )
        self._many(
            "INSERT INTO site_search_gone (site, fragment) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(self.site, f) for f in set(gone)],
        )
        self.set_meta("search_bundle", bundle)

    def set_sitemap_part(self, part: int, lastmod: str | None) -> None:
        self._exec(
            "INSERT INTO site_sitemap_part (site, part, lastmod) VALUES (?, ?, ?) "
            "ON CONFLICT (site, part) DO UPDATE SET lastmod = excluded.lastmod",
            (self.site, part, lastmod),
        )

    def drop_sitemap_parts_after(self, part: int) -> list[int]:
        gone = [
            int(r[0])
            for r in self._exec(
                "SELECT part FROM site_sitemap_part WHERE site = ? AND part > ?", (self.site, part)
            ).fetchall()
        ]
        self._exec("DELETE FROM site_sitemap_part WHERE site = ? AND part > ?", (self.site, part))
        return gone

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self._exec("DELETE FROM site_meta WHERE site = ? AND key = ?", (self.site, key))
        else:
            self._exec(
                "INSERT INTO site_meta (site, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (site, key) DO UPDATE SET value = excluded.value",
                (self.site, key, value),
            )

    def import_entries(self, entries: Iterable[dict[str, Any]], *, mark: str | None = None) -> int:
        """Add many live entries, placed oldest first by ``published_at`` (a migration, an archive, the
        benchmark's big site). Entries already present are skipped."""
        ordered = sorted(entries, key=lambda e: (e["published_at"], int(e["item_id"])))
        added = 0
        for entry in ordered:
            item_id = int(entry["item_id"])
            cur = self._exec(
                "INSERT INTO site_entry (site, item_id, data, version, live, validity, path, updated) "
                "VALUES (?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT (site, item_id) DO NOTHING",
                (self.site, item_id, *_row(entry)),
            )
            if not cur.rowcount:
                continue
            added += 1
            for key in listings_of(entry):
                self._append(key, item_id)
                self._touch(key, entry["updated_at"], entry if key.startswith("k:") else None)
            self._many(
                "INSERT INTO site_file_ref (site, file, item_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(self.site, f, item_id) for f in entry.get("files", [])],
            )
        if mark:
            self.set_meta(mark, "1")
        return added

    # -- internals --------------------------------------------------------------------------------
    def _count(self, key: str, delta: int) -> None:
        self._exec("UPDATE site_listing SET count = count + ? WHERE site = ? AND key = ?", (delta, self.site, key))

    def _append(self, key: str, item_id: int) -> int:
        self._exec(
            "INSERT INTO site_listing (site, key, last_pos, count) VALUES (?, ?, 0, 0) ON CONFLICT DO NOTHING",
            (self.site, key),
        )
        (pos,) = self._exec(
            "UPDATE site_listing SET last_pos = last_pos + 1, count = count + 1 WHERE site = ? AND key = ? "
            "RETURNING last_pos",
            (self.site, key),
        ).fetchone()
        self._exec(
            "INSERT INTO site_placement (site, listing, pos, item_id) VALUES (?, ?, ?, ?)",
            (self.site, key, pos, item_id),
        )
        return int(pos)

    def _touch(self, key: str, when: str, entry: dict[str, Any] | None = None) -> None:
        self._exec(
            f"UPDATE site_listing SET lastmod = {self.dialect.greatest('coalesce(lastmod, ?)', '?')} "
            "WHERE site = ? AND key = ?",
            ("", when, self.site, key),
        )
        if entry is not None and entry.get("checklist_name"):
            self._exec(
                "UPDATE site_listing SET label = ? WHERE site = ? AND key = ?",
                (entry["checklist_name"], self.site, key),
            )

    def _drop_empty(self, keys: Iterable[str]) -> None:
        """A listing with no placement left goes, so the next item starts it again at page 1."""
        for key in sorted(set(keys)):
            self._exec(
                "DELETE FROM site_listing WHERE site = ? AND key = ? AND NOT EXISTS "
                "(SELECT 1 FROM site_placement WHERE site = ? AND listing = ?)",
                (self.site, key, self.site, key),
            )
