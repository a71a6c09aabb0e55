"""Server-side SVG charts — bars, lines and areas — each with its figures as a table beside it.

One module for every chart of the product (the console's payments of the last 30 days, the iDC's
operations view); no dependencies and no script. A chart is an ``<svg role="img">`` named by its own
``<title>`` and ``<desc>`` (``aria-labelledby`` names both: the title, then the text summary, which
every screen reader reads as the image's name), with a y axis of round steps (1, 2 or 5 × 10^k), its
unit written above it, and a label under every few slots. A picture of figures is not the figures:
:func:`chart_figure` always puts the same numbers as a table (caption, column and row headers) in a
``<details>`` below the picture, so a screen reader, a keyboard user or someone who wants the exact
figures reads the table; a series with nothing to show (all zero, or no data) is a sentence instead of
an empty picture (:func:`empty_figure`).

Colours and font sizes come from the stylesheet (static/css/charts.css, by class), with presentation
attributes as the fallback: no inline ``style`` and no ``<style>`` (the CSP forbids them). The drawing
is in viewBox units and scales to the width of its box (``width: 100%``); on a narrow screen the
stylesheet enlarges the text and hides the labels marked ``minor``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from html import escape

from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

# the drawing, in viewBox units (the SVG scales to its box: static/css/charts.css)
WIDTH = 720
HEIGHT = 300
MARGIN_LEFT = 96  # room for the y-axis labels ("150万円", larger on a narrow screen)
MARGIN_RIGHT = 32  # room for half of the last x label ("22:50", larger on a narrow screen)
MARGIN_TOP = 40  # room for the unit above the axis
MARGIN_BOTTOM = 44  # room for the x-axis labels
MAX_TICKS = 5  # gridlines above zero, at most
MAX_X_LABELS = 8
ACCENT = "#1b4f8c"  # --color-accent of the design tokens: the fallback colour of the first series
SECOND = "#8a4b00"  # --color-warning
AXIS_COLOUR = "#5a5a5a"
GRID_COLOUR = "#d0d0d0"
SERIES_COLOURS = (ACCENT, SECOND)

NUM = ' class="num"'
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

Number = int | float


# --- numbers and scales ------------------------------------------------------------------------------


def yen_short(amount: int) -> str:
    """An axis label in yen as Japanese readers expect it: 0円, 5,000円, 1万円, 2.5万円, 120万円, 1.5億円."""
    if amount < 0:
        return "-" + yen_short(-amount)
    if amount >= 100_000_000:
        return f"{_trim(amount / 100_000_000)}億円"
    if amount >= 10_000:
        return f"{_trim(amount / 10_000)}万円"
    return f"{amount:,}円"


def yen_text(amount: Number) -> str:
    """An exact amount in yen: 12,000円."""
    return f"{int(amount):,}円"


def count_text(value: Number) -> str:
    """A count: 1,234."""
    return f"{int(value):,}"


def _trim(value: float) -> str:
    """1 → "1", 2.5 → "2.5", 1234.5 → "1,234.5" (at most one decimal, none when whole)."""
    rounded = round(value, 1)
    if rounded == int(rounded):
        return f"{int(rounded):,}"
    return f"{rounded:,.1f}"


def number_text(value: Number, decimals: int = 0) -> str:
    """``value`` with thousands separators and ``decimals`` decimals: 1,234 / 0.25 / 1,234.5."""
    return f"{value:,.{max(decimals, 0)}f}"


def seconds_text(seconds: Number) -> str:
    """A duration in seconds as a table shows it: milliseconds below 1 s ("0.042"), two decimals below
    10 s ("1.25"), one below 100 s ("12.5"), whole seconds beyond ("1,234"); never negative."""
    if seconds <= 0:
        return "0"
    if seconds >= 100:
        return number_text(round(seconds))
    return number_text(seconds, 1 if seconds >= 10 else 2 if seconds >= 1 else 3)


@dataclass(frozen=True)
class Axis:
    """A y axis from 0 to ``top`` in ``steps`` equal, round steps; labels need ``decimals`` decimals."""

    top: Number
    steps: int
    decimals: int = 0

    @property
    def ticks(self) -> list[Number]:
        step = Decimal(str(self.top)) / self.steps
        values = [step * i for i in range(self.steps + 1)]
        return [int(v) if self.decimals == 0 else float(v) for v in values]


def nice_axis(value: Number, *, whole: bool = False, max_ticks: int = MAX_TICKS) -> Axis:
    """The y axis for a largest value of ``value``: the fewest steps (at most ``max_ticks``) of the
    smallest round step (1, 2 or 5 × 10^k; k ≥ 0 when ``whole``: counts and yen) that reach it, so every
    label is a round figure. Nothing to draw (0 or less): 0–1."""
    if max_ticks < 1:
        raise ValueError("max_ticks must be at least 1")
    if not value or value <= 0 or not math.isfinite(value):
        return Axis(top=1, steps=1)
    target = Decimal(repr(float(value))) if isinstance(value, float) else Decimal(value)
    exponent = (target / max_ticks).adjusted() - 1  # one magnitude below the first step that can fit
    if whole:
        exponent = max(exponent, 0)
    while True:
        magnitude = Decimal(1).scaleb(exponent)
        for m in (1, 2, 5):
            step = magnitude * m
            steps = int((target / step).to_integral_value(rounding=ROUND_CEILING))
            if steps <= max_ticks:
                decimals = max(-exponent, 0)
                top = step * steps
                return Axis(
                    top=int(top) if decimals == 0 else float(top), steps=max(steps, 1), decimals=decimals
                )
        exponent += 1


def axis_scale(value: int) -> tuple[int, int]:
    """The yen axis: its top and number of gridline steps above zero for a largest bar of ``value``
    yen (see :func:`nice_axis`). Nothing to draw: 0–1万円 in two steps."""
    if value <= 0:
        return 10_000, 2
    axis = nice_axis(value, whole=True)
    return int(axis.top), axis.steps


def x_label_indexes(count: int) -> list[int]:
    """Which slots get an axis label: the last one (today, now) and every n-th before it, at most
    ``MAX_X_LABELS`` in all."""
    if count <= 0:
        return []
    every = -(-count // MAX_X_LABELS)  # ceil
    return sorted(range(count - 1, -1, -every))


def peak(values: Sequence[Number | None]) -> int | None:
    """The index of the largest value (the latest of equals: the most recent peak), or None when there is
    nothing above zero."""
    best: int | None = None
    for i, v in enumerate(values):
        if v is not None and v > 0 and (best is None or v >= values[best]):  # type: ignore[operator]
            best = i
    return best


def has_data(values: Sequence[Number | None]) -> bool:
    """Whether a series has anything to draw: a value above zero."""
    return any(v is not None and v > 0 for v in values)


# --- what is drawn -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One bar: its axis label (short: "12/3"), its row header in the table (long: "2026-12-03"), its
    value (never negative: a chart of amounts or counts) and any further figures for the table's row."""

    label: str
    heading: str
    value: Number
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Slot:
    """One place on the x axis of a line chart: its axis label ("14:03") and its long name ("14:03 JST")."""

    label: str
    heading: str


