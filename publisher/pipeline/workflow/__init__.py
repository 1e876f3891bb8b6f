"""The service layer the faces (CLI, web, API, demo) call: every action on users, items, reviews,
deliveries and privacy findings. Each function works inside the caller's transaction and writes an
audit row for every state change; the caller commits once per user action.

The package is split by what it serves: :mod:`.states` holds the review workflow as a table of
transitions and the one function that applies it, :mod:`.items` writing and submitting, :mod:`.reviews`
the two reviews, :mod:`.deliveries` queueing, scheduling and taking down, :mod:`.inflight` the requests
left on a delivery a worker holds, :mod:`.posts` what a channel receives, :mod:`.audit` the audit trail,
:mod:`.privacy` each version's privacy findings and their decisions, :mod:`.masking` the masking action,
:mod:`.display` the 公示期 that ends by itself, :mod:`.catalogue` the 政府信息公开目录 fields and the 索引号.
Only the service API is exported here; the dispatcher and tests import the rest from its module.
"""

from __future__ import annotations

from publisher.pipeline.workflow.audit import AUDIT_KEYS, SYSTEM, audit
from publisher.pipeline.workflow.catalogue import Related, catalogue_of, related_of
from publisher.pipeline.workflow.context import Context
from publisher.pipeline.workflow.deliveries import (
    Withdrawals,
    record_manual,
    retry_delivery,
    schedule,
    validate_url,
    wake_workers,
    withdraw,
    withdrawals,
)
from publisher.pipeline.workflow.display import Display, EndedDisplays, display_of, end_displays
from publisher.pipeline.workflow.items import (
    add_department,
    add_user,
    create_item,
    departments,
    edit_item,
    get_user,
    recall,
    submit,
)
from publisher.pipeline.workflow.masking import Masked, mask_item, mask_refusal, tag_numbers
from publisher.pipeline.workflow.posts import alt_text_problems, build_post
from publisher.pipeline.workflow.privacy import (
    clear_finding,
    findings_of,
    may_clear,
    recheck,
    record_findings,
    unresolved,
    unresolved_counts,
    was_checked,
)
from publisher.pipeline.workflow.reviews import approval_refusal, review
from publisher.pipeline.workflow.states import get_item, is_cleared

__all__ = [
    "AUDIT_KEYS",
    "SYSTEM",
    "Context",
    "Display",
    "EndedDisplays",
    "Masked",
    "Related",
    "Withdrawals",
    "add_department",
    "add_user",
    "approval_refusal",
    "audit",
    "alt_text_problems",
    "build_post",
    "catalogue_of",
    "clear_finding",
    "create_item",
    "departments",
    "display_of",
    "edit_item",
    "end_displays",
    "findings_of",
    "get_item",
    "get_user",
    "is_cleared",
    "mask_item",
    "mask_refusal",
    "may_clear",
    "recall",
    "recheck",
    "related_of",
    "record_findings",
    "record_manual",
    "retry_delivery",
    "review",
    "unresolved",
    "unresolved_counts",
    "schedule",
    "submit",
    "tag_numbers",
    "validate_url",
    "wake_workers",
    "was_checked",
    "withdraw",
    "withdrawals",
]
