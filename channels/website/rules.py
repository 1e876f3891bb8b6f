"""The 现行有效规章制度库: one page listing the rules in force (有效性 现行有效), written beside the
other indexes in the same batch as the change that can alter it (docs/catalogue.md)."""

from __future__ import annotations

from typing import Any

import jinja2

from channels.website.files import Batch

#: the page's path under the site's folder and base URL
RULES_PAGE = "rules.html"
CURRENT = "现行有效"


def write_rules_library(out: Batch, jinja: jinja2.Environment, title: str, in_force: list[dict[str, Any]]) -> None:
    """Rewrite the library: ``in_force`` are the live entries marked 现行有效 (any order), shown newest first."""
    entries = sorted(in_force, key=lambda e: (e["published_at"], int(e["item_id"])), reverse=True)
    out.write(
        RULES_PAGE,
        jinja.get_template("listing.html").render(
            site_title=title, root="", kind="信息公开目录", heading="现行有效规章制度库", entries=entries
        ),
    )
