"""The console's home (reconciliation.views.dashboard): exact figures for a constructed dataset, JST day
boundaries, a fixed number of queries, the chart and its table, and another tenant's rows never counted."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from html import escape
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from billing import services
from billing.models import Biller, Customer, Invoice, Membership
from reconciliation.models import Finding, Run
from reconciliation.selectors import dashboard as selectors
from tests.factories import make_biller, make_invoice, make_member, make_payment

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")
SVG = "{http://www.w3.org/2000/svg}"
TODAY = datetime.date(2026, 12, 3)
NOW = datetime.datetime(2026, 12, 3, 0, 30, tzinfo=TOKYO)  # 2026-12-02 15:30 UTC: the UTC date is yesterday


def jst(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, minute, second, tzinfo=TOKYO)


def finding(
    biller: Biller, key: str, amount: int, found_at: datetime.datetime, state: str = "open"
) -> Finding:
    return Finding.objects.create(
        biller=biller,
        key=key,
        kind=Finding.Kind.DOUBLE_PAYMENT,
        processing_date=found_at.date(),
        amount=amount,
        found_at=found_at,
        state=state,
    )


def build(biller: Biller) -> dict[str, Invoice]:
    """The dataset of the figures below (amounts are before 10 % tax: 1,000 → 1,100 yen)."""
    inv = {
        "due_today": make_invoice(biller=biller, amount=1000, due_date=TODAY),  # open: due today
        "due_later": make_invoice(biller=biller, amount=2000, due_date=datetime.date(2026, 12, 31)),
        "overdue": make_invoice(biller=biller, amount=3000, due_date=datetime.date(2026, 12, 2)),
        "paid_today": make_invoice(biller=biller, amount=4000, due_date=datetime.date(2026, 12, 2)),
        "paid_yesterday": make_invoice(biller=biller, amount=5000),
    }
    make_invoice(biller=biller, amount=6000, published=False)  # a draft: owed by nobody
    cancelled = make_invoice(biller=biller, amount=7000, due_date=datetime.date(2026, 11, 30))
    services.invoice_cancel(actor=None, biller=biller, invoice=cancelled)
    # paid at the first instant of the JST day (15:00 UTC the day before) and at the last of the day before
    make_payment(inv["paid_today"], paid_at=jst(2026, 12, 3, 0, 0, 0))
    make_payment(inv["paid_yesterday"], paid_at=jst(2026, 12, 2, 23, 59, 59))
    make_payment(inv["paid_yesterday"], outcome="reversal", amount=-500, paid_at=jst(2026, 12, 2, 12, 0))
    # the chart's window: 2026-11-04 (today - 29) .. today
    make_payment(inv["paid_today"], outcome="double_payment", amount=700, paid_at=jst(2026, 11, 4, 0, 0))
    make_payment(
        inv["paid_today"], outcome="double_payment", amount=800, paid_at=jst(2026, 11, 3, 23, 59, 59)
    )
    # a credit note on the invoice paid today is owed by the biller, not to it: never counted
    services.credit_note_issue(
        actor=None,
        biller=biller,
        invoice=inv["paid_today"],
        number=f"CN-{biller.pk}",
        reason="値引き",
        lines=[{"description": "値引き", "quantity": 1, "unit_price": 100, "tax_category": "10"}],
    )
    finding(biller, "a", 100, jst(2026, 12, 1, 0, 0))  # 2 days old
    finding(biller, "b", 50, jst(2026, 12, 3, 0, 10))  # today
    finding(biller, "c", 200, jst(2026, 11, 30, 23, 59))  # 3 days
    finding(biller, "d", 300, jst(2026, 11, 26, 0, 0))  # 7 days
    finding(biller, "e", 400, jst(2026, 11, 25, 23, 59))  # 8 days
    finding(biller, "f", 500, jst(2026, 11, 3, 0, 0))  # 30 days
    finding(biller, "g", 600, jst(2026, 11, 2, 23, 59))  # 31 days
    finding(biller, "h", 999, jst(2026, 12, 2, 0, 0), state=Finding.State.MATCHED)  # closed
    return inv


def noise(biller: Biller) -> None:
    """Another tenant's rows of every kind, on the same days."""
    make_invoice(biller=biller, amount=90_000, due_date=TODAY)
    make_invoice(biller=biller, amount=90_000, due_date=datetime.date(2026, 12, 1))
    paid = make_invoice(biller=biller, amount=90_000)
    make_payment(paid, paid_at=jst(2026, 12, 3, 0, 5))
    finding(biller, "x", 90_000, jst(2026, 12, 2, 0, 0))
    finding(biller, "y", 90_000, jst(2026, 10, 1, 0, 0))
    Run.objects.create(biller=biller, processing_date=TODAY, trigger=Run.Trigger.SCHEDULE, started_at=NOW)