@dataclass(frozen=True)
class Series:
    """One line of a line chart: its name (legend, tooltips) and a value per slot (None: no data, a gap).
    ``area`` fills the space under the line."""

    name: str
    values: Sequence[Number | None]
    area: bool = False


def _check_id(chart_id: str) -> None:
    if not _ID.match(chart_id):
        raise ValueError(f"chart_id must be an HTML id: {chart_id!r}")


def _plot() -> tuple[float, float, float]:
    """The plot's width, height and baseline y."""
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    return WIDTH - MARGIN_LEFT - MARGIN_RIGHT, plot_h, MARGIN_TOP + plot_h


def _open(
    *,
    kind: str,
    chart_id: str,
    title: str,
    description: str,
    axis: Axis,
    unit: str,
    tick_text: Callable[[Number], str],
) -> list[str]:
    """The ``<svg>`` start, its title and description, the unit and the y axis with its gridlines."""
    _check_id(chart_id)
    _plot_w, plot_h, base_y = _plot()
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg {kind}" id="{chart_id}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-labelledby="{title_id} {desc_id}" '
        'focusable="false" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(description)}</desc>',
    ]
    if unit:
        parts.append(
            f'<text class="unit" x="{MARGIN_LEFT + 4}" y="{MARGIN_TOP - 10}" font-size="12" '
            f'fill="{AXIS_COLOUR}">'
            f"{escape(unit)}</text>"
        )
    parts.append('<g class="axis y-axis" font-size="12" text-anchor="end">')
    for i, value in enumerate(axis.ticks):
        y = base_y - plot_h * i / axis.steps
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        label = escape(tick_text(value))
        parts.append(f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" fill="{AXIS_COLOUR}">{label}</text>')
    parts.append("</g>")
    return parts


def _close(parts: list[str], labels: Sequence[str], label_indexes: Sequence[int] | None) -> SafeString:
    """The x axis (a label at ``label_indexes``, every other one ``minor``: hidden on a narrow screen),
    the baseline, and the end of the ``<svg>``."""
    plot_w, _plot_h, base_y = _plot()
    count = len(labels)
    slot = plot_w / count if count else plot_w
    indexes = list(x_label_indexes(count) if label_indexes is None else label_indexes)
    if any(not 0 <= i < count for i in indexes):
        raise ValueError("a label index is outside the chart")
    parts.append(f'<g class="axis x-axis" font-size="12" text-anchor="middle" fill="{AXIS_COLOUR}">')
    indexes.sort()
    for n, i in enumerate(indexes):
        x = MARGIN_LEFT + slot * i + slot / 2
        minor = ' class="minor"' if (len(indexes) - 1 - n) % 2 else ""  # the last label is a major one
        parts.append(
            f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{base_y}" y2="{base_y + 5}" '
            f'stroke="{AXIS_COLOUR}"/>'
        )
        parts.append(f'<text{minor} x="{x:.1f}" y="{base_y + 22}">{escape(labels[i])}</text>')
    parts.append(
        f'<line class="baseline" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{base_y}" y2="{base_y}" '
        f'stroke="{AXIS_COLOUR}" stroke-width="1"/>'
    )
    parts.append("</g></svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def bar_chart_svg(
    *,
    bars: Sequence[Bar],
    chart_id: str,
    title: str,
    description: str,
    unit: str = "",
    value_text: Callable[[Number], str] = yen_text,
    tick_text: Callable[[Number], str] | None = None,
    whole: bool = True,
    label_indexes: Sequence[int] | None = None,
) -> SafeString:
    """The SVG of ``bars`` (one ``<rect class="bar">`` each, zero-height bars included so every slot
    counts, each with a tooltip "heading: value"), named by its ``<title>``/``<desc>``.

    By default a chart of yen (axis in 円/万円/億円); pass ``value_text`` and ``unit`` for anything else
    (``tick_text`` then defaults to the axis's round numbers)."""
    if any(b.value < 0 for b in bars):
        raise ValueError("bar_chart_svg draws amounts and counts, which are never negative")
    largest = max((b.value for b in bars), default=0)
    if value_text is yen_text and tick_text is None:
        top, steps = axis_scale(int(largest))
        axis = Axis(top=top, steps=steps)
        ticks: Callable[[Number], str] = lambda v: yen_short(int(v))  # noqa: E731
    else:
        axis = nice_axis(largest, whole=whole)
        ticks = tick_text or (lambda v: number_text(v, axis.decimals))
    parts = _open(
        kind="bar-chart",
        chart_id=chart_id,
        title=title,
        description=description,
        axis=axis,
        unit=unit,
        tick_text=ticks,
    )
    plot_w, plot_h, base_y = _plot()
    count = len(bars)
    slot = plot_w / count if count else plot_w
    width = max(slot * 0.7, 1.0)
    suffix = f" {escape(unit)}" if unit else ""
    parts.append('<g class="bars">')
    for i, bar in enumerate(bars):
        x = MARGIN_LEFT + slot * i + (slot - width) / 2
        h = plot_h * bar.value / axis.top
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{base_y - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
            f'fill="{ACCENT}"><title>{escape(bar.heading)}: {escape(value_text(bar.value))}{suffix}</title>'
            "</rect>"
        )
    parts.append("</g>")
    return _close(parts, [b.label for b in bars], label_indexes)


def line_chart_svg(
    *,
    slots: Sequence[Slot],
    series: Sequence[Series],
    chart_id: str,
    title: str,
    description: str,
    unit: str = "",
    value_text: Callable[[Number], str] = count_text,
    whole: bool = False,
    label_indexes: Sequence[int] | None = None,
) -> SafeString:
    """The SVG of one or more ``series`` over ``slots``: a line through each run of values (a gap where a
    value is None), the area under it for an ``area`` series, and a point with a tooltip for every value.
    Series are drawn with the classes ``series-1``, ``series-2``… (the legend uses the same)."""
    if not series or any(len(s.values) != len(slots) for s in series):
        raise ValueError("every series needs one value per slot")
    if any(v is not None and (v < 0 or not math.isfinite(v)) for s in series for v in s.values):
        raise ValueError("line_chart_svg draws durations and counts, which are never negative")
    largest = max((v for s in series for v in s.values if v is not None), default=0)
    axis = nice_axis(largest, whole=whole)
    parts = _open(
        kind="line-chart",
        chart_id=chart_id,
        title=title,
        description=description,
        axis=axis,
        unit=unit,
        tick_text=lambda v: number_text(v, axis.decimals),
    )
    plot_w, plot_h, base_y = _plot()
    suffix = f" {escape(unit)}" if unit else ""
    count = len(slots)
    slot = plot_w / count if count else plot_w

    def point(i: int, v: Number) -> tuple[float, float]:
        return MARGIN_LEFT + slot * i + slot / 2, base_y - plot_h * v / axis.top

    for n, s in enumerate(series, start=1):
        colour = SERIES_COLOURS[(n - 1) % len(SERIES_COLOURS)]
        dash = ' stroke-dasharray="6 4"' if n % 2 == 0 else ""  # told apart without colour, too
        parts.append(f'<g class="series series-{n}">')
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(point(i, v))
        for run in (r for r in runs if r):
            xy = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            if s.area:
                first, last = run[0][0], run[-1][0]
                parts.append(
                    f'<polygon class="area" points="{first:.1f},{base_y} {xy} {last:.1f},{base_y}" '
                    f'fill="{colour}" fill-opacity="0.2" stroke="none"/>'
                )
            if len(run) > 1:
                parts.append(
                    f'<polyline class="line" points="{xy}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"{dash}/>'
                )
        for i, v in enumerate(s.values):
            if v is None or (s.area and not v):  # an area's zeros need no dot: the baseline says it
                continue
            x, y = point(i, v)
            tip = f"{escape(slots[i].heading)}: {escape(s.name)} {escape(value_text(v))}{suffix}"
            parts.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{tip}</title></circle>"
            )
        parts.append("</g>")
    return _close(parts, [s.label for s in slots], label_indexes)


