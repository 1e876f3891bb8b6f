"""``publisher site …``: the static website's own upkeep (docs/channels/website.md)."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from publisher.cli.common import err, out, state

site_app = typer.Typer(
    help="The static website (信息公开网): rebuild its index pages, build its search index.", no_args_is_help=True
)
ChannelOption = Annotated[
    str | None, typer.Option(help="the channel that writes the site (default: the one that does)")
]


def _site(channel: str | None, does: str) -> tuple[str, object]:
    """The channel that writes a site folder and offers ``does`` — found by what it offers, never by
    its type name."""
    a = state.app()
    # found by what the channel offers (a site it can rebuild, in a folder or a bucket), never by its type name
    sites = {
        name: spec.channel
        for name, spec in a.channels.items()
        if hasattr(spec.channel, "site_folder") and callable(getattr(spec.channel, does, None))
    }
    if channel is not None and channel not in sites:
        err.print(f"{channel!r} is not a channel that writes a site (those that do: {', '.join(sites) or 'none'})")
        raise typer.Exit(2)
    if not sites:
        err.print("no channel writes a site folder; configure the website channel first")
        raise typer.Exit(2)
    name = channel or next(iter(sites))
    return name, sites[name]


@site_app.command("rebuild")
def site_rebuild(
    channel: ChannelOption = None,
    restart: Annotated[bool, typer.Option(help="start again from the first page, not from the checkpoint")] = False,
) -> None:
    """Rewrite every listing page, sitemap file and the feed from the site's state; resumable: a
    rebuild that was stopped continues where it was, unless --restart."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    name, site = _site(channel, "rebuild")
    started = time.perf_counter()
    with Progress(
        TextColumn(f"rebuilding {name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=not sys.stderr.isatty(),
        disable=not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task("rebuild", total=None)
        first: list[int] = []

        def progress(done: int, total: int) -> None:
            if not first:
                first.append(done)
            bar.update(task, completed=done, total=total)

        live = site.rebuild(progress, restart=restart)  # type: ignore[attr-defined]
    resumed = f", resumed at page {first[0] + 1}" if first and first[0] else ""
    out.print(f"{name}: {live} live items, index pages rebuilt in {time.perf_counter() - started:.1f} s{resumed}")


@site_app.command("search-index")
def site_search_index(channel: ChannelOption = None) -> None:
    """Build the site's search index (搜索) from the live item pages and switch readers to it.

    Items published since the last build become findable; withdrawn ones were already dropped.
    The ``site-search-index`` periodic job runs the same (docs/channels/website.md, "Search")."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    name, site = _site(channel, "search_index")
    with Progress(
        TextColumn(f"indexing {name}: {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=not sys.stderr.isatty(),
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        build = site.search_index(progress)  # type: ignore[attr-defined]
    out.print(
        f"{name}: {build.indexed} pages indexed in {build.seconds:.1f} s ({build.files} files, "
        f"{build.bytes / 1e6:.1f} MB), bundle {build.bundle}"
        + (f"; {build.dropped} left out (changed or withdrawn during the build)" if build.dropped else "")
    )
