"""Setting up and looking after an installation: init, doctor, the checklist, the web server, the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from publisher.app import open_app
from publisher.cli.common import Table, err, out, state
from publisher.pipeline import workflow


def init(
    force: Annotated[bool, typer.Option(help="overwrite an existing settings.toml")] = False,
) -> None:
    """Create settings.toml if absent and bring the database to the newest schema."""
    from publisher.settings import SETTINGS_TEMPLATE

    path = state.settings_path or Path("settings.toml")
    if force or not path.exists():
        path.write_text(SETTINGS_TEMPLATE, encoding="utf-8")
        out.print(f"wrote {path}")
    a = open_app(path, run_migrations=True)
    with a.session() as s:
        for d in a.settings.departments:
            workflow.add_department(s, d)
    out.print(f"database ready: {a.engine.url.render_as_string()}")
    out.print(f"channels: {', '.join(a.channels) or 'none configured'}")


def doctor() -> None:
    """Check the database, the migrations, each channel's settings and credentials, and the clock."""
    from publisher.doctor import run_checks

    checks = run_checks(state.settings_path)
    table = Table("check", "", "detail", show_lines=False)
    for c in checks:
        mark = "ok" if c.ok and not c.warning else ("warn" if c.ok else "FAIL")
        table.add_row(c.name, mark, c.detail)
    out.print(table)
    failed = [c.name for c in checks if not c.ok]
    if failed:
        err.print(f"{len(failed)} check(s) failed: {', '.join(failed)}")
        raise typer.Exit(1)


def checklist_cmd(
    search: Annotated[str | None, typer.Argument(help="show only items whose name contains this")] = None,
) -> None:
    """The 50 items of the national disclosure checklist (高等学校信息公开事项清单)."""
    from publisher.checklist import checklist

    for n, c in checklist().items():
        if search is None or search in c.name or search in c.category:
            out.print(f"{n:>2}  [{c.category}] {c.name}")


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Serve the web workspace, the JSON API (/api/docs) and the generated website (/site/)."""
    from publisher.web import serve as _serve

    _serve(state.app(), host=host, port=port)


def demo(
    items: Annotated[int, typer.Option(help="how many sample items")] = 6,
) -> None:
    """Show the whole job in this folder with no credentials: sample items, two reviews, publishing to
    the website and sandbox copies of the other channels, then the per-channel counts."""
    from publisher.demo import run_demo

    run_demo(state.settings_path, items=items, console=out)
