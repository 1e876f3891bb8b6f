"""The draft box (草稿箱): ``draft/add`` without an idempotency key, and the search and sweep that make up for it.

``draft/add`` has no idempotency key. Before each request the state counts it (``draft_adds``) and
keeps what the draft will carry (``draft_marks``: title, thumb, author, digest, 阅读原文 link) and
since when (``drafting_since``). An attempt that finds ``step=drafting`` searches the whole draft box
for a draft with those marks and adopts it; only when there is none does it add another. When more
than one request may have made a draft, every other draft of ours is deleted (``draft/delete``)
before the draft is submitted, and once more after publication (a request held up on the way may
reach WeChat late), so a late or lost answer leaves no orphan draft.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from channels.wechat.client import ApiClient
from publisher.channel import (
    AmbiguousOutcome,
    ChannelError,
    DeliveryContext,
    PermanentChannelError,
    QuotaExceeded,
    TransientChannelError,
)

log = logging.getLogger(__name__)

_PAGE_OVERLAP = 5
#: a search of the draft box reads at most this many drafts
_DRAFT_SCAN_MAX = 2000
#: the state of a delivery that starts over from a new draft
NEW_DRAFT: dict[str, Any] = {
    "draft_adds": 0,
    "draft_marks": None,
    "drafting_since": None,
    "drafts_swept": None,
    "last_sweep": None,
    "unconfirmed_since": None,
}
#: the fields of a draft that identify the delivery's draft/add (WeChat lists them back as sent)
_MARK_FIELDS = ("title", "thumb_media_id", "author", "digest", "content_source_url")


def _draft_mark(article: Mapping[str, Any]) -> dict[str, str]:
    """What one ``draft/add`` request sent that WeChat gives back unchanged in ``draft/batchget``."""
    return {k: str(article.get(k) or "") for k in _MARK_FIELDS}


def _carries(news: Mapping[str, Any], mark: Mapping[str, str]) -> bool:
    """Whether a listed draft's first article carries ``mark`` (a field left out is not held against it)."""
    if news.get("title") != mark["title"] or news.get("thumb_media_id") != mark["thumb_media_id"]:
        return False
    return all(news.get(k) is None or str(news.get(k) or "") == mark[k] for k in _MARK_FIELDS[2:])


