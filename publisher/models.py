"""The content store: SQLModel tables and the enums of their states.

Times are stored as naive UTC and come back aware (``UTCDateTime``); a naive datetime is refused at
the boundary rather than guessed at. Enum-valued columns are plain strings in the database so the
schema is the same on SQLite and PostgreSQL.

One module past ~600 lines on purpose: these are the tables of one store, read together by the
migrations that change them and by each other's foreign keys; the tables of a part that stands apart
(the notification outbox, the catalogue, campus sign-in) live in their own modules.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive ones are a bug and raise."""

    impl = sa.DateTime
    cache_ok = True

    @staticmethod
    def _in_utc(value: datetime) -> datetime:
        """``value`` moved to UTC; a naive datetime is refused."""
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: attach a time zone before storing it")
        return value.astimezone(UTC)

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = self._in_utc(value)
        # combine() rather than replace(tzinfo=...): a quarter of the cost (replace parses keywords)
        return datetime.combine(value.date(), value.time())

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return datetime.combine(value.date(), value.time(), UTC)

    # SQLite keeps these as text ("2026-12-01 09:00:00.000000", UTC). The two processors below write
    # and read that text directly, each in one C call: the generic path (astimezone, replace(), the
    # dialect's field-by-field formatting, then parsing and replace() again) costs a twentieth of the
    # dispatcher's loop, replace() alone ~9,000 instructions a call (it parses its keywords).
    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if not isinstance(value, datetime):
                raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
            # the dialect's own format: YYYY-MM-DD HH:MM:SS.ffffff, without the offset
            return self._in_utc(value).isoformat(" ", "microseconds")[:26]

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        generic = super().result_processor(dialect, coltype)
        parse = datetime.fromisoformat

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if type(value) is str and len(value) <= 26:
                try:
                    return parse(value + "+00:00")
                except ValueError:
                    pass
            return generic(value) if generic is not None else value

        return process


def _dt(**kw: Any) -> Any:
    nullable = kw.pop("nullable", False)
    index = kw.pop("index", False)
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index), **kw)


class Role(enum.StrEnum):
    EDITOR = "editor"
    DEPARTMENT_HEAD = "department_head"
    CONFIDENTIALITY_REVIEWER = "confidentiality_reviewer"
    ADMIN = "admin"
    VIEWER = "viewer"


class ItemStatus(enum.StrEnum):
    """Where an item is in its life. Only the last four ever have deliveries that publish."""

    DRAFT = "draft"  #: being written (or returned by a reviewer, with the reason)
    SUBMITTED = "submitted"  #: waiting for the department head (first review)
    DEPT_APPROVED = "dept_approved"  #: waiting for the confidentiality review (保密审查)
    APPROVED = "approved"  #: both reviews passed; no publish time yet
    SCHEDULED = "scheduled"  #: deliveries are queued for the publish time
    PUBLISHED = "published"  #: every target channel has it
    FAILED = "failed"  #: at least one channel failed for good (see its delivery)
    WITHDRAWN = "withdrawn"  #: taken down everywhere it could be


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  #: due at due_at
    CLAIMED = "claimed"  #: a worker holds the lease and is calling the channel
    WAITING = "waiting"  #: the channel accepted it and is finishing (or a person must post it)
    DONE = "done"  #: the operation (publish / update / withdraw) succeeded
    FAILED = "failed"  #: permanent failure or attempts used up; the reason is on the row
    CANCELLED = "cancelled"  #: no longer wanted (item edited or withdrawn before it went out)


#: the statuses of owed work, in the order of the partial index ix_delivery_owed's condition (0007)
OWED_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.CLAIMED, DeliveryStatus.WAITING)


def status_literal(status: DeliveryStatus) -> sa.ColumnElement:
    """``status`` written into the SQL as a literal, not bound: a planner can only tell that a query
    stays within a partial index (ix_delivery_owed, ix_delivery_failed) from literals."""
    return sa.literal_column(f"'{status.value}'")


def owed(column: Any) -> sa.ColumnElement:
    """``column = 'pending' OR column = 'claimed' OR column = 'waiting'``, as ix_delivery_owed's
    condition reads on SQLite (migration 0010): a query that fixes the status to other than one of the
    three must repeat the condition for SQLite to use that partial index. PostgreSQL proves this
    implies its index's ``status IN (...)`` condition."""
    return sa.or_(*(column == status_literal(s) for s in OWED_STATUSES))


class DeliveryOp(enum.StrEnum):
    PUBLISH = "publish"
    UPDATE = "update"
    WITHDRAW = "withdraw"


