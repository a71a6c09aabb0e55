"""reconciliation.charts: a well-formed SVG with a bar per value, named for assistive technology, yen axis
labels, and the same figures as a table beside it."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from reconciliation import charts

SVG = "{http://www.w3.org/2000/svg}"


def days(values: list[int]) -> list[charts.Bar]:
    return [
        charts.Bar(label=f"12/{i + 1}", heading=f"2026-12-{i + 1:02d}", value=v, extra=(str(i),))
        for i, v in enumerate(values)
    ]


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0, "0円"),
        (999, "999円"),
        (5_000, "5,000円"),
        (9_999, "9,999円"),
        (10_000, "1万円"),
        (15_000, "1.5万円"),
        (25_000, "2.5万円"),
        (1_200_000, "120万円"),
        (12_345_678, "1,234.6万円"),
        (100_000_000, "1億円"),
        (150_000_000, "1.5億円"),
        (-20_000, "-2万円"),
    ],
)
def test_yen_short(amount: int, text: str) -> None:
    assert charts.yen_short(amount) == text


@pytest.mark.parametrize(
    ("value", "top", "steps"),
    [
        (0, 10_000, 2),
        (1, 1, 1),
        (4_400, 5_000, 5),
        (12_000, 15_000, 3),
        (16_302, 20_000, 4),
        (20_000, 20_000, 4),
        (22_000, 25_000, 5),
        (20_001, 25_000, 5),
        (987_654, 1_000_000, 5),
    ],
)
def test_axis_scale_reaches_the_value_in_round_steps(value: int, top: int, steps: int) -> None:
    assert charts.axis_scale(value) == (top, steps)
    assert top >= value and steps <= charts.MAX_TICKS and top % steps == 0
    step = top // steps
    assert str(step).rstrip("0") in {"1", "2", "5"}


def test_svg_is_well_formed_with_a_bar_per_day_named_by_title_and_desc() -> None:
    values = [0] * 28 + [4_400, 12_000]
    svg = charts.bar_chart_svg(
        bars=days(values), chart_id="pay", title="Payments <30 days>", description="Yen & count"
    )
    root = ET.fromstring(str(svg))  # noqa: S314 - our own markup
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "pay-title pay-desc"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.get("id") == "pay-title" and title.text == "Payments <30 days>"
    assert desc is not None and desc.get("id") == "pay-desc" and desc.text == "Yen & count"
    rects = root.findall(f".//{SVG}rect[@class='bar']")
    assert len(rects) == 30
    heights = [float(r.get("height", "")) for r in rects]
    assert heights[:28] == [0.0] * 28
    # scaled to the axis top (15,000 yen): the 12,000-yen bar is 80 % of the plot
    plot = charts.HEIGHT - charts.MARGIN_TOP - charts.MARGIN_BOTTOM
    assert heights[29] == pytest.approx(plot * 12_000 / 15_000, abs=0.1)
    assert heights[28] == pytest.approx(plot * 4_400 / 15_000, abs=0.1)
    # every bar's tooltip names its day and amount; the y axis is labelled in yen
    assert rects[29].find(f"{SVG}title").text == "2026-12-30: 12,000円"  # type: ignore[union-attr]
    y_labels = [t.text for t in root.findall(f".//{SVG}g[@class='axis y-axis']/{SVG}text")]
    assert y_labels == ["0円", "5,000円", "1万円", "1.5万円"]
    x_labels = [t.text for t in root.findall(f".//{SVG}g[@class='axis x-axis']/{SVG}text")]
    assert x_labels[-1] == "12/30" and len(x_labels) <= charts.MAX_X_LABELS


def test_no_inline_style_for_the_content_security_policy() -> None:
    svg = str(charts.bar_chart_svg(bars=days([1, 2, 3]), chart_id="c", title="t", description="d"))
    assert "style=" not in svg and "<style" not in svg


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="HTML id"):
        charts.bar_chart_svg(bars=days([1]), chart_id="1 bad", title="t", description="d")
    with pytest.raises(ValueError, match="never negative"):
        charts.bar_chart_svg(bars=days([-1]), chart_id="c", title="t", description="d")
    with pytest.raises(ValueError, match="column header"):
        charts.bar_chart_figure(bars=days([1]), chart_id="c", title="t", description="d", columns=["a"])


def test_figure_always_carries_the_figures_as_a_table() -> None:
    html = str(
        charts.bar_chart_figure(
            bars=days([100, 0, 25_000]),
            chart_id="pay",
            title="Payments & more",
            description="d",
            columns=["Day", "Yen", "Count"],
        )
    )
    root = ET.fromstring(html)  # noqa: S314 - the whole figure is well-formed markup too
    assert root.tag == "figure"
    assert root.find(f".//{SVG}svg") is not None
    details = root.find("details")
    assert details is not None and details.get("open") is None  # folded, but there
    assert details.find("summary").text  # type: ignore[union-attr]
    table = details.find(".//table")
    assert table is not None and table.find("caption").text == "Payments & more"  # type: ignore[union-attr]
    assert [th.text for th in table.findall("thead/tr/th")] == ["Day", "Yen", "Count"]
    assert all(th.get("scope") == "col" for th in table.findall("thead/tr/th"))
    rows = table.findall("tbody/tr")
    assert [(r.find("th").text, [td.text for td in r.findall("td")]) for r in rows] == [  # type: ignore[union-attr]
        ("2026-12-01", ["100円", "0"]),
        ("2026-12-02", ["0円", "1"]),
        ("2026-12-03", ["25,000円", "2"]),
    ]
    assert all(r.find("th").get("scope") == "row" for r in rows)  # type: ignore[union-attr]


def test_x_labels_end_on_the_last_bar() -> None:
    assert charts.x_label_indexes(0) == []
    assert charts.x_label_indexes(3) == [0, 1, 2]
    labels = charts.x_label_indexes(30)
    assert labels[-1] == 29 and len(labels) <= charts.MAX_X_LABELS
    assert len({b - a for a, b in itertools.pairwise(labels)}) == 1
