"""ID, mobile and bank card detectors: valid and invalid check digits, the ways people type numbers,
look-alikes, and properties over generated numbers."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.pipeline.privacy import check_text, findings_json, mask_text
from publisher.pipeline.privacy.findings import NUMBER_KINDS
from publisher.pipeline.privacy.numbers import classify, is_bank_card, is_resident_id, luhn_ok, normalise
from tests.privacy.makers import make_card, make_id, make_legacy_id, make_mobile, wrong_check

RNG = random.Random(12)
ID = make_id(RNG)
ID_X = make_id(RNG, x=True)
MOBILE = "13812345678"
CARD = make_card(RNG, 19)


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.masked) for f in check_text(text)]


def fullwidth(s: str) -> str:
    return s.translate(str.maketrans("0123456789X+", "０１２３４５６７８９Ｘ＋"))


# ------------------------------------------------------------------------------------------ IDs
def test_the_published_example_check_digit():
    # GB 11643's own worked example
    assert is_resident_id("11010519491231002X")
    assert not is_resident_id("110105194912310021")


def test_a_valid_id_is_found_and_masked():
    assert kinds(f"身份证号：{ID}。") == [("id_card", ID[:4] + "*" * 10 + ID[-4:])]
    assert kinds(f"身份证号：{ID_X}") == [("id_card", ID_X[:4] + "**********" + ID_X[-4:])]
    assert kinds(f"{ID_X[:-1]}x") == [("id_card", ID_X[:4] + "**********" + ID_X[-4:])]


def test_a_wrong_check_digit_is_not_an_id():
    assert kinds(f"身份证号：{wrong_check(ID)}") == []
    assert kinds(f"身份证号：{wrong_check(ID_X)}") == []


def test_an_id_with_an_impossible_date_or_province_is_not_one():
    bad_month = ID[:10] + "13" + ID[12:17]
    assert not is_resident_id(bad_month + "0") and not any(is_resident_id(bad_month + c) for c in "0123456789X")
    bad_province = "99" + ID[2:17]
    assert not any(is_resident_id(bad_province + c) for c in "0123456789X")


def test_an_id_glued_to_letters_is_still_an_id_but_a_mobile_or_card_is_a_code():
    assert kinds(f"ID{ID}") == [("id_card", ID[:4] + "*" * 10 + ID[-4:])]
    assert kinds(f"HT-{ID}") == [("id_card", ID[:4] + "*" * 10 + ID[-4:])]
    assert kinds(f"ZB{MOBILE}") == [] and kinds(f"HT-{CARD}") == [] and kinds(f"{CARD}-A01") == []
    assert kinds(f"合计{ID}.50元") == []  # the digits of an amount


def test_legacy_15_digit_ids():
    legacy = make_legacy_id(RNG)
    assert kinds(f"旧身份证 {legacy}") == [("id_card", legacy[:4] + "*******" + legacy[-4:])]
    assert kinds("旧身份证 230203901301123") == []  # month 13


@pytest.mark.parametrize(
    "typed",
    [
        "{a} {b} {c}",  # 6-8-4
        "{a}-{b}-{c}",
        "{a}\u3000{b}\u3000{c}",  # ideographic spaces
    ],
)
def test_grouped_ids(typed):
    text = typed.format(a=ID[:6], b=ID[6:14], c=ID[14:])
    assert kinds(f"号码{text}号") == [("id_card", ID[:4] + "**********" + ID[-4:])]


def test_full_width_ids_are_masked_on_the_normalised_number():
    assert kinds(f"身份证：{fullwidth(ID_X)}") == [("id_card", ID_X[:4] + "**********" + ID_X[-4:])]


# -------------------------------------------------------------------------------------- mobiles
@pytest.mark.parametrize(
    "typed",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+8613812345678",
        "+86 138 1234 5678",
        "+86-138-1234-5678",
        "(+86) 13812345678",
        "１３８１２３４５６７８",
        "＋８６ １３８ １２３４ ５６７８",
        "138\u200b1234\u200b5678",
    ],
)
def test_mobiles_however_typed(typed):
    assert kinds(f"联系电话：{typed}，") == [("mobile", "138****5678")]


@pytest.mark.parametrize(
    "text",
    [
        "办公电话：0452-2712345",
        "办公电话：0452 2712345",
        "办公电话：(0452)2712345",
        "办公电话：0452-27123456",
        "办公电话：0452-2712345-8001",
        "电话 04522712345",
        "编号 213812345678",  # a mobile inside a longer digit run
        "编号 1381234567812",
        "订单 ZB13812345678",
        "12813812345",  # 12x is not a mobile prefix
    ],
)
def test_landlines_and_longer_runs_are_not_mobiles(text):
    assert kinds(text) == []


# ---------------------------------------------------------------------------------------- cards
def test_a_luhn_valid_card_is_found_in_every_grouping():
    masked = CARD[:4] + "*" * 11 + CARD[-4:]
    assert kinds(f"卡号{CARD}") == [("bank_card", masked)]
    grouped = " ".join(CARD[i : i + 4] for i in range(0, 19, 4))
    assert kinds(f"卡号：{grouped}") == [("bank_card", masked)]
    assert kinds(f"卡号：{grouped.replace(' ', '-')}") == [("bank_card", masked)]
    assert kinds(f"卡号：{fullwidth(grouped)}") == [("bank_card", masked)]


@pytest.mark.parametrize("length", [13, 14, 15, 16, 17, 18, 19])
def test_card_lengths(length):
    card = make_card(random.Random(length), length)
    found = kinds(f"卡号 {card}")
    if len(card) in (15, 18) and is_resident_id(card):
        pytest.skip("this card number happens to be a valid ID too")
    assert found == [("bank_card", card[:4] + "*" * (length - 8) + card[-4:])]


def test_a_luhn_failing_card_is_not_one():
    assert kinds(f"订单号 {wrong_check(CARD)}") == []


@pytest.mark.parametrize(
    "text",
    [
        "统一社会信用代码：91230200MA1XXXXX",
        "统一社会信用代码：91230200MA1C2XBN5Y",
        "统一社会信用代码：12230000MB0000000X",
        "统一社会信用代码：911100001000117430",  # all digits, but starts with 9: no province
        "索引号：12230000MB0000000X/2022-00012",
        "根据教财厅函〔2017〕28号、齐高师专发〔2022〕12号文件",
        "招标编号：QQHR-ZB-2022118，合同编号：HT-2022110100123456",
        "合同编号 HT20221101001234567",
        "公示期为2022年11月1日至2022年11月7日（2022-11-01 至 2022-11-07），20221101",
        "金额：¥1,380,000.00元，合计 6222021234567890.50 元",
        "邮编 161006，传真 0452-2712346",
        "学号 2022010512，准考证号 220230102010",
    ],
)
def test_look_alikes_are_not_flagged(text):
    assert kinds(text) == []


def test_an_order_number_is_a_card_only_if_it_passes_luhn_and_starts_like_one():
    order = "2022110100012345"
    assert not is_bank_card(order)  # starts with 2: no card does
    assert luhn_ok("79927398713") and not is_bank_card("79927398713")


# ------------------------------------------------------------------------------------- masking
def test_mask_text_keeps_separators_and_prefix():
    text = f"电话 +86 138-1234-5678，身份证 {ID[:6]} {ID[6:14]} {ID[14:]}，卡 {CARD}"
    masked = mask_text(text)
    assert "+86 138-****-5678" in masked
    assert f"{ID[:4]}** ******** {ID[-4:]}" in masked
    assert CARD not in masked and ID not in normalise(masked).replace(" ", "")
    assert mask_text("办公电话 0452-2712345") == "办公电话 0452-2712345"


def test_mask_text_in_full_width_keeps_the_ends():
    masked = mask_text(f"电话{fullwidth(MOBILE)}")
    assert masked == "电话１３８****５６７８"


def test_a_long_run_of_short_groups_does_not_hide_a_mobile_after_it():
    # 60,000 short groups before the number: a finder that restarted its search at each group would be
    # quadratic here and never finish; its speed is measured in bench/privacy_bench.py, not here
    text = "1 23 456 " * 20_000 + MOBILE
    assert kinds(text) == [("mobile", "138****5678")]


def test_no_finding_shows_the_raw_number():
    text = f"{ID} {ID_X} {MOBILE} {CARD} {fullwidth(ID)}"
    found = check_text(text)
    assert len(found) == 5
    dumped = repr(found) + str([str(f) for f in found]) + findings_json(found)
    for raw in (ID, ID_X, MOBILE, CARD, ID[4:14], MOBILE[3:7]):
        assert raw not in dumped


def test_the_json_shape():
    data = json.loads(findings_json(check_text(f"第一行\n电话 {MOBILE}")))
    assert list(data) == ["findings"]
    assert data["findings"] == [
        {"kind": "mobile", "where": "body:2", "masked": "138****5678", "rule": data["findings"][0]["rule"]}
    ]
    assert set(data["findings"][0]) == {"kind", "where", "masked", "rule"}
    assert "手机号" in data["findings"][0]["rule"]


# ---------------------------------------------------------------------------------- properties
CJK = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), max_size=30)
FORMS = st.sampled_from(["plain", "full", "spaced", "hyphen"])


def _typed(kind: str, number: str, form: str) -> str:
    if form in ("spaced", "hyphen"):
        sep = " " if form == "spaced" else "-"
        groups = {"id_card": (6, 8, 4) if len(number) == 18 else (6, 6, 3), "mobile": (3, 4, 4)}.get(kind)
        if groups is None:
            parts = [number[i : i + 4] for i in range(0, len(number), 4)]
            if len(parts[-1]) < 2:
                parts[-2:] = [parts[-2] + parts[-1]]
        else:
            parts, i = [], 0
            for g in groups:
                parts.append(number[i : i + g])
                i += g
        number = sep.join(parts)
    return fullwidth(number) if form == "full" else number


_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(
    seed=st.integers(0, 2**32),
    kind=st.sampled_from(["id_card", "mobile", "bank_card", "legacy"]),
    form=FORMS,
    before=CJK,
    after=CJK,
)
def test_every_planted_number_is_found_and_masked(seed, kind, form, before, after):
    rng = random.Random(seed)
    number = {"id_card": make_id, "mobile": make_mobile, "bank_card": make_card, "legacy": make_legacy_id}[kind](rng)
    expected_kind = classify(number)
    assert expected_kind == ("id_card" if kind == "legacy" else kind) or kind == "bank_card"
    found = [f for f in check_text(before + _typed(expected_kind, number, form) + after) if f.kind in NUMBER_KINDS]
    head = 3 if expected_kind == "mobile" else 4
    expected = number[:head] + "*" * (len(number) - head - 4) + number[-4:]
    assert [(f.kind, f.masked) for f in found] == [(expected_kind, expected)]
    dumped = repr(found) + findings_json(found)
    assert number not in dumped and number[head:-4] not in dumped.replace(expected, "")


@_settings
@given(digits=st.text(alphabet="0123456789", min_size=6, max_size=22), before=CJK, after=CJK)
def test_a_digit_run_failing_every_check_is_not_flagged(digits, before, after):
    if classify(digits) is not None:
        return  # hypothesis found a valid number: the test above covers those
    assert [f for f in check_text(before + digits + after) if f.kind in NUMBER_KINDS] == []


@_settings
@given(seed=st.integers(0, 2**32), before=CJK)
def test_a_number_with_a_wrong_check_is_not_flagged(seed, before):
    rng = random.Random(seed)
    for number in (make_id(rng), make_card(rng, 16), make_card(rng, 19)):
        bad = wrong_check(number)
        if classify(bad) is None:
            assert [f for f in check_text(before + bad) if f.kind in NUMBER_KINDS] == []


@_settings
@given(
    seed=st.integers(0, 2**32),
    kind=st.sampled_from(["id_card", "mobile", "bank_card"]),
    form=FORMS,
    before=CJK,
    after=CJK,
)
def test_masked_text_checked_again_has_no_number(seed, kind, form, before, after):
    rng = random.Random(seed)
    number = {"id_card": make_id, "mobile": make_mobile, "bank_card": make_card}[kind](rng)
    text = before + _typed(classify(number), number, form) + after
    masked = mask_text(text)
    assert len(masked) == len(text) and masked.startswith(before) and masked.endswith(after)
    assert [f for f in check_text(masked) if f.kind in NUMBER_KINDS] == []
    assert number not in normalise(masked).replace(" ", "").replace("-", "")
