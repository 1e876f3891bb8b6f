"""The dashboard's bar chart as a person reads it: every bar's colour named in the legend."""

from __future__ import annotations

import re

from publisher.web import svg


def test_legend_names_every_series_inside_the_picture():
    # an office's real channel list: a fixed 120 px per entry on one row cut off the seventh onwards
    names = [
        "学校信息公开网",
        "微信公众号",
        "齐齐哈尔市人民政府网站",
        "市人力资源网站",
        "黑龙江省政府采购网",
        "报纸",
        "电视台",
        "学报",
        "今日头条",
        "weibo",
    ]
    out = svg.grouped_bars(["2026-10", "2026-11"], {n: {"2026-11": i + 1} for i, n in enumerate(names)}, title="t")
    width, height = map(float, re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', out).groups())
    for n in names:
        m = re.search(rf'<text x="([\d.]+)" y="([\d.]+)" class="axis">{n}</text>', out)
        assert m, f"{n} is not in the legend"
        x, y = float(m[1]), float(m[2])
        assert x + 11 * len(n) <= width and y <= height, (n, x, y, width, height)
