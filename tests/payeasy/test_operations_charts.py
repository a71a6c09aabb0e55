"""The operations view's last hour as charts: payments per minute, apply lag and notices waiting, read by
``payeasy.selectors.line_activity`` from real line traffic, drawn as SVG images with a text summary and
backed by compact tables (only the minutes that have something); an hour with nothing says so."""

from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import Biller
from payeasy import selectors
from payeasy.codec import JST
from payeasy.models import Message, Notice
from payeasy.services.payments import notices_apply
from tests.payeasy import line_helpers as h
from tests.payeasy.test_operations import html, send

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"


def hm(moment: datetime.datetime) -> str:
    return moment.astimezone(JST).strftime("%H:%M")


@pytest.fixture
def biller() -> Biller:
    return h.line_biller(legal_name="チャート電力株式会社")


@pytest.fixture
def hour(biller: Biller, monkeypatch: pytest.MonkeyPatch) -> dict[str, datetime.datetime]:
    """Line traffic of the last hour, at known moments (``base`` is the start of the current minute):

    - minute -10: payments A (acknowledged at +5 s, applied at +7 s: 2 s) and B (+10 s → +14 s: 4 s), an
      inquiry, and A sent again at minute -9 (a duplicate: not a new payment)
    - minute -8: payment D (+5 s), applied only at minute -6 (+20 s): 135 s, waiting at the ends of -8, -7
    - minute -3: payment C (+5 s), still waiting
    """
    base = timezone.now().astimezone(datetime.UTC).replace(second=0, microsecond=0)
    at = {
        "base": base,
        "A": base - datetime.timedelta(minutes=10, seconds=-5),
        "B": base - datetime.timedelta(minutes=10, seconds=-10),
        "D": base - datetime.timedelta(minutes=8, seconds=-5),
        "C": base - datetime.timedelta(minutes=3, seconds=-5),
    }
    invoices = {k: h.published_invoice(biller, price=1000) for k in "ABCD"}  # 1,100 yen each
    send(h.open_day(biller), at=base - datetime.timedelta(minutes=30))
    a = h.payment(biller, invoices["A"])
    send(a, h.payment(biller, invoices["B"]), h.inquiry(biller, invoices["C"]), at=at["A"])
    send(a, at=base - datetime.timedelta(minutes=9))  # the centre sends A again: a duplicate
    send(h.payment(biller, invoices["D"]), at=at["D"])
    send(h.payment(biller, invoices["C"]), at=at["C"])
    applied_after = {"A": 2, "B": 4, "D": 135}
    for key, invoice in invoices.items():
        notice = Notice.objects.get(customer_number=invoice.customer_number, kind=Notice.Kind.PAYMENT)
        Notice.objects.filter(pk=notice.pk).update(received_at=at[key])  # stored when the frame came
        if key in applied_after:  # a worker applies it so many seconds later (C: no worker ran)
            with monkeypatch.context() as clock:
                moment = at[key] + datetime.timedelta(seconds=applied_after[key])
                clock.setattr(timezone, "now", lambda moment=moment: moment)
                assert notices_apply(notice_ids=[notice.pk]).applied == 1
    assert Message.objects.filter(outcome=Message.Outcome.DUPLICATE).count() == 1
    return at


