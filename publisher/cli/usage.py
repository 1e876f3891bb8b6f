"""What a user sees when a command cannot run: a usage error as one line with how the command is
called, any other failure as one line, and the exit code."""

from __future__ import annotations

import sys
from typing import Any

import typer
from sqlalchemy import exc as sa_exc

from publisher.cli.common import err, state
from publisher.errors import PublisherError

# typer >= 0.2x carries its own copy of click: its usage error class is reached through a public name
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _placeholder(param: Any) -> str:
    """What a value is called in a usage line: ITEM_ID, FILE; --as USER (``as_user``), --role ROLE."""
    name = param.name.removeprefix("as_") if param.param_type_name == "option" else param.name
    return name.strip("_").upper()


def _spelled(param: Any) -> str:
    if param.param_type_name != "option":
        return _placeholder(param) + ("..." if param.nargs == -1 else "")
    flag = max(param.opts, key=len)
    return flag if getattr(param, "is_flag", False) else f"{flag} {_placeholder(param)}"


def _synopsis(command: Any, path: str) -> str:
    """``publisher submit ITEM_ID --as USER``: the command with what it needs, [OPTIONS] if it takes more."""
    if hasattr(command, "commands"):
        return f"{path} COMMAND ... ({path} --help lists the commands)"
    params = [
        p for p in command.get_params(typer.Context(command)) if p.name != "help" and not getattr(p, "hidden", False)
    ]
    needed = [_spelled(p) if p.required else f"[{_spelled(p)}]" for p in params if p.param_type_name != "option"]
    needed += [_spelled(p) for p in params if p.param_type_name == "option" and p.required]
    more = any(p.param_type_name == "option" and not p.required for p in params)
    return " ".join([path, *needed] + (["[OPTIONS]"] if more else []))


def _where(ctx: Any, argv: list[str], root: typer.Typer) -> tuple[Any, str]:
    """The command the error is about and how a user types it (``publisher item show``, however it was run).

    click names no command for an option missing its value (``--status`` at the end): that one is found
    by following the command names in ARGV from ROOT, the top-level command.
    """
    if ctx is not None:
        command, names = ctx.command, []
        while ctx.parent is not None:  # the root's own name is how python was started: left out
            names.insert(0, ctx.info_name)
            ctx = ctx.parent
        return command, " ".join(["publisher", *names])
    command, path = typer.main.get_command(root), ["publisher"]
    for word in argv:
        sub = getattr(command, "commands", {}).get(word)
        if sub is not None:
            command, path = sub, [*path, word]
    return command, " ".join(path)


def _wants_number(param: Any) -> bool:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)  # typer's own click
    return annotation is int or getattr(getattr(param, "type", None), "name", "") == "integer"  # click's


def usage_error_line(exc: Any, argv: list[str], root: typer.Typer) -> str:
    """click's usage error (missing argument, bad value, unknown option or command) as one line:
    what is wrong, then how the command is called."""
    param = getattr(exc, "param", None)
    label = (_spelled(param) if param.param_type_name == "option" else _placeholder(param)) if param else ""
    message = " ".join(exc.format_message().split()).rstrip(".")
    if param is not None and type(exc).__name__ == "MissingParameter":
        what = f"missing {param.param_type_name} {label}"
    elif param is not None and _wants_number(param):
        what = f"{label.split()[0]} must be a whole number, such as 7"
    elif param is not None:
        what = f"{label}: {message[:1].lower()}{message[1:]}"
    elif (option := getattr(exc, "option_name", None)) and type(exc).__name__ == "NoSuchOption":
        what = f"no such option {option}"
        if hints := getattr(exc, "possibilities", None):
            what += f" (did you mean {' or '.join(sorted(hints))}?)"
    elif option and "requires an argument" in message:
        what = f"option {option} needs a value"
    else:
        what = message[:1].lower() + message[1:]
    return f"error: {what} — usage: {_synopsis(*_where(exc.ctx, argv, root))}"


def _failure_line(exc: BaseException) -> str:
    """An unexpected database or system failure, without the statement and parameters."""
    orig = getattr(exc, "orig", None)
    if orig is not None:
        return f"the database refused: {type(orig).__name__}: {(str(orig).strip().splitlines() or [''])[0][:300]}"
    if isinstance(exc, OSError):
        return f"the system refused: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return str(exc)


def run(app: typer.Typer) -> None:
    """Run APP on sys.argv; every error ends as one line on stderr and a non-zero exit code."""
    try:
        # not standalone: click's usage errors come here instead of being printed as its usage box
        code = app(standalone_mode=False)
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `publisher item` alone: the group's help, as in standalone mode
            exc.show()  # type: ignore[attr-defined]
        else:
            err.print(usage_error_line(exc, sys.argv[1:], app), markup=False)
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    except typer.Abort:
        err.print("Aborted!", markup=False)
        sys.exit(1)
    except PublisherError as exc:
        # one line, whatever the message holds: scripts and people read the first line only
        err.print("error: " + " ".join(str(exc).split()), markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except (OSError, sa_exc.DBAPIError) as exc:
        # the store or the disk failed: one line, never SQLAlchemy's, which quotes the item's text
        from publisher.db import explain_store_error

        explained = explain_store_error(exc, state._app.engine.url if state._app is not None else None)
        if explained is None:
            explained = PublisherError(_failure_line(exc))
        err.print("error: " + " ".join(str(explained).split()), markup=False)
        sys.exit(1)
    finally:
        # give pooled connections back before exit: on an error path nothing else closes them
        if state._app is not None:
            state._app.close()
            state._app = None
    # commands return None; outside standalone mode click hands back typer.Exit's code (and --help's 0)
    sys.exit(code if isinstance(code, int) else 0)
