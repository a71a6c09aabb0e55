"""The reconciliation issue's dashboard, through the browser.

A tenant admin signs in and lands on the console's home: the open, overdue and paid-today figures, the
payments chart (an SVG image with a bar per day) and its data table (folded in a <details>, opened from
the keyboard), open findings by age; at 1280 px and at 390 px the page never scrolls sideways. Then an
iDC staff member opens the reconciliation summary from the staff navigation: the billers with the
oldest open findings first. Set SAVE_SCREENSHOTS=1 to refresh docs/screenshots/.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import Biller, Membership
from reconciliation.models import Finding
from reconciliation.selectors.dashboard import jst_today
from tests import factories
from tests.browser.conftest import pass_second_factor

PASSWORD = "correct horse battery"
ADMIN_EMAIL = "keiri@dashboard-denki.jp"
STAFF_EMAIL = "night@idc.test"


def log_in(page: Any, base: str, email: str) -> None:
    page.goto(base + "/accounts/login/")
    main = page.get_by_role("main")
    main.get_by_label("E-mail").fill(email)
    main.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Log in").click()
    pass_second_factor(page, email)


def no_sideways_scroll(page: Any) -> None:
    sizes = page.evaluate(
        "({doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,"
        " view: window.innerWidth})"
    )
    assert sizes["doc"] <= sizes["view"] and sizes["body"] <= sizes["view"], sizes


def finding(biller: Biller, key: str, amount: int, days_ago: int) -> None:
    Finding.objects.create(
        biller=biller,
        key=key,
        kind=Finding.Kind.DOUBLE_PAYMENT,
        processing_date=timezone.localdate(),
        amount=amount,
        found_at=timezone.now() - datetime.timedelta(days=days_ago),
    )


def tile(page: Any, name: str) -> Any:
    return page.get_by_role("listitem").filter(
        has=page.get_by_role("heading", name=name, level=3, exact=True)
    )


@pytest.mark.parametrize("browser_locale", ["en-US"])
def test_admin_dashboard_and_staff_summary(page: Any, live_server: Any, screenshot: Any) -> None:
    base = live_server.url
    biller = factories.make_biller(legal_name="ダッシュボード電気株式会社")
    admin = factories.make_user(ADMIN_EMAIL, password=PASSWORD, name="経理 花子")
    Membership.objects.create(biller=biller, user=admin, role=Membership.Role.ADMIN)
    factories.make_user(STAFF_EMAIL, password=PASSWORD, name="夜勤 担当", is_idc_staff=True)
    today = jst_today()
    factories.make_invoice(biller=biller, amount=12_000, due_date=today + datetime.timedelta(days=7))
    factories.make_invoice(biller=biller, amount=3_000, due_date=today - datetime.timedelta(days=3))
    paid = factories.make_invoice(biller=biller, amount=20_000, due_date=today + datetime.timedelta(days=7))
    factories.make_payment(paid)
    earlier = factories.make_invoice(biller=biller, amount=5_000)
    factories.make_payment(earlier, paid_at=timezone.now() - datetime.timedelta(days=4))
    finding(biller, "new", 700, 1)
    finding(biller, "old", 1_500, 12)
    # other tenants: never on this biller's page; on the staff summary, the one with the older finding first
    older = factories.make_biller(legal_name="古参商事株式会社")
    finding(older, "ancient", 88_000, 45)
    quiet = factories.make_biller(legal_name="静か物産株式会社")

    # -- the tenant admin lands on the dashboard ----------------------------------------------------------
    log_in(page, base, ADMIN_EMAIL)
    console = f"{base}/b/{biller.slug}/console/"
    expect(page).to_have_url(console)
    main = page.get_by_role("main")
    expect(page.get_by_role("heading", level=1)).to_have_text(biller.legal_name)
    expect(main).to_contain_text(biller.biller_code)
    expect(main).to_contain_text("Administrator")
    overview = page.get_by_role("banner").get_by_role("link", name="Overview", exact=True)
    expect(overview).to_have_attribute("aria-current", "page")

    expect(tile(page, "Open")).to_contain_text("13,200円")
    expect(tile(page, "Open")).to_contain_text("1 invoice, published and not yet due")
    expect(tile(page, "Overdue")).to_contain_text("3,300円")
    expect(tile(page, "Paid today")).to_contain_text("22,000円")
    expect(main).not_to_contain_text("88,000円")

    # the chart: one image named by its title, a bar per day
    chart = main.get_by_role("img", name=re.compile(r"^Payments of the last 30 days"))
    expect(chart).to_be_visible()
    expect(chart.locator("rect.bar")).to_have_count(30)
    box = chart.bounding_box()
    assert box is not None and box["height"] > 100, box
    # its figures as a table, folded until asked for from the keyboard
    table = main.get_by_role("table", name="Payments of the last 30 days")
    expect(table).to_be_hidden()
    summary = main.locator("details.chart-data summary")
    summary.focus()
    page.keyboard.press("Enter")
    expect(table).to_be_visible()
    row = table.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=re.compile(today.isoformat()))
    )
    expect(row.get_by_role("cell").first).to_have_text("22,000円")
    expect(table.get_by_role("row")).to_have_count(31)  # the header and a row per day

    ages = main.get_by_role("table", name=re.compile(r"open findings"))
    expect(ages.get_by_role("row", name=re.compile(r"^0–2 days"))).to_contain_text("700円")
    expect(ages.get_by_role("row", name=re.compile(r"^8–30 days"))).to_contain_text("1,500円")
    expect(ages.get_by_role("row", name=re.compile(r"^All open findings"))).to_contain_text("2,200円")
    no_sideways_scroll(page)
    screenshot(page, "console-dashboard")

    # -- on a 390 px phone: the same page, nothing wider than the screen ---------------------------------
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(chart).to_be_visible()
    no_sideways_scroll(page)
    page.locator("details.chart-data summary").click()
    expect(table).to_be_visible()
    no_sideways_scroll(page)
    chart_box = chart.bounding_box()
    assert chart_box is not None and chart_box["width"] <= 390, chart_box
    screenshot(page, "console-dashboard-phone")

    # -- iDC staff: the summary across tenants, oldest open finding first --------------------------------
    page.context.clear_cookies()
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, base, STAFF_EMAIL)
    expect(page).to_have_url(base + "/staff/")
    page.get_by_role("banner").get_by_role("link", name="Reconciliation", exact=True).click()
    expect(page).to_have_url(base + "/staff/reconciliation/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reconciliation across billers")
    summary_table = page.get_by_role("table", name=re.compile(r"^Open findings, last reconciliation"))
    names = summary_table.locator("tbody th[scope=row] a")
    expect(names).to_have_text([older.legal_name, biller.legal_name, quiet.legal_name])
    first = summary_table.locator("tbody tr").first
    expect(first).to_contain_text("88,000円")
    expect(first).to_contain_text("45 days")
    second = summary_table.locator("tbody tr").nth(1)
    expect(second).to_contain_text("2,200円")
    expect(second).to_contain_text("22,000円")  # paid today
    no_sideways_scroll(page)
    screenshot(page, "staff-reconciliation-summary")
    names.first.click()
    expect(page).to_have_url(f"{base}/staff/billers/{older.pk}/")
