"""The batched record of outcomes: delivery rows, attempt rows, audit rows and the items' roll-up.

Per-delivery transactions cost more than a local HTTP call, so a worker records the outcomes that
finished in the last moments together, in one transaction. The executemany statements go straight
to the driver (publisher.db.DriverMany).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from publisher.channel import AmbiguousOutcome, CredentialsRefused, InProgress, Published, QuotaExceeded
from publisher.db import DriverMany, one_of, records
from publisher.models import AuditLog, Delivery, DeliveryAttempt, DeliveryOp, DeliveryStatus, Item, ItemStatus
from publisher.pipeline.outcome import Claim, Finished, Outcome, OutcomeKind, outcome_of
from publisher.pipeline.store.connections import Connections
from publisher.pipeline.workflow import AUDIT_KEYS, Context, outbox
from publisher.pipeline.workflow.audit import audit_row
from publisher.pipeline.workflow.inflight import Settlement, by_hand, settle_request, unknown_fate
from publisher.pipeline.workflow.states import rollup_items

D = Delivery.__table__  # type: ignore[attr-defined]
ATTEMPT = DeliveryAttempt.__table__  # type: ignore[attr-defined]
AUDIT = AuditLog.__table__  # type: ignore[attr-defined]
ITEM = Item.__table__  # type: ignore[attr-defined]

#: the columns of an attempt row
ATTEMPT_KEYS = ("delivery_id", "number", "op", "worker", "started_at", "finished_at", "outcome", "message", "code")
#: states that end a delivery's part in its item's roll-up
_SETTLED = (DeliveryStatus.DONE, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)


class Recorder:
    """Writes what one worker's calls came to, and hands back the claims it never started."""

    def __init__(self, ctx: Context, worker_id: str, connections: Connections) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.worker_id = worker_id
        self.actor = f"worker {worker_id}"
        self.connections = connections
        dialect = connections.engine.dialect
        self.dialect = dialect
        #: the leases still this worker's among ``ids``, their rows locked, with any request left on them
        self.owned_q = (
            sa.select(D.c.id, D.c.requested, D.c.request_lease)
            .where(
                one_of(dialect.name, D.c.id, "ids"),
                D.c.lease_owner == sa.bindparam("owner"),
                D.c.status == DeliveryStatus.CLAIMED.value,
            )
            .order_by(D.c.id)
            .with_for_update()
        )
        self.update_by_id = sa.update(D).where(D.c.id == sa.bindparam("b_id"))
        self.insert_attempt = DriverMany(dialect, sa.insert(ATTEMPT), ATTEMPT_KEYS)
        self.insert_audit = DriverMany(dialect, sa.insert(AUDIT), AUDIT_KEYS)
        #: one UPDATE per set of columns written
        self.updates: dict[tuple[str, ...], DriverMany] = {}

    def _owned(self, conn: sa.Connection, ids: list[int]) -> dict[int, Any]:
        return {r.id: r for r in records(conn.execute(self.owned_q, {"ids": ids, "owner": self.worker_id}))}

    def _audit(self, now: datetime, c: Claim, action: str, from_: str, to: str, reason: Any, **detail: Any) -> dict:
        return audit_row(
            at=now,
            actor=self.actor,
            entity="delivery",
            entity_id=c.id,
            action=action,
            from_state=from_,
            to_state=to,
            reason=reason,
            item_id=c.item_id,
            channel=c.channel,
            **detail,
        )

    def _settle(
        self,
        conn: sa.Connection,
        req: Any,
        c: Claim,
        values: dict[str, Any],
        *,
        sent_version: int | None,
        outcome: str,
        to: DeliveryStatus,
    ) -> tuple[DeliveryStatus, str]:
        """Apply the request a person left on ``c`` (its row ``req``) to what the worker is recording."""
        settlement = Settlement(
            requested=req.requested,
            request_lease=req.request_lease,
            worker=self.worker_id,
            delivery_id=c.id,
            op=c.op,
            channel=c.channel,
            item_id=c.item_id,
            sent_version=sent_version,
            outcome=outcome,
            to=to,
        )
        return settle_request(self.ctx, conn, settlement, values)

    def record(self, finished: list[Finished], now: datetime) -> list[Outcome]:
        """Record many outcomes in one transaction; a delivery whose lease was lost is left alone
        (its Outcome's kind then LOST_LEASE)."""
        w = self.settings.worker
        planned = [outcome_of(f, now, max_attempts=w.max_attempts, backoff=self.settings.backoff) for f in finished]
        late: list[Finished] = []
        with self.connections.writing() as conn:
            owned = self._owned(conn, [f.claim.id for f in finished])
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
            attempts: list[dict[str, Any]] = []
            audits: list[dict[str, Any]] = []
            finished_items: set[int] = set()
            told: list[outbox.DeliveryEvent] = []
            problems: list[outbox.ChannelProblem] = []
            for f, o in zip(finished, planned, strict=True):
                c, values = f.claim, o.values
                if c.id not in owned:
                    # another worker took the delivery over after our lease expired: its record wins,
                    # unless our call put a copy up where a take-down is now owed (see _late)
                    o.kind = OutcomeKind.LOST_LEASE
                    late.append(f)
                    continue
                kind = str(o.kind)  # a plain str: drivers adapt str subclasses (enums) their own way
                attempts.append(
                    dict(
                        delivery_id=c.id,
                        number=c.attempts,
                        op=c.op,
                        worker=self.worker_id,
                        started_at=f.started,
                        finished_at=f.finished or now,
                        outcome=kind,
                        message=o.message,
                        code=o.code,
                    )
                )
                claimed = DeliveryStatus.CLAIMED.value
                audits.append(
                    self._audit(now, c, c.op, claimed, o.to.value, o.message, outcome=kind, url=values.get("url"))
                )
                to = o.to
                if (req := owned[c.id]).requested:
                    # a withdrawal, an edit or a re-approval came during the call (workflow.inflight._request)
                    settled, why = self._settle(conn, req, c, values, sent_version=f.version, outcome=kind, to=to)
                    action = f"settle {req.requested}"
                    audits.append(self._audit(now, c, action, to.value, settled.value, why, op=values.get("op", c.op)))
                    to = settled
                groups[tuple(sorted(values))].append({"b_id": c.id, **values})
                if to in _SETTLED:
                    finished_items.add(c.item_id)
                if (event := self._told(c, f, to, values)) is not None:
                    told.append(event)
                if isinstance(f.result, CredentialsRefused | QuotaExceeded):
                    problems.append(self._problem(c, f.result))
            for keys, rows in groups.items():
                many = self.updates.get(keys)
                if many is None:
                    many = self.updates[keys] = DriverMany(self.dialect, self.update_by_id, keys)
                many.execute(conn, rows)
            self.insert_attempt.execute(conn, attempts)
            self.insert_audit.execute(conn, audits)
            if finished_items:
                rollup_items(conn, finished_items, self.actor)
            outbox.on_deliveries(conn, told)
            outbox.on_channel_problems(conn, problems, self.settings.zone, now)
        for f in late:  # rare: each in its own transaction, its row locked as the workflow locks it
            with self.connections.writing() as conn:
                if (audit_row := self._late(conn, f, now)) is not None:
                    self.insert_audit.execute(conn, [audit_row])
        return planned

    def _told(self, c: Claim, f: Finished, to: DeliveryStatus, values: dict[str, Any]) -> outbox.DeliveryEvent | None:
        """The notification a recorded outcome owes a person: failed for good, or waiting by hand."""
        spec = self.ctx.channels.get(c.channel)
        if to == DeliveryStatus.FAILED:
            kind = outbox.DELIVERY_FAILED
        elif to == DeliveryStatus.WAITING and spec is not None and spec.channel.manual:
            # the first answer puts it on the by-hand queue; one past the channel's deadline is overdue
            overdue = isinstance(f.result, InProgress) and f.result.overdue
            kind = outbox.BY_HAND_OVERDUE if overdue else outbox.BY_HAND
        else:
            return None
        label = spec.label if spec is not None else c.channel
        error = values.get("last_error")
        if kind == outbox.BY_HAND_OVERDUE and (since := (f.state or c.state or {}).get("waiting_since")):
            error = f"{datetime.fromisoformat(since).astimezone(self.settings.zone):%Y-%m-%d %H:%M}"
        return outbox.DeliveryEvent(c.id, c.item_id, c.channel, label, kind, c.attempts, f.version, error)

    def _problem(self, c: Claim, error: Exception) -> outbox.ChannelProblem:
        """A call refused for the channel's credentials or quota: the admins are told (once a day)."""
        spec = self.ctx.channels.get(c.channel)
        kind = outbox.QUOTA if isinstance(error, QuotaExceeded) else outbox.CREDENTIALS
        return outbox.ChannelProblem(c.channel, spec.label if spec is not None else c.channel, kind, str(error))

    def _late(self, conn: sa.Connection, f: Finished, now: datetime) -> dict[str, Any] | None:
        """A publish or update whose lease ran out mid-call came back: what it did must not be lost.

        Whoever took the delivery over recorded its own outcome, not this call's. When the call says it
        put a copy up (or may have) and the item has since been withdrawn or the channel taken off it,
        the store would otherwise believe nothing is up there, or that it is already down (the copy may
        have landed after the take-down): the take-down is owed again (a take-down of a copy already
        gone succeeds on every channel), or a person is told to check where nobody can know. On a
        live item a publication the store did not know of is recorded (a later withdrawal then takes
        it down). A delivery claimed again right now is left to its worker. Returns the audit row.
        """
        c, result = f.claim, f.result
        published = isinstance(result, Published)
        if c.op == DeliveryOp.WITHDRAW or not (published or isinstance(result, (AmbiguousOutcome, InProgress))):
            return None
        # the delivery row first, then the item (as workflow.get_item locks them): a withdrawal either
        # committed before (read below) or waits and then finds what this writes
        row = conn.execute(
            sa.select(D.c.status, D.c.op, D.c.published_at, D.c.withdrawn_at, D.c.url, D.c.remote_id)
            .where(D.c.id == c.id)
            .with_for_update()
        ).first()
        if row is None or row.status == DeliveryStatus.CLAIMED.value:
            return None
        item = conn.execute(sa.select(ITEM.c.status, ITEM.c.channels).where(ITEM.c.id == c.item_id)).one()
        live = row.published_at is not None and row.withdrawn_at is None
        values: dict[str, Any] = {"updated_at": now}
        if published:
            values.update(published_at=row.published_at or f.finished or now)
            if not live:  # the copy this call put up is the one to know of
                values.update(url=result.url or row.url, remote_id=result.remote_id or row.remote_id)
        down = item.status == ItemStatus.WITHDRAWN.value or c.channel not in (item.channels or ())
        if not down:
            if not published or row.published_at is not None:
                return None
            why = f"a call whose lease had run out published after all ({result.url}): recorded as live"
            to = row.status
        else:
            owed = row.op == DeliveryOp.WITHDRAW.value and row.status in (
                DeliveryStatus.PENDING.value,
                DeliveryStatus.FAILED.value,
            )
            if owed and (live or not published):
                return None  # the take-down (or a person's check) is already owed
            spec = self.ctx.channels.get(c.channel)
            values.update(
                op=DeliveryOp.WITHDRAW.value,
                due_at=now,
                attempts=0,
                withdrawn_at=None,
                last_error_kind=None,
                last_error_code=None,
                requested=None,
                request_lease=None,
                lease_owner=None,
                lease_expires_at=None,
            )
            if not published:
                to = DeliveryStatus.FAILED.value
                why = unknown_fate(
                    c.channel,
                    "item withdrawn or channel removed, and a call whose lease had run out "
                    f"came back {type(result).__name__}",
                )
                values.update(status=to, last_error=why)
            elif spec is None or not spec.channel.supports_withdraw:
                to = DeliveryStatus.FAILED.value
                why = f"a call whose lease had run out published after the withdrawal: {by_hand(c.channel)}"
                values.update(status=to, last_error=by_hand(c.channel))
            else:
                to = DeliveryStatus.PENDING.value
                why = "a call whose lease had run out published after the withdrawal: queued withdraw"
                values.update(status=to, last_error=None)
        conn.execute(sa.update(D).where(D.c.id == c.id).values(**values))
        return self._audit(
            now, c, "late outcome", row.status, to, why, op=values.get("op", row.op), url=values.get("url")
        )

    def release(self, claims: list[Claim], now: datetime) -> None:
        """Hand back leases of deliveries never started: due again at once, no attempt counted.

        A request a person left meanwhile (``Delivery.requested``) is settled here as for a call that
        did not go out (:func:`publisher.pipeline.workflow.inflight.settle_request`): handed back as it is, a
        delivery of a withdrawn or edited item would sit pending to publish, its request waiting for a
        record that never comes.
        """
        with self.connections.writing() as conn:
            owned = {
                r.id: r for r in conn.execute(self.owned_q, {"ids": [c.id for c in claims], "owner": self.worker_id})
            }
            plain = [c for c in claims if c.id in owned and not owned[c.id].requested]
            if plain:
                conn.execute(
                    self.update_by_id.where(
                        D.c.lease_owner == self.worker_id, D.c.status == DeliveryStatus.CLAIMED.value
                    ),
                    [
                        {
                            "b_id": c.id,
                            "status": DeliveryStatus.PENDING.value,
                            "lease_owner": None,
                            "lease_expires_at": None,
                        }
                        for c in plain
                    ],
                )
            audits: list[dict[str, Any]] = []
            settled_items: set[int] = set()
            for c in claims:
                req = owned.get(c.id)
                if req is None or not req.requested:
                    continue
                values: dict[str, Any] = {
                    "status": DeliveryStatus.PENDING.value,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "updated_at": now,
                }
                to, why = self._settle(
                    conn, req, c, values, sent_version=None, outcome="released", to=DeliveryStatus.PENDING
                )
                conn.execute(sa.update(D).where(D.c.id == c.id).values(**values))
                claimed = DeliveryStatus.CLAIMED.value
                action, reason = f"settle {req.requested}", f"released unsent; {why}"
                audits.append(self._audit(now, c, action, claimed, to.value, reason, op=values.get("op", c.op)))
                if to in _SETTLED:
                    settled_items.add(c.item_id)
            if audits:
                self.insert_audit.execute(conn, audits)
            if settled_items:
                rollup_items(conn, settled_items, self.actor)