def test_figures_are_exact_for_the_dataset_and_per_tenant(biller: Biller, other_biller: Biller) -> None:
    build(biller)
    noise(other_biller)
    Run.objects.create(
        biller=biller,
        processing_date=datetime.date(2026, 11, 30),
        trigger="schedule",
        started_at=jst(2026, 12, 1, 6),
    )
    latest = Run.objects.create(
        biller=biller,
        processing_date=datetime.date(2026, 12, 1),
        trigger="user",
        started_at=jst(2026, 12, 2, 9),
        found=3,
        open_total=7,
    )

    data = selectors.dashboard_read(biller=biller, now=NOW)

    assert data.today == TODAY
    t = selectors.Tally
    assert data.invoices == selectors.InvoiceFigures(
        open=t(2, 1100 + 2200), overdue=t(1, 3300), paid_today=t(1, 4400)
    )
    by_day = {d.day: d for d in data.payments}
    assert len(data.payments) == 30 and data.payments[0].day == datetime.date(2026, 11, 4)
    assert data.payments[-1].day == TODAY
    assert [d.day for d in data.payments] == sorted(by_day)
    assert (by_day[TODAY].count, by_day[TODAY].amount) == (1, 4400)
    yesterday = by_day[datetime.date(2026, 12, 2)]
    assert (yesterday.count, yesterday.amount, yesterday.reversals, yesterday.reversed_amount) == (
        1,
        5500,
        1,
        500,
    )
    assert yesterday.net == 5000
    assert (by_day[datetime.date(2026, 11, 4)].count, by_day[datetime.date(2026, 11, 4)].amount) == (1, 700)
    assert sum(d.count for d in data.payments) == 3 and data.payments_total == t(3, 4400 + 5500 + 700)
    assert [(b.key, b.count, b.amount) for b in data.ages] == [
        ("0-2", 2, 150),
        ("3-7", 2, 500),
        ("8-30", 2, 900),
        ("31+", 1, 600),
    ]
    assert data.open_findings == t(7, 2150)
    assert data.last_run == latest
    assert data.counts["customers"] == Customer.objects.filter(biller=biller).count() == 7


def test_paid_today_follows_the_jst_day_not_utc(biller: Biller) -> None:
    inv = make_invoice(biller=biller, amount=1000)
    make_payment(inv, paid_at=jst(2026, 12, 3, 23, 59, 59))
    # at 23:59:59 JST on the 3rd it is "today"; one second later (00:00 JST on the 4th, still the 3rd in
    # UTC) it is not
    late = selectors.dashboard_read(biller=biller, now=jst(2026, 12, 3, 23, 59, 59))
    assert late.invoices.paid_today == selectors.Tally(1, 1100)
    next_day = selectors.dashboard_read(biller=biller, now=jst(2026, 12, 4, 0, 0, 0))
    assert next_day.today == datetime.date(2026, 12, 4)
    assert next_day.invoices.paid_today == selectors.Tally(0, 0)
    assert next_day.payments[-2].day == datetime.date(2026, 12, 3) and next_day.payments[-2].amount == 1100


def test_a_fixed_number_of_queries_whatever_the_volume(biller: Biller, other_biller: Biller) -> None:
    with CaptureQueriesContext(connection) as empty:
        selectors.dashboard_read(biller=biller, now=NOW)
    build(biller)
    noise(other_biller)
    with CaptureQueriesContext(connection) as full:
        selectors.dashboard_read(biller=biller, now=NOW)
    assert len(empty) == len(full) == 6, [q["sql"] for q in full.captured_queries]


def console(biller: Biller) -> str:
    return f"/b/{biller.slug}/console/"


