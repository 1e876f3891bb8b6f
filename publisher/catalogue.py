"""The disclosure catalogue (政府信息公开目录, migration 0017): its value lists, the 索引号 counter and
the related-items table (docs/catalogue.md).

The catalogue's own columns of an item (``index_no``, ``doc_number``, ``written_on``, ``topic``,
``disclosure_mode``, ``disclosure_scope``, ``validity``, ``replaced_by``) are on
:class:`publisher.models.Item`; the service functions that check and set them are in
publisher.pipeline.workflow.catalogue. Kept apart from publisher.models, as the notification outbox is.
"""

from __future__ import annotations

import enum
import re
from datetime import date

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from publisher.errors import InvalidInput


class DisclosureMode(enum.StrEnum):
    """公开方式."""

    ACTIVE = "主动公开"  #: published by the office of its own accord
    ON_REQUEST = "依申请公开"  #: disclosed to whoever asked for it (docs/report.md, the 依申请公开 register)


class Validity(enum.StrEnum):
    """有效性 of a rule (规章制度)."""

    CURRENT = "现行有效"  #: in force
    REVISED = "已修订"  #: replaced by a revised version (``replaced_by``)
    REPEALED = "已废止"  #: no longer in force; every page that lists it says so


class Relation(enum.StrEnum):
    """How an item relates to another (``item_relation``): the front matter key is the English name."""

    INTERPRETS = "interprets"  #: a 政策解读 of the document it explains
    REVISES = "revises"  #: a revision of the version it replaces
    AWARDS = "awards"  #: a 中标公告 of its 招标公告


#: each relation as the item page names it, seen from the item that holds it and from the other side
RELATION_LABELS: dict[Relation, tuple[str, str]] = {
    Relation.INTERPRETS: ("解读的文件", "政策解读"),
    Relation.REVISES: ("修订的文件", "修订版本"),
    Relation.AWARDS: ("招标公告", "中标公告"),
}


class CatalogueCounter(SQLModel, table=True):
    """The last 索引号 sequence number given out per organisation code and year.

    Numbers are taken with one ``UPDATE … SET last_seq = last_seq + 1 … RETURNING`` in the transaction
    that gives the item its number: the row lock (PostgreSQL) or the write lock (SQLite, BEGIN
    IMMEDIATE) makes concurrent workers queue on it, so no two get the same number, and a number is
    never handed out twice even when the transaction that took it rolled back (it is then a gap).
    """

    __tablename__ = "catalogue_counter"

    org_code: str = Field(sa_column=Column(sa.String(100), primary_key=True))
    year: int = Field(sa_column=Column(sa.Integer, primary_key=True, autoincrement=False))
    last_seq: int = Field(sa_column=Column(sa.Integer, nullable=False))


class ItemRelation(SQLModel, table=True):
    """``item_id`` interprets / revises / awards ``related_id``; both items' pages link to each other."""

    __tablename__ = "item_relation"
    __table_args__ = (sa.UniqueConstraint("item_id", "related_id", "relation", name="uq_item_relation"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    related_id: int = Field(foreign_key="item.id", index=True)
    relation: str = Field(sa_column=Column(sa.String(20), nullable=False))


# ---------------------------------------------------------------------------------- 发文字号
_BRACKETS = str.maketrans({"[": "〔", "]": "〕", "【": "〔", "】": "〕", "［": "〔", "］": "〕", "(": "〔", ")": "〕"})
_DOC_NUMBER = re.compile(r"^(?P<prefix>\S+?)〔(?P<year>(?:19|20)\d\d)〕(?P<n>\d+)号$")


def normalise_doc_number(text: str) -> str:
    """发文字号 in its written form, e.g. ``齐高师专发〔2022〕12号``.

    People type the year's brackets as ``[ ]``, ``【】`` or ``［］``: they become 〔〕. The shape is
    checked loosely (an issuer prefix, a four-digit year in 〔〕, a number and 号); InvalidInput names it.
    """
    value = re.sub(r"\s+", "", str(text)).translate(_BRACKETS)
    if not _DOC_NUMBER.match(value):
        raise InvalidInput(
            f"发文字号 (doc_number) {text!r} is not in the usual shape: write it as the document does, "
            "e.g. 齐高师专发〔2022〕12号 (issuer, the year in 〔〕, the number, 号)"
        )
    return value


def parse_date(value: object, *, what: str) -> date:
    """A calendar date (成文日期) from a date or ``YYYY-MM-DD`` text; InvalidInput names the fix."""
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date: write it as YYYY-MM-DD, e.g. 2022-03-01") from None


def format_index_no(pattern: str, *, org_code: str, year: int, seq: int) -> str:
    """The 索引号 that ``pattern`` (``[catalogue] index_pattern``) makes of these parts."""
    return pattern.format(org_code=org_code, year=year, seq=seq)
