"""The national checklist of 50 disclosure items (教办函〔2014〕23号), shipped as package data."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True)
class ChecklistItem:
    number: int
    category_code: int
    category: str
    name: str


@cache
def checklist() -> dict[int, ChecklistItem]:
    data = tomllib.loads(files("publisher.data").joinpath("checklist.toml").read_text(encoding="utf-8"))
    cats = {c["code"]: c["name"] for c in data["category"]}
    return {
        i["number"]: ChecklistItem(i["number"], i["category"], cats[i["category"]], i["name"]) for i in data["item"]
    }


def checklist_name(number: int | None) -> str | None:
    return checklist()[number].name if number in checklist() else None
