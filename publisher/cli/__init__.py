"""The ``publisher`` command: a thin face over the service functions in publisher.pipeline.workflow & co.

Every command that changes something is one transaction: it either happens whole or, on an error,
prints one line saying what is wrong and exits non-zero with the store unchanged.

This module builds the top-level command and registers the commands in the order ``--help`` lists
them; the commands live in the modules of this package by what they serve.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from publisher.cli import admin, channels, counting, items, notify, privacy, registers, reviews, site, usage, users
from publisher.cli.common import state

app = typer.Typer(
    help="Publish approved items to the website, WeChat and every other channel, and count them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    settings: Annotated[
        Path | None,
        typer.Option("--settings", help="settings file (default ./settings.toml or $PUBLISHER_SETTINGS)"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what the worker does")] = False,
) -> None:
    state.settings_path = settings
    state._app = None
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# the order here is the order of `publisher --help`: commands first, then the command groups
app.command()(admin.init)
app.command()(privacy.check)  # before submit: what an author runs on a file before storing it
app.command()(reviews.submit)
app.command()(reviews.schedule)
app.command()(reviews.withdraw)
app.command()(reviews.recall)
app.command()(privacy.mask)  # with the review commands: the 保密审查 reviewer's other way to resolve findings
app.command()(channels.retry)
app.command()(channels.deliveries)
app.command()(channels.run)
app.command()(admin.doctor)
app.command("stats")(counting.stats_cmd)
app.command()(channels.channels)
app.command("checklist")(admin.checklist_cmd)
app.command("import")(counting.import_cmd)
app.command("export")(counting.export_cmd)
app.command("sync")(counting.sync_cmd)
app.command()(admin.serve)
app.command()(admin.demo)

app.add_typer(users.user_app, name="user")
app.add_typer(users.token_app, name="token")
app.add_typer(items.item_app, name="item")
app.add_typer(reviews.review_app, name="review")
app.add_typer(privacy.privacy_app, name="privacy")
app.add_typer(users.dept_app, name="department")
app.add_typer(channels.manual_app, name="manual")
app.add_typer(counting.coverage_app, name="coverage")
app.add_typer(registers.request_app, name="request")
app.add_typer(registers.complaint_app, name="complaint")
app.add_typer(counting.report_app, name="report")
app.add_typer(counting.audit_app, name="audit")
app.add_typer(notify.notify_app, name="notify")
app.add_typer(site.site_app, name="site")


def main() -> None:
    usage.run(app)


__all__ = ["app", "main"]
