"""billing.charts, the product's one chart module: round scales for yen, counts and seconds; bar, line and
area charts as well-formed SVG named by a title and a text summary; escaped labels; gaps and empty series;
the figure with its table, compact or whole; a sentence instead of a flat zero chart."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from billing import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - our own markup


def minutes(n: int) -> list[charts.Slot]:
    return [charts.Slot(label=f"14:{i:02d}", heading=f"14:{i:02d} JST") for i in range(n)]


# --- scales ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "whole", "top", "steps", "decimals", "ticks"),
    [
        (0, True, 1, 1, 0, [0, 1]),  # nothing: 0–1, never a division by zero
        (1, True, 1, 1, 0, [0, 1]),
        (2, True, 2, 2, 0, [0, 1, 2]),  # whole payments: no "0.5 payments"
        (3, True, 3, 3, 0, [0, 1, 2, 3]),
        (7, True, 8, 4, 0, [0, 2, 4, 6, 8]),
        (45, True, 50, 5, 0, [0, 10, 20, 30, 40, 50]),
        (0.3, True, 1, 1, 0, [0, 1]),
        (0.042, False, 0.05, 5, 2, [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]),  # seconds: fractions are fine
        (0.3, False, 0.3, 3, 1, [0.0, 0.1, 0.2, 0.3]),
        (2.5, False, 2.5, 5, 1, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]),
        (135, False, 150, 3, 0, [0, 50, 100, 150]),
        (1234.5, False, 1500, 3, 0, [0, 500, 1000, 1500]),
    ],
)
def test_nice_axis_reaches_the_value_in_round_steps(
    value: float, whole: bool, top: float, steps: int, decimals: int, ticks: list[float]
) -> None:
    axis = charts.nice_axis(value, whole=whole)
    assert (axis.top, axis.steps, axis.decimals) == (top, steps, decimals)
    assert axis.ticks == pytest.approx(ticks)
    assert axis.top >= value and 1 <= axis.steps <= charts.MAX_TICKS


def test_nice_axis_refuses_no_ticks() -> None:
    with pytest.raises(ValueError, match="max_ticks"):
        charts.nice_axis(5, max_ticks=0)


@pytest.mark.parametrize(
    ("value", "top", "steps"),
    [
        (0, 10_000, 2),
        (1, 1, 1),
        (4_400, 5_000, 5),
        (12_000, 15_000, 3),
        (16_302, 20_000, 4),
        (987_654, 10**6, 5),
    ],
)
def test_yen_axis(value: int, top: int, steps: int) -> None:
    assert charts.axis_scale(value) == (top, steps)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0, "0円"),
        (5_000, "5,000円"),
        (15_000, "1.5万円"),
        (12_345_678, "1,234.6万円"),
        (150_000_000, "1.5億円"),
    ],
)
def test_yen_short(amount: int, text: str) -> None:
    assert charts.yen_short(amount) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0"), (-0.2, "0"), (0.042, "0.042"), (0.5, "0.500"), (1.25, "1.25"), (12.34, "12.3"), (135, "135")],
)
def test_seconds_text(seconds: float, text: str) -> None:
    assert charts.seconds_text(seconds) == text


def test_peak_is_the_most_recent_largest_value() -> None:
    assert charts.peak([0, 3, None, 3, 1]) == 3
    assert charts.peak([5, None, 1]) == 0
    assert charts.peak([0, None, 0]) is None and charts.peak([]) is None
    assert not charts.has_data([0, None]) and charts.has_data([None, 0.001])


def test_x_labels_end_on_the_last_slot() -> None:
    assert charts.x_label_indexes(0) == []
    assert charts.x_label_indexes(3) == [0, 1, 2]
    labels = charts.x_label_indexes(60)
    assert labels[-1] == 59 and len(labels) <= charts.MAX_X_LABELS
    assert len({b - a for a, b in itertools.pairwise(labels)}) == 1


# --- bar charts ----------------------------------------------------------------------------------------


def test_bar_chart_of_counts_scales_labels_and_names_itself() -> None:
    values = [0] * 57 + [2, 45, 7]
    bars = [
        charts.Bar(label=s.label, heading=s.heading, value=v)
        for s, v in zip(minutes(60), values, strict=True)
    ]
    svg = parse(
        charts.bar_chart_svg(
            bars=bars,
            chart_id="pay",
            title="Payments per minute",
            description="Last 60 minutes: 54 payments in all, at most 45 per minute (14:58).",
            unit="payments/min",
            value_text=charts.count_text,
            label_indexes=[0, 10, 20, 30, 40, 50],
        )
    )
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == "pay-title pay-desc"
    assert svg.get("viewBox") == f"0 0 {charts.WIDTH} {charts.HEIGHT}" and svg.get("width") == "100%"
    desc = svg.find(f"{SVG}desc")
    assert (
        desc is not None
        and desc.text == "Last 60 minutes: 54 payments in all, at most 45 per minute (14:58)."
    )
    rects = svg.findall(f".//{SVG}rect[@class='bar']")
    assert len(rects) == 60
    plot = charts.HEIGHT - charts.MARGIN_TOP - charts.MARGIN_BOTTOM
    assert float(rects[58].get("height", "")) == pytest.approx(plot * 45 / 50, abs=0.1)
    assert float(rects[0].get("height", "")) == 0
    assert rects[58].find(f"{SVG}title").text == "14:58 JST: 45 payments/min"  # type: ignore[union-attr]
    assert [t.text for t in svg.findall(f".//{SVG}g[@class='axis y-axis']/{SVG}text")] == [
        "0",
        "10",
        "20",
        "30",
        "40",
        "50",
    ]
    assert svg.find(f".//{SVG}text[@class='unit']").text == "payments/min"  # type: ignore[union-attr]
    x = svg.findall(f".//{SVG}g[@class='axis x-axis']/{SVG}text")
    assert [t.text for t in x] == ["14:00", "14:10", "14:20", "14:30", "14:40", "14:50"]
    # on a phone every other label goes, never the last one
    assert [t.get("class") for t in x] == ["minor", None, "minor", None, "minor", None]


def test_labels_titles_and_units_are_escaped() -> None:
    bars = [charts.Bar(label="<b>", heading='"x" & <y>', value=1)]
    markup = str(
        charts.bar_chart_figure(
            bars=bars,
            chart_id="c",
            title="A & <B>",
            description="<script>alert(1)</script>",
            columns=["<th>", "Count"],
            unit="件/分 <i>",
            value_text=charts.count_text,
        )
    )
    assert "<script>" not in markup and "<b>" not in markup and "<i>" not in markup and "<th>" not in markup
    root = parse(markup)  # still well-formed: every text is escaped
    svg = root.find(f".//{SVG}svg")
    assert svg is not None and svg.find(f"{SVG}desc").text == "<script>alert(1)</script>"  # type: ignore[union-attr]
    assert root.find("figcaption").text == "A & <B>"  # type: ignore[union-attr]
    assert root.find(".//tbody/tr/th").text == '"x" & <y>'  # type: ignore[union-attr]
    series = charts.Series(name="<Longest>", values=[1.0])
    line = str(
        charts.line_chart_svg(
            slots=[charts.Slot("<1>", "<h>")], series=[series], chart_id="l", title="t", description="d"
        )
    )
    assert "<Longest>" not in line and "&lt;Longest&gt;" in line and "<1>" not in line


def test_no_inline_style_for_the_content_security_policy() -> None:
    bar = charts.bar_chart_svg(bars=[charts.Bar("a", "a", 1)], chart_id="c", title="t", description="d")
    line = charts.line_chart_svg(
        slots=minutes(3),
        series=[charts.Series("s", [1, None, 2], area=True)],
        chart_id="l",
        title="t",
        description="d",
    )
    for markup in (str(bar), str(line)):
        assert "style=" not in markup and "<style" not in markup and "<script" not in markup


# --- line and area charts --------------------------------------------------------------------------------


def test_line_chart_breaks_at_missing_values_and_draws_every_point() -> None:
    longest = [None, 1.0, 2.5, None, None, 0.5, None]
    average = [None, 0.5, 1.0, None, None, 0.5, None]
    svg = parse(
        charts.line_chart_svg(
            slots=minutes(7),
            series=[charts.Series("Longest", longest), charts.Series("Average", average)],
            chart_id="lag",
            title="Apply lag",
            description="3 applied",
            unit="s",
            value_text=charts.seconds_text,
        )
    )
    first = svg.find(f".//{SVG}g[@class='series series-1']")
    assert first is not None
    assert len(first.findall(f"{SVG}polyline")) == 1  # 14:01–14:02; 14:05 alone is a point, not a line
    assert [c.find(f"{SVG}title").text for c in first.findall(f"{SVG}circle")] == [  # type: ignore[union-attr]
        "14:01 JST: Longest 1.00 s",
        "14:02 JST: Longest 2.50 s",
        "14:05 JST: Longest 0.500 s",
    ]
    second = svg.find(f".//{SVG}g[@class='series series-2']/{SVG}polyline")
    assert second is not None and second.get("stroke-dasharray")  # told apart without colour
    assert [t.text for t in svg.findall(f".//{SVG}g[@class='axis y-axis']/{SVG}text")] == [
        "0.0",
        "0.5",
        "1.0",
        "1.5",
        "2.0",
        "2.5",
    ]
    # the highest point touches the top of the plot
    top = next(c for c in first.findall(f"{SVG}circle") if "2.50" in (c.find(f"{SVG}title").text or ""))  # type: ignore[union-attr]
    assert float(top.get("cy", "")) == pytest.approx(charts.MARGIN_TOP)


def test_area_chart_fills_down_to_the_baseline() -> None:
    svg = parse(
        charts.line_chart_svg(
            slots=minutes(4),
            series=[charts.Series("Waiting", [0, 3, 1, 0], area=True)],
            chart_id="w",
            title="Waiting",
            description="d",
            whole=True,
        )
    )
    area = svg.find(f".//{SVG}polygon[@class='area']")
    assert area is not None
    base_y = charts.HEIGHT - charts.MARGIN_BOTTOM
    points = [tuple(map(float, p.split(","))) for p in area.get("points", "").split()]
    assert points[0][1] == points[-1][1] == base_y and len(points) == 6
    assert len(svg.findall(f".//{SVG}circle")) == 2  # zeros need no dot


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="HTML id"):
        charts.bar_chart_svg(bars=[], chart_id="1 bad", title="t", description="d")
    with pytest.raises(ValueError, match="never negative"):
        charts.bar_chart_svg(bars=[charts.Bar("a", "a", -1)], chart_id="c", title="t", description="d")
    with pytest.raises(ValueError, match="one value per slot"):
        charts.line_chart_svg(
            slots=minutes(2), series=[charts.Series("s", [1])], chart_id="c", title="t", description="d"
        )
    with pytest.raises(ValueError, match="one value per slot"):
        charts.line_chart_svg(slots=minutes(2), series=[], chart_id="c", title="t", description="d")
    with pytest.raises(ValueError, match="never negative"):
        charts.line_chart_svg(
            slots=minutes(1), series=[charts.Series("s", [-1.0])], chart_id="c", title="t", description="d"
        )
    with pytest.raises(ValueError, match="outside the chart"):
        charts.bar_chart_svg(
            bars=[charts.Bar("a", "a", 1)], chart_id="c", title="t", description="d", label_indexes=[1]
        )
    with pytest.raises(ValueError, match="column header"):
        charts.DataTable(caption="c", columns=["a", "b"], rows=[("r", ("1", "2"))])
    with pytest.raises(ValueError, match="column header"):
        charts.bar_chart_figure(
            bars=[charts.Bar("a", "a", 1)], chart_id="c", title="t", description="d", columns=["a"]
        )


# --- figures ---------------------------------------------------------------------------------------------


def test_figure_has_a_caption_a_legend_the_picture_and_a_compact_table() -> None:
    svg = charts.line_chart_svg(
        slots=minutes(3),
        series=[charts.Series("Longest", [None, 2, 4]), charts.Series("Average", [None, 1, 3])],
        chart_id="lag",
        title="Apply lag",
        description="d",
    )
    table = charts.DataTable(
        caption="Apply lag per minute, newest first",
        columns=["Minute", "Average (s)", "Longest (s)"],
        rows=[("14:02", ("3", "4")), ("14:01", ("1", "2"))],
    )
    root = parse(
        charts.chart_figure(
            svg=svg,
            chart_id="lag",
            title="Apply lag",
            table=table,
            legend=["Longest", "Average"],
            note="Reloads.",
        )
    )
    assert root.tag == "figure" and root.get("aria-labelledby") == "lag-caption"
    assert root.find("figcaption").text == "Apply lag"  # type: ignore[union-attr]
    assert [(li.get("class"), "".join(li.itertext())) for li in root.findall("ul/li")] == [
        ("series-1", "Longest"),
        ("series-2", "Average"),
    ]
    details = root.find("details")
    assert details is not None and details.get("class") == "chart-data" and details.get("open") is None
    assert details.find("p").text == "Reloads."  # type: ignore[union-attr]
    region = details.find("div")
    assert region is not None and region.get("role") == "region" and region.get("tabindex") == "0"
    found = details.find(".//table")
    assert found is not None and found.find("caption").text == "Apply lag per minute, newest first"  # type: ignore[union-attr]
    assert region.get("aria-labelledby") == found.find("caption").get("id")  # type: ignore[union-attr]
    assert [th.get("scope") for th in found.findall("thead/tr/th")] == ["col"] * 3
    assert [[c.text for c in r] for r in found.findall("tbody/tr")] == [
        ["14:02", "3", "4"],
        ["14:01", "1", "2"],
    ]
    assert all(r.find("th").get("scope") == "row" for r in found.findall("tbody/tr"))  # type: ignore[union-attr]


def test_a_flat_zero_series_is_a_sentence_not_a_chart() -> None:
    bars = [charts.Bar(label=s.label, heading=s.heading, value=0) for s in minutes(60)]
    markup = str(
        charts.bar_chart_figure(
            bars=bars,
            chart_id="pay",
            title="Payments per minute",
            description="d",
            columns=["Minute", "Payments"],
            value_text=charts.count_text,
            empty_statement="No payment arrived in the last 60 minutes.",
        )
    )
    root = parse(markup)
    assert root.get("id") == "pay" and "chart-empty" in (root.get("class") or "")
    assert root.find("figcaption").text == "Payments per minute"  # type: ignore[union-attr]
    assert root.find("p").text == "No payment arrived in the last 60 minutes."  # type: ignore[union-attr]
    assert "<svg" not in markup and "<table" not in markup
    # without a statement the chart is drawn all the same (a chart whose zeros are the news)
    assert "<svg" in str(
        charts.bar_chart_figure(
            bars=bars, chart_id="pay", title="t", description="d", columns=["Minute", "Yen"]
        )
    )


def test_bar_figure_lists_the_rows_asked_for() -> None:
    bars = [
        charts.Bar(label=f"{i}", heading=f"day {i}", value=v, extra=(f"{i}",))
        for i, v in enumerate([5, 0, 7])
    ]
    root = parse(
        charts.bar_chart_figure(
            bars=bars,
            chart_id="c",
            title="t",
            description="d",
            columns=["Day", "Yen", "Count"],
            rows=[b for b in reversed(bars) if b.value],
        )
    )
    assert len(root.findall(f".//{SVG}rect[@class='bar']")) == 3  # the picture has every day
    assert [[c.text for c in r] for r in root.findall(".//tbody/tr")] == [
        ["day 2", "7円", "2"],
        ["day 0", "5円", "0"],
    ]
