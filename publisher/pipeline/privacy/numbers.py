"""Resident ID, mobile and bank card numbers in text, however people typed them.

Text is first normalised character for character (full-width digits, ``Ｘ``, ``＋``, full-width and
Unicode hyphens and spaces become their ASCII forms), so every offset in the normalised text is the
offset in the original and masking can work in place.

A number is a run of digits, or several groups of at least 3 digits joined by one kind of separator
(a space or a hyphen: ``138 1234 5678``, ``6222-0212-3456-7890-123``, ``230203 19900101 123X``),
optionally preceded by ``+86``. A candidate is never a piece of a longer digit run, and a run that is
the decimals of an amount is skipped. A run glued to letters (``HT-2022…``, ``ZB2022…``, ``…-A``) is a
contract, tender or order number: only an 18-character resident ID passing its check counts there
(``ID230203…``), as a chance string passes the check, the date and the province 1 time in ~100.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from .findings import Finding, finding

_FULL = {chr(0xFF10 + i): str(i) for i in range(10)}
_FULL.update({"Ｘ": "X", "ｘ": "x", "＋": "+", "（": "(", "）": ")"})
_FULL.update(dict.fromkeys("－‐‑﹣", "-"))
_FULL.update(dict.fromkeys("\u3000\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f", " "))
# zero-width characters typed (or pasted) inside a number count as separators
_FULL.update(dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff", " "))
#: the characters normalise() changes: replaced one by one where they occur, since str.translate with a
#: table looks up every character of a Chinese text (~15× slower on a typical body, which the
#: worker's re-check scans before each post goes out)
_TO_NORMALISE = re.compile("[" + "".join(map(re.escape, _FULL)) + "]")

# the lookahead lets the regex engine skip to a digit, "+" or "(" instead of trying the optional
# "+86" group at every character (~3× faster on a body; the matches are the same)
_RUN = re.compile(r"(?=[0-9+(])(?P<cc>\+86[ -]?|\(\+86\) ?)?(?P<run>[0-9]+(?:[ -][0-9]+)*)(?P<x>[Xx])?")
_GROUP = re.compile(r"[0-9]+")
_DIGITS = "0-9" + chr(0xFF10) + "-" + chr(0xFF19)
_SEPARATORS = " \\-" + "".join(re.escape(c) for c, n in _FULL.items() if n in " -")
#: what every number holds, searched in the text as typed (before normalising): a digit 1-9 that does not
#: follow a digit, then 10 more digits, each perhaps after one separator. Every ID, mobile and card starts
#: with 1-9 (a province, 1[3-9], a card's first digit) at the start of a digit group, and holds at least
#: 11 digits with at most one separator between two of them. So a text without this pattern has no number:
#: landlines (0452-2712345), dates, amounts and most titles and bodies are ruled out by one search that
#: stops only at the digits 1-9. tests/privacy/test_fast_path.py pins that the answers are those of the
#: whole scan.
CANDIDATE_FIRST = "1-9" + chr(0xFF11) + "-" + chr(0xFF19)
#: the rest of a candidate, after its first character (publisher.pipeline.privacy.check builds on it)
CANDIDATE_REST = rf"(?<![{_DIGITS}].)(?:[{_SEPARATORS}]?[{_DIGITS}]){{10}}"
_CANDIDATE = re.compile(f"[{CANDIDATE_FIRST}]{CANDIDATE_REST}")
#: every character a _RUN match can hold
_RUN_CHARS = frozenset("0123456789 -+()Xx")
_ALNUM = re.compile(r"[0-9A-Za-z]")
_LETTER = re.compile(r"[A-Za-z]")

#: GB 11643 weights on the first 17 digits and the check character indexed by the sum mod 11
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
#: the province-level codes (GB/T 2260) that begin a resident ID; 71 Taiwan, 81–83 the residence permits
PROVINCES = frozenset(
    re.findall(
        r"\d\d",
        "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82 83",
    )
)
#: the first digit of the bank cards in use in China (UnionPay 62, Visa 4, Mastercard 5, JCB/Amex 3, old 95xxx)
CARD_FIRST_DIGITS = frozenset("34569")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
#: the lengths a number can have: mobile 11, cards 13–19, IDs 15 and 18
_LENGTHS = frozenset({11, *range(13, 20)})


def normalise(text: str) -> str:
    """Half-width digits, ``X``, ``+``, ``-`` and spaces; the same length as ``text``."""
    return _TO_NORMALISE.sub(_normalised_char, text)


def _normalised_char(m: re.Match[str]) -> str:
    return _FULL[m.group()]


def id_check_char(first17: str) -> str:
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def _valid_date(y: int, m: int, d: int) -> bool:
    try:
        born = date(y, m, d)
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


def is_resident_id(number: str) -> bool:
    """18 characters (GB 11643 check character, valid province and birth date) or a 15-digit legacy ID."""
    number = number.upper()
    if len(number) == 18:
        if not number[:17].isdigit() or number[:2] not in PROVINCES:
            return False
        if not _valid_date(int(number[6:10]), int(number[10:12]), int(number[12:14])):
            return False
        return id_check_char(number[:17]) == number[17]
    if len(number) == 15 and number.isdigit():
        return number[:2] in PROVINCES and _valid_date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    return False


def is_rounded_id(digits: str) -> bool:
    """An 18-digit ID typed into Excel as a number: 15 significant digits kept (province and birth date
    intact), the last 3 turned to 0 (``2.30203199001011E+17``) — the check character is gone."""
    return (
        len(digits) == 18
        and digits.isdigit()
        and digits.endswith("000")
        and digits[:2] in PROVINCES
        and _valid_date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))
    )


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        n = int(c)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def is_bank_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits.isdigit() and digits[0] in CARD_FIRST_DIGITS and luhn_ok(digits)


def is_mobile(digits: str) -> bool:
    return _MOBILE.fullmatch(digits) is not None


def classify(number: str) -> str | None:
    """The kind of a normalised number (digits, perhaps a final X), or None."""
    if len(number) in (15, 18) and is_resident_id(number):
        return "id_card"
    if is_mobile(number):
        return "mobile"
    if is_bank_card(number):
        return "bank_card"
    return None


def mask_number(kind: str, number: str) -> str:
    """``2302**********123X``, ``138****5678``, ``6222***********0123``."""
    head = 3 if kind == "mobile" else 4
    return number[:head] + "*" * (len(number) - head - 4) + number[-4:]


@dataclass(frozen=True, slots=True)
class NumberHit:
    """A number found in a text: its kind, masked form, and the offsets of its characters (not the value)."""

    kind: str
    start: int
    end: int
    masked: str
    #: offsets of the characters to replace with ``*`` when masking in place
    hide: tuple[int, ...]


_DIGIT = re.compile(r"[0-9]")
#: how a run is attached to its neighbours
FREE, CODE, DECIMAL = 0, 1, 2


def _glue(text: str, start: int, end: int) -> int:
    """DECIMAL when the run touches a digit or is the decimals/thousands of an amount; CODE when it is
    glued to letters (HT-2022…, ZB2022…, …-A01); FREE otherwise."""
    before = text[start - 1] if start >= 1 else ""
    two = text[start - 2] if start >= 2 else ""
    after = text[end] if end < len(text) else ""
    nxt = text[end + 1] if end + 1 < len(text) else ""
    if _DIGIT.match(before) or _DIGIT.match(after):
        return DECIMAL
    if (before in (".", ",") and before and _DIGIT.match(two)) or (after in (".", ",") and after and _DIGIT.match(nxt)):
        return DECIMAL
    if _LETTER.match(before) or _LETTER.match(after):
        return CODE
    if (before in ("-", "_", "/") and before and _ALNUM.match(two)) or (
        after in ("-", "_", "/") and after and _ALNUM.match(nxt)
    ):
        return CODE
    return FREE


def find_numbers(text: str, start: int = 0) -> list[NumberHit]:
    """Every resident ID, mobile and bank card number in ``text`` (original or normalised).

    ``start``: an offset before which the caller's own search found no candidate (scan_text's pre-filter),
    so the text before it is not searched again.
    """
    first = _CANDIDATE.search(text, start)
    if first is None:
        return []  # nothing that could be a number: most titles and bodies, not even normalised
    norm = normalise(text)
    # start at the first candidate, after a character no match can hold: from there the matches are
    # those of the whole text, and the years, dates and counts before it are not looked at
    begin = first.start()
    while begin and norm[begin - 1] in _RUN_CHARS:
        begin -= 1
    return _numbers_from(norm, begin)


def _numbers_from(norm: str, begin: int) -> list[NumberHit]:
    """The numbers of a normalised text, looking from ``begin`` (0: the whole text, the reference the
    shortcut of :func:`find_numbers` is tested against)."""
    hits: list[NumberHit] = []
    for m in _RUN.finditer(norm, begin):
        if m.end() - m.start("run") < 11:
            continue  # fewer than 11 digits (years, counts, dates): no number fits; the common case, cut short
        glue = _glue(norm, m.start(), m.end())
        if glue == DECIMAL:
            continue
        run_start = m.start("run")
        groups = [(g.start() + run_start, g.end() + run_start) for g in _GROUP.finditer(m.group("run"))]
        x_at = m.start("x") if m.group("x") else -1
        n = len(groups)
        cum = [0]
        for a, b in groups:
            cum.append(cum[-1] + b - a)
        i = 0
        while i < n:
            found = None
            # a number has at most 19 digits (and an X): only the groups that fit are tried, so a long
            # run of short groups ("1 2 3 4 …") costs linear time, not quadratic
            last = i
            while last + 1 < n and cum[last + 2] - cum[i] <= 19:
                last += 1
            for j in range(last, i - 1, -1):
                size = cum[j + 1] - cum[i] + (j == n - 1 and x_at >= 0)
                if size not in _LENGTHS:
                    continue
                if j > i:
                    seps = {norm[groups[k][1]] for k in range(i, j)}
                    lengths = [groups[k][1] - groups[k][0] for k in range(i, j + 1)]
                    if len(seps) != 1 or min(lengths[:-1]) < 3 or lengths[-1] < 2:
                        continue
                positions = [p for k in range(i, j + 1) for p in range(*groups[k])]
                if j == n - 1 and x_at >= 0:
                    positions.append(x_at)
                number = "".join(norm[p] for p in positions).upper()
                kind = classify(number)
                if kind is None or (m.group("cc") and i == 0 and kind != "mobile"):
                    continue
                if glue == CODE and not (kind == "id_card" and len(number) == 18):
                    continue  # a code's digits; an 18-character ID passing its check is one even so (ID230203…)
                head = 3 if kind == "mobile" else 4
                start = m.start() if (m.group("cc") and i == 0) else positions[0]
                found = (
                    j,
                    NumberHit(kind, start, positions[-1] + 1, mask_number(kind, number), tuple(positions[head:-4])),
                )
                break
            if found is None:
                i += 1
            else:
                i = found[0] + 1
                hits.append(found[1])
    return hits


class LineIndex:
    """Line numbers of offsets in a text (1-based, or from ``first_line``)."""

    def __init__(self, text: str, first_line: int = 1) -> None:
        self._text = text
        self._first = first_line
        # the line breaks are counted from the last offset asked for: each scanner asks in increasing
        # order, so a text is counted about once per scanner that found something, in C (a list of
        # every line's start cost more than the scan of a body with one finding)
        self._at = 0
        self._line = first_line

    def line(self, offset: int) -> int:
        if offset < self._at:  # the next scanner starts again from the text's start
            self._at, self._line = 0, self._first
        self._line += self._text.count("\n", self._at, offset)
        self._at = offset
        return self._line


def number_findings(text: str, where: str, lines: LineIndex | None = None, start: int = 0) -> list[Finding]:
    """Findings for the numbers in ``text``; with ``lines``, ``where`` gets ``:LINE`` appended (``start``:
    as for :func:`find_numbers`)."""
    return _hit_findings(find_numbers(text, start), where, lines)


def number_findings_whole(text: str, where: str, lines: LineIndex | None = None) -> list[Finding]:
    """:func:`number_findings` without the shortcuts: the reference the tests hold them to."""
    return _hit_findings(_numbers_from(normalise(text), 0), where, lines)


def _hit_findings(hits: list[NumberHit], where: str, lines: LineIndex | None) -> list[Finding]:
    out = []
    for hit in hits:
        place = f"{where}:{lines.line(hit.start)}" if lines else where
        out.append(finding(hit.kind, place, hit.masked))
    return out


def mask_numbers(text: str) -> str:
    """``text`` with every ID, mobile and card number masked in place (separators and ``+86`` kept)."""
    hits = find_numbers(text)
    if not hits:
        return text
    chars = list(text)
    for hit in hits:
        for p in hit.hide:
            chars[p] = "*"
    return "".join(chars)
