"""A summary cut from the body's plain text (``content.plain_text(body, 120)``) is judged as part of that
text: a number or mark the "…" cuts counts as what it was cut from, and nothing the summary shows is missed."""

from __future__ import annotations

import random

from publisher.pipeline import content
from publisher.pipeline.privacy.check import scan_text, summary_findings
from tests.privacy.makers import body_cut_after, cut_id, make_mobile


def _kinds(found: list) -> list[tuple[str, str, str]]:
    return [(f.kind, f.where, f.masked) for f in found]


def test_an_id_cut_by_the_summary_is_the_id_not_a_card() -> None:
    number, length = cut_id()
    body = body_cut_after(number[:length], after=number[length:] + "，家庭经济困难。")
    summary = content.plain_text(body, 120)
    assert summary.endswith(number[:length] + "…")
    # scanned alone, the piece passes as a number of its own: the false refusal this fixes
    alone = scan_text(summary, "summary")
    assert len(alone) == 1 and alone[0].masked != number[:4] + "*" * 10 + number[-4:]
    assert _kinds(summary_findings(summary, body)) == [("id_card", "summary", number[:4] + "*" * 10 + number[-4:])]


def test_a_cut_run_that_is_no_number_is_nothing() -> None:
    number, length = cut_id()
    # the ID's first digits continue into a 25-digit run: an order number, not personal data
    body = body_cut_after(number[:length], before="订单号 ", after="9" * (25 - length) + "。")
    summary = content.plain_text(body, 120)
    assert scan_text(summary, "summary") and summary_findings(summary, body) == []


def test_a_mark_cut_by_the_summary_is_the_whole_mark() -> None:
    body = body_cut_after("秘密★1", before="本文件 ", after="年，请勿转发。")
    summary = content.plain_text(body, 120)
    assert _kinds(scan_text(summary, "summary")) == [("classification_mark", "summary", "秘密★")]
    assert _kinds(summary_findings(summary, body)) == [("classification_mark", "summary", "秘密★1年")]


def test_what_the_summary_shows_is_still_found() -> None:
    # a mobile split over table cells is no number in the Markdown, but the plain text joins it: the
    # summary shows it, cut or not, and it is found
    mobile = make_mobile(random.Random(5))
    table = f"| 姓名 | 电话 | | |\n|---|---|---|---|\n| 张三 | {mobile[:3]} | {mobile[3:7]} | {mobile[7:]} |\n"
    masked = ("mobile", "summary", mobile[:3] + "****" + mobile[-4:])
    short = "名单如下。\n\n" + table
    assert _kinds(summary_findings(content.plain_text(short, 120), short)) == [masked]
    long = short + "\n说明" + "：以上人员经学院评审" * 20 + "。\n"
    assert content.plain_text(long, 120).endswith("…")
    assert _kinds(summary_findings(content.plain_text(long, 120), long)) == [masked]


def test_a_summary_the_author_wrote_is_judged_as_it_is() -> None:
    number, length = cut_id()
    body = body_cut_after(number[:length], after=number[length:] + "，家庭经济困难。")
    written = f"学生甲身份证号 {number[:length]}…"  # ends with "…" but is not the start of the body
    assert _kinds(summary_findings(written, body)) == _kinds(scan_text(written, "summary"))
    assert summary_findings(written, body)
