"""The channel call itself: one delivery's publish, update or take-down, its failures kept as results."""

from __future__ import annotations

import logging
from typing import Any

from publisher.channel import ChannelError, DeliveryContext, Post, Published
from publisher.models import DeliveryOp
from publisher.pipeline.outcome import Claim

log = logging.getLogger("publisher.pipeline.worker")


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
