"""What every command of the ``publisher`` command shares: the consoles, the table, the open app."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rich import table as _rich_table
from rich.console import Console

from publisher.app import App, open_app

# markup off: titles, reasons and JSON are user text; "[/x]" in a title would crash the command
# (after its transaction committed) and "[b]" would vanish from --json output
# piped into a file or a mail from cron, rich would assume 80 columns: give tables room instead
_piped_width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
out = Console(highlight=False, soft_wrap=True, markup=False, width=_piped_width)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


class Table(_rich_table.Table):
    """Cells wrap instead of ending in "…": a Chinese title has no spaces to wrap at, and piped
    output is 80 columns wide: cut, titles, URLs and dates would keep only a few characters."""

    def add_column(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)


class State:
    settings_path: Path | None = None
    _app: App | None = None

    def app(self) -> App:
        if self._app is None:
            self._app = open_app(self.settings_path)
        return self._app


state = State()


def show_time(a: App, dt: datetime | None) -> str:
    return dt.astimezone(a.settings.zone).strftime("%Y-%m-%d %H:%M") if dt else "-"
