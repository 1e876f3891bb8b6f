"""What a delivery's channel call came to, as values the worker and its store pass between them.

Outcome → what happens:

=====================  =================================================================
Published              done; URL and remote id stored; the item's state rolls up
InProgress             waiting; asked again after ``check_again_in`` (no attempt used)
TransientChannelError  pending again after exponential back-off with jitter, until
                       ``worker.max_attempts`` is used up, then failed
AmbiguousOutcome       like transient; the channel reconciles on the next attempt
QuotaExceeded          pending until the quota resets (no attempt used)
PermanentChannelError  failed at once; the reason is kept on the delivery
anything else          like transient, with the exception's type and text as the reason
=====================  =================================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from publisher.channel import ChannelError, InProgress, PermanentChannelError, Published, QuotaExceeded
from publisher.models import DeliveryOp, DeliveryStatus


class OutcomeKind(StrEnum):
    """The outcome names counted in a run's summary, kept on attempt rows and in ``last_error_kind``."""

    DONE = "done"
    WAITING = "waiting"
    QUOTA = "quota"
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    AMBIGUOUS = "ambiguous"
    ERROR = "error"
    #: another worker took the delivery over after this one's lease expired
    LOST_LEASE = "lost-lease"
    #: a person's request came before the call started: settled without a call
    WITHHELD = "withheld"


def _kind(name: str) -> OutcomeKind | str:
    """A channel error's ``kind`` as an OutcomeKind; a channel's own kind is kept as it is."""
    try:
        return OutcomeKind(name)
    except ValueError:
        return name


@dataclass(slots=True)
class Claim:
    """A delivery this worker holds the lease of, as it was read when claimed (no ORM load later)."""

    id: int
    item_id: int
    channel: str
    op: str
    #: this call's attempt number (the attempts stored count from its start, not from the claim)
    attempts: int
    state: dict[str, Any]
    remote_id: str | None
    url: str | None
    published_at: datetime | None
    #: when it fell due (scheduling lateness is measured from here)
    due_at: datetime | None = None


@dataclass(slots=True)
class Finished:
    """A channel call that returned; its outcome waits in memory for the next batched record."""

    claim: Claim
    started: datetime
    result: Any
    state: dict[str, Any] | None
    #: when the call returned (monotonic), for the record window
    done_at: float = field(default_factory=time.monotonic)
    #: when the call returned, by the worker's clock: the attempt's finished_at (not the record's time)
    finished: datetime | None = None
    #: the item version the call carried (None: no call was made)
    version: int | None = None


@dataclass(slots=True, frozen=True)
class HandedBack:
    """A claim a delivery thread gives back without an outcome to record.

    ``kind`` is LOST_LEASE (dropped), WITHHELD (settled without a call by the loop thread) or None:
    the store did not answer its start, and it goes back to the front of the backlog.
    """

    claim: Claim
    kind: OutcomeKind | None = None


@dataclass(slots=True)
class Outcome:
    """What the record writes for one finished call (before any request a person left is settled)."""

    #: the delivery's new column values
    values: dict[str, Any]
    kind: OutcomeKind | str
    to: DeliveryStatus
    message: str | None = None
    code: str | None = None


def outcome_of(f: Finished, now: datetime, *, max_attempts: int, backoff: Callable[[int], timedelta]) -> Outcome:
    """The outcome of a finished call: the delivery's new values, the outcome, its new state."""
    c, result = f.claim, f.result
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
    if f.state is not None:
        values["state"] = f.state
    message = code = None
    kind: OutcomeKind | str
    if isinstance(result, Published):
        kind, to = OutcomeKind.DONE, DeliveryStatus.DONE
        values.update(last_error=None, last_error_kind=None, last_error_code=None, note=None)
        if c.op == DeliveryOp.WITHDRAW:
            values["withdrawn_at"] = now
        else:
            values.update(url=result.url or c.url, remote_id=result.remote_id or c.remote_id)
            if c.published_at is None:
                values["published_at"] = now
            elif c.op == DeliveryOp.PUBLISH:
                values["withdrawn_at"] = None  # published again after a take-down (channel re-added)
    elif isinstance(result, InProgress):
        kind, to = OutcomeKind.WAITING, DeliveryStatus.WAITING
        values.update(due_at=now + result.check_again_in, attempts=c.attempts - 1, note=result.note or None)
    elif isinstance(result, QuotaExceeded):
        kind, to = OutcomeKind.QUOTA, DeliveryStatus.PENDING
        message, code = str(result), result.code
        values.update(due_at=result.until, attempts=c.attempts - 1)
    elif isinstance(result, PermanentChannelError):
        kind, to = OutcomeKind.PERMANENT, DeliveryStatus.FAILED
        message, code = str(result), result.code
    else:
        kind = _kind(result.kind) if isinstance(result, ChannelError) else OutcomeKind.ERROR
        message = str(result) if isinstance(result, ChannelError) else f"{type(result).__name__}: {result}"
        code = getattr(result, "code", None)
        values["attempts"] = c.attempts  # also where the call never started (its post could not be built)
        if c.attempts >= max_attempts:
            to = DeliveryStatus.FAILED
            message = f"{message} (gave up after {c.attempts} attempts)"
        else:
            to = DeliveryStatus.PENDING
            values["due_at"] = now + backoff(c.attempts)
    code = None if code is None else str(code)
    if message is not None:
        # a plain str: drivers adapt str subclasses (enums) their own way
        values.update(last_error=message[:2000], last_error_kind=str(kind), last_error_code=code)
    values["status"] = to.value
    return Outcome(values, kind, to, message, code)
