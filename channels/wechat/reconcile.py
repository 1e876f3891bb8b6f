"""After a ``freepublish/submit`` whose answer was lost: find its article, wait, or allow a re-submit.

``freepublish/submit`` has no idempotency key. When an attempt dies (or times out) after
``step=submitting`` was saved but before ``publish_id`` was, the next call reconciles: it looks for
the article in ``freepublish/batchget`` (same title and thumb, published since the attempt), waits
while the draft may still be in a running job, and re-submits only when the draft is still in the
draft box after ``reconcile_grace`` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from channels.wechat.client import ApiClient
from channels.wechat.config import WeChatConfig
from publisher.channel import DeliveryContext, InProgress, PermanentChannelError, Post, Published, TransientChannelError

log = logging.getLogger(__name__)


class SubmitReconciler:
    """Settles a delivery whose submit may or may not have reached WeChat (``step=submitting``)."""

    def __init__(self, client: ApiClient, config: WeChatConfig, clock: Callable[[], datetime], label: str) -> None:
        #: ``label`` names the channel in log lines
        self.client, self.config, self.clock, self.label = client, config, clock, label

    def reconcile(
        self, post: Post, ctx: DeliveryContext, done: Callable[[DeliveryContext, str, str | None], Published]
    ) -> Published | InProgress | None:
        """After an unknown submit: find the article, or wait, or (draft still there) allow a re-submit.

        WeChat takes a draft out of the box when its article is published, so while the draft is
        there and the grace has not run out there is nothing to look for yet: one ``draft/get`` per
        check instead of paging through the published list (several calls on a busy account, each
        one a chance to fail and use up an attempt). Before any re-submit the list is searched.
        """
        st = ctx.state
        since = datetime.fromisoformat(st.get("submitting_since") or self.clock().isoformat())
        try:
            self.client.call("looking up the draft", self.client.draft.get, st["draft_media_id"])
            draft_present = True
        except PermanentChannelError as exc:
            if exc.code != 40007:
                raise
            draft_present = False
        waited = (self.clock() - since).total_seconds()
        found = None
        if not draft_present or waited >= self.config.reconcile_grace:
            found = self._find_published(post.title.strip(), st.get("thumb_media_id"), since - timedelta(minutes=2))
        if found is not None:
            log.info("wechat %s: delivery %s reconciled to article %s", self.label, ctx.delivery_id, found[0])
            return done(ctx, found[0], found[1])
        if waited < self.config.reconcile_grace:
            checks = int(st.get("reconcile_checks", 0)) + 1
            ctx.save_state(reconcile_checks=checks)
            wait = self.config.poll_intervals[min(checks - 1, len(self.config.poll_intervals) - 1)]
            return InProgress(
                check_again_in=timedelta(seconds=wait),
                note="looking for the article of an unconfirmed submit",
            )
        if draft_present:
            log.warning(
                "wechat %s: no article for delivery %s after %.0fs and the draft is still there; submitting again",
                self.label,
                ctx.delivery_id,
                waited,
            )
            ctx.save_state(step="drafted", reconcile_checks=0, unconfirmed_since=since.isoformat())
            return None
        ctx.save_state(step="unknown")
        raise PermanentChannelError(
            "WeChat took the draft but no published article can be found; it may have failed review. "
            "Check 发表记录 in the MP console before publishing this item again"
        )

    def _find_published(self, title: str, thumb: str | None, since: datetime) -> tuple[str, str | None] | None:
        offset = 0
        while True:
            res = self._list_page(offset)
            items = res.get("item") or []
            for it in items:
                content = it.get("content") or {}
                stamp = it.get("update_time") or content.get("update_time") or content.get("create_time")
                if stamp and int(stamp) < since.timestamp():
                    return None  # newest first: everything further down is older than our submit
                for news in content.get("news_item") or []:
                    same_thumb = not thumb or not news.get("thumb_media_id") or news["thumb_media_id"] == thumb
                    if news.get("title") == title and same_thumb and not news.get("is_deleted"):
                        return str(it["article_id"]), news.get("url")
            offset += len(items)
            if not items or offset >= int(res.get("total_count") or 0) or offset >= 200:
                return None

    def _list_page(self, offset: int, tries: int = 3) -> dict[str, Any]:
        """One page of ``freepublish/batchget``, read again at once after a transient failure.

        A search may need several pages on a busy account; starting it over for one failed page
        would need every page to succeed in a single attempt.
        """
        for n in range(1, tries + 1):
            try:
                return self.client.call("listing published articles", self.client.freepublish.batchget, offset, 20, 1)
            except TransientChannelError:
                if n == tries:
                    raise
                time.sleep(0.2 * n)
        raise AssertionError("unreachable")
