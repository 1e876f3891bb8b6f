"""The channel interface: the one contract between the core and every place an item is published.

A channel is one module under ``channels/`` with one class that subclasses :class:`Channel`, and one
entry point in the ``publisher.channels`` group naming that class. The core never imports a channel
module directly and never branches on a channel's name; it only calls the methods below.

What the core gives a channel
    * a :class:`Post`: a frozen snapshot of the approved item (title, Markdown, sanitised HTML whose
      images are ``asset://<sha256>`` references, the assets themselves, category, department...);
    * a :class:`DeliveryContext`: the delivery's id (use it as an idempotency key), the resume state
      saved by earlier attempts, and :meth:`DeliveryContext.save_state` to record a step *before*
      moving on to the next, so an attempt that dies half-way resumes instead of starting over;
    * a :class:`ChannelEnv` at construction: the channel's own folder, the display time zone, a
      shared key/value store (e.g. one access token for all worker processes), the site's base URL,
      and (``env.sql``) a connection to the publisher's own store for state that workers on several
      hosts must share (the website's, in a bucket);
    * an object store for files (:class:`ObjectStore`: a folder or an S3-compatible bucket,
      :func:`open_object_store`), re-exported here from :mod:`publisher.objectstore`.

What a channel answers
    * :class:`Published` — done, with the public URL and the remote id if there is one;
    * :class:`InProgress` — accepted by the remote side but not finished (WeChat's freepublish):
      the core calls ``publish`` again after ``check_again_in`` and the channel resumes from its
      saved state. This does not count as a failed attempt.
    * or raises one of the :class:`ChannelError` subclasses, chaining the third-party cause:

      ``TransientChannelError``  network trouble, 5xx, "busy": retried with back-off.
      ``PermanentChannelError``  4xx, rejected, account not allowed: failed at once, reason kept.
      ``CredentialsRefused``     (a PermanentChannelError) the service refused our credentials — an
                                 expired token, a wrong secret, an IP not allowed: failed at once,
                                 and the admins are told once a day per channel (docs/notify.md).
      ``QuotaExceeded``          a quota is used up until ``until``: deferred, no retry burnt.
      ``AmbiguousOutcome``       the call may have taken effect: the next attempt must look first
                                 (``publish`` is called again with the same state and must
                                 reconcile before re-sending).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError

from publisher.errors import ConfigError, MissingSecret, PublisherError

# the object stores are part of what a channel may use (channels import nothing else of the core)
from publisher.objectstore import (  # noqa: F401
    FolderStore,
    ObjectStore,
    ObjectStoreError,
    S3Config,
    S3Store,
    open_object_store,
)

ENTRY_POINT_GROUP = "publisher.channels"
ASSET_SCHEME = "asset://"
_ASSET_RE = re.compile(r"asset://([0-9a-f]{64})")


# --------------------------------------------------------------------------------------------- errors
class ChannelError(PublisherError):
    """The channel failed."""

    #: short machine-readable kind stored on the delivery row
    kind: ClassVar[str] = "error"

    def __init__(self, message: str | None = None, *, code: str | int | None = None) -> None:
        super().__init__(message)
        #: the remote side's own error code, kept for the editors (e.g. WeChat errcode 45009)
        self.code = code


class TransientChannelError(ChannelError):
    """The channel is temporarily unavailable; the delivery will be retried."""

    kind = "transient"


class PermanentChannelError(ChannelError):
    """The channel refused the item; retrying will not help."""

    kind = "permanent"


class CredentialsRefused(PermanentChannelError):
    """The service refused the channel's credentials (token, secret, IP allow-list): an admin must fix them.

    Its ``kind`` stays "permanent" (counted as any refusal); the class is what tells the admins."""


class QuotaExceeded(ChannelError):
    """The channel's quota is used up; the delivery waits until it resets."""

    kind = "quota"

    def __init__(self, message: str | None = None, *, until: datetime, code: str | int | None = None):
        if until.tzinfo is None:
            raise ValueError("QuotaExceeded.until must be time-zone aware")
        super().__init__(message, code=code)
        self.until = until


class AmbiguousOutcome(ChannelError):
    """The outcome of the call is unknown; the next attempt reconciles before sending again."""

    kind = "ambiguous"


