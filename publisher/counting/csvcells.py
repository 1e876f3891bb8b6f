"""Every CSV the publisher writes goes through here, so no cell runs as a spreadsheet formula.

Excel, WPS and LibreOffice treat a cell starting with ``=``, ``+``, ``-`` or ``@`` (and, in some
versions, a tab or carriage return) as a formula: an item titled ``=HYPERLINK("http://…","点我")`` in
an export would become a live link or worse (OWASP "CSV injection"). Such a text cell is written with
a leading apostrophe, which the spreadsheet shows as text and does not display.

Numbers stay numbers: a cell that is an ``int``/``float``/``Decimal`` (counts, sums) is written as it
is, and so is a text cell that is just a decimal number (``-5``, ``+3.25``): a spreadsheet reads it as
that number, never as a formula. Everything else starting with one of those characters gets the
apostrophe (``-2+3`` too). A text that already starts with apostrophes before such a character gets one
more, so :func:`unescape` (used by the ledger import) gives back exactly what was exported.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from typing import Any

#: the first characters that make a spreadsheet read a cell as a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _needs_quote(text: str) -> bool:
    rest = text.lstrip("'")
    return rest.startswith(FORMULA_START) and not _NUMBER.fullmatch(rest)


def cell(value: Any) -> Any:
    """The value to write: a formula-looking text with a leading apostrophe; anything else unchanged."""
    if isinstance(value, str) and _needs_quote(value):
        return "'" + value
    return value


def unescape(text: str) -> str:
    """What :func:`cell` was given, for a text read back from one of our exports."""
    return text[1:] if text.startswith("'") and _needs_quote(text[1:]) else text


def row(values: Iterable[Any]) -> list[Any]:
    return [cell(v) for v in values]


class _Writer:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def writerow(self, values: Iterable[Any]) -> Any:
        return self._inner.writerow(row(values))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for r in rows:
            self.writerow(r)


class _DictWriter:
    def __init__(self, inner: csv.DictWriter) -> None:  # type: ignore[type-arg]
        self._inner = inner

    def writeheader(self) -> Any:
        return self._inner.writeheader()

    def writerow(self, values: Mapping[str, Any]) -> Any:
        return self._inner.writerow({k: cell(v) for k, v in values.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for r in rows:
            self.writerow(r)


def writer(f: Any, **kw: Any) -> _Writer:
    """``csv.writer`` whose cells pass through :func:`cell`."""
    return _Writer(csv.writer(f, **kw))


def dict_writer(f: Any, fieldnames: Iterable[str], **kw: Any) -> _DictWriter:
    """``csv.DictWriter`` whose cells pass through :func:`cell`."""
    return _DictWriter(csv.DictWriter(f, fieldnames=list(fieldnames), **kw))


__all__ = ["FORMULA_START", "cell", "dict_writer", "row", "unescape", "writer"]
