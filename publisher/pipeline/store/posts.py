"""The posts of claimed deliveries, read in one batch per claim and kept for their starts."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import sqlalchemy as sa

from publisher.pipeline.store.connections import Connections
from publisher.pipeline.workflow import Context
from publisher.pipeline.workflow.posts import PostSnapshot, snapshot_posts

log = logging.getLogger(__name__)


class PostCache:
    """Item id → the item's post as last read, at most ``bound`` of them.

    Reading posts one by one at each start cost more than the start itself; a claim reads them all
    in one batch instead. A cached post may be older than the item: the start holds only while the
    item is at the cached version (see DeliveryStore.begin_call), and a start that finds the item
    moved on drops it (:meth:`forget`) and reads it again, so a stale post is never sent.
    """

    BOUND = 20_000

    def __init__(self, ctx: Context, connections: Connections, bound: int = BOUND) -> None:
        self.ctx = ctx
        self.connections = connections
        self.bound = bound
        self._posts: dict[int, PostSnapshot] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._posts)

    def load(self, item_ids: Iterable[int]) -> None:
        """Read the posts of ``item_ids`` in one batch. A store that does not answer now leaves them
        unread: each start then reads its own."""
        want = list(set(item_ids))
        if not want:
            return
        try:
            with self.connections.reading() as conn:
                posts = snapshot_posts(self.ctx, conn, want)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("cannot read the posts of %d claimed items now (%s)", len(want), exc)
            return
        self._keep(posts)

    def get(self, item_id: int) -> PostSnapshot:
        """The item's post, read now unless cached."""
        post = self._posts.get(item_id)
        if post is None:
            with self.connections.reading() as conn:
                post = snapshot_posts(self.ctx, conn, [item_id])[item_id]
            self._keep({item_id: post})
        return post

    def forget(self, item_id: int) -> None:
        with self._lock:
            self._posts.pop(item_id, None)

    def _keep(self, posts: dict[int, PostSnapshot]) -> None:
        if len(posts) > self.bound:
            posts = dict(list(posts.items())[-self.bound :])
        with self._lock:
            # all at once: the posts still wanted are those of the last claims, read again in a batch
            if len(self._posts) + len(posts) > self.bound:
                self._posts.clear()
            self._posts.update(posts)
