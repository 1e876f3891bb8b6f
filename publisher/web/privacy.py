"""The privacy check's findings (隐私/保密检查) as the item page and the API show them: one view of a
version's stored findings and their decisions, and what the caller may do about them — each answer
asked of the service functions (publisher.pipeline.workflow), never decided here.

Only the stored masked form of a finding is ever shown; the raw number is not held by a finding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from publisher.errors import NotFound
from publisher.models import Item, ItemStatus, PrivacyFinding, User
from publisher.pipeline import workflow
from publisher.pipeline.privacy import mask_text
from publisher.pipeline.workflow import wording

#: a finding's kind -> (中文, English): the names the office uses
KINDS: dict[str, tuple[str, str]] = {
    "id_card": ("身份证号", "ID number"),
    "mobile": ("手机号", "mobile number"),
    "bank_card": ("银行卡号", "bank card number"),
    "classification_mark": ("密级标志", "classification mark"),
    "sensitive_word": ("敏感词", "sensitive word"),
    "hidden_content": ("隐藏内容", "hidden content"),
    "uninspectable": ("无法检查", "cannot be inspected"),
}


def privacy_json(session: Session, item: Item, version: int | None = None) -> dict[str, Any]:
    """``GET /api/items/{id}/privacy``: a version's findings (default the current one) with decisions."""
    v = version or item.version
    if v > item.version:
        raise NotFound(f"item {item.id} has no version {v} (its current version is {item.version})")
    return {
        "item_id": item.id,
        "version": v,
        "checked": workflow.was_checked(session, item, v),
        "findings": [finding_json(f) for f in workflow.findings_of(session, item, v)],
    }


def finding_json(f: PrivacyFinding) -> dict[str, Any]:
    """One finding as the API gives it (the masked value only)."""
    return {
        "no": f.number,
        "kind": f.kind,
        "where": f.where,
        "masked": f.masked,
        "rule": f.rule,
        "decision": f.decision,
        "reason": f.reason,
        "decided_by": f.decided_by,
        "decided_at": f.decided_at,
    }


@dataclass
class PrivacyView:
    """A version's findings and what ``user`` may do about them, for the item page's block."""

    version: int
    current: bool
    #: False for a version stored before the check existed: no findings recorded is not "none"
    checked: bool
    findings: list[PrivacyFinding] = field(default_factory=list)
    may_clear: bool = False
    may_mask: bool = False
    may_recheck: bool = False
    #: the kinds' names, Chinese and English, for the template
    kinds: dict[str, tuple[str, str]] = field(default_factory=lambda: KINDS)

    @property
    def unresolved(self) -> int:
        return sum(1 for f in self.findings if f.decision is None)


def privacy_view(session: Session, item: Item, user: User, version: int | None = None) -> PrivacyView:
    """The stored findings of ``version`` (default: the current one) and the buttons ``user`` gets.

    A button is offered where its service function would not refuse ``user`` for who they are or the
    item's state: clearing (workflow.may_clear) on the current version with an undecided finding;
    masking (workflow.mask_refusal) when an undecided finding is a number or hidden content a copy can
    clean; re-checking a version that was never checked (workflow.was_checked). The service still
    decides when the form is sent.
    """
    v = version or item.version
    current = v == item.version
    findings = workflow.findings_of(session, item, v)
    checked = workflow.was_checked(session, item, v)
    open_ = [f for f in findings if f.decision is None]
    live = current and item.status != ItemStatus.WITHDRAWN
    return PrivacyView(
        version=v,
        current=current,
        checked=checked,
        findings=findings,
        may_clear=live and bool(open_) and workflow.may_clear(user),
        may_mask=live and bool(open_) and workflow.mask_refusal(session, item, user) is None,
        may_recheck=live and not checked,
    )


_ASSET = re.compile(r"(asset://[0-9a-f]{64})")


def masked_html(html: str) -> str:
    """The stored HTML with every ID, mobile and card number masked, for the item page's preview: a page
    a reviewer opens (and screenshots) shows no raw number; the number stays in the author's text and
    the edit form. Image references (asset://<sha256>) are left whole."""
    parts = _ASSET.split(html)
    return "".join(p if i % 2 else mask_text(p) for i, p in enumerate(parts))


def masked_wording(overrides: Any) -> list[str]:
    """The item's per-channel wording as lines (as the reviewers' diff writes it), numbers masked like
    :func:`masked_html`'s."""
    return [mask_text(line) for line in wording.diff_lines(overrides)]


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """The masking action's unified diff as (kind, line) for the page: add, del, hunk or ctx."""
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    return [("hunk" if ln.startswith(("---", "+++")) else kinds.get(ln[:1], "ctx"), ln) for ln in diff.splitlines()]
