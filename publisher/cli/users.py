"""``publisher department …`` and ``publisher user …``: departments, users, roles and web passwords."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from publisher.cli.common import Table, out, state
from publisher.models import User
from publisher.pipeline import workflow

user_app = typer.Typer(help="Manage users and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="Manage users' API tokens.", no_args_is_help=True)
dept_app = typer.Typer(help="Manage departments.", no_args_is_help=True)


@dept_app.command("add")
def department_add(name: str) -> None:
    """Add a department (部门)."""
    a = state.app()
    with a.session() as s:
        known = name.strip() in workflow.departments(s)
        workflow.add_department(s, name, actor="cli")
    # adding is idempotent (init and the demo rely on it), but "added" about an old one misleads
    out.print(f"department {name.strip()} already exists" if known else f"department {name.strip()} added")


@dept_app.command("list")
def department_list() -> None:
    """List departments."""
    a = state.app()
    with a.session() as s:
        for d in workflow.departments(s):
            out.print(d)


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option(help="editor | department_head | confidentiality_reviewer | admin | viewer")],
    department: Annotated[str | None, typer.Option(help="the user's department (部门)")] = None,
    display_name: Annotated[str, typer.Option(help="name shown on pages")] = "",
) -> None:
    """Add a user with a role."""
    a = state.app()
    with a.session() as s:
        u = workflow.add_user(s, name=name, role=role, department=department, display_name=display_name, actor="cli")
    out.print(f"user {u.name} ({u.role}{', ' + u.department if u.department else ''}) added")


@user_app.command("list")
def user_list() -> None:
    """List users."""
    from sqlmodel import select

    a = state.app()
    t = Table("name", "role", "department")
    with a.session() as s:
        for u in s.exec(select(User).order_by(User.name)):
            t.add_row(u.name, u.role, u.department or "")
    out.print(t)


@user_app.command("passwd")
def user_passwd(
    name: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Set a user's password for the web workspace (ends the user's open sessions)."""
    from publisher import accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    a = state.app()
    with a.session() as s:
        accounts.set_password(s, name=name, password=password, actor="cli")
    out.print(f"password of {name} set")


@user_app.command("set")
def user_set(
    name: str,
    role: Annotated[
        str | None, typer.Option(help="editor | department_head | confidentiality_reviewer | admin | viewer")
    ] = None,
    department: Annotated[str | None, typer.Option(help='the user\'s department (部门); "" for none')] = None,
) -> None:
    """Change a user's role or department; campus sign-in then keeps them (docs/auth.md)."""
    from publisher import accounts

    a = state.app()
    with a.session() as s:
        u = accounts.set_user(s, name=name, role=role, department=department, actor="cli")
    out.print(f"user {u.name}: {u.role}{', ' + u.department if u.department else ''} (set by hand)")


@user_app.command("deactivate")
def user_deactivate(name: str) -> None:
    """Deactivate a user: their sessions and API tokens stop at once; campus sign-in is refused."""
    from publisher import accounts

    a = state.app()
    with a.session() as s:
        accounts.deactivate_user(s, name=name, actor="cli")
    out.print(f"user {name} deactivated; their sessions and tokens no longer work")


@user_app.command("signins")
def user_signins(
    name: Annotated[str | None, typer.Argument(help="one user's sign-ins (default: everyone's)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """The newest sign-ins and refused sign-ins (password, CAS, OIDC), in the office's time zone."""
    from publisher import sso

    a = state.app()
    t = Table("when", "user", "how", "address", "result")
    with a.session() as s:
        for row in sso.sign_ins(s, name=name, limit=limit):
            when = row.at.astimezone(a.settings.zone).strftime("%Y-%m-%d %H:%M:%S")
            t.add_row(when, row.name, row.method, row.address, "ok" if row.ok else f"refused: {row.reason}")
    out.print(t)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="the user the token acts as")],
    read_only: Annotated[bool, typer.Option("--read-only", help="GET requests only")] = False,
    label: Annotated[str, typer.Option(help="what script uses it")] = "cli",
) -> None:
    """Make an API token for a user; the token is printed once, last, and only its hash is kept."""
    from publisher import accounts

    a = state.app()
    with a.session() as s:
        user = workflow.get_user(s, name)
        token, row = accounts.create_token(s, user=user, name=label, read_only=read_only, actor="cli")
    out.print(f"API token {row.id} for {name} ({'read-only' if read_only else 'read-write'}, {label}):")
    out.print(token)


@token_app.command("list")
def token_list(
    name: Annotated[str | None, typer.Argument(help="one user's tokens (default: everyone's)")] = None,
) -> None:
    """List API tokens (never the tokens themselves: only their first characters)."""
    from sqlmodel import select

    from publisher import accounts
    from publisher.models import ApiToken

    a = state.app()
    t = Table("id", "user", "label", "kind", "starts with", "created", "last used", "revoked")
    with a.session() as s:
        users = {u.id: u.name for u in s.exec(select(User))}
        q = select(ApiToken).where(ApiToken.kind.in_((accounts.API, accounts.READ))).order_by(ApiToken.id)  # type: ignore[attr-defined]
        if name:
            q = q.where(ApiToken.user_id == workflow.get_user(s, name).id)
        zone = a.settings.zone

        def when(d):  # type: ignore[no-untyped-def]
            return d.astimezone(zone).strftime("%Y-%m-%d %H:%M") if d else ""

        for row in s.exec(q):
            kind = "read-only" if row.kind == accounts.READ else "read-write"
            t.add_row(
                str(row.id),
                users.get(row.user_id, "?"),
                row.name,
                kind,
                row.prefix,
                when(row.created_at),
                when(row.last_used_at),
                when(row.revoked_at),
            )
    out.print(t)


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke an API token by its id (``publisher token list``)."""
    from publisher import accounts

    a = state.app()
    with a.session() as s:
        accounts.revoke_token(s, token_id=token_id, actor="cli")
    out.print(f"API token {token_id} revoked")
