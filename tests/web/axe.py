"""axe-core in Chromium: inject the shipped ``data/axe.min.js`` into a page and return its violations.

axe-core 4.14.1 (MPL-2.0, see data/README.md). The script is evaluated through the DevTools protocol,
which the page's Content-Security-Policy does not govern, so the pages are checked as they are
served, with their real CSP.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

AXE_VERSION = "4.14.1"
AXE_FILE = Path(__file__).parent / "data" / "axe.min.js"
BLOCKING = frozenset({"serious", "critical"})


@cache
def _source() -> str:
    return AXE_FILE.read_text("utf-8")


def violations(page: Any) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (WCAG 2.x A/AA rules and axe's best practices)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_source() + "\n;true")
    assert page.evaluate("axe.version") == AXE_VERSION
    return page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary})),
            }));
        }"""
    )


def blocking(page: Any) -> list[dict[str, Any]]:
    """The serious and critical violations only: what the tests refuse."""
    return [v for v in violations(page) if v["impact"] in BLOCKING]


def describe(found: list[dict[str, Any]]) -> str:
    """A readable failure message: rule, impact, help and the first nodes it names."""
    lines = []
    for v in found:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for n in v["nodes"][:5]:
            lines.append(f"    {n['target']}: {n['summary']}".replace("\n", " | "))
    return "\n".join(lines)