# --- the figure: the picture and its table -------------------------------------------------------------


@dataclass(frozen=True)
class DataTable:
    """The figures of a chart as a table: a caption, column headers (the row header's first) and rows
    (a row header and its cells, already formatted)."""

    caption: str
    columns: Sequence[str]
    rows: Sequence[tuple[str, Sequence[str]]]

    def __post_init__(self) -> None:
        if any(len(cells) != len(self.columns) - 1 for _heading, cells in self.rows):
            raise ValueError("one column header for the row heading, one per cell of every row")


def chart_figure(
    *,
    svg: SafeString,
    chart_id: str,
    title: str,
    table: DataTable,
    legend: Sequence[str] = (),
    note: str = "",
    open_table: bool = False,
) -> SafeString:
    """A ``<figure>``: its caption (``title``), a legend (one entry per series, in the order and classes
    of :func:`line_chart_svg`), the chart, and below it a ``<details>`` with ``table``. The table is the
    chart's accessible form, so it is always there; ``open_table`` only decides whether it starts
    unfolded. ``note`` is a sentence inside the folded part (e.g. why it may fold again)."""
    _check_id(chart_id)
    head = "".join(f'<th scope="col"{NUM if i else ""}>{escape(c)}</th>' for i, c in enumerate(table.columns))
    rows = []
    for heading, cells in table.rows:
        tds = "".join(f'<td class="num">{escape(v)}</td>' for v in cells)
        rows.append(f'<tr><th scope="row">{escape(heading)}</th>{tds}</tr>')
    table_id = f"{chart_id}-table"
    keys = "".join(
        f'<li class="series-{n}"><span class="swatch" aria-hidden="true"></span>{escape(name)}</li>'
        for n, name in enumerate(legend, start=1)
    )
    as_table = _("The figures as a table")
    html = (
        f'<figure class="chart" aria-labelledby="{chart_id}-caption">'
        f'<figcaption id="{chart_id}-caption">{escape(title)}</figcaption>'
        + (f'<ul class="chart-legend">{keys}</ul>' if legend else "")
        + f'<div class="chart-box">{svg}</div>'
        f'<details class="chart-data"{" open" if open_table else ""}>'
        f"<summary>{escape(as_table)}</summary>"
        + (f'<p class="chart-note">{escape(note)}</p>' if note else "")
        + f'<div class="table-scroll" role="region" tabindex="0" aria-labelledby="{table_id}-caption">'
        f'<table id="{table_id}"><caption id="{table_id}-caption">{escape(table.caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        "</details></figure>"
    )
    return mark_safe(html)  # noqa: S308 - every text above is escaped