# ----------------------------------------------------------------------------------------- payloads
@dataclass(frozen=True)
class Asset:
    """An image or attachment of an item, stored once in the media folder by its content hash."""

    sha256: str
    path: Path
    filename: str
    content_type: str
    role: str = "image"  # "image" | "cover" | "attachment"
    width: int | None = None
    height: int | None = None
    #: alt text (替代文本): what the picture shows, for readers who cannot see it; set for a cover
    #: (required at submit), empty for others (a body image's is in the body's ``alt``)
    alt: str = ""

    @property
    def ref(self) -> str:
        return f"{ASSET_SCHEME}{self.sha256}"


@dataclass(frozen=True)
class RelatedLink:
    """Another item a post links to (政策解读 ↔ the document it explains, a revision, a 中标公告)."""

    label: str  #: what the other item is, from this one's side (政策解读, 解读的文件, 修订版本...)
    item_id: int
    title: str
    #: what this post is from the other item's side (its page's link back here), e.g. 政策解读 when
    #: ``label`` is 解读的文件; empty when not known
    back_label: str = ""


@dataclass(frozen=True)
class Catalogue:
    """The post's 政府信息公开目录 fields (docs/catalogue.md); None where the item has none."""

    index_no: str | None = None  #: 索引号
    doc_number: str | None = None  #: 发文字号
    written_on: date | None = None  #: 成文日期
    topic: str | None = None  #: 主题分类
    disclosure_mode: str | None = None  #: 公开方式
    disclosure_scope: str | None = None  #: 公开范围
    validity: str | None = None  #: 有效性: 现行有效 / 已修订 / 已废止
    replaced_by: int | None = None  #: the item that replaced it
    related: tuple[RelatedLink, ...] = ()


@dataclass(frozen=True)
class Post:
    """What a channel is asked to publish: a frozen snapshot of an approved item."""

    item_id: int
    title: str
    body_markdown: str
    #: sanitised HTML rendered from body_markdown; images are ``asset://<sha256>`` references
    body_html: str
    summary: str
    category: str
    department: str
    author: str
    publish_at: datetime
    updated_at: datetime
    checklist_item: int | None = None
    #: the checklist item's name (../shared/domain/checklist.toml), when checklist_item is set
    checklist_name: str | None = None
    assets: tuple[Asset, ...] = ()
    channels: tuple[str, ...] = ()
    #: the item's page on the website, when the site is known (Weibo links to it)
    site_url: str | None = None
    version: int = 1
    #: when the item's 公示期 ends (None: it has none, or the end is not known yet)
    display_ends_at: datetime | None = None
    #: the 公示期 has ended: a withdraw of this post is its take-down at the end, not a retraction
    display_ended: bool = False
    #: the catalogue fields (索引号, 发文字号, 有效性...) and related items
    catalogue: Catalogue = field(default_factory=Catalogue)
    #: the fields the editors wrote for this channel alone (``title``, ``summary``, ``body``, ``cover``:
    #: the item's per-channel wording, reviewed with it). A channel refuses such a field when it does
    #: not fit, in :meth:`Channel.validate`, rather than cutting it as it may cut the item's own wording.
    wording: frozenset[str] = frozenset()

    @property
    def cover(self) -> Asset | None:
        return next((a for a in self.assets if a.role == "cover"), None)

    @property
    def images(self) -> tuple[Asset, ...]:
        return tuple(a for a in self.assets if a.role == "image")

    @property
    def attachments(self) -> tuple[Asset, ...]:
        return tuple(a for a in self.assets if a.role == "attachment")

    def asset(self, sha256: str) -> Asset:
        for a in self.assets:
            if a.sha256 == sha256:
                return a
        raise KeyError(sha256)

    def html_with_assets(self, url_for: Callable[[Asset], str]) -> str:
        """``body_html`` with every ``asset://`` reference replaced by ``url_for(asset)``."""
        return _ASSET_RE.sub(lambda m: url_for(self.asset(m.group(1))), self.body_html)

    def referenced_assets(self) -> list[Asset]:
        """The assets the body refers to, in order of first appearance."""
        seen: dict[str, Asset] = {}
        for sha in _ASSET_RE.findall(self.body_html):
            if sha not in seen:
                seen[sha] = self.asset(sha)
        return list(seen.values())


@dataclass(frozen=True)
class Published:
    """The item is live on the channel."""

    url: str | None = None
    remote_id: str | None = None


