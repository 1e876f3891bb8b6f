"""This tree's notification transports, as its pyproject.toml declares them, for a run whose installed
metadata predates them (a worktree run against an older editable install: entry points are read from
the installed metadata, not from the tree). The folder holds one dist-info with the declared
``publisher.notifiers`` group; put it on ``sys.path`` and on a subprocess's PYTHONPATH. Where the
install is current it only repeats the same entry points."""

from __future__ import annotations

import tomllib
from pathlib import Path

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
