"""The configured channels: ``[channels.NAME]`` tables matched to entry points and validated.

This is where a channel instance gets its settings, its shared key/value store (a database table,
so every worker process sees one WeChat token), its posting schedule and its limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import Engine

from publisher.channel import Channel, ChannelEnv, Office, available_channel_types, validate_channel_config
from publisher.errors import ConfigError, MissingSecret
from publisher.models import ChannelKV, utcnow
from publisher.pipeline.sharedsql import EngineSql
from publisher.settings import CORE_CHANNEL_KEYS, Settings


class DatabaseKV:
    """:class:`publisher.channel.KeyValueStore` over the ``channel_kv`` table, namespaced per channel."""

    def __init__(self, engine: Engine, namespace: str) -> None:
        self.engine = engine
        self.ns = namespace
        self.table = ChannelKV.__table__  # type: ignore[attr-defined]

    def _k(self, key: str) -> str:
        return f"{self.ns}:{key}"

    def get(self, key: str) -> str | None:
        from publisher.models import UTCDateTime  # noqa: F401  (type applied by the table)

        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(self.table.c.value, self.table.c.expires_at).where(self.table.c.key == self._k(key))
            ).first()
        if row is None:
            return None
        if row.expires_at is not None and row.expires_at <= utcnow():
            return None
        return row.value

    def set(self, key: str, value: str, *, expires_at: datetime | None = None) -> None:
        # one upsert: a delete then an insert lets two workers setting a new key at once (the WeChat
        # token after an expiry) both insert, and the second fails on the primary key
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(self.table).values(key=self._k(key), value=value, expires_at=expires_at)
        stmt = stmt.on_conflict_do_update(
            index_elements=[self.table.c.key],
            set_={"value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def delete(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(self.table).where(self.table.c.key == self._k(key)))


@dataclass
class ChannelSpec:
    """A configured channel: its instance, and the limits the core applies around it."""

    name: str
    type_name: str
    label: str
    channel: Channel
    enabled: bool = True
    paused: bool = False
    max_concurrency: int = 4
    rate_per_minute: int | None = None
    schedule: str | None = None
    _trigger: CronTrigger | None = field(default=None, repr=False)
    #: why the channel cannot be used here (its secret is not in this process's environment); its
    #: stand-in raises this from every call, and :meth:`require` before a worker or sync starts
    unavailable: MissingSecret | None = None

    def require(self) -> Channel:
        """The channel, or the MissingSecret naming the variable this process lacks for it."""
        if self.unavailable is not None:
            raise MissingSecret(str(self.unavailable))
        return self.channel

    def next_slot(self, at: datetime, tz: Any) -> datetime:
        """The first time ≥ ``at`` this channel's posting schedule allows (``at`` if it has none)."""
        if self._trigger is None:
            return at
        nxt = self._trigger.get_next_fire_time(None, at - timedelta(microseconds=1))
        return nxt if nxt is not None else at


def _refuse_unknown_keys(name: str, cls: type[Channel], own: dict[str, Any]) -> None:
    """A typo'd key would otherwise only say "extra inputs are not permitted": name the likely key."""
    import difflib

    known = sorted(set(getattr(cls.Config, "model_fields", {})) | CORE_CHANNEL_KEYS)
    for key in own:
        if key in known or cls.Config.model_config.get("extra") != "forbid":
            continue
        hint = difflib.get_close_matches(key, known, n=1)
        raise ConfigError(
            f"settings [channels.{name}]: unknown key {key!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else f"; known: {', '.join(known)}")
        )


#: the calls a channel whose secret is missing refuses (its class attributes stay true: supports_withdraw...)
_NEEDS_SECRET = (
    "validate",
    "publish",
    "update",
    "withdraw",
    "check_url",
    "fetch_stats",
    "list_publications",
    "copy_kit",
    "check_health",
    "handle_callback",
)


def _stand_in(cls: type[Channel], name: str, config: Any, env: ChannelEnv, message: str) -> Channel:
    """A ``cls`` built without its secret: commands that never call it (item list...) run, and the first
    call says which variable is missing for which channel."""

    def refuse(self: Channel, *args: Any, **kwargs: Any) -> Any:
        raise MissingSecret(message)

    def init(self: Channel, name: str, config: Any, env: ChannelEnv) -> None:
        Channel.__init__(self, name, config, env)

    body: dict[str, Any] = {m: refuse for m in _NEEDS_SECRET}
    body.update(__init__=init, close=lambda self: None)
    return type(cls.__name__, (cls,), body)(name, config, env)


