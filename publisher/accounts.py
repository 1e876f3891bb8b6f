"""Accounts: passwords (argon2), browser sessions, API tokens and log-in throttling.

Only hashes are stored: argon2id for passwords, SHA-256 for session and API tokens (they are long
random strings, so a fast hash is enough and lets a token be looked up by its hash). Failed
log-ins are counted in the database, per account and per address, so every web process shares
one count and a restart does not reset a guessing attack.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import NamedTuple

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from publisher.errors import InvalidInput, NotAllowed, NotFound, PublisherError
from publisher.models import ApiToken, LoginFailure, Role, User, WebSession, utcnow
from publisher.pipeline.workflow import audit
from publisher.settings import WebSettings
from publisher.sso.tables import SsoIdToken

MIN_PASSWORD_LENGTH = 10
#: the kinds of ApiToken: a read-write bearer token for /api, a read-only one (GETs only), or a calendar-feed token
API, READ, FEED = "api", "read", "feed"


class TooManyAttempts(PublisherError):
    """Too many failed log-ins: wait a few minutes and try again."""


class LocalPasswordsOff(PublisherError):
    """Local passwords are for admins only here: sign in with the campus account (统一身份认证)."""


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    # verified against when the account does not exist, so timing does not reveal which names exist
    return _hasher().hash(secrets.token_urlsafe(16))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise InvalidInput("the password is longer than 1024 characters")
    return _hasher().hash(password)


def set_password(session: Session, *, name: str, password: str, actor: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFound(f"no user {name!r} (add one with `publisher user add {name} --role ...`)")
    user.password_hash = hash_password(password)
    # a new password ends every session and token issued under the old one: the reset is usually because
    # the old password (or the laptop holding its tokens) got out
    session.exec(sa.delete(WebSession).where(WebSession.user_id == user.id))  # type: ignore[call-overload]
    session.exec(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))  # type: ignore[call-overload,union-attr]
        .values(revoked_at=utcnow())
    )
    audit(session, actor=actor, entity="user", entity_id=user.id, action="password")
    return user


def _failures(session: Session, key: str, since) -> int:
    return session.exec(
        select(sa.func.count()).select_from(LoginFailure).where(LoginFailure.key == key, LoginFailure.at >= since)
    ).one()


def authenticate(
    session: Session, *, name: str, password: str, address: str, web: WebSettings, admins_only: bool = False
) -> User | None:
    """The user, or None for a wrong name or password (the failure is recorded in ``session``: commit it).

    TooManyAttempts is checked first, before any hashing, so a flood of guesses costs us little. With
    ``admins_only`` (``[auth] local_passwords = false``) a right password of anyone but an admin raises
    LocalPasswordsOff: only someone who knows the password learns that the campus sign-in is the way.
    """
    now = utcnow()
    since = now - timedelta(minutes=web.login_window_minutes)
    account_key, address_key = f"account:{name[:100]}", f"address:{address[:100]}"
    if (
        _failures(session, account_key, since) >= web.login_failures_per_account
        or _failures(session, address_key, since) >= web.login_failures_per_address
    ):
        raise TooManyAttempts()
    user = session.exec(select(User).where(User.name == name)).first()
    stored = user.password_hash if user is not None and user.active and user.password_hash else None
    try:
        _hasher().verify(stored or _dummy_hash(), password)
        ok = stored is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        session.add(LoginFailure(key=account_key, at=now))
        session.add(LoginFailure(key=address_key, at=now))
        return None
    assert user is not None
    if admins_only and user.role != Role.ADMIN:
        raise LocalPasswordsOff()
    session.exec(sa.delete(LoginFailure).where(LoginFailure.key == account_key))  # type: ignore[call-overload]
    if _hasher().check_needs_rehash(stored):  # type: ignore[arg-type]
        user.password_hash = _hasher().hash(password)
    audit(session, actor=user.name, entity="user", entity_id=user.id, action="login", address=address)
    return user


# --------------------------------------------------------------------------------------- sessions
@dataclass(frozen=True)
class Caller:
    """Who is making a request, and how they proved it."""

    user: User
    #: the CSRF token of the browser session; None for a bearer token (no cookie, no CSRF risk)
    csrf: str | None = None
    #: a read-only API token: every route that changes something answers 403
    read_only: bool = False


def start_session(
    session: Session, user: User, web: WebSettings, *, sso: str | None = None, id_token: str | None = None
) -> str:
    """A new browser session for ``user``; ``sso`` says how it began (``WebSession.sso``), for single logout;
    ``id_token``: the OIDC provider's, kept for the log-out's ``id_token_hint``."""
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf=secrets.token_urlsafe(32),
            expires_at=utcnow() + timedelta(hours=web.session_hours),
            sso=sso,
        )
    )
    if id_token:
        session.add(SsoIdToken(session_hash=token_hash(token), id_token=id_token))
    return token


def session_caller(session: Session, token: str) -> Caller | None:
    row = session.get(WebSession, token_hash(token))
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return Caller(user=user, csrf=row.csrf)


class EndedSession(NamedTuple):
    """How an ended session began (``WebSession.sso``) and its OIDC ID token, for the campus log-out."""

    sso: str | None
    id_token: str | None


def end_session(session: Session, token: str) -> EndedSession | None:
    """End the session; how it began, so the log-out can also end the campus sign-in."""
    row = session.get(WebSession, token_hash(token))
    if row is None:
        return None
    kept = session.get(SsoIdToken, row.token_hash)
    ended = EndedSession(row.sso, kept.id_token if kept else None)
    session.delete(row)  # its ID token goes with it (ON DELETE CASCADE)
    session.flush()
    return ended


def end_sso_sessions(session: Session, sso: str) -> int:
    """End the sessions a campus sign-in began (the CAS server's single logout); how many there were."""
    result = session.exec(sa.delete(WebSession).where(WebSession.sso == sso))  # type: ignore[call-overload]
    return int(result.rowcount or 0)


# ------------------------------------------------------------------------------------- API tokens
def create_token(
    session: Session, *, user: User, name: str, read_only: bool = False, actor: str | None = None
) -> tuple[str, ApiToken]:
    """A new bearer token (``read_only``: for GETs only); the plain token is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("give the token a name of 1-100 characters (what script uses it)")
    token = "pub_" + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id, name=name, token_hash=token_hash(token), prefix=token[:8], kind=READ if read_only else API
    )
    session.add(row)
    session.flush()
    audit(session, actor=actor or user.name, entity="api_token", entity_id=row.id, action="create", name=name)
    return token, row


def revoke_token(session: Session, *, token_id: int, actor: User | str) -> ApiToken:
    """Revoke a token: its owner's or, for an admin, anyone's. ``actor`` as a string is the operator at the
    command line (who holds the database anyway)."""
    row = session.get(ApiToken, token_id) if 0 < token_id < 2**31 else None
    if row is None:
        raise NotFound(f"no API token {token_id}")
    if isinstance(actor, User) and row.user_id != actor.id and actor.role != Role.ADMIN:
        raise NotAllowed(f"API token {token_id} belongs to someone else")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        name = actor.name if isinstance(actor, User) else actor
        audit(session, actor=name, entity="api_token", entity_id=row.id, action="revoke")
    return row


def token_caller(session: Session, token: str, *, kind: str = API) -> Caller | None:
    """The caller an API token (or, with ``kind=FEED``, a feed token) belongs to; None if it is unknown,
    revoked, of the other kind, or its user is gone."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).first()
    kinds = (API, READ) if kind == API else (kind,)
    if row is None or row.revoked_at is not None or row.kind not in kinds:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5):
        row.last_used_at = now
    return Caller(user=user, read_only=row.kind == READ)


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    """The user's API tokens (not their feed token)."""
    return list(
        session.exec(
            select(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.kind.in_((API, READ)))  # type: ignore[attr-defined]
            .order_by(ApiToken.id)
        )
    )


