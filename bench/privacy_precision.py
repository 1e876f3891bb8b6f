"""Precision and recall of the privacy check on the corpus of bench/privacy_corpus.py.

    python bench/privacy_precision.py [CORPUS_DIR] [-n 120] [--clean 60] [--seed 1] [--hard]

Without a folder, a corpus is generated in a temporary one. Each finding of check_item is matched to
a planted value by (source, kind, masked), where source is the part of ``where`` before the first
``:`` (``body``, ``名单.xlsx``…); hidden content by (source, description). A finding matching nothing
is a false positive; a planted value found by nothing is a miss. The clean notices (full of look-alikes:
credit codes, 文号, landlines, dates, amounts, tender/contract/order numbers) must give no finding.

The corpus plants the forms the detectors were written for, so it shows they hold, not where they
end: ``--hard`` measures, on their own, forms that are missed by design and look-alikes that are
flagged by design (docs/privacy.md discusses each).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.privacy_corpus import generate  # noqa: E402
from publisher.pipeline.privacy import check_item  # noqa: E402

VALUE_KINDS = ("id_card", "mobile", "bank_card", "classification_mark")


def measure(corpus: Path) -> dict:
    manifest = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    tp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    clean_fp: list[str] = []
    hidden_found = hidden_total = 0
    misses: list[str] = []
    started = time.perf_counter()
    for name, truth in manifest.items():
        found = check_item(corpus / name / "item.md")
        want = Counter(tuple(e) for e in truth["expected"])
        for f in found:
            source = f.where.split(":", 1)[0]
            if f.kind in VALUE_KINDS:
                key = (source, f.kind, f.masked)
                if want[key] > 0:
                    want[key] -= 1
                    tp[f.kind] += 1
                else:
                    fp[f.kind] += 1
                    if name.startswith("clean"):
                        clean_fp.append(f"{name}: {f}")
                    else:
                        misses.append(f"false positive {name}: {f}")
            elif name.startswith("clean"):
                fp[f.kind] += 1
                clean_fp.append(f"{name}: {f}")
        for key, left in want.items():
            if left > 0:
                fn[key[1]] += left
                misses.append(f"missed {name}: {key[0]} {key[1]} {key[2]}")
        for source, what in truth["hidden"]:
            hidden_total += 1
            if any(f.kind == "hidden_content" and f.where.startswith(source) and what in f.masked for f in found):
                hidden_found += 1
            else:
                misses.append(f"missed hidden {name}: {source} {what}")
    seconds = time.perf_counter() - started
    per_kind = {}
    for kind in VALUE_KINDS:
        t, n, p = tp[kind], fn[kind], fp[kind]
        per_kind[kind] = {
            "planted": t + n,
            "found": t,
            "false_positives": p,
            "recall": t / (t + n) if t + n else 1.0,
            "precision": t / (t + p) if t + p else 1.0,
        }
    total_tp, total_fn, total_fp = sum(tp.values()), sum(fn.values()), sum(fp.values())
    return {
        "items": len(manifest),
        "seconds": seconds,
        "per_kind": per_kind,
        "recall": total_tp / (total_tp + total_fn),
        "precision": total_tp / (total_tp + total_fp) if total_tp + total_fp else 1.0,
        "hidden_recall": hidden_found / hidden_total if hidden_total else 1.0,
        "hidden_total": hidden_total,
        "clean_false_positives": clean_fp,
        "misses": misses,
    }


def hard_cases(n: int = 1000, seed: int = 2) -> list[tuple[str, str, float]]:
    """Forms the corpus above does not plant, measured on their own: (case, what is counted, rate)."""
    import random
    import string

    from publisher.pipeline.privacy import check_text
    from tests.privacy.makers import make_card, make_id, make_mobile

    rng = random.Random(seed)

    def rate(make) -> float:  # noqa: ANN001
        return sum(bool([f for f in check_text(make()) if f.kind != "classification_mark"]) for _ in range(n)) / n

    def digits(k: int, first: str = "") -> str:
        return first + "".join(rng.choice(string.digits) for _ in range(k - len(first)))

    def grouped(number: str, cuts: tuple[int, ...], sep: str) -> str:
        return sep.join(number[i:j] for i, j in zip((0, *cuts), (*cuts, len(number)), strict=True))

    def split_id() -> str:
        i, cut = make_id(rng), rng.randrange(1, 17)
        return f"身份证{i[:cut]} {i[cut:]}"

    return [
        ("ID glued to ASCII letters (ID230203…)", "found", rate(lambda: f"ID{make_id(rng)}")),
        (
            "mobile written 138.1234.5678",
            "found",
            rate(lambda: grouped(make_mobile(rng), (3, 7), ".")),
        ),
        ("mobile with 86 but no +", "found", rate(lambda: f"电话86{make_mobile(rng)}")),
        ("ID broken by one space at a random place", "found", rate(split_id)),
        ("ID broken across two lines", "found", rate(lambda: (i := make_id(rng))[:9] + "\n" + i[9:])),
        (
            "card with a 95xxx/62xxx prefix, grouped 4-4-4-4",
            "found",
            rate(lambda: grouped(make_card(rng, 16), (4, 8, 12), " ")),
        ),
        ("16-digit order numbers led by 6 (Luhn passes 1 in 10)", "flagged", rate(lambda: f"订单号{digits(16, '6')}")),
        (
            "11-digit staff/student numbers led by 13-19",
            "flagged",
            rate(lambda: f"工号{digits(11, rng.choice(['13', '15', '18']))}"),
        ),
        ("random 15-digit numbers", "flagged", rate(lambda: f"流水号{digits(15, rng.choice('123456789'))}")),
        ("random 18-digit numbers", "flagged", rate(lambda: f"流水号{digits(18, rng.choice('123456789'))}")),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path, nargs="?")
    ap.add_argument("-n", type=int, default=120)
    ap.add_argument("--clean", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hard", action="store_true", help="also measure the forms the corpus does not plant")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = a.corpus or generate(Path(tmp), a.n, a.clean, a.seed)
        r = measure(corpus)
    print(f"{r['items']} items checked in {r['seconds']:.1f} s")
    for kind, k in r["per_kind"].items():
        print(
            f"  {kind:20} planted {k['planted']:5}  found {k['found']:5}  false positives {k['false_positives']:3}"
            f"  recall {k['recall']:.2%}  precision {k['precision']:.2%}"
        )
    print(f"  all values: recall {r['recall']:.2%}, precision {r['precision']:.2%}")
    print(f"  hidden content: {r['hidden_recall']:.2%} of {r['hidden_total']} planted hidden things reported")
    print(f"  clean notices: {len(r['clean_false_positives'])} findings")
    for line in (r["misses"] + r["clean_false_positives"])[:30]:
        print("   ", line)
    if a.hard:
        print("forms the corpus does not plant (1,000 each):")
        for case, what, share in hard_cases():
            print(f"  {case:55} {what} {share:6.1%}")


if __name__ == "__main__":
    main()