@dataclass(frozen=True)
class InProgress:
    """The channel accepted the item but has not finished; ask again later."""

    check_again_in: timedelta
    note: str = ""
    #: the channel's own deadline for the step it waits on has passed (a by-hand post not made within
    #: ``overdue_after_hours``): the people who act are told once (docs/notify.md)
    overdue: bool = False


Outcome = Published | InProgress


@dataclass(frozen=True)
class LinkStatus:
    """Whether a published URL still answers.

    Not ``ok`` is a verdict ("taken down") only with ``status`` 404 or 410; a channel that asks an
    API reports a deleted article as 410 and an unknown one as 404. Anything else (no answer, a
    timeout, a 5xx, a failed API call) is no verdict: the weekly sync leaves the page as it was.
    """

    ok: bool
    status: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class StatRow:
    """One engagement figure of one published item (or of the account, item_remote_id None) on one day."""

    day: date
    metric: str  # e.g. "reads", "shares", "favourites", "followers"
    value: int
    remote_id: str | None = None


@dataclass(frozen=True)
class RemotePublication:
    """A publication found on the channel itself (e.g. posted by hand outside the pipeline)."""

    remote_id: str
    title: str
    url: str | None
    published_at: datetime


@dataclass(frozen=True)
class HealthReport:
    """The result of :meth:`Channel.check_health`; never publishes anything."""

    ok: bool
    detail: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallbackReply:
    """What the web app answers to a callback request."""

    status: int = 200
    body: bytes = b"success"
    content_type: str = "text/plain; charset=utf-8"


def site_page_path(item_id: int) -> str:
    """Where an item's page lives under the website's base URL (shared by the core and channels)."""
    return f"items/{item_id}.html"


# ------------------------------------------------------------------------------- environment/context
class KeyValueStore(Protocol):
    """A small shared store (database-backed by default) a channel may use across processes."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, *, expires_at: datetime | None = None) -> None: ...

    def delete(self, key: str) -> None: ...


class SharedSql(Protocol):
    """A connection to the publisher's own store, for a channel's tables that every worker on every
    host must see (the website's state when the site is in a bucket: migration 0019).

    ``connect()`` lends a DB-API connection for the length of the ``with``: in autocommit mode (the
    channel sends ``BEGIN``/``COMMIT`` itself), placeholders in the driver's style (``%s`` on
    PostgreSQL, ``?`` on SQLite). A process that dies holding it loses its connection, and the
    database rolls back what it had not committed.
    """

    #: ``"sqlite"`` or ``"postgresql"``
    dialect: str
    #: the driver's DB-API ``Error`` classes: a connection lost or a lock timed out, for the channel
    #: to report as a transient failure
    errors: tuple[type[BaseException], ...]

    def connect(self) -> AbstractContextManager[Any]: ...


@dataclass(frozen=True)
class Office:
    """The disclosure office as the public reaches it (settings ``organisation``, ``[office]``,
    ``[registers]``): what a site's 信息公开指南 says."""

    #: the school or government body (settings ``organisation``)
    organisation: str
    #: the office itself (``[office] name``, default ``<organisation>信息公开办公室``)
    name: str = ""
    address: str = ""
    phone: str = ""
    email: str = ""
    hours: str = ""
    #: the web app's public 依申请公开 form
    apply_url: str = ""
    #: the rules the office discloses under (《高等学校信息公开办法》, 《中华人民共和国政府信息公开条例》)
    regulation: str = ""
    #: a request is answered within this many working days, extended once by at most the second
    request_working_days: int = 15
    extension_working_days: int = 15


