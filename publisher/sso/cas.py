"""A CAS 2.0/3.0 client (Apereo CAS Protocol 3.0 specification, sections 2.5, 2.8 and 2.3.3).

``/login/cas`` sends the browser to ``{server}/login?service=…``; the server sends it back to the
service with ``?ticket=ST-…``, which :meth:`CasClient.validate` checks with ``serviceValidate`` (2.0) or
``p3/serviceValidate`` (3.0, with attributes) over HTTP. The answer is parsed with defusedxml (no
entities, no DTDs, no network). A ticket is single use on the server; :func:`burn` refuses a replay on
our side too, before the server is asked. Single logout: the server POSTs a SAML ``LogoutRequest``
whose ``SessionIndex`` is the ticket that began the session (:func:`logout_request_ticket`).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from urllib.parse import urlencode
from xml.etree.ElementTree import Element, ParseError

import requests
import sqlalchemy as sa
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from publisher.models import utcnow
from publisher.settings import CasSettings
from publisher.sso import CAS, Principal, SignInRefused
from publisher.sso.tables import SsoTicket

NS = "{http://www.yale.edu/tp/cas}"
SAMLP = "{urn:oasis:names:tc:SAML:2.0:protocol}"
CALLBACK = "/login/cas/callback"
#: the spec: "Services MUST be able to accept service tickets of up to 32 characters … SHOULD … up to 256"
MAX_TICKET = 256
KEEP_USED = timedelta(days=1)


def ticket_hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class CasClient:
    """Talks to one CAS server. ``http`` is passed in so tests and the web app share a pool."""

    def __init__(self, settings: CasSettings, *, http: requests.Session | None = None, timeout: float = 10) -> None:
        self.settings = settings
        self.http = http or requests.Session()
        self.timeout = timeout

    @property
    def service(self) -> str:
        """The service URL, the same byte for byte in the log-in redirect and in the validation."""
        return self.settings.service_base_url + CALLBACK

    def login_url(self) -> str:
        return f"{self.settings.server_url}/login?" + urlencode({"service": self.service})

    def logout_url(self) -> str:
        # CAS 3.0: after logging out the server may send the browser to ``service``
        return f"{self.settings.server_url}/logout?" + urlencode({"service": self.settings.service_base_url + "/login"})

    def validate(self, ticket: str) -> Principal:
        """The principal the server vouches for; SignInRefused with the server's code otherwise."""
        if not ticket.startswith("ST-") or len(ticket) > MAX_TICKET or not ticket.isascii():
            raise SignInRefused("not a CAS service ticket (ST-…)")
        path = "/p3/serviceValidate" if self.settings.version == 3 else "/serviceValidate"
        try:
            r = self.http.get(
                self.settings.server_url + path,
                params={"service": self.service, "ticket": ticket},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise SignInRefused(f"the CAS server did not answer ({type(exc).__name__}): try again") from exc
        if r.status_code != 200:
            raise SignInRefused(f"the CAS server answered HTTP {r.status_code} to the ticket validation")
        return parse_validation(r.content)


def _parse(xml: bytes) -> Element:
    try:
        return ElementTree.fromstring(xml, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise SignInRefused(f"the CAS server's answer is not acceptable XML ({exc})") from exc


def parse_validation(xml: bytes) -> Principal:
    """A ``serviceResponse``: the user and attributes of ``authenticationSuccess``, or the failure."""
    root = _parse(xml)
    failure = root.find(f"{NS}authenticationFailure")
    if failure is not None:
        code = failure.get("code", "UNKNOWN")
        raise SignInRefused(f"the CAS server refused the ticket: {code} {(failure.text or '').strip()}".strip())
    success = root.find(f"{NS}authenticationSuccess")
    user = success.findtext(f"{NS}user") if success is not None else None
    if success is None or not user or not user.strip():
        raise SignInRefused("the CAS server's answer names no user")
    attributes: dict[str, list[str]] = {}
    block = success.find(f"{NS}attributes")
    for el in block if block is not None else ():
        if el.tag.startswith(NS) and len(el) == 0:
            attributes.setdefault(el.tag[len(NS) :], []).append((el.text or "").strip())
    return Principal(name=user.strip(), method=CAS, attributes=attributes)


def burn(session: Session, ticket: str) -> None:
    """Record ``ticket`` as used (flushed at once); SignInRefused if it was used before, or is being used
    by a request at this very moment (the primary key settles the race)."""
    key = ticket_hash(ticket)
    if session.get(SsoTicket, key) is not None:
        raise SignInRefused("this CAS ticket was used already (a replay): sign in again")
    # the server refuses a ticket after its first validation anyway and a ticket lives seconds: a day of
    # used tickets is all the replay check needs to keep
    session.exec(sa.delete(SsoTicket).where(SsoTicket.used_at < utcnow() - KEEP_USED))  # type: ignore[call-overload]
    try:
        with session.begin_nested():
            session.add(SsoTicket(ticket_hash=key))
    except IntegrityError as exc:
        raise SignInRefused("this CAS ticket was used already (a replay): sign in again") from exc


def logout_request_ticket(xml: str) -> str | None:
    """The ``SessionIndex`` (the service ticket) of the server's single-logout request, if it is one."""
    try:
        root = _parse(xml.encode("utf-8"))
    except SignInRefused:
        return None
    if root.tag != f"{SAMLP}LogoutRequest":
        return None
    index = root.findtext(f"{SAMLP}SessionIndex")
    return index.strip() if index else None
