"""What the account has published: its articles' URLs and days (kept in ``env.kv``), their statistics, the listing.

``freepublish/batchget`` lists every article (deleted ones too, their news items marked); the
datacube names an article by ``msg_data_id``, learnt once per article and kept.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.wechat.client import ApiClient
from channels.wechat.config import BEIJING
from publisher.channel import ChannelError, LinkStatus, PermanentChannelError, RemotePublication, StatRow

log = logging.getLogger(__name__)


class AccountArticles:
    """The account's published articles as the channel knows them, under ``prefix`` in ``kv``."""

    def __init__(self, client: ApiClient, kv: Any, prefix: str, clock: Callable[[], datetime], label: str) -> None:
        self.client, self.kv, self.prefix, self.clock, self.label = client, kv, prefix, clock, label
        self._scanned_at: float | None = None  # when the whole listing was last read (monotonic)

    def record(self, article_id: str, msg_data_id: str, url: str | None) -> None:
        """Keep what the pipeline learnt of an article it published itself."""
        self.kv.set(f"{self.prefix}art:{article_id}", json.dumps({"msg_data_id": msg_data_id, "url": url}))
        if url:
            self.kv.set(f"{self.prefix}url:{url}", article_id)

    def check_url(self, url: str) -> LinkStatus | None:
        """Ask the API, not the page: WeChat serves a deleted article's page with 200.

        A verdict comes only from WeChat's answer: the article's ``is_deleted`` (410) or no such
        article (53600, 404). A call that fails, or a URL no article of the account is known to have,
        is no verdict (``status`` None): the sync leaves the article as it was. None for a URL off WeChat.
        """
        if urlsplit(url).hostname != "mp.weixin.qq.com":
            return None
        try:
            article_id = self._article_for_url(url)
            if not article_id:
                return LinkStatus(ok=False, reason="no article of this account is known to have this URL")
            res = self.client.call("looking up the article", self.client.freepublish.getarticle, article_id)
        except PermanentChannelError as exc:
            if exc.code == 53600:
                return LinkStatus(ok=False, status=404, reason=f"WeChat has no such article: {exc}")
            return LinkStatus(ok=False, reason=f"could not check with WeChat: {exc}")
        except ChannelError as exc:
            return LinkStatus(ok=False, reason=f"could not check with WeChat: {exc}")
        items = res.get("news_item") or []
        items = [it for it in items if it.get("url") == url] or items
        if not items:
            return LinkStatus(ok=False, reason="WeChat gave the article without its news items")
        if all(it.get("is_deleted") for it in items):
            return LinkStatus(ok=False, status=410, reason="deleted on WeChat")
        return LinkStatus(ok=True, status=200, reason="published on WeChat")

    def known(self, article_id: str) -> dict[str, Any]:
        raw = self.kv.get(f"{self.prefix}art:{article_id}")
        return json.loads(raw) if raw else {}

    def _remember(self, it: Mapping[str, Any]) -> None:
        """Keep what a listing says of an article: its URLs (for check_url), title and day (for stats)."""
        article_id = str(it["article_id"])
        content = it.get("content") or {}
        news = content.get("news_item") or []
        # the day it went out (getarticletotal's ref_date): created, not last updated, when both are given
        stamp = content.get("create_time") or it.get("update_time") or 0
        day = datetime.fromtimestamp(int(stamp), BEIJING).date().isoformat()
        known = self.known(article_id)
        first = news[0] if news else {}
        seen = {"day": day, "title": first.get("title", ""), "url": known.get("url") or first.get("url")}
        if any(known.get(k) != v for k, v in seen.items()):
            self.kv.set(f"{self.prefix}art:{article_id}", json.dumps(known | seen))
        for n in news:
            if n.get("url") and self.kv.get(f"{self.prefix}url:{n['url']}") != article_id:
                self.kv.set(f"{self.prefix}url:{n['url']}", article_id)

    def listing(self) -> Iterable[dict[str, Any]]:
        """Every article ``freepublish/batchget`` lists, newest first, deleted ones included."""
        offset = 0
        while True:
            res = self.client.call("listing published articles", self.client.freepublish.batchget, offset, 20, 1)
            items = res.get("item") or []
            yield from items
            offset += len(items)
            if not items or offset >= int(res.get("total_count") or 0):
                return

    def _scan_listing(self) -> None:
        """Remember every listed article, at most once every ten minutes (a URL or day not on record)."""
        if self._scanned_at is not None and time.monotonic() - self._scanned_at < 600:
            return
        for it in self.listing():
            self._remember(it)
        self._scanned_at = time.monotonic()

    def _article_for_url(self, url: str) -> str | None:
        article_id = self.kv.get(f"{self.prefix}url:{url}")
        if not article_id:
            self._scan_listing()
            article_id = self.kv.get(f"{self.prefix}url:{url}")
        return article_id

    def _msg_data_id(self, article_id: str, until: date) -> str | None:
        """The ``msg_data_id`` the datacube names an article by (``msgid`` "<msg_data_id>_<index>").

        Kept when the pipeline published it; otherwise read from the URL (``mid=``) or learnt once
        from ``getarticletotal`` on its day, where it must be the only article of that title: two
        weekly posts with the same title are told apart by their day, never matched by title alone.
        """
        known = self.known(article_id)
        if known.get("msg_data_id"):
            return str(known["msg_data_id"])
        if not known.get("day"):
            self._scan_listing()
            known = self.known(article_id)
        mid = parse_qs(urlsplit(known.get("url") or "").query).get("mid")
        found: str | None = mid[0] if mid else None
        if found is None and known.get("day") and date.fromisoformat(known["day"]) <= until:
            day = date.fromisoformat(known["day"])
            rows = self.client.call("reading article totals", self.client.datacube.get_article_total, day, day)
            ids = {str(r.get("msgid", "")).split("_")[0] for r in rows if r.get("title") == known.get("title")}
            if len(ids) == 1:
                found = ids.pop()
            elif ids:
                log.warning(
                    "wechat %s: %d articles titled %r on %s; article %s gets no stats",
                    self.label,
                    len(ids),
                    known.get("title"),
                    day,
                    article_id,
                )
        if found:
            self.kv.set(f"{self.prefix}art:{article_id}", json.dumps(known | {"msg_data_id": found}))
        return found

    def final_through(self, now: datetime) -> date:
        """Yesterday (Beijing), once it is past 08:00 there: the datacube has nothing for today."""
        local = now.astimezone(BEIJING)
        return local.date() - timedelta(days=1 if local.hour >= 8 else 2)

    def fetch_stats(self, remote_ids: Iterable[str], since: date, until: date) -> list[StatRow]:
        until = min(until, self.final_through(self.clock()))
        by_msg: dict[str, str] = {}
        for rid in remote_ids:
            if rid.startswith("mass-"):
                by_msg[rid.removeprefix("mass-")] = rid
            elif since <= until and (msg := self._msg_data_id(rid, until)):
                by_msg[msg] = rid
        rows: list[StatRow] = []
        day = since
        while by_msg and day <= until:
            sums: dict[tuple[str, str], int] = {}
            for r in self.client.call("reading article statistics", self.client.datacube.get_article_summary, day, day):
                rid = by_msg.get(str(r.get("msgid", "")).split("_")[0])
                if rid is None:
                    continue
                # one row per news item of a post: the post's figures are their sum
                for metric, field in (
                    ("reads", "int_page_read_count"),
                    ("readers", "int_page_read_user"),
                    ("shares", "share_count"),
                    ("favourites", "add_to_fav_count"),
                ):
                    sums[(rid, metric)] = sums.get((rid, metric), 0) + int(r.get(field) or 0)
            rows += [StatRow(day=day, metric=m, value=v, remote_id=rid) for (rid, m), v in sums.items()]
            day += timedelta(days=1)
        start = since
        while start <= until:
            end = min(start + timedelta(days=6), until)
            per_day: dict[date, list[int]] = {}
            for r in self.client.call("reading follower statistics", self.client.datacube.get_user_summary, start, end):
                d = date.fromisoformat(r["ref_date"])
                acc = per_day.setdefault(d, [0, 0])
                acc[0] += int(r.get("new_user") or 0)
                acc[1] += int(r.get("cancel_user") or 0)
            for d, (new, cancel) in sorted(per_day.items()):
                rows.append(StatRow(day=d, metric="new_followers", value=new))
                rows.append(StatRow(day=d, metric="unfollows", value=cancel))
            for r in self.client.call("reading follower totals", self.client.datacube.get_user_cumulate, start, end):
                rows.append(
                    StatRow(
                        day=date.fromisoformat(r["ref_date"]),
                        metric="followers",
                        value=int(r.get("cumulate_user") or 0),
                    )
                )
            start = end + timedelta(days=1)
        return rows

    def list_publications(self, since: datetime | None = None) -> list[RemotePublication]:
        """The articles ``freepublish/batchget`` lists, less the deleted ones (WeChat keeps listing
        those, their news items marked ``is_deleted``)."""
        found: list[RemotePublication] = []
        for it in self.listing():
            when = datetime.fromtimestamp(int(it.get("update_time") or 0), UTC)
            if since is not None and when < since:
                break
            self._remember(it)
            live = [n for n in (it.get("content") or {}).get("news_item") or [{}] if not n.get("is_deleted")]
            if live:
                found.append(
                    RemotePublication(
                        remote_id=str(it["article_id"]),
                        title=live[0].get("title", ""),
                        url=live[0].get("url"),
                        published_at=when,
                    )
                )
        return found