@dataclass
class ChannelEnv:
    """What the core hands a channel when it builds it."""

    def resolve(self, path: str | Path) -> Path:
        """A path from a channel's settings: absolute as is, relative to the office's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir or self.data_dir) / p

    data_dir: Path
    timezone: ZoneInfo
    kv: KeyValueStore
    site_base_url: str = "http://127.0.0.1:8000/site/"
    #: the office's working folder (settings' data_dir): resolve user-facing relative paths here
    base_dir: Path | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(ZoneInfo("UTC")))
    #: the publisher's store, for state shared between hosts (None: a channel built without a store)
    sql: SharedSql | None = None
    #: the office, for pages that tell the public how to reach it (None: not known, e.g. in tests)
    office: Office | None = None


@dataclass
class DeliveryContext:
    """One delivery (one item on one channel) as its attempt sees it."""

    delivery_id: int
    attempt: int
    state: dict[str, Any]
    remote_id: str | None = None
    url: str | None = None
    _saver: Callable[[dict[str, Any]], None] | None = None

    @property
    def generation(self) -> int:
        """Which publication of this delivery a call serves: 0 the first; n once the copy was taken
        down and put back n times (the core sets ``state["generation"]`` when it queues a put-back)."""
        return int(self.state.get("generation") or 0)

    @property
    def idempotency_key(self) -> str:
        """``delivery-<id>``, ``delivery-<id>-g<n>`` after n put-backs: the same on every attempt of
        one publication, new for each put-back, so a receiver that de-duplicates publishes again."""
        base = f"delivery-{self.delivery_id}"
        return f"{base}-g{self.generation}" if self.generation else base

    def save_state(self, **values: Any) -> None:
        """Record progress *now* (committed before this returns) so a crash resumes from here."""
        self.state.update(values)
        if self._saver is not None:
            self._saver(dict(self.state))


# -------------------------------------------------------------------------------------------- channel
class Channel(abc.ABC):
    """A place items are published to. Subclass it, set the class attributes, implement ``publish``.

    Class attributes are the channel's declared shape; settings may override ``max_concurrency``,
    ``rate_per_minute`` and ``schedule`` per configured instance.
    """

    #: entry-point name, e.g. "website"
    type_name: ClassVar[str] = ""
    #: shown to users
    label: ClassVar[str] = ""
    #: the pydantic model of this channel's ``[channels.NAME]`` table; extra keys are refused
    Config: ClassVar[type[BaseModel]]
    supports_update: ClassVar[bool] = False
    supports_withdraw: ClassVar[bool] = False
    supports_stats: ClassVar[bool] = False
    supports_listing: ClassVar[bool] = False
    #: True for places where a person posts by hand and records the URL
    manual: ClassVar[bool] = False
    default_max_concurrency: ClassVar[int] = 4
    default_rate_per_minute: ClassVar[int | None] = None

    def __init__(self, name: str, config: BaseModel, env: ChannelEnv) -> None:
        self.name = name
        self.config = config
        self.env = env

    # -- review time ------------------------------------------------------------------------------
    def validate(self, post: Post) -> list[str]:
        """Problems that stop this channel taking ``post``, found at review time (empty = fine).

        Must not call the remote side. Each problem is a sentence an editor can act on.
        """
        return []

    # -- delivery ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def publish(self, post: Post, ctx: DeliveryContext) -> Outcome:
        """Publish ``post``; resume from ``ctx.state`` when an earlier attempt got part of the way.

        Raises TransientChannelError, PermanentChannelError, QuotaExceeded or AmbiguousOutcome.
        Must never publish the same delivery twice: record each remote step with
        ``ctx.save_state`` before taking the next.
        """

    def update(self, post: Post, ctx: DeliveryContext) -> Outcome:
        """Replace the published copy in place (same remote id). Default: not supported."""
        raise PermanentChannelError(f"channel {self.name!r} cannot update a published item")

    def withdraw(self, post: Post, ctx: DeliveryContext) -> None:
        """Take the published copy down. Raises like ``publish``. Default: not supported."""
        raise PermanentChannelError(f"channel {self.name!r} cannot withdraw; take it down by hand")

    # -- after publication -----------------------------------------------------------------------
    def check_url(self, url: str) -> LinkStatus:
        """Whether a published URL still answers. Default: an HTTP GET."""
        import requests

        try:
            r = requests.get(url, timeout=10, allow_redirects=True)
        except requests.RequestException as exc:
            return LinkStatus(ok=False, reason=f"{type(exc).__name__}: {exc}")
        return LinkStatus(ok=r.status_code < 400, status=r.status_code, reason=r.reason or "")

    def fetch_stats(self, remote_ids: Iterable[str], since: date, until: date) -> list[StatRow]:
        """Engagement per published item and day, where the channel has it. Default: none.

        The sync asks for each day once, up to :meth:`stats_final_through`, so the figures of a day
        must be final when it is asked for.
        """
        return []

    def stats_final_through(self, now: datetime) -> date:
        """The last day whose figures :meth:`fetch_stats` can give at ``now`` and will not change.
        Default: yesterday in the office's zone."""
        return now.astimezone(self.env.timezone).date() - timedelta(days=1)

    def list_publications(self, since: datetime | None = None) -> list[RemotePublication]:
        """What the channel itself shows as published (to find posts made outside the pipeline)."""
        return []

    def copy_kit(self, post: Post) -> str | None:
        """For a manual channel: the text and files a person needs to post ``post`` by hand."""
        return None

    def check_health(self) -> HealthReport:
        """Check credentials and quota without publishing anything. Default: configuration only."""
        return HealthReport(ok=True, detail="configured")

    def handle_callback(
        self, method: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> CallbackReply:
        """Answer a request the remote service sends us (e.g. WeChat's PUBLISHJOBFINISH event).

        Served by the web app at ``/channels/<instance-name>/callback``. A channel records what it
        learns with ``self.env.kv`` and picks it up on the next ``publish`` call (InProgress).
        Default: 404.
        """
        return CallbackReply(status=404, body=b"no callback for this channel")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called when the worker stops."""


# ---------------------------------------------------------------------------------------- discovery
def available_channel_types() -> dict[str, type[Channel]]:
    """Every channel class registered in the ``publisher.channels`` entry-point group."""
    found: dict[str, type[Channel]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Channel)):
            raise ConfigError(f"entry point {ep.name!r} = {ep.value} is not a publisher.channel.Channel")
        found[ep.name] = cls
    return found


def validate_channel_config(channel_type: type[Channel], name: str, raw: Mapping[str, Any]) -> BaseModel:
    """Validate a ``[channels.NAME]`` table against the channel's Config; raise ConfigError."""
    try:
        return channel_type.Config.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(table)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"settings [channels.{name}]: {problems}") from exc


