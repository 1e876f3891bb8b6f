"""How long the privacy check takes on large attachments.

    python bench/privacy_bench.py [--rows 10000] [--pages 100] [--repeat 3]

A 名单.xlsx of ``rows`` rows (name, college, grade, level visible; ID and card numbers in two hidden
columns, so every row gives two findings), a DOCX of ``pages`` pages (30 paragraphs and a 10-row table a
page, a few numbers planted), and a PDF of ``pages`` pages. Reports the best of ``repeat`` runs of
check_file and of the cleaned copy, and, for the XLSX, openpyxl's normal (non-read-only) mode loading
the same workbook and walking its cells: the alternative to streaming the sheet XML with lxml.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.pipeline.privacy import check_file, clean_docx, clean_xlsx  # noqa: E402
from tests.privacy.makers import big_xlsx, make_id, make_mobile, pdf_file  # noqa: E402

PARAGRAPH = (
    "根据《高等学校信息公开办法》和学校有关规定，现将本年度评审结果予以公示，"
    "公示期为5个工作日（2026-11-01至2026-11-07）。"
)


def big_docx(path: Path, pages: int, rng: random.Random) -> Path:
    import docx
    from docx.enum.text import WD_BREAK

    d = docx.Document()
    d.core_properties.author = ""
    for page in range(pages):
        for i in range(30):
            text = PARAGRAPH
            if i == 7 and page % 10 == 0:
                text += f"联系人手机{make_mobile(rng)}，身份证{make_id(rng)}。"
            d.add_paragraph(text)
        t = d.add_table(rows=10, cols=4)
        for r in range(10):
            for c, v in enumerate((f"学生{page}-{r}", "数学学院", "2024级", "一等")):
                t.cell(r, c).text = v
        d.paragraphs[-1].add_run().add_break(WD_BREAK.PAGE)
    d.save(path)
    return path


def best(fn, repeat: int) -> tuple[float, object]:  # noqa: ANN001
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def openpyxl_walk(path: Path) -> int:
    import openpyxl

    wb = openpyxl.load_workbook(path)
    n = 0
    for ws in wb.worksheets:
        hidden = [d for d in ws.column_dimensions.values() if d.hidden]
        for row in ws.iter_rows(values_only=True):
            n += sum(1 for v in row if v is not None)
        n += len(hidden)
    return n


def stream_only(path: Path) -> int:
    """The XLSX inspector with no detector: the cost of reading the sheet XML alone."""
    from publisher.pipeline.privacy.archive import open_package
    from publisher.pipeline.privacy.xlsx import inspect_xlsx

    with open_package(path, "xlsx") as pkg:
        return len(inspect_xlsx(pkg, path.name, lambda text, where: []))


def peak_rss_mb(call: str, path: Path) -> float:
    """Peak resident memory of a fresh process that imports this bench and runs ``call(path)``, in MB."""
    import subprocess

    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        f"import bench.privacy_bench as b; b.{call}(Path(sys.argv[2]));"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", code, root, str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        t0 = time.perf_counter()
        xlsx = big_xlsx(d / "名单.xlsx", a.rows, rng)
        docx_path = big_docx(d / "说明.docx", a.pages, rng)
        pdf = pdf_file(
            d / "附件.pdf", [f"Page {i}. Tel 0452-2712345. Order 2026110100{i:06d}." * 20 for i in range(a.pages)]
        )
        print(f"made the files in {time.perf_counter() - t0:.1f} s")
        rows = [
            (f"check_file XLSX, {a.rows:,} rows", lambda: f"{len(check_file(xlsx))} findings"),
            ("  of which reading the sheet XML (lxml iterparse)", lambda: f"{stream_only(xlsx)} hidden things"),
            ("  openpyxl normal mode: load + walk the cells", lambda: f"{openpyxl_walk(xlsx)} cells"),
            ("clean_xlsx", lambda: clean_xlsx(xlsx, d / "clean.xlsx").name),
            (f"check_file DOCX, {a.pages} pages", lambda: f"{len(check_file(docx_path))} findings"),
            ("clean_docx", lambda: clean_docx(docx_path, d / "clean.docx").name),
            (f"check_file PDF, {a.pages} pages", lambda: f"{len(check_file(pdf))} findings"),
        ]
        for label, fn in rows:
            seconds, result = best(fn, a.repeat)
            print(f"{label:50} {seconds:7.2f} s   ({result})")
        print(
            f"peak RSS of a fresh process: iterparse {peak_rss_mb('stream_only', xlsx):.0f} MB, "
            f"openpyxl normal mode {peak_rss_mb('openpyxl_walk', xlsx):.0f} MB"
        )
        sizes = ", ".join(f"{p.suffix[1:]} {p.stat().st_size / 1e3:,.0f} KB" for p in (xlsx, docx_path, pdf))
        print(f"sizes: {sizes}")


if __name__ == "__main__":
    main()
