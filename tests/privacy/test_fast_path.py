"""The scanners' shortcuts (one pre-filter search for a number candidate or a mark hint, the number finder
starting at its first candidate) give exactly the findings of the whole scan, over generated texts with
planted IDs, mobiles, cards and marks in every typed form, look-alikes and near misses."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench._common import BODY_HTML, BODY_MD
from publisher.pipeline.privacy import WordList, check_text
from publisher.pipeline.privacy.check import _HINT, scan_text, scan_text_whole
from publisher.pipeline.privacy.numbers import LineIndex, _numbers_from, find_numbers, normalise
from tests.privacy.makers import make_card, make_id, make_legacy_id, make_mobile, wrong_check

FULL = str.maketrans("0123456789X+-() ", "０１２３４５６７８９Ｘ＋－（）\u3000")
SEPARATORS = [" ", "-", "\u3000", "\u00a0", "－", "‐", "\u200b", "\ufeff", "  ", "--"]


def _number(rng: random.Random) -> str:
    pick = rng.randrange(12)
    if pick == 0:
        return make_id(rng)
    if pick == 1:
        return make_id(rng, x=True)
    if pick == 2:
        return make_legacy_id(rng)
    if pick == 3:
        return make_mobile(rng)
    if pick == 4:
        return make_card(rng)
    if pick == 5:
        return wrong_check(rng.choice([make_id(rng), make_card(rng)]))
    if pick == 6:
        return "0" + "".join(rng.choice("0123456789") for _ in range(rng.randrange(10, 19)))  # landline-like
    if pick == 7:
        return make_id(rng)[: rng.randrange(13, 18)]  # a cut piece of an ID
    # a random digit run of a length around those of the numbers
    return rng.choice("123456789") + "".join(rng.choice("0123456789") for _ in range(rng.randrange(8, 21)))


def _typed(rng: random.Random, number: str) -> str:
    """The number as a person might type it: grouped, full-width, with +86, glued to letters…"""
    if rng.random() < 0.5:
        sep = rng.choice(SEPARATORS)
        cuts = sorted(rng.sample(range(1, len(number)), k=min(len(number) - 1, rng.randrange(0, 5))))
        parts = [number[a:b] for a, b in zip([0, *cuts], [*cuts, len(number)], strict=True)]
        number = sep.join(parts)
    if rng.random() < 0.2:
        number = rng.choice(["+86", "+86 ", "+86-", "(+86)", "(+86) ", "86"]) + number
    if rng.random() < 0.25:
        number = number.translate(FULL)
    return number


PIECES = [
    "根据工作需要，",
    "公示期为5个工作日。",
    "联系电话：0452-2712345，",
    "2022年11月1日",
    "金额 12,345.67 元",
    "合同编号 HT-",
    "ZB",
    "-A01",
    "ID",
    "\n",
    "\n\n| 姓名 | 身份证号 |\n|---|---|\n| 张三 | ",
    " | ",
    "秘密★1年",
    "机密★",
    "【秘密】",
    "（机密 6个月）",
    "\n秘密\n",
    "\n  绝密 长期 \n",
    "内部资料",
    "注意保密",
    "不得外传",
    "保守国家秘密",
    "内容外面",
    "内外",
    "某某主任",
    ".",
    ",",
    "/",
    "_",
    "x",
    "X",
    "+",
    "(",
    ")",
    "１",
    "０",
    "2026",
    "7",
]


@st.composite
def texts(draw: st.DrawFn) -> str:
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    out = []
    for _ in range(draw(st.integers(0, 14))):
        if draw(st.booleans()):
            out.append(_typed(rng, _number(rng)))
        else:
            out.append(draw(st.sampled_from(PIECES)))
    return "".join(out)


WORDS = WordList.of([("某某主任", "a former leader's title"), ("内部", "a word that overlaps the marks")])


def _places(found: list) -> list[tuple[str, str, str]]:
    return [(f.kind, f.where, f.masked) for f in found]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts(), st.sampled_from([None, WORDS]))
@example("电话：+86 138 1234 5678", None)
@example("８６１３８１２３４５６７８", None)
@example("+8613812345678", None)
@example("0452-2712345 13812345678", None)
@example("12 3456789012345", None)
def test_the_shortcuts_find_what_the_whole_scan_finds(text: str, words: WordList | None) -> None:
    whole = _numbers_from(normalise(text), 0)
    assert find_numbers(text) == whole
    assert _places(scan_text(text, "summary", words)) == _places(scan_text_whole(text, "summary", words))
    lines = LineIndex(text)
    assert _places(scan_text(text, "body", words, lines)) == _places(scan_text_whole(text, "body", words, lines))
    if _HINT.search(text) is None:
        assert not scan_text_whole(text, "body") and not whole


def test_the_generated_texts_plant_what_the_shortcuts_must_not_miss() -> None:
    # the property above is only as good as its texts: they hold every kind, in the typed forms
    rng = random.Random(7)
    kinds: set[str] = set()
    for _ in range(400):
        text = "".join(_typed(rng, _number(rng)) + rng.choice(PIECES) for _ in range(6))
        kinds.update(f.kind for f in scan_text_whole(text, "body", WORDS))
    assert kinds == {"id_card", "mobile", "bank_card", "classification_mark", "sensitive_word"}


def test_the_benchmark_notice_is_ruled_out_by_one_search() -> None:
    # the worker re-checks each post before it goes out; a notice whose only digit runs are years, counts
    # and a landline (0000-00000000) needs no further look (docs/benchmarks.md, section 2)
    for text in (BODY_MD, BODY_HTML, "公示期为5个工作日", "拟聘用人员公示（第123号）"):
        assert _HINT.search(text) is None
        assert check_text(text) == []


def test_a_number_or_mark_after_the_first_candidate_is_still_found() -> None:
    text = "电话 0452-2712345。" + "2026年" * 50 + "手机 138 1234 5678，秘密★1年"
    assert _places(check_text(text)) == [
        ("mobile", "body:1", "138****5678"),
        ("classification_mark", "body:1", "秘密★1年"),
    ]


@given(st.text(alphabet="a\n", max_size=60), st.lists(st.integers(0, 60), max_size=12), st.integers(-3, 40))
def test_a_line_is_the_line_breaks_before_the_offset_in_any_order(text: str, offsets: list[int], first: int) -> None:
    lines = LineIndex(text, first)
    for offset in offsets:
        offset = min(offset, len(text))
        assert lines.line(offset) == text[:offset].count("\n") + first
