"""One delivery's turn on a delivery thread: start the call, call the channel, hand the result in."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from publisher.channel import ChannelError, DeliveryContext, PermanentChannelError, Post, Published
from publisher.models import DeliveryOp
from publisher.pipeline.outcome import Claim, Finished, HandedBack
from publisher.pipeline.store import DeliveryStore
from publisher.pipeline.workflow import Context

log = logging.getLogger("publisher.pipeline.worker")


class Caller:
    """Makes the channel calls of one worker; ``hand_in`` takes each Finished or HandedBack."""

    def __init__(
        self,
        ctx: Context,
        store: DeliveryStore,
        clock: Callable[[], datetime],
        stop: threading.Event,
        hand_in: Callable[[Finished | HandedBack], None],
        on_start: Callable[[str, float], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.store = store
        self.clock = clock
        self.stop = stop
        self.hand_in = hand_in
        self.on_start = on_start

    def __call__(self, claim: Claim) -> None:
        started = self.clock()
        try:
            refused, post = self.store.start(claim)
        except sa.exc.SQLAlchemyError as exc:
            extra = {"delivery_id": claim.id, "item_id": claim.item_id}
            log.warning("delivery %s: cannot start its call (%s); trying again shortly", claim.id, exc, extra=extra)
            self.stop.wait(1.0)
            return self.hand_in(HandedBack(claim))
        except PermanentChannelError as exc:  # the post may not go out (a privacy finding nobody cleared)
            extra = {"delivery_id": claim.id, "item_id": claim.item_id}
            log.warning("delivery %s: %s", claim.id, exc, extra=extra)
            return self.hand_in(Finished(claim, started, exc, None))
        except Exception as exc:  # e.g. an asset missing on disk: keep the reason on the delivery
            log.exception("delivery %s: cannot build its post", claim.id)
            return self.hand_in(Finished(claim, started, exc, None))
        if refused is not None:
            return self.hand_in(HandedBack(claim, refused))
        if post is None:
            # unreachable through the workflow (an edit or a withdrawal leaves a request, which
            # withholds the call); kept as the last line of defence
            why = "refused: the item lacks its two approvals, was withdrawn, or no longer targets this channel"
            return self.hand_in(Finished(claim, started, PermanentChannelError(why), None))
        if self.on_start is not None and claim.due_at is not None:
            self.on_start(claim.channel, (started - claim.due_at).total_seconds())
        dctx = DeliveryContext(
            delivery_id=claim.id,
            attempt=claim.attempts,
            state=dict(claim.state),
            remote_id=claim.remote_id,
            url=claim.url,
            _saver=lambda state: self._save_state(claim.id, state),
        )
        result = call_channel(self.ctx.channels[claim.channel].channel, claim, post, dctx)
        self.hand_in(Finished(claim, started, result, dctx.state, version=post.version))

    def _save_state(self, delivery_id: int, state: dict[str, Any]) -> None:
        if not self.store.save_state(delivery_id, state, self.clock()):
            raise PermanentChannelError(f"delivery {delivery_id}: lease lost while saving progress")


def call_channel(channel: Any, claim: Claim, post: Post, dctx: DeliveryContext) -> Any:
    """What ``channel`` answered for ``claim``: its result, or the exception it raised."""
    try:
        if claim.op == DeliveryOp.PUBLISH:
            return channel.publish(post, dctx)
        if claim.op == DeliveryOp.UPDATE:
            return channel.update(post, dctx)
        channel.withdraw(post, dctx)
        return Published(url=claim.url, remote_id=claim.remote_id)
    except ChannelError as exc:
        return exc
    except Exception as exc:  # a bug in a channel must not stop the worker; keep the reason
        log.exception(
            "channel %s raised an unexpected error on delivery %s",
            claim.channel,
            claim.id,
            extra={"delivery_id": claim.id, "item_id": claim.item_id},
        )
        return exc