class ChannelConfig(BaseModel):
    """Base for channel Config models: unknown keys are refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def web_address(url: str | None, *, hint: str = "") -> str:
    """``url`` trimmed; InvalidInput unless it is an http(s) URL with a host and no white space.

    One check for every place a person types a published address (manual record, CSV import).
    """
    from urllib.parse import urlsplit

    from publisher.errors import InvalidInput

    value = (url or "").strip()
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not a web address: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in value):
        raise InvalidInput(
            f"{value!r} is not a web address: give the full address, starting with http:// or https://, "
            f"e.g. https://www.example.gov.cn/...{hint}"
        )
    return value


def env_secret(var: str | None, *, what: str) -> str:
    """Read a secret from the environment variable ``var``; ConfigError naming it when unset."""
    import os

    if not var:
        raise ConfigError(f'{what}: name the environment variable that holds it (…_env = "VAR")')
    value = os.environ.get(var)
    if not value:
        raise MissingSecret(f"{what}: environment variable {var} is not set")
    return value


# ------------------------------------------------------------------------------------------ sandboxes
SANDBOX_ENTRY_POINT_GROUP = "publisher.sandboxes"


@dataclass
class SandboxHandle:
    """A running local emulator of a channel's service, ready for the demo.

    A channel (or a campus sign-in protocol) that ships a sandbox registers
    ``name = "channels.sandbox.x:demo_sandbox"`` in the ``publisher.sandboxes`` entry-point group: a
    callable ``(workdir: Path) -> SandboxHandle``.
    """

    #: the ``[channels.NAME]`` table (including ``type``) that points the channel at the sandbox
    config: dict[str, Any]
    stop: Callable[[], None]
    #: fake credentials the config refers to (set in the demo process's environment only)
    environ: dict[str, str] = field(default_factory=dict)
    #: one line for the user: where to look
    describe: str = ""
    #: a sign-in sandbox (CAS, OIDC) is no channel: its ``config`` is empty and this holds the
    #: ``[auth]`` tables (``{"cas": {...}}``) that point the campus sign-in at it
    auth: dict[str, Any] = field(default_factory=dict)
    #: a notification transport's sandbox (企业微信, 钉钉 robots) is no channel either: its ``config`` is
    #: empty and this holds the ``[notify.transports]`` tables that point the transports at it
    notify: dict[str, Any] = field(default_factory=dict)
    #: a CDN's sandbox (腾讯云 CDN) is no channel either: its ``config`` is empty and this holds the
    #: ``[channels.X.cdn]`` table that points a website's purges at it (docs/channels/website.md)
    cdn: dict[str, Any] = field(default_factory=dict)


def available_sandboxes() -> dict[str, Callable[[Path], SandboxHandle]]:
    return {ep.name: ep.load() for ep in entry_points(group=SANDBOX_ENTRY_POINT_GROUP)}
