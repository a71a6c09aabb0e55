"""A tiny server-side SVG bar chart of yen amounts, with its figures as a table beside it.

No dependencies and no script: the chart is an ``<svg role="img">`` named by its own ``<title>`` and
``<desc>`` (``aria-labelledby``), with a y axis in yen (円, 万円, 億円) and a label under every few bars.
A picture of figures is not the figures: ``bar_chart_figure`` always renders the same numbers as a table
(caption, column and row headers) in a ``<details>`` element below the picture, so a screen reader, a
keyboard user or someone who wants the exact amounts reads the table. Colours come from the stylesheet
(classes), with presentation attributes as the fallback: no inline ``style`` (the CSP forbids it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

# the drawing, in viewBox units (the SVG scales to its box; see static/reconciliation/dashboard.css)
WIDTH = 720
HEIGHT = 280
MARGIN_LEFT = 96  # room for the y-axis labels ("150万円", larger on a narrow screen)
MARGIN_RIGHT = 12
MARGIN_TOP = 16
MARGIN_BOTTOM = 40  # room for the x-axis labels
MAX_TICKS = 5  # gridlines above zero, at most
MAX_X_LABELS = 8
BAR_COLOUR = "#0b5cad"  # --accent of portal.css
AXIS_COLOUR = "#5a5a5a"
GRID_COLOUR = "#d0d0d0"

NUM = ' class="num"'
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Bar:
    """One bar: its axis label (short: "12/3"), its row header in the table (long: "2026-12-03"), its
    value in yen (never negative: a chart of amounts) and any further figures for the table's row."""

    label: str
    heading: str
    value: int
    extra: tuple[str, ...] = ()


def yen_short(amount: int) -> str:
    """An axis label in yen as Japanese readers expect it: 0円, 5,000円, 1万円, 2.5万円, 120万円, 1.5億円."""
    if amount < 0:
        return "-" + yen_short(-amount)
    if amount >= 100_000_000:
        return f"{_trim(amount / 100_000_000)}億円"
    if amount >= 10_000:
        return f"{_trim(amount / 10_000)}万円"
    return f"{amount:,}円"


def _trim(value: float) -> str:
    """1 → "1", 2.5 → "2.5", 1234.5 → "1,234.5" (at most one decimal, none when whole)."""
    rounded = round(value, 1)
    if rounded == int(rounded):
        return f"{int(rounded):,}"
    return f"{rounded:,.1f}"


def axis_scale(value: int) -> tuple[int, int]:
    """The top of the y axis and its number of gridline steps above zero for a largest bar of ``value``
    yen: the fewest steps (at most ``MAX_TICKS``) of the smallest round amount (1, 2 or 5 × 10^k yen)
    that reach ``value``, so every label is a round figure (5,000円, 1.5万円). Nothing to draw: 0–1万円."""
    if value <= 0:
        return 10_000, 2
    magnitude = 1
    while True:
        for step in (magnitude, 2 * magnitude, 5 * magnitude):
            steps = -(-value // step)  # ceil
            if steps <= MAX_TICKS:
                return steps * step, steps
        magnitude *= 10


def x_label_indexes(count: int) -> list[int]:
    """Which bars get an axis label: the last one (today) and every n-th before it, at most
    ``MAX_X_LABELS`` in all."""
    if count <= 0:
        return []
    every = -(-count // MAX_X_LABELS)  # ceil
    return sorted(range(count - 1, -1, -every))


def bar_chart_svg(*, bars: Sequence[Bar], chart_id: str, title: str, description: str) -> SafeString:
    """The SVG of ``bars`` (one ``<rect class="bar">`` each, zero-height bars included so every day
    counts), named by its ``<title>``/``<desc>`` for assistive technology."""
    if not _ID.match(chart_id):
        raise ValueError(f"chart_id must be an HTML id: {chart_id!r}")
    if any(b.value < 0 for b in bars):
        raise ValueError("bar_chart_svg draws amounts, which are never negative")
    top, ticks = axis_scale(max((b.value for b in bars), default=0))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    base_y = MARGIN_TOP + plot_h
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="bar-chart" id="{chart_id}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{title_id} {desc_id}" '
        'focusable="false" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(description)}</desc>',
        '<g class="axis y-axis" font-size="12" text-anchor="end">',
    ]
    for i in range(ticks + 1):
        amount = top * i // ticks
        y = base_y - plot_h * i / ticks
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        label = escape(yen_short(amount))
        parts.append(f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" fill="{AXIS_COLOUR}">{label}</text>')
    parts.append("</g>")
    count = len(bars)
    slot = plot_w / count if count else plot_w
    width = max(slot * 0.7, 1.0)
    parts.append('<g class="bars">')
    for i, bar in enumerate(bars):
        x = MARGIN_LEFT + slot * i + (slot - width) / 2
        h = plot_h * bar.value / top
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{base_y - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
            f'fill="{BAR_COLOUR}"><title>{escape(bar.heading)}: {escape(f"{bar.value:,}円")}</title></rect>'
        )
    parts.append("</g>")
    parts.append(f'<g class="axis x-axis" font-size="12" text-anchor="middle" fill="{AXIS_COLOUR}">')
    for i in x_label_indexes(count):
        x = MARGIN_LEFT + slot * i + slot / 2
        parts.append(f'<text x="{x:.1f}" y="{base_y + 18}">{escape(bars[i].label)}</text>')
    parts.append(
        f'<line class="baseline" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{base_y}" y2="{base_y}" '
        f'stroke="{AXIS_COLOUR}" stroke-width="1"/>'
    )
    parts.append("</g></svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def bar_chart_figure(
    *,
    bars: Sequence[Bar],
    chart_id: str,
    title: str,
    description: str,
    columns: Sequence[str],
    open_table: bool = False,
) -> SafeString:
    """A ``<figure>``: the chart, and below it a ``<details>`` with the table of the same figures.

    ``columns`` are the table's column headers: the row header's first, the bar's value (shown in yen)
    second, then one per item of ``Bar.extra``. The table is the chart's accessible form, so it is
    always there; ``open_table`` only decides whether it starts unfolded.
    """
    if len(columns) != 2 + max((len(b.extra) for b in bars), default=0):
        raise ValueError("one column header for the row heading, one for the value, one per extra figure")
    svg = bar_chart_svg(bars=bars, chart_id=chart_id, title=title, description=description)
    head = "".join(f'<th scope="col"{NUM if i else ""}>{escape(c)}</th>' for i, c in enumerate(columns))
    rows = []
    for bar in bars:
        cells = "".join(f'<td class="num">{escape(v)}</td>' for v in (f"{bar.value:,}円", *bar.extra))
        rows.append(f'<tr><th scope="row">{escape(bar.heading)}</th>{cells}</tr>')
    table_id = f"{chart_id}-table"
    as_table = _("The figures as a table")
    html = (
        f'<figure class="chart">'
        f"<figcaption>{escape(title)}</figcaption>"
        f'<div class="chart-box">{svg}</div>'
        f'<details class="chart-data"{" open" if open_table else ""}>'
        f"<summary>{escape(as_table)}</summary>"
        f'<div class="table-scroll" role="region" tabindex="0" aria-labelledby="{table_id}-caption">'
        f'<table id="{table_id}"><caption id="{table_id}-caption">{escape(title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        "</details></figure>"
    )
    return mark_safe(html)  # noqa: S308 - every text above is escaped
