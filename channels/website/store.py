"""The site's state: what is live and where each item is listed, in a small SQLite file in the folder.

One publish, update or withdrawal touches a handful of rows (its entry, one placement per listing it
appears in, its file references), never the whole set, so its cost does not grow with the site.

* ``entry`` — one row per item: the fields the index pages show (``data``, JSON), ``live`` (0 while a
  withdrawal is half done: its placements are kept so a retried withdrawal knows what to rewrite),
  and the page's ``path`` and ``updated`` time again as columns, which a sitemap file reads by the
  thousand.
* ``listing`` — one row per listing (``all``, ``c:<category>``, ``k:<checklist number>``): the last
  position handed out, the count of live items, the checklist name, when it last changed.
* ``placement`` — (listing, position, item): positions are handed out in the order items go live and
  never move, so page *k* of a listing is positions ``(k-1)*size+1 .. k*size`` and a publish touches
  only the newest page (see docs/channels/website.md, "Pagination").
* ``file_ref`` — which media/attachment files each item uses (for collecting a withdrawn item's files).
* ``sitemap_part`` — the lastmod of each numbered sitemap file, for the sitemap index.
* ``meta`` — the migration mark, the checkpoint of ``publisher site rebuild``, the current search bundle.
* ``search_doc`` — which fragment of the current search bundle is which item; ``search_gone`` — the
  fragments dropped since the bundle was built (channels.website.search).

Every method runs under the site lock (channels.website.files.SiteFolder.locked), so one connection
serves all the channel's threads; each change is one transaction. WAL with ``synchronous=FULL``: a
committed change survives a crash, as the fsynced files do.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from publisher.channel import PermanentChannelError

STATE = ".site.sqlite3"
ALL = "all"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entry (
    item_id INTEGER PRIMARY KEY, data TEXT NOT NULL, version INTEGER NOT NULL, live INTEGER NOT NULL,
    path TEXT, updated TEXT
);
CREATE TABLE IF NOT EXISTS listing (
    key TEXT PRIMARY KEY, last_pos INTEGER NOT NULL, count INTEGER NOT NULL, label TEXT, lastmod TEXT
);
CREATE TABLE IF NOT EXISTS placement (
    listing TEXT NOT NULL, pos INTEGER NOT NULL, item_id INTEGER NOT NULL, PRIMARY KEY (listing, pos)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS placement_item ON placement (item_id);
CREATE TABLE IF NOT EXISTS file_ref (
    file TEXT NOT NULL, item_id INTEGER NOT NULL, PRIMARY KEY (file, item_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS file_ref_item ON file_ref (item_id);
CREATE TABLE IF NOT EXISTS sitemap_part (part INTEGER PRIMARY KEY, lastmod TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS entry_validity ON entry (json_extract(data, '$.validity')) WHERE live = 1;
CREATE TABLE IF NOT EXISTS search_doc (item_id INTEGER PRIMARY KEY, fragment TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS search_gone (fragment TEXT PRIMARY KEY) WITHOUT ROWID;
"""


