"""The audit trail: one builder of an audit row, for the ORM paths (:func:`audit`) and the batched
Core paths (:data:`AUDIT_KEYS`, :func:`_driver_many`) alike, so both write the same rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlmodel import Session

from publisher.db import DriverMany
from publisher.models import AuditLog, utcnow

#: the actor of what the pipeline does by itself (queueing, rolling up, a worker's record)
SYSTEM = "system"

#: the columns of an audit row written by the batched paths
AUDIT_KEYS = ("at", "actor", "entity", "entity_id", "action", "from_state", "to_state", "reason", "detail")


def audit_row(
    *,
    actor: str,
    entity: str,
    entity_id: int | None,
    action: str,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    at: datetime | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """One audit row, keyed by :data:`AUDIT_KEYS`."""
    return {
        "at": at or utcnow(),
        "actor": actor,
        "entity": entity,
        "entity_id": entity_id,
        "action": action,
        "from_state": from_state,
        "to_state": to_state,
        "reason": reason,
        "detail": detail,
    }


def audit(
    session: Session,
    *,
    actor: str,
    entity: str,
    entity_id: int | None,
    action: str,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    **detail: Any,
) -> AuditLog:
    row = AuditLog(
        **audit_row(
            actor=actor,
            entity=entity,
            entity_id=entity_id,
            action=action,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
            **detail,
        )
    )
    session.add(row)
    return row


_DRIVER_MANY: dict[tuple[str, str, str], DriverMany] = {}


def _driver_many(conn: Connection, name: str, statement: Any, keys: Iterable[str]) -> DriverMany:
    """One compiled :class:`DriverMany` per dialect and purpose."""
    key = (conn.dialect.name, conn.dialect.driver, name)
    many = _DRIVER_MANY.get(key)
    if many is None:
        many = _DRIVER_MANY[key] = DriverMany(conn.dialect, statement, keys)
    return many
