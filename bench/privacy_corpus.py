"""A corpus for measuring the privacy check: items with planted values, and clean notices full of look-alikes.

    python bench/privacy_corpus.py OUT_DIR [-n 120] [--clean 60] [--seed 1]

Each planted item is a folder with ``item.md`` and its attachments (名单.xlsx with a hidden sheet, a very
hidden sheet, a hidden column and a hidden row; 说明.docx with the value in a paragraph, a table, a
comment, deleted text, hidden text; 附件.pdf; 名单.csv), each value typed in one of the ways people type
numbers (plain, grouped with spaces or hyphens, full-width, +86, a final X). ``manifest.json`` lists, per
item, every planted value as ``[source, kind, masked]`` (source: ``body``, ``title`` or the attachment)
and every planted hidden thing; the clean notices expect nothing. bench/privacy_precision.py reads it.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.pipeline.privacy.numbers import classify, luhn_ok, mask_number  # noqa: E402
from tests.privacy.makers import (  # noqa: E402
    docx_file,
    make_card,
    make_id,
    make_legacy_id,
    make_mobile,
    pdf_file,
    xlsx_file,
)

FULL = str.maketrans("0123456789X+", "０１２３４５６７８９Ｘ＋")
MARKS = ["秘密★1年", "机密★5年", "内部资料", "注意保密", "不得外传", "【机密】"]


def typed(rng: random.Random, kind: str, number: str) -> str:
    """The number as a person might have typed it."""
    form = rng.choice(["plain", "plain", "spaced", "hyphen", "full"] + (["+86"] if kind == "mobile" else []))
    if form in ("spaced", "hyphen"):
        sep = " " if form == "spaced" else "-"
        if kind == "mobile":
            parts = [number[:3], number[3:7], number[7:]]
        elif kind == "id_card" and len(number) == 18:
            parts = [number[:6], number[6:14], number[14:]]
        elif kind == "id_card":
            parts = [number[:6], number[6:12], number[12:]]
        else:
            parts = [number[i : i + 4] for i in range(0, len(number), 4)]
            if len(parts[-1]) < 2:
                parts[-2:] = [parts[-2] + parts[-1]]
        return sep.join(parts)
    if form == "full":
        return number.translate(FULL)
    if form == "+86":
        return rng.choice(["+86 ", "+86-", "+86", "(+86) "]) + number
    return number


def planted_value(rng: random.Random) -> tuple[str, str, str]:
    """(kind, raw number, text as typed)."""
    pick = rng.random()
    if pick < 0.4:
        number = make_id(rng, x=rng.random() < 0.15) if rng.random() < 0.9 else make_legacy_id(rng)
    elif pick < 0.7:
        number = make_mobile(rng)
    else:
        number = make_card(rng)
    kind = classify(number)
    assert kind is not None
    return kind, number, typed(rng, kind, number)


# ----------------------------------------------------------------------------------- look-alikes
def uscc(rng: random.Random) -> str:
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return "9123" + f"{rng.randrange(10000):04d}" + "MA" + "".join(rng.choice(chars) for _ in range(8))


def order_number(rng: random.Random) -> str:
    """16-19 digits that are not a card: a date-led order number, or a 6-led one that fails Luhn."""
    length = rng.randrange(16, 20)
    if rng.random() < 0.5:
        return "2026" + "".join(rng.choice(string.digits) for _ in range(length - 4))
    while True:
        n = "6" + "".join(rng.choice(string.digits) for _ in range(length - 1))
        if not luhn_ok(n):
            return n


def look_alikes(rng: random.Random) -> list[str]:
    y = rng.randrange(2015, 2027)
    return [
        f"统一社会信用代码：{uscc(rng)}",
        f"索引号：12230000MB{rng.randrange(10**7):07d}X/{y}-{rng.randrange(100000):05d}",
        f"根据教财厅函〔2017〕28号和齐高师专发〔{y}〕{rng.randrange(1, 200)}号文件",
        f"招标编号：QQHR-ZB-{y}{rng.randrange(1000):03d}，合同编号：HT-{y}{rng.randrange(10**10):010d}",
        f"订单号：{order_number(rng)}",
        f"公示期为{y}年{rng.randrange(1, 13)}月{rng.randrange(1, 29)}日至{y}-11-0{rng.randrange(1, 10)}（5个工作日）",
        f"金额：¥{rng.randrange(1, 10**6):,}.{rng.randrange(100):02d}元，合计{rng.randrange(10**12, 10**13)}.50元",
        f"办公电话：0452-{rng.randrange(2000000, 2999999)}，传真：(0452){rng.randrange(2000000, 2999999)}，邮编161006",
        f"学号{y}0{rng.randrange(10**6):06d}，准考证号{y % 100}23{rng.randrange(10**8):08d}",
        "全体人员要保守国家秘密和商业秘密，严禁携带机密文件。",
    ]


def clean_notice(folder: Path, rng: random.Random) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = look_alikes(rng)
    (folder / "item.md").write_text(
        "---\ntitle: 关于招标结果的公告\nattachments: [附件.docx, 明细.xlsx, 公告.pdf]\n---\n\n"
        + "\n\n".join(lines)
        + "\n",
        encoding="utf-8",
    )
    docx_file(folder / "附件.docx", look_alikes(rng), table=[["编号", "内容"], [order_number(rng), "货物"]])
    xlsx_file(folder / "明细.xlsx", {"明细": [["序号", "内容"]] + [[i, t] for i, t in enumerate(look_alikes(rng))]})
    ascii_lines = [f"Order {order_number(rng)}, tel 0452-{rng.randrange(2000000, 2999999)}, 2026-11-01, 161006"]
    pdf_file(folder / "公告.pdf", ascii_lines * 3)


def planted_item(folder: Path, rng: random.Random) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    expected: list[list[str]] = []
    hidden: list[list[str]] = []

    def plant(source: str) -> str:
        kind, number, text = planted_value(rng)
        expected.append([source, kind, mask_number(kind, number)])
        return text

    body = [rng.choice(look_alikes(rng)) for _ in range(3)]
    mark = rng.choice(MARKS) if rng.random() < 0.3 else None
    if mark:
        expected.append(["body", "classification_mark", mark])
        body.insert(0, mark)
    body.append(f"联系人：王老师，手机{plant('body')}。")
    body.append(f"| 姓名 | 学院 | 身份证号 |\n|---|---|---|\n| 张三 | 数学学院 | {plant('body')} |")
    (folder / "item.md").write_text(
        "---\ntitle: 关于国家助学金评审结果的公示\ncategory: 公告公示\n"
        "attachments: [名单.xlsx, 说明.docx, 附件.pdf, 名单.csv]\n---\n\n" + "\n\n".join(body) + "\n",
        encoding="utf-8",
    )
    # XLSX: visible sheet of names; the working copy in hidden places
    rows = [["姓名", "学院", "等级", "卡号"]]
    for i in range(8):
        rows.append([f"学生{i}", "数学学院", "一等", plant("名单.xlsx") if i < 2 else ""])
    rows.append(["学生9", "数学学院", "二等", ""])
    rows[-1][2] = plant("名单.xlsx")  # in the hidden row
    xlsx_file(
        folder / "名单.xlsx",
        {"公示": rows, "底稿": [["身份证号"], [plant("名单.xlsx")]], "备份": [[plant("名单.xlsx")]]},
        states={"底稿": "hidden", "备份": "veryHidden"},
        hidden_cols={"公示": ["D"]},
        hidden_rows={"公示": [10]},
    )
    hidden += [["名单.xlsx", "hidden sheet"], ["名单.xlsx", "very hidden sheet"]]
    hidden += [["名单.xlsx", "hidden column"], ["名单.xlsx", "hidden row"]]
    # DOCX
    docx_file(
        folder / "说明.docx",
        ["说明", f"经办人电话 {plant('说明.docx')}"],
        table=[["姓名", "号码"], ["张三", plant("说明.docx")]],
        comment=f"请核对 {plant('说明.docx')}",
        deleted=plant("说明.docx"),
        hidden=plant("说明.docx"),
        header="内部资料",
        author="张三",
    )
    expected.append(["说明.docx", "classification_mark", "内部资料"])
    hidden += [["说明.docx", "comment"], ["说明.docx", "tracked change"], ["说明.docx", "hidden text"]]
    hidden += [["说明.docx", "author metadata"]]
    # PDF: Helvetica, so the planted text is ASCII (full-width forms are left to the other sources)
    pdf_values = []
    for _ in range(2):
        kind, number, _text = planted_value(rng)
        expected.append(["附件.pdf", kind, mask_number(kind, number)])
        pdf_values.append(number)
    pdf_file(folder / "附件.pdf", ["Notice. Tel 0452-2712345.", f"No. 1: {pdf_values[0]}\nNo. 2: {pdf_values[1]}"])
    # CSV
    (folder / "名单.csv").write_text(f"姓名,电话\n张三,{plant('名单.csv')}\n", encoding="utf-8")
    return {"expected": expected, "hidden": hidden}


def generate(out: Path, n: int = 120, clean: int = 60, seed: int = 1) -> Path:
    rng = random.Random(seed)
    manifest: dict[str, dict] = {}
    for i in range(n):
        manifest[f"planted-{i:04d}"] = planted_item(out / f"planted-{i:04d}", rng)
    for i in range(clean):
        clean_notice(out / f"clean-{i:04d}", rng)
        manifest[f"clean-{i:04d}"] = {"expected": [], "hidden": []}
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("-n", type=int, default=120, help="items with planted values")
    ap.add_argument("--clean", type=int, default=60, help="clean notices full of look-alikes")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    generate(a.out, a.n, a.clean, a.seed)
    print(f"wrote {a.n} planted items and {a.clean} clean notices to {a.out}")


if __name__ == "__main__":
    main()
