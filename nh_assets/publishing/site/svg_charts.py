"""Static SVG charts drawn at build time: no chart script runs in the reader's browser.

Colours are presentation attributes, not ``style``: the site's Content-Security-Policy allows
no inline style, and attributes are not style. Every chart is an ``img`` with a title and a
description; the numbers themselves are in the table the page puts beside it, which is what a
screen reader and the search index read.
"""

from __future__ import annotations

from html import escape
from typing import Mapping, Sequence

from markupsafe import Markup

# Ten light tints (one per category) that keep a 4.5:1 contrast against the site's charcoal panels.
PALETTE = (
    "#c4b5fd", "#fcd34d", "#5eead4", "#f9a8d4", "#7dd3fc", "#bef264", "#fdba74", "#a5b4fc", "#fca5a5", "#e5e7eb"
)
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 34, 10, 12, 28


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _x(i: int, n: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span * i / (n - 1) if n > 1 else span / 2)


def _y(value: int, top: int) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / top)


def line_chart(chart_id: str, title: str, labels: Sequence[str], lines: Sequence[Mapping]) -> Markup:
    """One line per ``{"name", "values"}`` over ``labels``, with the y axis from 0 to the largest count."""
    series = {line["name"]: list(line["values"]) for line in lines}
    top = max([1, *(v for values in series.values() for v in values)])
    n = len(labels)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(_describe(labels, series))}</desc>',
    ]
    for value in (0, top):
        y = _y(value, top)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#3a3a3a"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#b4b4b4" font-size="12">{value}</text>')
    if labels:
        for i, anchor in ((0, "start"), (n - 1, "end")):
            parts.append(
                f'<text x="{_x(i, n):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" fill="#b4b4b4" font-size="12">'
                f"{escape(labels[i])}</text>"
            )
    for index, values in enumerate(series.values()):
        points = " ".join(f"{_x(i, n):.1f},{_y(v, top):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour(index)}" stroke-width="2"/>')
        if n <= 31:
            parts += [
                f'<circle cx="{_x(i, n):.1f}" cy="{_y(v, top):.1f}" r="2.5" fill="{colour(index)}"/>'
                for i, v in enumerate(values)
            ]
    parts.append("</svg>")
    return Markup("".join(parts))


def _describe(labels: Sequence[str], series: dict[str, list[int]]) -> str:
    if not labels or not series:
        return "No data in this period."
    totals = ", ".join(f"{name} {sum(values)}" for name, values in series.items())
    return f"From {labels[0]} to {labels[-1]}; days named in total: {totals}. The table beside it has every number."


def swatch(index: int) -> Markup:
    """The legend's coloured mark for series ``index``."""
    return Markup(
        f'<svg class="swatch" viewBox="0 0 12 12" width="12" height="12" aria-hidden="true">'
        f'<rect width="12" height="12" rx="2" fill="{colour(index)}"/></svg>'
    )


def sparkline(label: str, values: Sequence[int]) -> Markup:
    """A small line of ``values`` (days named per week), labelled for screen readers."""
    width, height, pad = 160, 32, 3
    top = max([1, *values])
    n = len(values)

    def x(i: int) -> float:
        return pad + ((width - 2 * pad) * i / (n - 1) if n > 1 else (width - 2 * pad) / 2)

    points = " ".join(f"{x(i):.1f},{pad + (height - 2 * pad) * (1 - v / top):.1f}" for i, v in enumerate(values))
    return Markup(
        f'<svg class="sparkline" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f'<polyline points="{points}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/></svg>'
    )
