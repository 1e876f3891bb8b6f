"""The campus directory the sign-in sandboxes (CAS, OIDC) share: a few accounts and their attributes.

The attributes are the ones a Chinese university's 统一身份认证 usually releases from its LDAP:
``uid`` (工号), ``cn`` (姓名), ``ou`` (部门), ``eduPersonAffiliation`` and ``memberOf`` (groups).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

#: the password of every demo account (a sandbox: nothing here is secret)
DEMO_PASSWORD = "campus-demo-2026"


@dataclass(frozen=True)
class Account:
    uid: str
    password: str
    attributes: dict[str, list[str]] = field(default_factory=dict)


def demo_accounts() -> dict[str, Account]:
    people = [
        ("zhang.san", "张三", "人事处", ["staff", "faculty"], ["xxgk-editors"]),
        ("li.si", "李四", "校长办公室", ["staff"], ["xxgk-heads"]),
        ("zhao.liu", "赵六", "党委宣传部", ["staff"], ["xxgk-secrecy"]),
        ("wang.wu", "王五", "教务处", ["student"], []),
    ]
    return {
        uid: Account(
            uid=uid,
            password=DEMO_PASSWORD,
            attributes={"uid": [uid], "cn": [cn], "ou": [ou], "eduPersonAffiliation": aff, "memberOf": groups},
        )
        for uid, cn, ou, aff, groups in people
    }


def login_page(*, action: str, hidden: dict[str, str], title: str, error: str = "") -> str:
    """The sandbox's log-in form (plain HTML, no script)."""
    fields = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in hidden.items()
    )
    err = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><h1>{html.escape(title)}</h1>{err}"
        f'<form method="post" action="{html.escape(action)}">{fields}'
        '<label>用户名 / User name <input name="username" autocomplete="username"></label> '
        '<label>密码 / Password <input name="password" type="password" autocomplete="current-password"></label> '
        '<button type="submit" id="campus-login">登录 / Sign in</button></form></body></html>'
    )
