"""A finding: what was found, where a person can find it, and the rule that found it.

A finding never holds the raw value: ``masked`` is computed before the Finding is made, so no repr,
str, JSON, log line or exception built from findings can leak an ID or card number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

#: every kind, with the rule text a reviewer reads
RULES: dict[str, str] = {
    "id_card": "居民身份证号 (GB 11643: 18 digits with a valid check character, or a 15-digit legacy number with a "
    "valid date) — never publish ID numbers (教财厅函〔2017〕28号)",
    "mobile": "手机号 (mainland mobile number, 11 digits starting 13–19) — personal data, do not publish",
    "bank_card": "银行卡号 (13–19 digits passing the Luhn check) — never publish bank card numbers",
    "classification_mark": "密级/内部标志 — a document so marked must not reach a public channel; "
    "the 保密审查 reviewer decides",
    "sensitive_word": "a word from the office's sensitive-word list",
    "hidden_content": "hidden content in an attachment — remove it or publish a cleaned copy",
    "uninspectable": "cannot be inspected — a person must read this attachment",
}

KINDS = tuple(RULES)
#: kinds whose value is a number that is masked in place by publisher.pipeline.privacy.mask
NUMBER_KINDS = ("id_card", "mobile", "bank_card")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a reviewer must look at. ``where``: ``body:12``, ``名单.xlsx:Sheet2!C5``, ``x.pdf:page 3``…"""

    kind: str
    where: str
    masked: str
    rule: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.where}: {self.kind} {self.masked} ({self.rule})"


def finding(kind: str, where: str, masked: str, detail: str = "") -> Finding:
    """A Finding with the kind's rule text (and a detail after it, e.g. the word list's reason)."""
    rule = RULES[kind] + (f": {detail}" if detail else "")
    return Finding(kind=kind, where=where, masked=masked, rule=rule)


def findings_dict(findings: Iterable[Finding]) -> dict[str, list[dict[str, str]]]:
    """``{"findings": [{"kind", "where", "masked", "rule"}, …]}``."""
    return {"findings": [f.to_dict() for f in findings]}


def findings_json(findings: Iterable[Finding], *, indent: int | None = None) -> str:
    return json.dumps(findings_dict(findings), ensure_ascii=False, indent=indent)