class DraftBox:
    """The account's draft box as one delivery sees it: its own drafts added, found and swept."""

    def __init__(self, client: ApiClient, clock: Callable[[], datetime], label: str) -> None:
        #: ``label`` names the channel in log lines
        self.client, self.clock, self.label = client, clock, label

    def add(self, article: dict[str, Any], ctx: DeliveryContext, remake: Callable[[], dict[str, Any]]) -> str:
        """``draft/add``, counted in the state *before* it goes out, with the marks the draft will carry.

        ``draft/add`` has no idempotency key: an answer lost on the way back (timeout, broken
        connection, HTTP 5xx, the worker killed) leaves a draft we do not know the id of.
        ``draft_adds`` counts the requests that may have made a draft (an answered refusal made none
        and is taken back); ``draft_marks`` keeps what each one carried, so that a later search
        finds them even after the cached thumb has changed; ``drafting_since`` bounds the search.
        """
        st = ctx.state
        adds = int(st.get("draft_adds") or 0)
        if st.get("step") == "drafting" and "draft_adds" not in st:
            adds = 1  # saved before draft_adds was counted: one request went out unanswered
        for n in range(2):
            marks = [m for m in (st.get("draft_marks") or []) if m != _draft_mark(article)]
            ctx.save_state(
                step="drafting",
                draft_adds=adds + 1,
                draft_marks=[*marks, _draft_mark(article)],
                drafting_since=st.get("drafting_since") or self.clock().isoformat(),
            )
            try:
                res = self.client.call(
                    "adding the draft",
                    self.client.post,
                    "draft/add",
                    data={"articles": [article]},
                    ambiguous=True,
                )
            except AmbiguousOutcome:
                raise  # step stays "drafting": the next attempt looks for the draft before adding one
            except PermanentChannelError as exc:
                ctx.save_state(draft_adds=adds)  # WeChat refused it: no draft was made
                if exc.code != 40007 or n > 0:
                    raise
                # the cached thumb is gone on WeChat's side (deleted in the console): upload it again, once
                article = remake()
                ctx.save_state(thumb_media_id=article["thumb_media_id"])
                continue
            except QuotaExceeded:
                ctx.save_state(draft_adds=adds)  # answered with a quota errcode: no draft was made
                raise
            except TransientChannelError as exc:
                if exc.code is not None:  # an errcode (busy, a token refused twice): no draft was made
                    ctx.save_state(draft_adds=adds)
                raise  # otherwise (an unreadable answer, HTTP trouble) a draft may have been made
            media_id = str(res["media_id"])
            ctx.save_state(draft_media_id=media_id, step="drafted", draft_adds=adds + 1)
            return media_id
        raise AssertionError("unreachable")

    def ours(self, ctx: DeliveryContext, article: dict[str, Any] | None) -> list[tuple[str, str]]:
        """(media_id, thumb_media_id) of the drafts in the box this delivery's ``draft/add`` calls made.

        A draft is ours when it carries the title, thumb, author, digest and 阅读原文 link one of our
        requests sent (``draft_marks``) and was made since the first of them (less two minutes for
        the clocks). The whole box is read (``draft/batchget``, 20 a page): other deliveries add
        drafts all the time, so ours is not necessarily among the newest.
        """
        st = ctx.state
        marks = list(st.get("draft_marks") or []) or ([_draft_mark(article)] if article else [])
        if not marks:
            return []
        since = st.get("drafting_since")
        after = datetime.fromisoformat(since).timestamp() - 120 if since else None
        failed = set(st.get("failed_drafts") or [])
        found: dict[str, str] = {}
        for media_id, news, stamp in self._box(after):
            if media_id in failed or media_id in found:
                continue
            if after is not None and stamp is not None and stamp < after:
                continue
            if any(_carries(news, m) for m in marks):
                found[media_id] = str(news.get("thumb_media_id"))
        return list(found.items())

    def sweep(
        self, ctx: DeliveryContext, article: dict[str, Any] | None, keep: str | None, done: str = "drafts_swept"
    ) -> None:
        """More than one ``draft/add`` may have made a draft: delete each one of ours but ``keep``.

        Done before the draft is submitted (``drafts_swept``), so a failure here is retried like any
        other and the delivery does not go on with a stray draft of its own left in the box; and once
        more after publication (``last_sweep``, see :meth:`last_sweep`).
        """
        strays = [m for m, _thumb in self.ours(ctx, article) if m != keep]
        for media_id in strays:
            for n in range(1, 4):
                try:
                    self.client.call("deleting a surplus draft", self.client.draft.delete, media_id)
                except PermanentChannelError as exc:
                    if exc.code != 40007:  # 40007: already gone
                        raise
                except TransientChannelError:
                    if n == 3:
                        raise
                    time.sleep(0.2 * n)
                    continue
                break
            log.info("wechat %s: delivery %s deleted its surplus draft %s", self.label, ctx.delivery_id, media_id)
        ctx.save_state(
            **{done: True}, stray_drafts_deleted=int(ctx.state.get("stray_drafts_deleted") or 0) + len(strays)
        )

    def last_sweep(self, ctx: DeliveryContext) -> None:
        """After publication, when more than one ``draft/add`` went out: delete a draft of ours that
        reached WeChat only after the sweep before the submit (a request held up on the way).

        Our own draft has left the box by now (published or mass-sent). This never changes the
        outcome: the article is live, so a failure is logged for the operator, not retried.
        """
        st = ctx.state
        if int(st.get("draft_adds") or 0) <= 1 or st.get("last_sweep") or not st.get("draft_marks"):
            return
        try:
            self.sweep(ctx, None, keep=st.get("draft_media_id"), done="last_sweep")
        except (ChannelError, OSError) as exc:
            log.warning(
                "wechat %s: delivery %s is published, but its surplus drafts could not be looked for (%s); "
                "delete drafts titled %r from the MP console's draft box (草稿箱) if any are left",
                self.label,
                ctx.delivery_id,
                exc,
                (st.get("draft_marks") or [{}])[0].get("title"),
            )

    def _box(self, after: float | None) -> Iterable[tuple[str, dict[str, Any], int | None]]:
        """Every draft in the box as (media_id, first news item, update_time), read page by page.

        Pages overlap by ``_PAGE_OVERLAP``: a draft published by another worker between two pages
        moves everything after it up one place, and without the overlap the draft at the page
        boundary would be skipped. When more drafts than that left the box during a pass, the box is
        read once more. The listing's order is not documented (it is newest first in practice): the
        reading stops early only once it has been newest first so far and has passed ``after``.
        """
        for _pass in range(3):
            offset, first_total, low_total, newest_first, prev = 0, None, None, True, None
            while offset < _DRAFT_SCAN_MAX:
                res = self._page(offset)
                items = res.get("item") or []
                total = int(res.get("total_count") or 0)
                first_total = total if first_total is None else first_total
                low_total = total if low_total is None else min(low_total, total)
                stamp = None
                for it in items:
                    content = it.get("content") or {}
                    raw = it.get("update_time") or content.get("update_time") or content.get("create_time")
                    stamp = int(raw) if raw else None
                    if stamp is not None and prev is not None and stamp > prev:
                        newest_first = False
                    prev = stamp if stamp is not None else prev
                    news = (content.get("news_item") or [{}])[0]
                    yield str(it.get("media_id")), news, stamp
                if not items or offset + len(items) >= total:
                    break
                if newest_first and after is not None and stamp is not None and stamp < after:
                    return  # newest first: everything further down is older than our first draft/add
                offset += max(1, len(items) - _PAGE_OVERLAP)
            else:
                log.warning(
                    "wechat %s: the draft box holds over %d drafts; only those were searched",
                    self.label,
                    _DRAFT_SCAN_MAX,
                )
            if first_total is None or low_total is None or first_total - low_total <= _PAGE_OVERLAP:
                return

    def _page(self, offset: int, tries: int = 3) -> dict[str, Any]:
        """One page of ``draft/batchget`` (no content), read again at once after a transient failure."""
        for n in range(1, tries + 1):
            try:
                return self.client.call("listing drafts", self.client.draft.batchget, offset, 20, 1)
            except TransientChannelError:
                if n == tries:
                    raise
                time.sleep(0.2 * n)
        raise AssertionError("unreachable")
