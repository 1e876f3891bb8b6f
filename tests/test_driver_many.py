"""publisher.db.DriverMany writes what SQLAlchemy itself would (both engines; COPY on PostgreSQL).

The dispatcher's record goes through DriverMany, not through SQLAlchemy's executemany, so the values
it stores must read back exactly: aware UTC datetimes to the microsecond, JSON, NULLs, and text with
the characters COPY's text format escapes (tab, newline, backslash) or that are not ASCII.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.db import DriverMany
from publisher.models import AuditLog
from publisher.pipeline.workflow import AUDIT_KEYS

AUDIT = AuditLog.__table__  # type: ignore[attr-defined]

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
zones = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])
moments = st.builds(
    lambda d, z: d.replace(tzinfo=UTC).astimezone(z),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)),
    zones,
)
rows = st.lists(
    st.fixed_dictionaries(
        {
            "at": moments,
            "actor": texts.filter(bool),
            "entity": st.sampled_from(["delivery", "item"]),
            "entity_id": st.none() | st.integers(0, 2**31 - 1),
            "action": texts.filter(bool),
            "from_state": st.none() | texts,
            "to_state": st.none() | texts,
            "reason": st.none() | texts,
            "detail": st.dictionaries(texts, st.none() | texts | st.integers(-(2**40), 2**40), max_size=4),
        }
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=rows)
def test_rows_read_back_as_written(app: Any, batch: list[dict[str, Any]]) -> None:
    many = DriverMany(app.engine.dialect, sa.insert(AUDIT), AUDIT_KEYS)
    with app.engine.begin() as conn:
        first = conn.execute(sa.select(sa.func.coalesce(sa.func.max(AUDIT.c.id), 0))).scalar_one()
        many.execute(conn, batch)
    with app.engine.connect() as conn:
        got = conn.execute(
            sa.select(*(AUDIT.c[k] for k in AUDIT_KEYS)).where(AUDIT.c.id > first).order_by(AUDIT.c.id)
        ).all()
    assert [dict(zip(AUDIT_KEYS, r, strict=True)) for r in got] == batch