# ------------------------------------------------------------------------------------ feed tokens
def new_feed_token(session: Session, *, user: User) -> str:
    """A new calendar-feed token for ``user``, ending the one they had; the plain token is returned once.

    It reads the user's iCalendar feeds and nothing else (``token_caller(..., kind=FEED)``), so the URL
    a calendar app keeps cannot change anything."""
    now = utcnow()
    for old in session.exec(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.kind == FEED, ApiToken.revoked_at.is_(None))
    ):  # type: ignore[union-attr]
        old.revoked_at = now
    token = "feed_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name="calendar feed", token_hash=token_hash(token), prefix=token[:9], kind=FEED)
    session.add(row)
    session.flush()
    audit(session, actor=user.name, entity="api_token", entity_id=row.id, action="create", name="calendar feed")
    return token


def feed_token_of(session: Session, user: User) -> ApiToken | None:
    """The user's live feed token (its row: the token itself is not stored), if they made one."""
    return session.exec(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.kind == FEED, ApiToken.revoked_at.is_(None))
    ).first()  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------- administration
def set_user(
    session: Session, *, name: str, actor: str, role: str | None = None, department: str | None = None
) -> User:
    """Change a user's role and/or department by hand. From then on the campus directory's mapping leaves
    them alone (``role_source = "admin"``): an admin's decision outranks the directory."""
    from publisher.pipeline import workflow

    user = workflow.get_user(session, name)
    if role is None and department is None:
        raise InvalidInput("say what to change: --role and/or --department")
    new_role = user.role if role is None else role
    if new_role not in {r.value for r in Role}:
        raise InvalidInput(f"unknown role {new_role!r}; one of: {', '.join(r.value for r in Role)}")
    new_department = user.department if department is None else (department.strip() or None)
    if new_department is not None and new_department not in workflow.departments(session):
        raise InvalidInput(f"unknown department {new_department!r} (add it with `publisher department add NAME`)")
    if new_role in (Role.EDITOR, Role.DEPARTMENT_HEAD) and not new_department:
        raise InvalidInput(f"a {new_role} belongs to a department: add --department NAME")
    audit(
        session,
        actor=actor,
        entity="user",
        entity_id=user.id,
        action="set",
        from_state=f"{user.role}/{user.department or ''}",
        to_state=f"{new_role}/{new_department or ''}",
    )
    user.role, user.department, user.role_source = new_role, new_department, "admin"
    return user


def deactivate_user(session: Session, *, name: str, actor: str) -> User:
    """Deactivate a user: their sessions end and their API and feed tokens stop at once (401), and a
    campus sign-in is refused. Their items, reviews and audit rows stay."""
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFound(f"no user {name!r}")
    if not user.active:
        return user
    user.active = False
    session.exec(sa.delete(WebSession).where(WebSession.user_id == user.id))  # type: ignore[call-overload]
    session.exec(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))  # type: ignore[call-overload,union-attr]
        .values(revoked_at=utcnow())
    )
    audit(session, actor=actor, entity="user", entity_id=user.id, action="deactivate")
    return user
