"""Bar charts as server-rendered SVG: no JavaScript, no dependency, text escaped like any page text."""

from __future__ import annotations

from html import escape

PALETTE = ("#1f5fa8", "#c0392b", "#27ae60", "#8e44ad", "#d68910", "#16a085", "#7f8c8d", "#2c3e50")


def grouped_bars(
    groups: list[str], series: dict[str, dict[str, int]], *, title: str, width: int = 760, height: int = 260
) -> str:
    """``series[name][group] = value``: one colour per series, bars side by side within each group."""
    names = list(series)
    # the legend flows into as many rows as it needs: an office has a dozen channels, and a fixed
    # 120 px per entry on one row cut off the seventh onwards, leaving bars nobody could name
    legend: list[tuple[float, int]] = []
    x, row = 0.0, 0
    for n in names:
        w = 14 + sum(11 if ord(ch) > 0x2E80 else 6.2 for ch in n) + 16
        if x and x + w > width - 48 - 10:
            x, row = 0.0, row + 1
        legend.append((x, row))
        x += w
    extra = 16 * row
    peak = max([v for s in series.values() for v in s.values()] + [1])
    top = max(4, -(-peak // 4) * 4)  # four whole-number steps on the axis
    left, bottom, pad = 48, 40, 10
    plot_w, plot_h = width - left - pad, height - bottom - 30
    gw = plot_w / max(len(groups), 1)
    bw = min(48.0, max(2.0, (gw - 8) / max(len(names), 1)))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height + extra}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for k in range(5):
        v = top * k / 4
        y = 30 + plot_h - plot_h * k / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - pad}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="axis">{round(v):,}</text>')
    for gi, g in enumerate(groups):
        x0 = left + gi * gw + (gw - bw * len(names)) / 2
        for si, n in enumerate(names):
            v = series[n].get(g, 0)
            h = plot_h * v / top
            out.append(
                f'<rect x="{x0 + si * bw:.1f}" y="{30 + plot_h - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[si % len(PALETTE)]}"><title>{escape(n)} {escape(g)}: {v:,}</title></rect>'
            )
        if len(groups) <= 16 or gi % max(1, len(groups) // 12) == 0:
            out.append(
                f'<text x="{left + gi * gw + gw / 2:.1f}" y="{height - bottom + 22}" text-anchor="middle" '
                f'class="axis">{escape(g)}</text>'
            )
    for si, n in enumerate(names):
        x, y = left + legend[si][0], height - 12 + 16 * legend[si][1]
        out.append(f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{PALETTE[si % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14:.1f}" y="{y + 9}" class="axis">{escape(n)}</text>')
    out.append("</svg>")
    return "".join(out)