def test_the_home_page_shows_the_figures_chart_and_table(
    admin_client: Client, biller: Biller, other_biller: Biller
) -> None:
    today = selectors.jst_today()
    make_invoice(biller=biller, amount=12_000, due_date=today + datetime.timedelta(days=5))
    make_invoice(biller=biller, amount=3_000, due_date=today - datetime.timedelta(days=1))
    paid = make_invoice(biller=biller, amount=20_000, due_date=today + datetime.timedelta(days=5))
    make_payment(paid)
    finding(biller, "k1", 777, timezone.now() - datetime.timedelta(days=10))
    make_invoice(biller=other_biller, amount=50_000, due_date=today + datetime.timedelta(days=5))
    finding(other_biller, "k1", 55_555, timezone.now() - datetime.timedelta(days=10))

    response = admin_client.get(console(biller))

    assert response.status_code == 200
    assert response.templates[0].name == "reconciliation/dashboard/home.html"
    match = response.wsgi_request.resolver_match
    assert match is not None and match.view_name == "console:home"
    page = response.content.decode()
    data = response.context["dashboard"]
    assert data.invoices.open == selectors.Tally(1, 13_200)
    assert data.invoices.overdue == selectors.Tally(1, 3_300)
    assert data.invoices.paid_today == selectors.Tally(1, 22_000)
    assert data.open_findings == selectors.Tally(1, 777)
    for text in ("13,200円", "3,300円", "22,000円", "777円", biller.biller_code, biller.payee_number):
        assert text in page
    assert "55,555円" not in page and "55,000円" not in page
    # the chart: an SVG with a bar per day, and the same figures as a table
    start = page.index("<svg")
    svg = ET.fromstring(page[start : page.index("</svg>", start) + len("</svg>")])  # noqa: S314
    assert svg.get("role") == "img" and len(svg.findall(f".//{SVG}rect[@class='bar']")) == 30
    assert '<details class="chart-data">' in page and "<caption" in page
    assert f'<th scope="row">{today:%Y-%m-%d}' in page
    # the facts kept from the old home
    assert response.context["membership"].get_role_display() in page


def test_query_count_of_the_page_does_not_grow(admin_client: Client, biller: Biller) -> None:
    admin_client.get(console(biller))  # warm up (session, language)
    with CaptureQueriesContext(connection) as empty:
        assert admin_client.get(console(biller)).status_code == 200
    build(biller)
    for _ in range(3):
        make_payment(make_invoice(biller=biller, amount=1000))
    with CaptureQueriesContext(connection) as full:
        assert admin_client.get(console(biller)).status_code == 200
    assert len(empty) == len(full)


def test_age_buckets_link_to_the_filtered_queue(admin_client: Client, biller: Biller) -> None:
    finding(biller, "old", 1234, timezone.now() - datetime.timedelta(days=40))
    response = admin_client.get(console(biller))
    ages = response.context["ages"]
    assert [b.key for b, _label, _href in ages] == ["0-2", "3-7", "8-30", "31+"]
    try:
        queue = reverse("console:finding_list", urlconf="config.urls_tenant")
    except NoReverseMatch:
        assert all(href is None for _b, _label, href in ages) and response.context["all_open_url"] is None
        pytest.skip("the findings queue (console:finding_list) is not there yet")
    hrefs = {b.key: href for b, _label, href in ages}
    prefix = f"/b/{biller.slug}{queue}"
    assert hrefs["31+"] == f"{prefix}?state=open&age=31%2B"
    assert hrefs["0-2"] == f"{prefix}?state=open&age=0-2"
    assert response.context["all_open_url"] == f"{prefix}?state=open"
    page = response.content.decode()
    assert f'<a href="{escape(hrefs["31+"])}">' in page  # a bucket with findings links to them
    assert f'<a href="{escape(hrefs["0-2"])}">' not in page  # an empty one does not


def test_the_onboarding_notice_and_the_role(client: Client) -> None:
    biller = make_biller(status=Biller.Status.ONBOARDING)
    client.force_login(make_member(biller, role=Membership.Role.OPERATOR))
    page = client.get(console(biller), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "This biller is being onboarded" in page
    assert "Operator (read-only)" in page
    active = client.get(console(make_biller()), HTTP_ACCEPT_LANGUAGE="en")
    assert active.status_code == 404  # not a member there


def test_another_tenants_console_is_404(admin_client: Client, other_biller: Biller) -> None:
    make_invoice(biller=other_biller, amount=1000)
    assert admin_client.get(console(other_biller)).status_code == 404


def test_anonymous_is_sent_to_log_in(client: Client, biller: Biller) -> None:
    response = client.get(console(biller))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