def _add_sitemap_columns(conn: sqlite3.Connection) -> None:
    """A state written before ``entry.path``/``entry.updated`` existed gets them, filled from ``data``.

    The sitemap file of a change lists up to ``sitemap_urls`` items; reading their two fields from
    columns instead of parsing each entry's JSON is most of what a withdrawal from a full site costs
    more than one from an empty site (docs/benchmarks.md §12)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(entry)")}
    if {"path", "updated"} <= have:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for column in ("path", "updated"):
            if column not in have:
                conn.execute(f"ALTER TABLE entry ADD COLUMN {column} TEXT")
        conn.execute(
            "UPDATE entry SET path = json_extract(data, '$.path'), updated = json_extract(data, '$.updated_at')"
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


#: a listing position that a change touched: (listing key, position)
Spot = tuple[str, int]


def _row(entry: dict[str, Any]) -> tuple[str, int, str, str]:
    """The ``entry`` columns after ``item_id``: the JSON, the version, and the two the sitemap reads."""
    return json.dumps(entry, ensure_ascii=False), int(entry.get("version", 0)), entry["path"], entry["updated_at"]


def listings_of(entry: dict[str, Any]) -> list[str]:
    """The listings an entry appears in: the whole site, its category and its checklist item."""
    keys = [ALL, "c:" + entry["category"]]
    if entry.get("checklist_item"):
        keys.append(f"k:{int(entry['checklist_item'])}")
    return keys


class SiteStore:
    """The state of one site folder; every method is called with the site lock held."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / STATE
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(_SCHEMA)
                _add_sitemap_columns(conn)
            except sqlite3.DatabaseError as exc:
                raise PermanentChannelError(
                    f"the site state {self.path} cannot be opened ({exc}); restore it from a backup "
                    "or delete it and run `publisher site rebuild`"
                ) from exc
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _tx(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    # -- reading ----------------------------------------------------------------------------------
    def get(self, item_id: int) -> tuple[dict[str, Any], bool] | None:
        row = self.conn.execute("SELECT data, live FROM entry WHERE item_id = ?", (item_id,)).fetchone()
        return (json.loads(row[0]), bool(row[1])) if row else None

    def live_entries(self) -> Iterator[dict[str, Any]]:
        for (data,) in self.conn.execute("SELECT data FROM entry WHERE live = 1 ORDER BY item_id"):
            yield json.loads(data)

    def in_force(self, validity: str) -> list[dict[str, Any]]:
        """The live entries whose 有效性 is ``validity`` (an index on it: not a scan of the site)."""
        rows = self.conn.execute(
            "SELECT data FROM entry WHERE json_extract(data, '$.validity') = ? AND live = 1", (validity,)
        )
        return [json.loads(data) for (data,) in rows]

    def listing(self, key: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT last_pos, count, label, lastmod FROM listing WHERE key = ?", (key,)).fetchone()
        return dict(zip(("last_pos", "count", "label", "lastmod"), row, strict=True)) if row else None

    def listings(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT key, last_pos, count, label, lastmod FROM listing ORDER BY key")
        return [dict(zip(("key", "last_pos", "count", "label", "lastmod"), r, strict=True)) for r in rows]

    def between(
        self, key: str, first: int, last: int, *, newest_first: bool = True, fields: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """The live entries at positions ``first..last`` of a listing; only ``fields`` of each when
        given (picked out by SQLite: a full page costs no JSON decoding in Python)."""
        order = "DESC" if newest_first else "ASC"
        return self._entries(
            f"WHERE p.listing = ? AND p.pos BETWEEN ? AND ? AND e.live = 1 ORDER BY p.pos {order}",
            (key, first, last),
            fields,
        )

    def newest(self, key: str, n: int, *, fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return self._entries("WHERE p.listing = ? AND e.live = 1 ORDER BY p.pos DESC LIMIT ?", (key, n), fields)

    def _entries(self, where: str, params: tuple[Any, ...], fields: tuple[str, ...]) -> list[dict[str, Any]]:
        if not fields:
            rows = self.conn.execute(
                f"SELECT e.data FROM placement p JOIN entry e ON e.item_id = p.item_id {where}", params
            )
            return [json.loads(data) for (data,) in rows]
        picked = ", ".join(f"json_extract(e.data, '$.{f}')" for f in fields if f.isidentifier())
        rows = self.conn.execute(
            f"SELECT {picked} FROM placement p JOIN entry e ON e.item_id = p.item_id {where}", params
        )
        return [dict(zip(fields, row, strict=True)) for row in rows]

    def sitemap_urls(self, first: int, last: int, prefix: str) -> tuple[str, str | None]:
        """The ``<url>`` elements of the whole-site positions ``first..last``, oldest first, and their
        newest lastmod. Built by SQLite: a sitemap file is rewritten on every publish and holds up to
        50,000 URLs. ``prefix`` (the escaped base URL) and the page paths (``items/<id>.html``, made
        by site_page_path) need no escaping; the times are W3C datetimes in UTC as stored."""
        row = self.conn.execute(
            "SELECT group_concat(u, char(10)), max(m) FROM (SELECT "
            "'<url><loc>' || ? || e.path || '</loc><lastmod>' || e.updated || '</lastmod></url>' AS u, "
            "e.updated AS m "
            "FROM placement p JOIN entry e ON e.item_id = p.item_id "
            "WHERE p.listing = ? AND p.pos BETWEEN ? AND ? AND e.live = 1 ORDER BY p.pos)",
            (prefix, ALL, first, last),
        ).fetchone()
        return row[0] or "", row[1]

    def unused_files(self, candidates: Iterable[str]) -> list[str]:
        """Those of ``candidates`` no live item refers to."""
        unused = []
        for f in sorted(set(candidates)):
            row = self.conn.execute(
                "SELECT 1 FROM file_ref r JOIN entry e ON e.item_id = r.item_id WHERE r.file = ? AND e.live = 1",
                (f,),
            ).fetchone()
            if row is None:
                unused.append(f)
        return unused

    def sitemap_parts(self) -> dict[int, str | None]:
        return dict(self.conn.execute("SELECT part, lastmod FROM sitemap_part ORDER BY part").fetchall())

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def search_snapshot(self) -> dict[int, tuple[int, str]]:
        """(version, updated_at) of every live item: what a search build may keep if unchanged."""
        rows = self.conn.execute(
            "SELECT item_id, version, json_extract(data, '$.updated_at') FROM entry WHERE live = 1"
        )
        return {int(i): (int(v), str(u)) for i, v, u in rows}

    def search_fragment(self, item_id: int) -> str | None:
        row = self.conn.execute("SELECT fragment FROM search_doc WHERE item_id = ?", (item_id,)).fetchone()
        return row[0] if row else None

    def search_gone(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT fragment FROM search_gone ORDER BY fragment")]

    # -- changing (one transaction each) ----------------------------------------------------------
    def put(self, entry: dict[str, Any]) -> list[Spot]:
        """Make ``entry`` live; the positions whose pages must be rewritten (old and new)."""
        item_id = int(entry["item_id"])
        conn = self._tx()
        try:
            row = conn.execute("SELECT live FROM entry WHERE item_id = ?", (item_id,)).fetchone()
            was_live = bool(row and row[0])
            conn.execute(
                "INSERT INTO entry (item_id, data, version, live, path, updated) VALUES (?, ?, ?, 1, ?, ?) "
                "ON CONFLICT (item_id) DO UPDATE SET data = excluded.data, version = excluded.version, live = 1, "
                "path = excluded.path, updated = excluded.updated",
                (item_id, *_row(entry)),
            )
            placed = dict(conn.execute("SELECT listing, pos FROM placement WHERE item_id = ?", (item_id,)).fetchall())
            wanted = listings_of(entry)
            spots: list[Spot] = []
            for key, pos in placed.items():
                if key not in wanted:  # moved to another category or checklist item
                    conn.execute("DELETE FROM placement WHERE listing = ? AND pos = ?", (key, pos))
                    if was_live:
                        conn.execute("UPDATE listing SET count = count - 1 WHERE key = ?", (key,))
                    self._touch(conn, key, entry["updated_at"])
                    spots.append((key, pos))
            for key in wanted:
                if key in placed:
                    if not was_live:
                        conn.execute("UPDATE listing SET count = count + 1 WHERE key = ?", (key,))
                    pos = placed[key]
                else:
                    pos = self._append(conn, key, item_id)
                self._touch(conn, key, entry["updated_at"], entry if key.startswith("k:") else None)
                spots.append((key, pos))
            conn.execute("DELETE FROM file_ref WHERE item_id = ?", (item_id,))
            conn.executemany(
                "INSERT INTO file_ref (file, item_id) VALUES (?, ?)", [(f, item_id) for f in entry.get("files", [])]
            )
            self._drop_empty(conn, [k for k, _ in spots])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return spots

    def set_related(self, item_id: int, links: list[dict[str, Any]]) -> None:
        """Replace the related-item links kept on an entry (channels/website/related.py); nothing else moves."""
        self.conn.execute(
            "UPDATE entry SET data = json_set(data, '$.related', json(?)) WHERE item_id = ?",
            (json.dumps(links, ensure_ascii=False), item_id),
        )

    def mark_withdrawn(self, item_id: int, now: str) -> tuple[dict[str, Any], list[Spot]] | None:
        """First half of a withdrawal: the item leaves every listing but keeps its placements (so a
        retry after a crash knows which pages to rewrite). None when the item is not on the site."""
        conn = self._tx()
        try:
            row = conn.execute("SELECT data, live FROM entry WHERE item_id = ?", (item_id,)).fetchone()
            if row is None:
                conn.execute("COMMIT")
                return None
            spots = [tuple(r) for r in conn.execute("SELECT listing, pos FROM placement WHERE item_id = ?", (item_id,))]
            if row[1]:
                conn.execute("UPDATE entry SET live = 0 WHERE item_id = ?", (item_id,))
                for key, _ in spots:
                    conn.execute("UPDATE listing SET count = count - 1 WHERE key = ?", (key,))
                    self._touch(conn, key, now)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return json.loads(row[0]), spots  # type: ignore[return-value]

    def forget(self, item_id: int) -> None:
        """Second half of a withdrawal, once the pages no longer list the item and its page is gone.

        Only tidying: a withdrawn entry left behind (this commit lost to a power cut) is in no
        listing and no count, and a publish of the item again takes it up. So this one commit is
        not waited for on disk (``synchronous=NORMAL``: WAL keeps it consistent, at worst it is lost)."""
        self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            self._forget(item_id)
        finally:
            self.conn.execute("PRAGMA synchronous=FULL")

    def _forget(self, item_id: int) -> None:
        conn = self._tx()
        try:
            keys = [r[0] for r in conn.execute("SELECT listing FROM placement WHERE item_id = ?", (item_id,))]
            conn.execute("DELETE FROM placement WHERE item_id = ?", (item_id,))
            conn.execute("DELETE FROM file_ref WHERE item_id = ?", (item_id,))
            conn.execute("DELETE FROM entry WHERE item_id = ? AND live = 0", (item_id,))
            self._drop_empty(conn, keys)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def search_drop(self, item_id: int, fragment: str) -> None:
        conn = self._tx()
        try:
            conn.execute("DELETE FROM search_doc WHERE item_id = ?", (item_id,))
            conn.execute("INSERT OR IGNORE INTO search_gone (fragment) VALUES (?)", (fragment,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def search_swap(self, bundle: str, docs: dict[int, str], gone: Iterable[str]) -> None:
        """A new search bundle: its fragments by item and those it was built with but must not show."""
        conn = self._tx()
        try:
            conn.execute("DELETE FROM search_doc")
            conn.execute("DELETE FROM search_gone")
            conn.executemany("INSERT INTO search_doc (item_id, fragment) VALUES (?, ?)", docs.items())
            conn.executemany("INSERT OR IGNORE INTO search_gone (fragment) VALUES (?)", [(f,) for f in gone])
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('search_bundle', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (bundle,),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def set_sitemap_part(self, part: int, lastmod: str | None) -> None:
        self.conn.execute(
            "INSERT INTO sitemap_part (part, lastmod) VALUES (?, ?) "
            "ON CONFLICT (part) DO UPDATE SET lastmod = excluded.lastmod",
            (part, lastmod),
        )

    def drop_sitemap_parts_after(self, part: int) -> list[int]:
        gone = [r[0] for r in self.conn.execute("SELECT part FROM sitemap_part WHERE part > ?", (part,))]
        self.conn.execute("DELETE FROM sitemap_part WHERE part > ?", (part,))
        return gone

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def import_entries(self, entries: Iterable[dict[str, Any]], *, mark: str | None = None) -> int:
        """Add many live entries in one transaction, placed oldest first by ``published_at`` (a
        migration, an archive, the benchmark's big site). Entries already present are skipped."""
        ordered = sorted(entries, key=lambda e: (e["published_at"], int(e["item_id"])))
        conn = self._tx()
        added = 0
        try:
            for entry in ordered:
                item_id = int(entry["item_id"])
                cur = conn.execute(
                    "INSERT OR IGNORE INTO entry (item_id, data, version, live, path, updated) "
                    "VALUES (?, ?, ?, 1, ?, ?)",
                    (item_id, *_row(entry)),
                )
                if not cur.rowcount:
                    continue
                added += 1
                for key in listings_of(entry):
                    self._append(conn, key, item_id)
                    self._touch(conn, key, entry["updated_at"], entry if key.startswith("k:") else None)
                conn.executemany(
                    "INSERT OR IGNORE INTO file_ref (file, item_id) VALUES (?, ?)",
                    [(f, item_id) for f in entry.get("files", [])],
                )
            if mark:
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, '1')", (mark,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return added

    # -- internals --------------------------------------------------------------------------------
    @staticmethod
    def _append(conn: sqlite3.Connection, key: str, item_id: int) -> int:
        conn.execute("INSERT OR IGNORE INTO listing (key, last_pos, count) VALUES (?, 0, 0)", (key,))
        (pos,) = conn.execute(
            "UPDATE listing SET last_pos = last_pos + 1, count = count + 1 WHERE key = ? RETURNING last_pos", (key,)
        ).fetchone()
        conn.execute("INSERT INTO placement (listing, pos, item_id) VALUES (?, ?, ?)", (key, pos, item_id))
        return int(pos)

    @staticmethod
    def _touch(conn: sqlite3.Connection, key: str, when: str, entry: dict[str, Any] | None = None) -> None:
        conn.execute(
            "UPDATE listing SET lastmod = max(coalesce(lastmod, ''), ?) WHERE key = ?",
            (when, key),
        )
        if entry is not None and entry.get("checklist_name"):
            conn.execute("UPDATE listing SET label = ? WHERE key = ?", (entry["checklist_name"], key))

    @staticmethod
    def _drop_empty(conn: sqlite3.Connection, keys: Iterable[str]) -> None:
        """A listing with no placement left goes, so the next item starts it again at page 1."""
        for key in set(keys):
            conn.execute(
                "DELETE FROM listing WHERE key = ? AND NOT EXISTS (SELECT 1 FROM placement WHERE listing = ?)",
                (key, key),
            )
