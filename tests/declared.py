"""This tree's entry points as its pyproject.toml declares them, for a run whose installed metadata
predates them (a worktree run against an older editable install: entry points are read from the
installed metadata, not from the tree).

* the notification transports: one dist-info with the declared ``publisher.notifiers`` group, in a
  folder to put on ``sys.path`` and on a subprocess's PYTHONPATH (where the install is current it
  only repeats the same entry points);
* the sandboxes (``declared_sandboxes``), and ``publisher demo`` run in this process over a chosen
  few of them (``run_demo``)."""

from __future__ import annotations

import importlib
import io
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
GROUP = "publisher.notifiers"


def declared() -> dict[str, str]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["entry-points"][GROUP]


def entry_points_folder(folder: Path) -> Path:
    """Write the dist-info into ``folder``; returns ``folder`` (the path entry)."""
    info = folder / "publisher_declared_notifiers-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: publisher-declared-notifiers\nVersion: 0\n")
    lines = [f"[{GROUP}]", *(f"{name} = {target}" for name, target in declared().items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    return folder


def declared_sandboxes(*names: str) -> dict[str, Callable[..., Any]]:
    """The ``publisher.sandboxes`` entry points ``names``, loaded as this tree declares them (the
    installed metadata may predate them)."""
    group = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["entry-points"]["publisher.sandboxes"]
    found = {}
    for name in names:
        module, _, attr = group[name].partition(":")
        found[name] = getattr(importlib.import_module(module), attr)
    return found


def run_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandboxes: dict[str, Callable[..., Any]]) -> str:
    """``publisher demo`` with one sample item and only ``sandboxes``, in this process, with no
    ``PUBLISHER_*`` variable of the caller's; what it printed. The demo sets the environment its
    sandboxes need; it is put back afterwards."""
    from rich.console import Console

    from publisher import demo

    for k in [k for k in os.environ if k.startswith("PUBLISHER_")]:
        monkeypatch.delenv(k)
    monkeypatch.setattr(demo, "available_sandboxes", lambda: sandboxes)
    saved = dict(os.environ)
    buf = io.StringIO()
    try:
        demo.run_demo(tmp_path / "settings.toml", items=1, console=Console(file=buf, width=200))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return buf.getvalue()
