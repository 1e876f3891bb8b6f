"""Typed settings from ``settings.toml`` and ``PUBLISHER_*`` environment variables, checked at start-up.

Precedence: environment (``PUBLISHER_DATABASE_URL``, ``PUBLISHER_WORKER__THREADS``...) over the file
over the defaults. Unknown keys are refused with a suggestion, because a typo'd key that passes
silently is a setting that never took effect. Secrets are never values here: a channel names the
environment variable that holds its secret (``secret_env = "PUBLISHER_WECHAT_SECRET"``).

One module for the one file it describes: each class is a table of ``settings.toml``, in the file's
order, with the commented template beside them, so a key is found, checked and documented in one place.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from publisher.errors import ConfigError
from publisher.objectstore import ObjectStore, S3Config, S3Store

DEFAULT_SETTINGS_FILE = "settings.toml"

DEFAULT_CATEGORIES = [
    "规章制度",
    "招聘信息",
    "公告公示",
    "招标公告",
    "中标公告",
    "新闻",
    "学报",
    "年度报告",  # the annual reports: the website lists them on its 年度报告 page
    "其他",
]

DEFAULT_DEPARTMENTS = [
    "校长办公室",
    "党委宣传部",
    "人事处",
    "教务处",
    "招生就业处",
    "财务处",
    "资产管理处",
    "学生工作部",
]

#: keys of a ``[channels.NAME]`` table that the core reads; the rest is the channel's own Config
CORE_CHANNEL_KEYS = {"type", "enabled", "paused", "max_concurrency", "rate_per_minute", "schedule", "label"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkerSettings(_Section):
    threads: int = Field(4, ge=1, le=256)
    lease_seconds: int = Field(300, ge=5)
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_base_seconds: float = Field(10.0, gt=0)
    backoff_cap_seconds: float = Field(3600.0, gt=0)
    poll_seconds: float = Field(1.0, gt=0)
    #: how many due deliveries one claim takes at most
    batch_size: int = Field(64, ge=1)


class ReviewSettings(_Section):
    #: a publish time in the past is refused unless this is true (then it means "now")
    allow_past_publish_time: bool = False
    #: the largest Markdown body accepted, in bytes
    max_body_bytes: int = Field(2_000_000, ge=1000)
    #: the largest image or attachment accepted, in bytes
    max_asset_bytes: int = Field(20_000_000, ge=1000)
    #: the most pixels an image may have (width × height), checked before it is decoded: a 100-megapixel
    #: image takes ~400 MB of memory to read, and a small PNG can claim 20000×20000
    max_image_pixels: int = Field(40_000_000, ge=10_000, le=170_000_000)


class PrivacySettings(_Section):
    #: the office's sensitive-word list: a UTF-8 file of ``word<TAB>reason`` lines, relative to data_dir
    #: ("" = no list; publisher.pipeline.privacy.words_for reads it)
    words_file: str = ""


class DisplaySettings(_Section):
    """公示期 (docs/privacy.md): the default period of an item of a category that names none."""

    #: category → Chinese working days, e.g. {"公告公示" = 5}; each 1-60, each a known category
    working_days: dict[str, int] = Field(default_factory=dict)

    @field_validator("working_days")
    @classmethod
    def _days(cls, v: dict[str, int]) -> dict[str, int]:
        for cat, n in v.items():
            if not 1 <= n <= 60:
                raise ValueError(f"{cat!r} = {n}: a display period is 1 to 60 working days")
        return v


DEFAULT_TOPICS = (
    "学校概况",
    "规章制度",
    "招生考试",
    "财务资产",
    "人事师资",
    "教学质量",
    "学生管理",
    "对外交流",
    "其他",
)


class CatalogueSettings(_Section):
    """The disclosure catalogue (docs/catalogue.md): the 索引号 pattern and the office's topic list."""

    #: the organisation code 索引号 start with (e.g. the 统一社会信用代码 12230000MB0000000X)
    org_code: str = "000000000000000000"
    #: {org_code}, {year} (of going live, office time) and {seq} (per year and org_code, from 1)
    index_pattern: str = "{org_code}/{year}-{seq:05d}"
    #: 主题分类: the topics an item may name
    topics: list[str] = Field(default_factory=lambda: list(DEFAULT_TOPICS))
    #: 公开范围 of an item that names none
    default_scope: str = "面向社会"

    @field_validator("index_pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        if "{seq" not in v:
            raise ValueError(
                f"index_pattern {v!r} has no {{seq}}: numbers would repeat; e.g. {{org_code}}/{{year}}-{{seq:05d}}"
            )
        try:
            v.format(org_code="X", year=2022, seq=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"index_pattern {v!r}: {exc}; it may use {{org_code}}, {{year}} and {{seq}}") from exc
        return v

    @field_validator("topics")
    @classmethod
    def _topics(cls, v: list[str]) -> list[str]:
        topics = [t.strip() for t in v]
        if not topics or any(not t for t in topics):
            raise ValueError("topics: list at least one topic, none empty")
        if len(set(topics)) != len(topics):
            raise ValueError("topics: a topic is listed twice")
        if any(len(t) > 50 for t in topics):
            raise ValueError("topics: a topic is at most 50 characters")
        return topics


class CalendarSettings(_Section):
    """Holidays of years the installed chinese-calendar does not know yet, from the State Council's
    notice (国务院办公厅关于…部分节假日安排的通知): days off, and the weekend days worked instead (调休)."""

    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _apart(self) -> CalendarSettings:
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(f"{', '.join(map(str, both))} listed both as holiday and as workday; keep one")
        return self


class SyncSettings(_Section):
    #: the weekly sync job, a crontab line in the office's time zone
    cron: str = "0 3 * * mon"
    #: check that every published URL still answers (off where the machine cannot reach the sites)
    check_links: bool = True
    #: days of engagement figures the first sync fetches (later ones: each day once, from where the last stopped)
    stats_days: int = Field(7, ge=1, le=366)
    #: category and department given to articles found on a channel but not published through here
    remote_category: str = "其他"
    remote_department: str = "未分配部门"


class ReportSettings(_Section):
    """Which channels and categories make up each figure of the annual report (names, not code)."""

    #: "通过…政府网站以及学校校园网主页公开信息共计 N 条": distinct items on any of these channels
    site_channels: list[str] = Field(default_factory=lambda: ["website", "city_portal"])
    wechat_channels: list[str] = Field(default_factory=lambda: ["wechat"])
    media_channels: list[str] = Field(default_factory=lambda: ["media"])
    journal_channels: list[str] = Field(default_factory=lambda: ["journal"])
    rules_categories: list[str] = Field(default_factory=lambda: ["规章制度"])
    recruitment_categories: list[str] = Field(default_factory=lambda: ["招聘信息"])
    announcement_categories: list[str] = Field(default_factory=lambda: ["公告公示"])
    tender_categories: list[str] = Field(default_factory=lambda: ["招标公告"])
    award_categories: list[str] = Field(default_factory=lambda: ["中标公告"])
    #: the office's edited Jinja2 template (default: the one shipped, from last year's text)
    template: Path | None = None
    #: information is disclosed within this many working days of being produced (2014 notice)
    timeliness_working_days: int = Field(20, ge=1)
    #: rule of checklist items no admin has set a rule for (annual | semester | quarterly | monthly | on_change)
    default_checklist_rule: str = "annual"


class RegistersSettings(_Section):
    """Deadlines of the request and complaint registers, in Chinese working days."""

    request_working_days: int = Field(15, ge=1)
    extension_working_days: int = Field(15, ge=1)
    complaint_working_days: int = Field(15, ge=1)
    #: the public form (/apply): submissions allowed per client address within ``apply_window_minutes``
    #: (a campus behind one NAT address shares it: keep it generous)
    apply_per_address: int = Field(20, ge=1)
    apply_window_minutes: int = Field(60, ge=1)
    #: an open request or complaint this many working days or fewer from its deadline (or late) is told
    #: to the keepers (the ``register-deadlines`` job, docs/notify.md)
    remind_working_days: int = Field(2, ge=0, le=30)
    #: user names of the register keepers who are told (admins: the register pages are theirs);
    #: empty: the office admins
    keepers: list[str] = Field(default_factory=list)


class OfficeSettings(_Section):
    """``[office]``: the information-disclosure office as the public reaches it (the 公开指南 page, /guide,
    and the website's 信息公开指南, guide.html, with the deadlines of ``[registers]``)."""

    #: e.g. 党政办公室（信息公开办公室）; empty: the organisation's name followed by 信息公开办公室
    name: str = ""
    address: str = ""
    phone: str = ""
    email: str = ""
    #: when the office receives visitors and calls, e.g. 工作日 8:00-11:30，13:30-17:00
    hours: str = ""
    #: the web app as the public reaches it (the 依申请公开 form is ``<public_base_url>apply``);
    #: empty: ``[notify] web_base_url``
    public_base_url: str = ""
    #: the rules the office discloses under, as the guide names them: a university's
    #: 《高等学校信息公开办法》, a government office's 《中华人民共和国政府信息公开条例》
    regulation: str = "《高等学校信息公开办法》"

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError(f"office.public_base_url {v!r} must start with http:// or https://")
        return v if not v or v.endswith("/") else v + "/"


class WebSettings(_Section):
    """``publisher serve``: the web workspace."""

    #: mark the session cookie Secure (set true whenever the site is served over HTTPS)
    secure_cookies: bool = False
    session_hours: float = Field(12, gt=0)
    #: failed log-ins allowed per account, and per address, within ``login_window_minutes``
    login_failures_per_account: int = Field(10, ge=1)
    login_failures_per_address: int = Field(50, ge=1)
    login_window_minutes: int = Field(15, ge=1)
    #: the reverse proxies (nginx) whose X-Forwarded-For / -Proto are believed, e.g. ["127.0.0.1"]; empty:
    #: none, and every client is the address that connects (behind a proxy: the proxy, for everyone)
    forwarded_allow_ips: list[str] = Field(default_factory=list)


class NotifySettings(_Section):
    """People told when work waits (docs/notify.md): the outbox's sender and its transports."""

    #: the web workspace as people reach it: each message links to the page where the person acts
    web_base_url: str = "http://127.0.0.1:8000/"
    #: a message's sends at most, then it fails with the last error kept
    max_attempts: int = Field(6, ge=1, le=100)
    backoff_base_seconds: float = Field(30.0, gt=0)
    backoff_cap_seconds: float = Field(3600.0, gt=0)
    #: a message claimed by a sender that died is taken up again after this
    lease_seconds: int = Field(120, ge=5)
    poll_seconds: float = Field(2.0, gt=0)
    #: the local hour a daily digest goes out
    digest_hour: int = Field(8, ge=0, le=23)
    #: ``[notify.transports.NAME]`` tables: ``type`` (default NAME) and the transport's own keys
    transports: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("web_base_url")
    @classmethod
    def _slash(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"

    def backoff(self, attempt: int) -> timedelta:
        """Exponential back-off with full jitter, capped (as the worker's)."""
        import random

        ceiling = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
        return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


_ROLES = ("editor", "department_head", "confidentiality_reviewer", "admin", "viewer")


def _known_role(v: str) -> str:
    if v not in _ROLES:
        raise ValueError(f"unknown role {v!r}; one of: {', '.join(_ROLES)}")
    return v


class RoleRule(_Section):
    """One rule of the attribute mapping: a user whose ``attribute`` holds ``value`` gets ``role``."""

    attribute: str = Field(min_length=1)
    value: str = Field(min_length=1)
    role: str

    _role = field_validator("role")(_known_role)


class AttributeMapping(_Section):
    """Which attribute of the campus directory (CAS attributes, OIDC claims) says what about a user."""

    #: the user name (工号/学号); empty: the CAS ``<cas:user>`` or the OIDC ``sub``
    username: str = ""
    display_name: str = "cn"
    department: str = "ou"
    #: checked in order, the first that matches gives the role (an attribute may hold a list: any item)
    roles: list[RoleRule] = Field(default_factory=list)
    #: the role of a user no rule matches
    default_role: str = "viewer"

    _role = field_validator("default_role")(_known_role)


class CasSettings(_Section):
    """``[auth.cas]``: the campus CAS server (统一身份认证)."""

    #: the CAS server's base, e.g. https://cas.example.edu.cn/cas (its /login, /serviceValidate, /logout)
    server_url: str
    #: 2 (``serviceValidate``, no attributes in the protocol) or 3 (``p3/serviceValidate`` with attributes)
    version: int = 3
    #: this site's address as the CAS server sees it; the service is ``{service_base_url}/login/cas/callback``
    service_base_url: str
    #: the sign-in button's text
    label: str = "统一身份认证 / Campus sign-in (CAS)"

    @field_validator("version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v not in (2, 3):
            raise ValueError("CAS protocol version must be 2 or 3")
        return v

    @field_validator("server_url", "service_base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v.rstrip("/")


class OidcSettings(_Section):
    """``[auth.oidc]``: an OpenID Connect provider (authorization code with PKCE)."""

    #: the issuer; its discovery document is ``{issuer}/.well-known/openid-configuration`` unless given
    issuer: str
    discovery_url: str = ""
    client_id: str = Field(min_length=1)
    #: the environment variable that holds the client secret (never this file); unset: a public client
    client_secret_env: str = "PUBLISHER_OIDC_CLIENT_SECRET"
    #: this site's address as the provider sees it; the redirect URI is ``{base}/login/oidc/callback``
    redirect_base_url: str
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile"])
    label: str = "统一身份认证 / Campus sign-in (OIDC)"

    @field_validator("issuer", "redirect_base_url", "discovery_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if v and not v.startswith(("https://", "http://")):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v.rstrip("/")

    @property
    def discovery(self) -> str:
        return self.discovery_url or f"{self.issuer}/.well-known/openid-configuration"

    @property
    def client_secret(self) -> str | None:
        return os.environ.get(self.client_secret_env) or None


class AuthSettings(_Section):
    """``[auth]``: how people sign in (docs/auth.md)."""

    #: local argon2 passwords for everyone; false: only admins may use a local password (the rest: CAS/OIDC)
    local_passwords: bool = True
    cas: CasSettings | None = None
    oidc: OidcSettings | None = None
    mapping: AttributeMapping = Field(default_factory=AttributeMapping)


class MediaSettings(_Section):
    """``[media]``: where uploaded images and attachments are kept. Each host keeps its copy in
    ``media/`` under data_dir; with ``storage = "s3"`` every stored file also goes to the bucket (key
    ``<first two hex>/<sha256>``) and a host that lacks a file fetches it from there, checked by its
    hash. The bucket holds unreviewed uploads: it must not be readable by the public."""

    storage: Literal["folder", "s3"] = "folder"
    s3: S3Config | None = None

    @model_validator(mode="after")
    def _table(self) -> MediaSettings:
        if self.storage == "s3" and self.s3 is None:
            raise ValueError('media: storage = "s3" needs a [media.s3] table (bucket, endpoint_url, region, prefix)')
        return self


class Settings(BaseSettings):
    """All settings. Build with :func:`load_settings`, never at import time."""

    model_config = SettingsConfigDict(env_prefix="PUBLISHER_", env_nested_delimiter="__", extra="forbid")

    database_url: str = "sqlite:///queue.db"
    timezone: str = "Asia/Shanghai"
    #: where media/, the website folder and other files live (relative to the settings file)
    data_dir: Path = Path(".")
    site_base_url: str = "http://127.0.0.1:8000/site/"
    organisation: str = "示例高等师范专科学校"
    categories: list[str] = Field(default_factory=lambda: list(DEFAULT_CATEGORIES))
    #: departments created by ``publisher init`` (more with ``publisher department add``)
    departments: list[str] = Field(default_factory=lambda: list(DEFAULT_DEPARTMENTS))
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    display: DisplaySettings = Field(default_factory=DisplaySettings)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    catalogue: CatalogueSettings = Field(default_factory=CatalogueSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    registers: RegistersSettings = Field(default_factory=RegistersSettings)
    office: OfficeSettings = Field(default_factory=OfficeSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    #: ``[channels.NAME]`` tables; validated against each channel's Config by publisher.pipeline.registry
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)

    #: where the settings came from (not a setting)
    source: Path | None = Field(default=None, exclude=True)
    _media_store: ObjectStore | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (e.g. Asia/Shanghai)") from exc
        return v

    @field_validator("site_base_url")
    @classmethod
    def _slash(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"

    @field_validator("channels")
    @classmethod
    def _channel_tables(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name, table in v.items():
            if not isinstance(table, dict):
                raise ValueError(f"[channels.{name}] must be a table")
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"channel name {name!r}: use letters, digits, - and _")
        return v

    @model_validator(mode="after")
    def _display_categories(self) -> Settings:
        unknown = sorted(set(self.display.working_days) - set(self.categories))
        if unknown:
            raise ValueError(
                f"display.working_days names unknown categor{'ies' if len(unknown) > 1 else 'y'} "
                f"{', '.join(unknown)}; categories: {', '.join(self.categories)}"
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def path(self, p: str | Path) -> Path:
        """A path from the settings, resolved against data_dir (itself against the settings file)."""
        p = Path(p)
        if p.is_absolute():
            return p
        d = self.data_dir if self.data_dir.is_absolute() else self.base_dir / self.data_dir
        return (d / p).resolve()

    @property
    def media_dir(self) -> Path:
        return self.path("media")

    def media_store(self) -> ObjectStore | None:
        """The bucket the media also go to (``[media] storage = "s3"``), None for the folder alone.
        Built on first use (MissingSecret naming the variable when a key is not set), then kept."""
        if self.media.storage != "s3":
            return None
        if self._media_store is None:
            self._media_store = S3Store(self.media.s3)  # type: ignore[arg-type]  # checked by MediaSettings
        return self._media_store

    @property
    def resolved_database_url(self) -> str:
        """SQLite paths are relative to data_dir, so every face opens the same file."""
        url = self.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.path(url[len(prefix) :]))
        return url

    def backoff(self, attempt: int) -> timedelta:
        """Exponential back-off with full jitter (AWS architecture blog), capped."""
        import random

        ceiling = min(self.worker.backoff_cap_seconds, self.worker.backoff_base_seconds * 2 ** (attempt - 1))
        return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def _explain(exc: ValidationError, where: str) -> str:
    problems = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            parts = [str(p) for p in e["loc"]]
            model: Any = Settings
            for part in parts[:-1]:
                f = getattr(model, "model_fields", {}).get(part)
                model = getattr(f, "annotation", None) if f else None
            known = list(getattr(model, "model_fields", {}).keys()) if model else []
            hint = difflib.get_close_matches(parts[-1], known, n=1)
            problems.append(f"unknown setting {loc!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        else:
            msg = e["msg"].removeprefix("Value error, ")
            # the environment overrides the file: name the variable, or the user edits the wrong place
            env = "PUBLISHER_" + "__".join(str(p) for p in e["loc"]).upper()
            where_from = f" (from ${env}, which overrides the file)" if env in os.environ else ""
            problems.append(f"{loc}{where_from}: {msg}")
    return f"{where}: " + "; ".join(problems)


def load_settings(path: str | Path | None = None) -> Settings:
    """Read settings.toml (or ``path``, or $PUBLISHER_SETTINGS) and the environment; ConfigError if bad.

    A missing settings file is fine (defaults apply) unless it was named explicitly.
    """
    explicit = path is not None or "PUBLISHER_SETTINGS" in os.environ
    p = Path(path or os.environ.get("PUBLISHER_SETTINGS") or DEFAULT_SETTINGS_FILE)
    data: dict[str, Any] = {}
    if p.exists():
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    elif explicit:
        raise ConfigError(f"settings file {p} does not exist (run `publisher init` to create one)")
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, str(p))) from exc
    settings.source = p.resolve() if p.exists() else None
    return settings


SETTINGS_TEMPLATE = """\
# publisher settings. Every key is optional; unknown keys are refused.
# Environment variables override this file: PUBLISHER_DATABASE_URL, PUBLISHER_WORKER__THREADS, ...
# Secrets never go here: a channel names the environment variable that holds its secret.

database_url = "sqlite:///queue.db"   # or postgresql+psycopg://user@host/db
timezone = "Asia/Shanghai"            # times are stored in UTC and shown in this zone
site_base_url = "http://127.0.0.1:8000/site/"
organisation = "示例高等师范专科学校"

[worker]
threads = 4             # calls in flight; 1 = one thread does everything (fastest against quick receivers)
lease_seconds = 300     # a delivery claimed by a worker that died is taken up again after this
max_attempts = 8
backoff_base_seconds = 10
backoff_cap_seconds = 3600

[review]
allow_past_publish_time = false

[sync]
cron = "0 3 * * mon"    # weekly sync, Monday 03:00 in the time zone above

[display]               # 公示期: the end of an item that names none (display_until / display_working_days)
# working_days = { "公告公示" = 5 }   # Chinese working days from going live; every item of the category

[calendar]              # years the installed chinese-calendar does not know (State Council notice)
# holidays = [2027-01-01, 2027-02-05]   # days off
# workdays = [2027-02-20]               # 调休: weekend days worked

[catalogue]             # 政府信息公开目录 (docs/catalogue.md)
org_code = "000000000000000000"        # the office's 统一社会信用代码 or code; 索引号 start with it
index_pattern = "{org_code}/{year}-{seq:05d}"
# topics = ["学校概况", "规章制度", "招生考试", "财务资产", "人事师资", "教学质量", "学生管理", "对外交流", "其他"]
default_scope = "面向社会"

[report]                # which channels make up each figure of the annual report
site_channels = ["website", "city_portal"]
wechat_channels = ["wechat"]
media_channels = ["media"]
journal_channels = ["journal"]
tender_categories = ["招标公告"]
# template = "report-template.md.j2"   # the office's edited copy (`publisher report template`)

[registers]             # 依申请公开: answer within these working days, one extension (the site's 信息公开指南 says so)
request_working_days = 15               # 《高等学校信息公开办法》; a government office: 20 (《政府信息公开条例》)
extension_working_days = 15             # a government office: 20

[web]
secure_cookies = false  # set true when `publisher serve` is reached over HTTPS (docs/web.md)

[office]                # the 公开指南 page (/guide), the public form (/apply) and the website's guide.html
# name = "党政办公室（信息公开办公室）"
# address = "某某市某某路1号 行政楼201室"
# phone = "0452-0000000"
# email = "xxgk@example.edu.cn"
# hours = "工作日 8:00-11:30，13:30-17:00"
# public_base_url = "https://xxgk.example.edu.cn/app/"   # the web app as the public reaches it (its /apply form)
regulation = "《高等学校信息公开办法》"   # a government office: 《中华人民共和国政府信息公开条例》

[auth]
local_passwords = true  # false: only admins use a local password; everyone else signs in through CAS/OIDC
# [auth.cas]            # the campus 统一身份认证 (docs/auth.md)
# server_url = "https://cas.example.edu.cn/cas"
# version = 3
# service_base_url = "https://xxgk.example.edu.cn"
# [auth.mapping]
# department = "ou"
# roles = [{ attribute = "eduPersonAffiliation", value = "faculty", role = "editor" }]

[notify]                # people told when work waits (docs/notify.md); no transport: nobody is told
web_base_url = "http://127.0.0.1:8000/"   # messages link to pages of the web workspace here
# [notify.transports.email]
# host = "smtp.example.edu.cn"
# port = 587
# sender = "xxgk@example.edu.cn"
# username = "xxgk"
# password_env = "PUBLISHER_NOTIFY_SMTP_PASSWORD"
# [notify.transports.wecom]               # 企业微信 group robot
# key_env = "PUBLISHER_WECOM_ROBOT_KEY"
# [notify.transports.dingtalk]            # 钉钉 custom robot, signed
# token_env = "PUBLISHER_DINGTALK_TOKEN"
# secret_env = "PUBLISHER_DINGTALK_SECRET"
# [notify.transports.wecom_app]           # 企业微信 application message (corp API), to each person's userid
# corpid = "ww0123456789abcdef"
# agentid = 1000002
# secret_env = "PUBLISHER_WECOM_APP_SECRET"

[channels.website]
type = "website"
folder = "site"
title = "信息公开网"

# [channels.webhook]
# type = "webhook"
# url = "https://oa.example.edu.cn/hooks/publisher"
# secret_env = "PUBLISHER_WEBHOOK_SECRET"
# max_concurrency = 4     # calls in flight, per worker process
# rate_per_minute = 600   # calls a minute, evenly spread, shared by all workers on this database
"""
