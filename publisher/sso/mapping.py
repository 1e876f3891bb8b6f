"""The attribute mapping: what the campus directory says → a user's name, display name, department, role.

Role rules are checked in order and the first that matches wins (an attribute may hold several values,
e.g. ``eduPersonAffiliation = [staff, faculty]`` or a group list: any value matches); no rule: the
default role (``viewer``). A user whose ``role_source`` is ``admin`` (an admin set the role or the
department by hand, or added the user) keeps them: the mapping then only refreshes the display name.
"""

from __future__ import annotations

from sqlmodel import Session, select

from publisher.models import Role, User
from publisher.pipeline import workflow
from publisher.settings import AttributeMapping
from publisher.sso import Principal, SignInRefused

#: role_source values
BY_ADMIN, BY_DIRECTORY = "admin", "directory"
_NEEDS_DEPARTMENT = {Role.EDITOR.value, Role.DEPARTMENT_HEAD.value}


def mapped(principal: Principal, mapping: AttributeMapping, known_departments: list[str]) -> dict[str, str | None]:
    """name, display_name, department and role as the mapping reads ``principal``."""
    name = (principal.first(mapping.username) if mapping.username else principal.name) or ""
    name = name.strip()
    if not name or len(name) > 100 or any(c.isspace() for c in name):
        raise SignInRefused(f"the campus server gave no usable user name ({name[:40]!r})")
    department = principal.first(mapping.department) if mapping.department else None
    if department not in known_departments:
        department = None
    role = mapping.default_role
    for rule in mapping.roles:
        if rule.value in principal.attributes.get(rule.attribute, []):
            role = rule.role
            break
    if role in _NEEDS_DEPARTMENT and department is None:
        # an editor or head writes for a department; one the office does not know gives no such right
        role = Role.VIEWER.value
    display = (principal.first(mapping.display_name) if mapping.display_name else None) or name
    return {"name": name, "display_name": display[:200], "department": department, "role": role}


def sign_in_user(session: Session, principal: Principal, mapping: AttributeMapping) -> User:
    """The user ``principal`` is, created on the first sign-in; refused if the account is deactivated."""
    fields = mapped(principal, mapping, workflow.departments(session))
    actor = f"{principal.method}:{fields['name']}"
    user = session.exec(select(User).where(User.name == fields["name"])).first()
    if user is None:
        user = workflow.add_user(
            session,
            name=str(fields["name"]),
            role=str(fields["role"]),
            department=fields["department"],
            display_name=str(fields["display_name"]),
            actor=actor,
        )
        user.role_source = BY_DIRECTORY
    elif not user.active:
        raise SignInRefused(f"the account {user.name} is deactivated: ask the office's admin")
    else:
        _refresh(session, user, fields, actor)
    workflow.audit(session, actor=user.name, entity="user", entity_id=user.id, action="login", method=principal.method)
    return user


def _refresh(session: Session, user: User, fields: dict[str, str | None], actor: str) -> None:
    """A known user signs in again: the display name follows the directory, the role and department too
    unless an admin set them by hand."""
    user.display_name = str(fields["display_name"])
    if user.role_source == BY_DIRECTORY and (user.role, user.department) != (fields["role"], fields["department"]):
        workflow.audit(
            session,
            actor=actor,
            entity="user",
            entity_id=user.id,
            action="mapped",
            from_state=f"{user.role}/{user.department or ''}",
            to_state=f"{fields['role']}/{fields['department'] or ''}",
        )
        user.role, user.department = str(fields["role"]), fields["department"]