def office_of(settings: Settings) -> Office:
    """The office as channels see it: its name, ``[office]`` and the request deadlines of ``[registers]``."""
    o = settings.office
    return Office(
        organisation=settings.organisation,
        name=o.name or f"{settings.organisation}信息公开办公室",
        address=o.address,
        phone=o.phone,
        email=o.email,
        hours=o.hours,
        apply_url=(o.public_base_url or settings.notify.web_base_url) + "apply",
        regulation=o.regulation,
        request_working_days=settings.registers.request_working_days,
        extension_working_days=settings.registers.extension_working_days,
    )


def build_channels(settings: Settings, engine: Engine | None) -> dict[str, ChannelSpec]:
    """Instantiate every ``[channels.NAME]``; ConfigError naming the table and key when one is wrong."""
    types = available_channel_types()
    specs: dict[str, ChannelSpec] = {}
    for name, raw in settings.channels.items():
        raw = dict(raw)
        type_name = str(raw.get("type", name))
        cls = types.get(type_name)
        if cls is None:
            raise ConfigError(
                f"settings [channels.{name}]: unknown channel type {type_name!r}; installed: "
                f"{', '.join(sorted(types)) or 'none'}"
            )
        own = {k: v for k, v in raw.items() if k not in CORE_CHANNEL_KEYS}
        if "label" in raw and "label" in cls.Config.model_fields:
            own["label"] = raw["label"]  # a channel that shows its label itself (manual's copy kit) gets it too
        _refuse_unknown_keys(name, cls, own)
        config = validate_channel_config(cls, name, own)
        from publisher.testing import MemoryKV

        kv = DatabaseKV(engine, name) if engine is not None else MemoryKV()
        env = ChannelEnv(
            # not "channels": with the office's folder on sys.path (python -m publisher.cli, uvicorn
            # run there) a ./channels folder shadows the channels package and no channel loads
            data_dir=settings.path("channel-data") / name,
            timezone=settings.zone,
            kv=kv,
            site_base_url=settings.site_base_url,
            base_dir=settings.path("."),
            sql=EngineSql(engine) if engine is not None else None,
            office=office_of(settings),
        )
        env.data_dir.mkdir(parents=True, exist_ok=True)
        unavailable = None
        try:
            channel = cls(name, config, env)
        except MissingSecret as exc:
            # checked where the channel is used, not here: `item list` needs no webhook secret
            unavailable = MissingSecret(f"{exc}; channel {name!r} cannot be used without it")
            channel = _stand_in(cls, name, config, env, str(unavailable))
        schedule = raw.get("schedule")
        trigger = None
        if schedule:
            try:
                trigger = CronTrigger.from_crontab(str(schedule), timezone=settings.zone)
            except ValueError as exc:
                raise ConfigError(
                    f'settings [channels.{name}].schedule {schedule!r} is not a crontab line (e.g. "0 18 * * mon-fri")'
                ) from exc
        try:
            max_conc = int(raw.get("max_concurrency", cls.default_max_concurrency))
            rate = raw.get("rate_per_minute", cls.default_rate_per_minute)
            rate = int(rate) if rate is not None else None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"settings [channels.{name}]: max_concurrency and rate_per_minute are numbers") from exc
        if max_conc < 1 or (rate is not None and rate < 1):
            raise ConfigError(f"settings [channels.{name}]: max_concurrency and rate_per_minute must be ≥ 1")
        specs[name] = ChannelSpec(
            name=name,
            type_name=type_name,
            # a by-hand place is known by its own name (市政府网站, 学报), not as "posted by hand"
            label=str(raw.get("label") or getattr(channel, "place_label", None) or cls.label or name),
            channel=channel,
            enabled=bool(raw.get("enabled", True)),
            paused=bool(raw.get("paused", False)),
            max_concurrency=max_conc,
            rate_per_minute=rate,
            schedule=str(schedule) if schedule else None,
            _trigger=trigger,
            unavailable=unavailable,
        )
    return specs