def empty_figure(*, chart_id: str, title: str, statement: str) -> SafeString:
    """A chart with nothing to show, said in words: the figure's caption and one sentence (no picture of
    a flat line, no table of zeros)."""
    _check_id(chart_id)
    return mark_safe(  # noqa: S308 - escaped
        f'<figure class="chart chart-empty" id="{chart_id}" aria-labelledby="{chart_id}-caption">'
        f'<figcaption id="{chart_id}-caption">{escape(title)}</figcaption>'
        f'<p class="chart-statement">{escape(statement)}</p></figure>'
    )


def bar_chart_figure(
    *,
    bars: Sequence[Bar],
    chart_id: str,
    title: str,
    description: str,
    columns: Sequence[str],
    open_table: bool = False,
    unit: str = "",
    value_text: Callable[[Number], str] = yen_text,
    rows: Sequence[Bar] | None = None,
    empty_statement: str = "",
    label_indexes: Sequence[int] | None = None,
    note: str = "",
) -> SafeString:
    """A bar chart and the table of its figures (:func:`chart_figure`).

    ``columns`` are the table's column headers: the row header's first, the bar's value (``value_text``:
    yen by default) second, then one per item of ``Bar.extra``. ``rows`` are the bars the table lists
    (default: every bar; pass the relevant ones for a compact table). With ``empty_statement``, bars
    that are all zero make that sentence instead of a chart (:func:`empty_figure`).
    """
    if len(columns) != 2 + max((len(b.extra) for b in bars), default=0):
        raise ValueError("one column header for the row heading, one for the value, one per extra figure")
    if empty_statement and not has_data([b.value for b in bars]):
        return empty_figure(chart_id=chart_id, title=title, statement=empty_statement)
    svg = bar_chart_svg(
        bars=bars,
        chart_id=chart_id,
        title=title,
        description=description,
        unit=unit,
        value_text=value_text,
        label_indexes=label_indexes,
    )
    listed = bars if rows is None else rows
    table = DataTable(
        caption=title,
        columns=columns,
        rows=[(b.heading, (value_text(b.value), *b.extra)) for b in listed],
    )
    return chart_figure(
        svg=svg, chart_id=chart_id, title=title, table=table, open_table=open_table, note=note
    )