def test_line_activity_counts_payments_lag_and_waiting_per_minute(hour: dict[str, datetime.datetime]) -> None:
    base = hour["base"]
    activity = selectors.line_activity(minutes=60, now=base + datetime.timedelta(seconds=30))
    rows = activity.minutes
    assert (
        len(rows) == 60
        and rows[-1].minute == base
        and rows[0].minute == base - datetime.timedelta(minutes=59)
    )
    by_offset = {(r.minute - base) // datetime.timedelta(minutes=1): r for r in rows}
    # payments acknowledged per minute: A and B at -10 (not the duplicate at -9, not the inquiry)
    assert {k: (r.payments, r.amount) for k, r in by_offset.items() if r.payments} == {
        -10: (2, 2200),
        -8: (1, 1100),
        -3: (1, 1100),
    }
    # applied per minute, with the lag from acknowledgment to ledger entry
    applied = {k: (r.applied, r.lag_average, r.lag_max) for k, r in by_offset.items() if r.applied}
    assert applied == {-10: (2, pytest.approx(3.0), pytest.approx(4.0)), -6: (1, pytest.approx(135.0), 135.0)}
    assert by_offset[-9].lag_average is None and by_offset[-9].lag_max is None
    # waiting at each minute's end: D at -8 and -7, C from -3 to now
    assert {k: r.waiting for k, r in by_offset.items() if r.waiting} == {
        -8: 1,
        -7: 1,
        -3: 1,
        -2: 1,
        -1: 1,
        0: 1,
    }
    assert activity.waiting_now == 1


def test_line_activity_refuses_an_empty_window() -> None:
    with pytest.raises(ValueError, match="minutes must be at least 1"):
        selectors.line_activity(minutes=0)


def svg_of(page: str, chart_id: str) -> ET.Element:
    start = page.rindex("<svg", 0, page.index(f'id="{chart_id}"'))
    return ET.fromstring(page[start : page.index("</svg>", start) + len("</svg>")])  # noqa: S314


def table_rows(page: str, table_id: str) -> list[list[str]]:
    table = page[
        page.index(f'<table id="{table_id}"') : page.index("</table>", page.index(f'<table id="{table_id}"'))
    ]
    body = table[table.index("<tbody>") :]
    return [re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]


def test_the_page_draws_the_hour_with_its_figures(
    staff_client: Client, hour: dict[str, datetime.datetime]
) -> None:
    page = html(staff_client.get("/staff/operations/"))
    a, d, c = hm(hour["A"]), hm(hour["D"]), hm(hour["C"])
    applied_d = hm(hour["D"] + datetime.timedelta(seconds=135))

    # payments per minute: a bar per minute, named by its title and a text summary
    svg = svg_of(page, "payments-chart")
    assert (
        svg.get("role") == "img" and svg.get("aria-labelledby") == "payments-chart-title payments-chart-desc"
    )
    assert svg.get("viewBox") == "0 0 720 300" and svg.get("width") == "100%"
    assert svg.find(f"{SVG}title").text == "Payments per minute, the last 60 minutes"  # type: ignore[union-attr]
    desc = svg.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert "4 payments, 4,400円 in all; at most 2 per minute (" + a + ")." in desc, desc
    bars = svg.findall(f".//{SVG}rect[@class='bar']")
    assert len(bars) == 60
    tallest = [b.find(f"{SVG}title").text for b in bars if float(b.get("height", "0")) > 0]  # type: ignore[union-attr]
    assert tallest == [f"{a}: 2 payments/min", f"{d}: 1 payments/min", f"{c}: 1 payments/min"]
    assert svg.find(f".//{SVG}text[@class='unit']").text == "payments/min"  # type: ignore[union-attr]
    y_labels = [t.text for t in svg.findall(f".//{SVG}g[@class='axis y-axis']/{SVG}text")]
    assert y_labels == ["0", "1", "2"]  # a scale of whole payments, not of the 60 zero minutes
    # its table: only the minutes with payments, newest first
    assert table_rows(page, "payments-chart-table") == [
        [c, "1", "1,100円"],
        [d, "1", "1,100円"],
        [a, "2", "2,200円"],
    ]

    # apply lag: the longest and the average per minute, in seconds; gaps where nothing was applied
    svg = svg_of(page, "lag-chart")
    desc = svg.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert "3 payments from the line applied, 47.0 s after their acknowledgment on average" in desc, desc
    assert f"the longest took 135 s ({applied_d})" in desc
    longest = svg.findall(f".//{SVG}g[@class='series series-1']/{SVG}circle")
    assert [p.find(f"{SVG}title").text for p in longest] == [  # type: ignore[union-attr]
        f"{a}: Longest 4.00 s",
        f"{applied_d}: Longest 135 s",
    ]
    assert [t.text for t in svg.findall(f".//{SVG}g[@class='axis y-axis']/{SVG}text")] == [
        "0",
        "50",
        "100",
        "150",
    ]
    assert table_rows(page, "lag-chart-table") == [[applied_d, "1", "135", "135"], [a, "2", "3.00", "4.00"]]
    assert '<ul class="chart-legend"><li class="series-1">' in page

    # waiting notices at each minute's end: an area, and a table of the minutes with any
    svg = svg_of(page, "waiting-chart")
    desc = svg.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert desc.startswith("1 notice waiting now; at most 1 at the end of a minute"), desc
    assert svg.find(f".//{SVG}polygon[@class='area']") is not None
    rows = table_rows(page, "waiting-chart-table")
    assert [r[1] for r in rows] == ["1"] * len(rows) and rows[-2:] == [
        [hm(hour["D"] + datetime.timedelta(minutes=1)), "1"],
        [d, "1"],
    ]
    assert rows[-3][0] == c

    # messages per minute: the 60-row table is now a chart and a table of the busy minutes only
    assert 'class="rates"' not in page
    rows = table_rows(page, "messages-chart-table")
    assert len(rows) == 6  # -30 (open), -10, -9, -8, -3, and the hour's totals
    assert rows[-1][0] == "60 minutes" and "1200 Payment (消込依頼)" in page

    # the charts draw without inline styles, and the page still reloads itself
    assert "style=" not in page.split("<main", 1)[-1]
    assert 'data-auto-refresh="10"' in page and "js/auto-refresh.js" in page and "css/charts.css" in page
    assert "meta http-equiv" not in page  # axe: meta-refresh cannot be paused (WCAG 2.2.1)
    assert "This page reloads every 10 seconds, but not while a table is open" in page
    quiet = html(staff_client.get("/staff/operations/", {"refresh": "0"}))
    assert "but not while a table is open" not in quiet and "data-auto-refresh" not in quiet


def test_an_hour_without_payments_says_so(staff_client: Client, biller: Biller) -> None:
    page = html(staff_client.get("/staff/operations/"))
    assert 'id="payments-chart"' in page and "<svg" not in page.split('id="payments-chart"')[1][:300]
    assert "No payment arrived on the line in the last 60 minutes" in page
    assert "No payment from the line was applied in the last 60 minutes" in page
    assert "No notice was waiting to be applied at the end of any minute of the last 60 minutes" in page
    assert "No message arrived on the line in the last 60 minutes" in page
    assert (
        'class="chart-svg' not in page and "<table id=" not in page
    )  # no picture of zeros, no table of them


def test_a_message_type_from_the_line_is_escaped(staff_client: Client, biller: Biller) -> None:
    """The messages table's column headers come from the frames' message types: escaped."""
    Message.objects.create(message_type="<b>", outcome=Message.Outcome.FORMAT_ERROR, raw=b"<b>")
    page = html(staff_client.get("/staff/operations/"))
    assert "<b>" not in page.split('id="messages-chart-table"')[1]
