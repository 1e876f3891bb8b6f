"""The tables of campus sign-in (migration 0015): the sign-in list, used CAS tickets, OIDC sign-ins under way;
an OIDC session's ID token (0021).

Apart from publisher.models because only the faces (accounts, the sign-in pages, the CLI) use them.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from publisher.models import UTCDateTime, utcnow


class SignIn(SQLModel, table=True):
    """A sign-in, or a refused one: who, how (``password``, ``cas``, ``oidc``), from where, and why not."""

    __tablename__ = "sign_in"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True))
    name: str = Field(default="", sa_column=Column(sa.String(100), nullable=False, index=True))
    method: str = Field(sa_column=Column(sa.String(10), nullable=False))
    address: str = Field(default="", sa_column=Column(sa.String(100), nullable=False))
    ok: bool = True
    reason: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))


class SsoTicket(SQLModel, table=True):
    """A CAS service ticket (its SHA-256) we validated once: the server refuses a replay, and so do we."""

    __tablename__ = "sso_ticket"

    ticket_hash: str = Field(sa_column=Column(sa.String(64), primary_key=True))
    used_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class SsoRequest(SQLModel, table=True):
    """An OpenID Connect sign-in under way: its ``state`` (SHA-256), ``nonce`` and PKCE verifier; used once."""

    __tablename__ = "sso_request"

    state_hash: str = Field(sa_column=Column(sa.String(64), primary_key=True))
    nonce: str = Field(sa_column=Column(sa.String(100), nullable=False))
    verifier: str = Field(sa_column=Column(sa.String(200), nullable=False))
    next: str = Field(default="/", sa_column=Column(sa.String(500), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class SsoIdToken(SQLModel, table=True):
    """An OIDC session's ID token (migration 0021), sent back as ``id_token_hint`` when it logs out; it goes
    with its session (ON DELETE CASCADE), however the session ends."""

    __tablename__ = "sso_id_token"

    session_hash: str = Field(
        sa_column=Column(sa.String(64), sa.ForeignKey("web_session.token_hash", ondelete="CASCADE"), primary_key=True)
    )
    id_token: str = Field(sa_column=Column(sa.Text, nullable=False))