class DeliveryRequest(enum.StrEnum):
    """What a person asked of a delivery while a worker held it (``Delivery.requested``).

    A claimed delivery may be inside the channel call: changing it then would lose the call's result.
    The wish is recorded instead and the worker applies it when it records the outcome
    (publisher.pipeline.workflow.inflight.settle_request).
    """

    WITHDRAW = "withdraw"  #: item withdrawn or channel removed: take down what went out, cancel the rest
    CANCEL = "cancel"  #: item edited after approval: keep what went out, cancel the rest
    REQUEUE = "requeue"  #: the edit was approved again: send the current version (publish or update)


class Department(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(sa.String(100), unique=True, nullable=False))


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(sa.String(100), unique=True, nullable=False))
    display_name: str = ""
    role: str = Field(sa_column=Column(sa.String(40), nullable=False))
    department: str | None = Field(default=None, sa_column=Column(sa.String(100), nullable=True))
    password_hash: str | None = None
    active: bool = True
    created_at: datetime = _dt(default_factory=utcnow)
    #: ``admin`` (role and department set by hand) or ``directory`` (the mapping sets them at each sign-in)
    role_source: str = Field(default="admin", sa_column=Column(sa.String(10), nullable=False, server_default="admin"))


#: the items whose 公示期 has not ended yet (ix_item_display_open's condition, migration 0014)
DISPLAY_OPEN = "display_ended_at IS NULL AND (display_until IS NOT NULL OR display_working_days IS NOT NULL)"


class Item(SQLModel, table=True):
    __table_args__ = (
        sa.Index(
            "ix_item_display_open",
            "display_ends_at",
            sqlite_where=sa.text(DISPLAY_OPEN),
            postgresql_where=sa.text(DISPLAY_OPEN),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(sa_column=Column(sa.String(500), nullable=False))
    summary: str = ""
    body_markdown: str = Field(sa_column=Column(sa.Text, nullable=False))
    #: rendered and sanitised once when the body changes; images are asset:// references
    body_html: str = Field(sa_column=Column(sa.Text, nullable=False))
    category: str = Field(sa_column=Column(sa.String(50), nullable=False, index=True))
    department: str = Field(sa_column=Column(sa.String(100), nullable=False, index=True))
    author_id: int = Field(foreign_key="user.id", index=True)
    checklist_item: int | None = Field(default=None, index=True)
    channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=ItemStatus.DRAFT, sa_column=Column(sa.String(20), nullable=False, index=True))
    #: bumped by every edit; reviews approve one version
    version: int = 1
    publish_at: datetime | None = _dt(default=None, nullable=True)
    created_at: datetime = _dt(default_factory=utcnow)
    updated_at: datetime = _dt(default_factory=utcnow)
    #: the reason of the last rejection, shown to the author
    return_reason: str | None = None
    #: set by API clients so a retried create never makes a second item
    idempotency_key: str | None = Field(default=None, sa_column=Column(sa.String(200), unique=True))
    #: pipeline (written and reviewed here) | import (recorded from a CSV) | remote (found by the sync
    #: on a channel); only pipeline items ever pass the dispatcher (see publisher.counting.ledger)
    origin: str = Field(
        default="pipeline", sa_column=Column(sa.String(20), nullable=False, server_default="pipeline", index=True)
    )
    #: the 公示期 asked for (docs/privacy.md): an end time, or Chinese working days from going live (not both)
    display_until: datetime | None = _dt(default=None, nullable=True)
    display_working_days: int | None = None
    #: when the period ends, once known (display_until at once; working days once the item is live)
    display_ends_at: datetime | None = _dt(default=None, nullable=True)
    #: when the take-down at the end was queued (publisher.pipeline.workflow.display.end_displays)
    display_ended_at: datetime | None = _dt(default=None, nullable=True)
    #: why the end could not be computed (a year the holiday calendar does not know): the item stays up
    display_problem: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    #: the 政府信息公开目录 fields (docs/catalogue.md; enums, counter and relations in publisher.catalogue)
    index_no: str | None = Field(default=None, sa_column=Column(sa.String(100), unique=True, index=True, nullable=True))
    doc_number: str | None = Field(default=None, sa_column=Column(sa.String(100), nullable=True, index=True))
    written_on: date | None = Field(default=None, sa_column=Column(sa.Date, nullable=True))
    topic: str | None = Field(default=None, sa_column=Column(sa.String(50), nullable=True, index=True))
    disclosure_mode: str | None = Field(default=None, sa_column=Column(sa.String(20), nullable=True))
    disclosure_scope: str | None = Field(default=None, sa_column=Column(sa.String(200), nullable=True))
    validity: str | None = Field(default=None, sa_column=Column(sa.String(20), nullable=True, index=True))
    replaced_by: int | None = None
    #: per-channel wording (publisher.pipeline.workflow.wording): {channel: {title, summary, body, cover…}}
    overrides: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))


