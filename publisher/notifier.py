"""The notifier interface: how a message reaches a person (e-mail, 企业微信 robot, 钉钉 robot).

A transport is one module under ``channels/notify/`` plus one entry point in the
``publisher.notifiers`` group, configured as ``[notify.transports.NAME]`` in settings.toml (``type``
defaults to NAME). The sender (publisher.pipeline.notify) calls :meth:`Notifier.send` once per
message and maps what it raises:

==========================  ==========================================================
returns                     sent: the row is done
:class:`NotifyTransient`    tried again after exponential back-off, until
                            ``notify.max_attempts`` is used up, then failed (reason kept)
:class:`NotifyRateLimited`  tried again at ``until``; no attempt used (the robots' 20/minute)
:class:`NotifyPermanent`    failed at once, the reason kept (a wrong key, a refused sign)
anything else               as transient, with the exception's type and text as the reason
==========================  ==========================================================

Secrets (robot keys, the 钉钉 secret, the SMTP password) come from the environment variable a
transport's config names, never from settings.toml or the database, and never go into a message
kept on a row or in a log.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from publisher.errors import ConfigError, MissingSecret, PublisherError

NOTIFIER_ENTRY_POINT_GROUP = "publisher.notifiers"


class NotifyError(PublisherError):
    """A notification could not be sent."""


class NotifyTransient(NotifyError):
    """The transport failed for now (connection, 5xx, a busy server): try again later."""


class NotifyPermanent(NotifyError):
    """The transport refused the message for good (wrong key or sign, unknown address)."""


class NotifyRateLimited(NotifyError):
    """The transport's rate limit answered: try again at ``until`` (no attempt used)."""

    def __init__(self, message: str | None = None, *, until: datetime) -> None:
        self.until = until
        super().__init__(message)


@dataclass(frozen=True)
class Message:
    """One message to one person, as the sender hands it to a transport."""

    #: the person's address on the transport (e-mail address, 企业微信/钉钉 userid)
    address: str
    subject: str
    #: plain text, Chinese, several lines; ends with the link
    text: str
    #: the page where the person acts (absolute)
    link: str
    #: stable for the row: the e-mail's Message-ID is made from it, so a repeat is recognisable
    key: str


class NotifierConfig(BaseModel):
    """Base of a transport's config: unknown keys are refused, as everywhere in settings."""

    model_config = ConfigDict(extra="forbid")


class Notifier(ABC):
    """A transport. Subclasses set :attr:`name` and :attr:`Config` and implement :meth:`send`."""

    name: ClassVar[str]
    Config: ClassVar[type[NotifierConfig]]

    def __init__(self, config: NotifierConfig) -> None:
        self.config = config

    @abstractmethod
    def send(self, message: Message) -> None:
        """Send ``message``; raises NotifyTransient, NotifyRateLimited or NotifyPermanent."""

    def check(self) -> str:
        """Check the credentials without sending anything (``publisher doctor``); what was checked, or
        NotifyError. Default: nothing can be (the robots have no call that checks a key without posting)."""
        return "settings and secrets present (nothing sent)"

    def close(self) -> None:  # noqa: B027 - most transports hold nothing to free
        """Free connections (the sender calls it when it stops)."""


def secret_from_env(variable: str, transport: str) -> str:
    """The value of ``variable``; MissingSecret naming it and the transport when it is unset."""
    value = os.environ.get(variable, "")
    if not value:
        raise MissingSecret(
            f"notify transport {transport!r}: environment variable {variable} is not set "
            "(secrets never go in settings.toml)"
        )
    return value


def available_notifiers() -> dict[str, type[Notifier]]:
    """Installed transports by entry-point name."""
    return {ep.name: ep.load() for ep in entry_points(group=NOTIFIER_ENTRY_POINT_GROUP)}


def build_notifiers(tables: dict[str, dict[str, Any]]) -> dict[str, Notifier]:
    """The ``[notify.transports.NAME]`` tables as notifiers; ConfigError for a bad one (secrets are
    read here, so a missing variable is a MissingSecret naming it)."""
    installed = available_notifiers()
    out: dict[str, Notifier] = {}
    for name, table in tables.items():
        table = dict(table)
        kind = table.pop("type", name)
        cls = installed.get(kind)
        if cls is None:
            known = ", ".join(sorted(installed))
            raise ConfigError(f"[notify.transports.{name}]: unknown transport type {kind!r}; installed: {known}")
        try:
            config = cls.Config(**table)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"[notify.transports.{name}]: {problems}") from exc
        out[name] = cls(config)
    return out
