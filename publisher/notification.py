"""The notification outbox's tables (migration 0016): what people are told, and how each wants it.

A :class:`Notification` row is written in the same transaction as the workflow change that causes it
(publisher.pipeline.workflow.outbox), so a change that commits has its message queued and one that
rolls back has none; ``dedupe_key`` is UNIQUE (event + recipient + transport), so the code path that
queues it may run again — after a restart, a retry, in two workers — and the message is still queued
once. The sender (publisher.pipeline.notify) claims due rows with a lease, as the worker claims
deliveries. Kept apart from publisher.models so the outbox is one small module beside the core's.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from publisher.models import _dt, utcnow


class NotificationStatus(enum.StrEnum):
    #: waiting for ``due_at`` (an immediate message at once, one in quiet hours at their end)
    PENDING = "pending"
    #: a sender holds it (``lease_owner`` until ``lease_expires_at``)
    CLAIMED = "claimed"
    #: the transport took it
    SENT = "sent"
    #: given up: a permanent refusal, or ``notify.max_attempts`` used; ``last_error`` says why
    FAILED = "failed"


class NotifyMode(enum.StrEnum):
    #: each event its own message, as soon as it is queued (quiet hours apart)
    IMMEDIATE = "immediate"
    #: one message a day, at ``notify.digest_hour`` local time, grouping that day's events
    DIGEST = "digest"


class Notification(SQLModel, table=True):
    """One message to one person over one transport, about one event."""

    __table_args__ = (sa.Index("ix_notification_due", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    #: submitted | approved_level1 | rejected | published | delivery_failed | by_hand | display_ends |
    #: by_hand_overdue | channel_problem | register_due | register_late
    #: (the last three about no item: ``item_id`` None)
    event: str = Field(sa_column=Column(sa.String(40), nullable=False))
    #: event + recipient + transport: the same event is queued once per person and transport
    dedupe_key: str = Field(sa_column=Column(sa.String(300), nullable=False, unique=True))
    user_id: int = Field(foreign_key="user.id", index=True)
    item_id: int | None = Field(default=None, foreign_key="item.id")
    #: a notifier of ``[notify.transports]`` (e-mail, 企业微信 robot or app, 钉钉 robot)
    transport: str = Field(sa_column=Column(sa.String(40), nullable=False))
    #: the person's address on that transport when it was queued (e-mail address, 企业微信/钉钉 userid)
    address: str = Field(sa_column=Column(sa.String(200), nullable=False))
    mode: str = Field(default=NotifyMode.IMMEDIATE, sa_column=Column(sa.String(20), nullable=False))
    subject: str = Field(sa_column=Column(sa.String(300), nullable=False))
    body: str = Field(sa_column=Column(sa.Text, nullable=False))
    #: the page where the person acts, relative to ``notify.web_base_url`` (joined when sent)
    link: str = Field(sa_column=Column(sa.String(300), nullable=False))
    status: str = Field(default=NotificationStatus.PENDING, sa_column=Column(sa.String(20), nullable=False))
    attempts: int = 0
    due_at: datetime = _dt(default_factory=utcnow)
    lease_owner: str | None = None
    lease_expires_at: datetime | None = _dt(default=None, nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    created_at: datetime = _dt(default_factory=utcnow)
    sent_at: datetime | None = _dt(default=None, nullable=True)


class NotifyPref(SQLModel, table=True):
    """How one person wants to be told; no row (or transport "none"): not told."""

    __tablename__ = "notify_pref"

    user_id: int = Field(foreign_key="user.id", primary_key=True)
    transport: str = Field(sa_column=Column(sa.String(40), nullable=False))
    address: str = Field(default="", sa_column=Column(sa.String(200), nullable=False))
    mode: str = Field(default=NotifyMode.IMMEDIATE, sa_column=Column(sa.String(20), nullable=False))
    #: local times "HH:MM": no immediate message from ``quiet_start`` to ``quiet_end`` (held until the end)
    quiet_start: str | None = Field(default=None, sa_column=Column(sa.String(5), nullable=True))
    quiet_end: str | None = Field(default=None, sa_column=Column(sa.String(5), nullable=True))
