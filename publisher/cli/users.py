"""``publisher department …`` and ``publisher user …``: departments, users, roles and web passwords."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from publisher.cli.common import Table, out, state
from publisher.models import User
from publisher.pipeline import workflow

user_app = typer.Typer(help="Manage users and their roles.", no_args_is_help=True)
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
