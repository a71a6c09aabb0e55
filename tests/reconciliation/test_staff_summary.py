"""The iDC staff console's reconciliation summary (reconciliation.staff_views): every tenant's open findings,
oldest first, last run and today's payments; staff only."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Biller
from reconciliation.models import Finding, Run
from reconciliation.selectors import dashboard as selectors
from tests.factories import make_biller, make_invoice, make_member, make_payment

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")
URL = "/staff/reconciliation/"


def finding(biller: Biller, key: str, amount: int, days_ago: float, state: str = "open") -> Finding:
    return Finding.objects.create(
        biller=biller,
        key=key,
        kind=Finding.Kind.PROVISIONAL,
        processing_date=timezone.localdate(),
        amount=amount,
        found_at=timezone.now() - datetime.timedelta(days=days_ago),
        state=state,
    )


@pytest.fixture
def tenants() -> dict[str, Biller]:
    """a: oldest open finding 10 days; b: 40 days (and a closed one of 90); c: none; d: 2 days."""
    t = {name: make_biller(legal_name=f"{name.upper()} 商事株式会社") for name in "abcd"}
    finding(t["a"], "a1", 1000, 10)
    finding(t["a"], "a2", 2500, 1)
    finding(t["b"], "b1", 300, 40)
    finding(t["b"], "b0", 99_999, 90, state=Finding.State.WRITTEN_OFF)
    finding(t["d"], "d1", 70, 2)
    finding(t["c"], "c0", 5_000, 100, state=Finding.State.CLEARED)
    now = timezone.now()
    Run.objects.create(
        biller=t["a"], processing_date=datetime.date(2026, 11, 1), trigger="schedule", started_at=now
    )
    Run.objects.create(
        biller=t["a"],
        processing_date=datetime.date(2026, 10, 31),
        trigger="schedule",
        started_at=now - datetime.timedelta(days=1),
    )
    paid = make_invoice(biller=t["c"], amount=4000)
    make_payment(paid)  # today: 4,400 yen
    make_payment(paid, outcome="reversal", amount=-4400)  # a reversal is not a payment
    old = make_invoice(biller=t["d"], amount=1000)
    make_payment(old, paid_at=now - datetime.timedelta(days=2))  # not today
    return t


def test_tenants_with_the_oldest_open_findings_come_first(
    staff_client: Client, tenants: dict[str, Biller]
) -> None:
    response = staff_client.get(URL, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    rows = [row for row, _age in response.context["rows"]]
    assert [r.biller for r in rows] == [tenants["b"], tenants["a"], tenants["d"], tenants["c"]]
    by = {r.biller.pk: (r, age) for r, age in response.context["rows"]}
    a, a_age = by[tenants["a"].pk]
    assert (a.open_count, a.open_amount, a_age) == (2, 3500, 10)
    assert a.last_run_date == datetime.date(2026, 11, 1) and a.last_run_at is not None
    b, b_age = by[tenants["b"].pk]
    assert (b.open_count, b.open_amount, b_age, b.last_run_at) == (1, 300, 40, None)
    c, c_age = by[tenants["c"].pk]
    assert (c.open_count, c.open_amount, c_age) == (0, 0, None)
    assert c.paid_today == selectors.Tally(1, 4400)
    d, _ = by[tenants["d"].pk]
    assert d.paid_today == selectors.Tally(0, 0)
    assert (response.context["open_count"], response.context["open_amount"]) == (4, 3870)
    page = response.content.decode()
    positions = [page.index(tenants[name].legal_name) for name in "badc"]
    assert positions == sorted(positions)
    assert f'href="/staff/billers/{tenants["b"].pk}/"' in page  # the staff page of the biller
    assert f"/b/{tenants['b'].slug}/console/" not in page  # never the tenant's console
    assert "4,400円" in page and "3,500円" in page
    assert 'aria-current="page"' in page and f'href="{URL}"' in page  # the staff navigation links here


def test_a_fixed_number_of_queries(staff_client: Client, staff_user: object) -> None:
    staff_client.get(URL)
    with CaptureQueriesContext(connection) as few:
        staff_client.get(URL)
    for i in range(3):
        biller = make_biller()
        finding(biller, f"k{i}", 100, i)
        make_payment(make_invoice(biller=biller, amount=100))
    with CaptureQueriesContext(connection) as many:
        assert staff_client.get(URL).status_code == 200
    assert len(few) == len(many)


def test_the_selector_on_a_jst_day_boundary(tenants: dict[str, Biller]) -> None:
    # one second past midnight JST tomorrow, today's payment is no longer today's
    tomorrow = timezone.now().astimezone(TOKYO).date() + datetime.timedelta(days=1)
    midnight = datetime.datetime.combine(tomorrow, datetime.time.min, tzinfo=TOKYO)
    day, rows = selectors.staff_summary(now=midnight)
    assert day == tomorrow
    assert all(r.paid_today == selectors.Tally(0, 0) for r in rows)
    _day, rows = selectors.staff_summary(now=midnight - datetime.timedelta(seconds=1))
    assert sum(r.paid_today.count for r in rows) == 1


def test_staff_only(admin_client: Client, biller: Biller, tenants: dict[str, Biller]) -> None:
    """A tenant admin is refused (403), not shown other tenants' figures; anonymous users log in first."""
    refused = admin_client.get(URL)
    assert refused.status_code == 403
    assert tenants["a"].legal_name not in refused.content.decode()
    operator = Client()
    operator.force_login(make_member(tenants["a"], role="operator"))
    assert operator.get(URL).status_code == 403
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    # and not reachable inside a tenant either
    assert admin_client.get(f"/b/{biller.slug}/staff/reconciliation/").status_code == 404
