"""Wiring: settings → engine → configured channels → the service context. Every face starts here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from publisher.db import explain_store_error, make_engine, migrate, schema_is_current, transaction
from publisher.errors import ConfigError
from publisher.pipeline.registry import ChannelSpec, build_channels
from publisher.pipeline.workflow import Context
from publisher.settings import Settings, load_settings


@dataclass
class App:
    settings: Settings
    engine: Engine
    channels: dict[str, ChannelSpec]

    @property
    def ctx(self) -> Context:
        return Context(settings=self.settings, channels=self.channels)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One user action = one transaction."""
        with transaction(self.engine) as s:
            yield s

    def require_channels(self, *, paused: bool = True) -> None:
        """MissingSecret for the first enabled channel (and paused ones unless ``paused=False``) whose
        secret this process lacks: the worker and the sync check this before they start."""
        for spec in self.channels.values():
            if spec.enabled and (paused or not spec.paused):
                spec.require()

    def close(self) -> None:
        for spec in self.channels.values():
            spec.channel.close()
        self.engine.dispose()


def open_app(
    settings: Settings | str | Path | None = None, *, run_migrations: bool = False, check_schema: bool = True
) -> App:
    """Load settings, open the database and build the channels; ConfigError when anything is off."""
    if not isinstance(settings, Settings):
        settings = load_settings(settings)
    url = settings.resolved_database_url
    if not run_migrations and url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        # a read in a folder never set up must not leave an empty store (and media/) behind
        raise ConfigError(f"no store at {url[len('sqlite:///') :]}: run `publisher init` (or `publisher demo`) first")
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    if run_migrations:
        migrate(engine)
    elif check_schema:
        try:
            current = schema_is_current(engine)
        except Exception as exc:  # e.g. PostgreSQL not reachable
            explained = explain_store_error(exc, engine.url)
            if explained is not None:
                raise explained from exc
            raise ConfigError(f"cannot open the database {engine.url.render_as_string()}: {exc}") from exc
        if not current:
            raise ConfigError(
                f"the database {engine.url.render_as_string()} is not initialised or not up to date: "
                "run `publisher init`"
            )
    channels = build_channels(settings, engine)
    return App(settings=settings, engine=engine, channels=channels)
