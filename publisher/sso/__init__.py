"""Campus sign-in: a CAS 2.0/3.0 client, an OpenID Connect client, and the attribute mapping that
turns what the campus directory says about a person into a user of ours (docs/auth.md).

The faces call these and then start the very session a local log-in starts
(:func:`publisher.accounts.start_session`); everything here refuses with :class:`SignInRefused`,
whose message says why (it is shown on the log-in page and kept in the ``sign_in`` table).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, select

from publisher.errors import PublisherError
from publisher.sso.tables import SignIn

#: how a session began (``sign_in.method``)
PASSWORD, CAS, OIDC = "password", "cas", "oidc"


class SignInRefused(PublisherError):
    """The campus sign-in was refused."""


@dataclass(frozen=True)
class Principal:
    """Who the campus server says signed in: its user name and the attributes (each a list of values)."""

    name: str
    method: str
    attributes: dict[str, list[str]] = field(default_factory=dict)
    #: the OIDC provider's ID token (its log-out takes it back as ``id_token_hint``)
    id_token: str | None = None

    def first(self, attribute: str) -> str | None:
        values = self.attributes.get(attribute) or []
        return values[0] if values else None


def record(session: Session, *, name: str, method: str, address: str, reason: str | None = None) -> SignIn:
    """A row of the sign-in list: a sign-in, or (with ``reason``) a refused one."""
    row = SignIn(name=name[:100], method=method, address=address[:100], ok=reason is None, reason=reason)
    session.add(row)
    return row


def sign_ins(session: Session, *, name: str | None = None, limit: int = 100) -> list[SignIn]:
    """The newest sign-ins (and refusals) first, of one user or of everyone."""
    q = select(SignIn).order_by(SignIn.at.desc(), SignIn.id.desc()).limit(limit)  # type: ignore[union-attr]
    if name:
        q = q.where(SignIn.name == name)
    return list(session.exec(q))