class Asset(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    sha256: str = Field(sa_column=Column(sa.String(64), nullable=False))
    filename: str
    content_type: str
    role: str = "image"  # image | cover | attachment
    size: int = 0
    width: int | None = None
    height: int | None = None
    #: alt text (替代文本) of a cover (migration 0022); body images carry theirs in the Markdown
    alt: str | None = Field(default=None, sa_column=Column(sa.String(500), nullable=True))


class Review(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    item_version: int
    level: int  # 1 = department head, 2 = confidentiality review (保密审查)
    reviewer_id: int = Field(foreign_key="user.id")
    approved: bool
    reason: str | None = None
    at: datetime = _dt(default_factory=utcnow)


class Delivery(SQLModel, table=True):
    """One item on one channel. ``op`` is what is owed now: publish, then maybe update or withdraw."""

    __table_args__ = (
        sa.UniqueConstraint("item_id", "channel", name="uq_delivery_item_channel"),
        sa.Index("ix_delivery_due", "status", "due_at"),
        # migration 0004_scale (stats by period and channel read the index alone)
        sa.Index("ix_delivery_published_channel_item", "published_at", "channel", "item_id"),
        # migration 0007_stats_perf also adds two partial indexes, ix_delivery_owed and ix_delivery_failed
        # (what publisher.counting.stats counts live), and the triggers that keep the item_* copies
    )

    id: int | None = Field(default=None, primary_key=True)
    # no index of its own: item_id leads uq_delivery_item_channel (migration 0010)
    item_id: int = Field(foreign_key="item.id")
    # no index of its own: channel leads ix_delivery_channel_remote_id (migration 0010)
    channel: str = Field(sa_column=Column(sa.String(100), nullable=False))
    op: str = Field(default=DeliveryOp.PUBLISH, sa_column=Column(sa.String(20), nullable=False))
    status: str = Field(default=DeliveryStatus.PENDING, sa_column=Column(sa.String(20), nullable=False))
    due_at: datetime = _dt(default_factory=utcnow)
    #: the item version this delivery carries
    item_version: int = 1
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = _dt(default=None, nullable=True)
    #: the channel's resume state (draft id, publish id...), saved step by step
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    remote_id: str | None = None
    url: str | None = None
    #: set once, when the item first went live on this channel
    #: (read through ix_delivery_published_channel_item, which it leads)
    published_at: datetime | None = _dt(default=None, nullable=True)
    withdrawn_at: datetime | None = _dt(default=None, nullable=True)
    #: the weekly sync found the published URL no longer answers (cleared when it answers again)
    taken_down_at: datetime | None = _dt(default=None, nullable=True)
    last_error_kind: str | None = None
    last_error: str | None = None
    last_error_code: str | None = None
    note: str | None = None
    #: a DeliveryRequest made while the delivery was claimed, applied when the worker records the outcome
    requested: str | None = Field(default=None, sa_column=Column(sa.String(20), nullable=True))
    #: the lease owner when the request was made: if another worker records the outcome, the first
    #: one's call (lease lost or worker killed) may have gone out unrecorded
    request_lease: str | None = None
    created_at: datetime = _dt(default_factory=utcnow)
    updated_at: datetime = _dt(default_factory=utcnow)
    #: copies of the item's fields, for publisher.counting.stats: written by the database (triggers of
    #: migration 0007) whenever the delivery is written or the item's fields change; never set them
    item_category: str | None = Field(default=None, sa_column=Column(sa.String(50), nullable=True))
    item_department: str | None = Field(default=None, sa_column=Column(sa.String(100), nullable=True))
    item_checklist_item: int | None = None


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    number: int
    op: str
    worker: str
    started_at: datetime = _dt()
    finished_at: datetime = _dt()
    #: done | waiting | transient | permanent | quota | ambiguous | error
    outcome: str
    message: str | None = None
    code: str | None = None


class AuditLog(SQLModel, table=True):
    """Append-only: a database trigger refuses UPDATE and DELETE on it."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _dt(default_factory=utcnow, index=True)
    actor: str
    entity: str  # item | delivery | user | channel
    entity_id: int | None = None
    action: str
    from_state: str | None = None
    to_state: str | None = None
    reason: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ChannelKV(SQLModel, table=True):
    """The shared key/value store channels use (one WeChat access token for every worker)."""

    __tablename__ = "channel_kv"

    key: str = Field(sa_column=Column(sa.String(300), primary_key=True))
    value: str = Field(sa_column=Column(sa.Text, nullable=False))
    expires_at: datetime | None = _dt(default=None, nullable=True)


class ChannelStat(SQLModel, table=True):
    """Engagement figures a channel reports (WeChat reads, shares...), per remote id and day."""

    __tablename__ = "channel_stat"
    __table_args__ = (sa.UniqueConstraint("channel", "remote_id", "day", "metric", name="uq_channel_stat"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(sa_column=Column(sa.String(100), nullable=False))
    remote_id: str = Field(default="", sa_column=Column(sa.String(200), nullable=False))
    day: date = Field(sa_column=Column(sa.Date, nullable=False))
    metric: str
    value: int


class JobLease(SQLModel, table=True):
    """Who runs a periodic job for which period, so several workers run it once (see scheduler)."""

    __tablename__ = "job_lease"

    name: str = Field(sa_column=Column(sa.String(200), primary_key=True))
    owner: str
    expires_at: datetime = _dt()


class ChannelRate(SQLModel, table=True):
    """The next free call slot of each channel that has a ``rate_per_minute``, shared by every worker.

    ``publisher.pipeline.store.rate`` reserves slots here inside the claim transaction, so that a limit holds
    across all the worker processes of one store, not per process. The slot is microseconds since
    the Unix epoch (UTC) rather than a datetime, so that the reservation is one portable statement
    of integer arithmetic on both engines. ``granted`` is how many slots the last reservation got.
    """

    __tablename__ = "channel_rate"

    channel: str = Field(sa_column=Column(sa.String(100), primary_key=True))
    next_slot_us: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    granted: int = Field(sa_column=Column(sa.Integer, nullable=False))


# ---- the ledger: publications, sync, coverage, registers ----
class ItemOrigin(enum.StrEnum):
    PIPELINE = "pipeline"  #: written, reviewed twice and dispatched here
    IMPORT = "import"  #: published elsewhere by hand, recorded with ``publisher import``
    REMOTE = "remote"  #: found on a channel by the weekly sync (posted outside the pipeline)


class LinkCheck(SQLModel, table=True):
    """A change the sync saw in whether a published URL answers (one row per change, not per check)."""

    __tablename__ = "link_check"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    sync_run_id: int | None = Field(default=None, foreign_key="sync_run.id")
    at: datetime = _dt(default_factory=utcnow)
    ok: bool
    status: int | None = None
    reason: str = ""


class SyncRun(SQLModel, table=True):
    """One run of the weekly sync and what it changed (shown on the dashboard)."""

    __tablename__ = "sync_run"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = _dt(default_factory=utcnow, index=True)
    finished_at: datetime | None = _dt(default=None, nullable=True)
    actor: str = "system"
    stats_changed: int = 0
    links_checked: int = 0
    taken_down: int = 0
    restored: int = 0
    remote_added: int = 0
    errors: int = 0
    #: per channel: {"stats": n, "checked": n, "taken_down": [...], "remote_added": [...], "errors": [...]}
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ChecklistRule(SQLModel, table=True):
    """How often an item of the national checklist must be republished (set by an admin)."""

    __tablename__ = "checklist_rule"

    number: int = Field(primary_key=True)
    #: annual | semester | quarterly | monthly | on_change
    rule: str = Field(sa_column=Column(sa.String(20), nullable=False))
    updated_by: str = "system"
    updated_at: datetime = _dt(default_factory=utcnow)


class DisclosureRequest(SQLModel, table=True):
    """A request for disclosure (依申请公开) and how it was answered."""

    __tablename__ = "disclosure_request"

    id: int | None = Field(default=None, primary_key=True)
    applicant: str = Field(sa_column=Column(sa.String(200), nullable=False))
    received_at: datetime = _dt(index=True)
    #: letter | email | web | in_person | phone | other
    via: str = Field(sa_column=Column(sa.String(20), nullable=False))
    subject: str = Field(sa_column=Column(sa.Text, nullable=False))
    due_on: date = Field(sa_column=Column(sa.Date, nullable=False))
    extended: bool = False
    extension_reason: str | None = None
    #: open | disclosed | partly | not_disclosed | not_held
    outcome: str = Field(default="open", sa_column=Column(sa.String(20), nullable=False, index=True))
    #: the legal ground when not (wholly) disclosed: state_secret | trade_secret | privacy | other text
    legal_reason: str | None = None
    answered_at: datetime | None = _dt(default=None, nullable=True)
    note: str | None = None
    recorded_by: str = "system"
    created_at: datetime = _dt(default_factory=utcnow)
    #: the public form's (/apply) receipt number (回执编号), given to the applicant; None when staff recorded it
    receipt_no: str | None = Field(default=None, sa_column=Column(sa.String(40), nullable=True, unique=True))
    #: how to reach the applicant (phone, e-mail or postal address), as they wrote it on the form
    contact: str | None = Field(default=None, sa_column=Column(sa.String(300), nullable=True))


class Complaint(SQLModel, table=True):
    """A complaint or report (举报/投诉) about the disclosure work and how it was settled."""

    __tablename__ = "complaint"

    id: int | None = Field(default=None, primary_key=True)
    complainant: str = Field(sa_column=Column(sa.String(200), nullable=False))
    received_at: datetime = _dt(index=True)
    via: str = Field(sa_column=Column(sa.String(20), nullable=False))
    subject: str = Field(sa_column=Column(sa.Text, nullable=False))
    due_on: date = Field(sa_column=Column(sa.Date, nullable=False))
    #: open | upheld | partly_upheld | rejected
    outcome: str = Field(default="open", sa_column=Column(sa.String(20), nullable=False, index=True))
    resolution: str | None = None
    closed_at: datetime | None = _dt(default=None, nullable=True)
    recorded_by: str = "system"
    created_at: datetime = _dt(default_factory=utcnow)


# ---- web workspace ----
class ItemVersion(SQLModel, table=True):
    """Title and body of each version of an item, so a reviewer sees what changed after approving."""

    __tablename__ = "item_version"
    __table_args__ = (sa.UniqueConstraint("item_id", "version", name="uq_item_version"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    version: int
    title: str = Field(sa_column=Column(sa.String(500), nullable=False))
    body_markdown: str = Field(sa_column=Column(sa.Text, nullable=False))
    #: the version's per-channel wording (Item.overrides), shown in the reviewers' diff
    overrides: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))
    actor: str = ""
    at: datetime = _dt(default_factory=utcnow)
    #: when the privacy check ran on this version (its findings are in privacy_finding); None: a
    #: version stored before the check existed, which the 保密审查 approval refuses until it is checked
    privacy_checked_at: datetime | None = _dt(default=None, nullable=True)


class WebSession(SQLModel, table=True):
    """A logged-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "web_session"

    token_hash: str = Field(sa_column=Column(sa.String(64), primary_key=True))
    user_id: int = Field(foreign_key="user.id", index=True)
    #: the CSRF token every form and script of this session must send back
    csrf: str = Field(sa_column=Column(sa.String(64), nullable=False))
    created_at: datetime = _dt(default_factory=utcnow)
    expires_at: datetime = _dt()
    #: None (a local password), ``oidc``, or ``cas:<SHA-256 of the ticket>`` (what CAS single logout names)
    sso: str | None = Field(default=None, sa_column=Column(sa.String(80), nullable=True, index=True))


class ApiToken(SQLModel, table=True):
    """A bearer token for scripts, or a user's calendar-feed token. Only the SHA-256 of the token is stored.

    A feed token goes in a URL (``/calendar/CHANNEL.ics?token=``), so access logs and calendar apps keep
    it; it therefore reads the feeds and nothing else, and the API refuses it."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(sa_column=Column(sa.String(100), nullable=False))
    token_hash: str = Field(sa_column=Column(sa.String(64), unique=True, nullable=False))
    #: the first characters of the token, so its owner can tell tokens apart
    prefix: str = ""
    created_at: datetime = _dt(default_factory=utcnow)
    last_used_at: datetime | None = _dt(default=None, nullable=True)
    revoked_at: datetime | None = _dt(default=None, nullable=True)
    #: ``api`` (a bearer token for /api) or ``feed`` (read-only: only the calendar feeds take it)
    kind: str = Field(default="api", sa_column=Column(sa.String(10), nullable=False, server_default="api"))


class LoginFailure(SQLModel, table=True):
    """A failed log-in, per account and per address, counted to throttle password guessing."""

    __tablename__ = "login_failure"
    __table_args__ = (sa.Index("ix_login_failure_key_at", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(sa.String(200), nullable=False))
    at: datetime = _dt(default_factory=utcnow)


class FormRate(SQLModel, table=True):
    """Submissions of a public form per key (the client address) in the current fixed window."""

    __tablename__ = "form_rate"

    key: str = Field(sa_column=Column(sa.String(200), primary_key=True))
    window_start_us: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    count: int = Field(sa_column=Column(sa.Integer, nullable=False))


class StatsDay(SQLModel, table=True):
    """Published deliveries per office-zone day × channel, by category and (separately) by department.

    No longer read or written: superseded by :class:`StatsRollup` (publisher.counting.rollup), which
    publisher.counting.stats and the dashboard share; the table can be dropped. It was the dashboard's
    roll-up. ``dim`` is "category" or "department" and ``value`` its value: the dashboard never crossed the two, and
    keeping them apart keeps the table a few dozen rows a day however many items there are.
    """

    __tablename__ = "stats_day"
    __table_args__ = (
        sa.UniqueConstraint("day", "channel", "dim", "value", name="uq_stats_day"),
        sa.Index("ix_stats_day_read", "dim", "day", "channel", "value", "published"),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(sa_column=Column(sa.Date, nullable=False))
    channel: str = Field(sa_column=Column(sa.String(100), nullable=False))
    dim: str = Field(sa_column=Column(sa.String(20), nullable=False))
    value: str = Field(sa_column=Column(sa.String(100), nullable=False))
    published: int = 0


class RollupState(SQLModel, table=True):
    """How far a roll-up has been brought up to date, and in which time zone its days are cut."""

    __tablename__ = "rollup_state"

    name: str = Field(sa_column=Column(sa.String(100), primary_key=True))
    zone: str
    watermark: datetime = _dt()


# ---- stats roll-up ----


class StatsRollup(SQLModel, table=True):
    """Published deliveries per office-zone day, channel and a set of item fields (publisher.counting.rollup).

    ``dims`` names the item fields a row is cut by ("" none, "category", "department",
    "checklist_item", "category,department"); the other item columns are NULL. ``channel`` ""
    holds distinct items (any channel) instead of deliveries, and those rows with ``since`` set are
    corrections: minus the items published on ``day`` whose previous publication was on ``since``,
    so that a period's distinct items can be summed from days (see publisher.counting.rollup). Migration
    0006 also adds, on PostgreSQL only, ``ix_item_stats_fields``: item(id) INCLUDE (category,
    department, checklist_item), for the live counts of failures and pending work.
    """

    __tablename__ = "stats_rollup"
    __table_args__ = (
        sa.Index(
            "ix_stats_rollup_read", "dims", "day", "channel", "category", "department", "checklist_item", "since", "n"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(sa_column=Column(sa.Date, nullable=False))
    dims: str = Field(sa_column=Column(sa.String(60), nullable=False))
    channel: str = Field(sa_column=Column(sa.String(100), nullable=False))
    category: str | None = Field(default=None, sa_column=Column(sa.String(50), nullable=True))
    department: str | None = Field(default=None, sa_column=Column(sa.String(100), nullable=True))
    checklist_item: int | None = None
    since: date | None = Field(default=None, sa_column=Column(sa.Date, nullable=True))
    n: int = 0


class PrivacyDecision(enum.StrEnum):
    """How a privacy finding was resolved (docs/privacy.md, in the workflow)."""

    CLEARED = "cleared"  #: the 保密审查 reviewer let it stand, with a written reason
    MASKED = "masked"  #: ``publisher mask`` masked it into a new version


class PrivacyFinding(SQLModel, table=True):
    """One finding of the privacy check on one version of an item, and its decision.

    Only the masked form is stored (``masked``): the raw number is never written to the database.
    ``number`` is the finding's place in its version's list (1, 2, …), what a reviewer types to clear it.
    """

    __tablename__ = "privacy_finding"
    __table_args__ = (sa.UniqueConstraint("item_id", "item_version", "number", name="uq_privacy_finding"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id")
    item_version: int
    number: int
    kind: str = Field(sa_column=Column(sa.String(40), nullable=False))
    where: str = Field(sa_column=Column(sa.Text, nullable=False))
    masked: str = Field(sa_column=Column(sa.Text, nullable=False))
    rule: str = Field(sa_column=Column(sa.Text, nullable=False))
    decision: str | None = Field(default=None, sa_column=Column(sa.String(20), nullable=True))
    reason: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    decided_by: str | None = None
    decided_at: datetime | None = _dt(default=None, nullable=True)
