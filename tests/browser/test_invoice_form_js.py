"""The invoice form with JavaScript (static/js/invoice-form.js): rows added and removed in the page, the
keyboard focus in the new row, totals kept up to date in a polite live region and equal to what the
server stores, and an invoice left without a number numbered with the biller's pattern."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing.invoicing import compute_totals
from billing.models import Biller, Invoice, Membership
from billing.numbers import InvoiceNumberPattern
from tests import factories
from tests.browser.conftest import pass_second_factor

EMAIL = "seikyu@test-gas.jp"
PASSWORD = "correct horse battery"


def log_in(page: Any, base_url: str, biller: Biller) -> None:
    user = factories.make_user(EMAIL, password=PASSWORD, name="請求 太郎")
    Membership.objects.create(biller=biller, user=user, role=Membership.Role.ADMIN)
    page.goto(base_url + "/accounts/login/")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    pass_second_factor(page, EMAIL)


def line(page: Any, n: int) -> Any:
    return page.get_by_role("group", name=f"Line {n}", exact=True)


def yen(value: int) -> str:
    return f"{value:,}円"


@pytest.mark.parametrize("browser_locale", ["en-US"])
def test_rows_added_and_removed_with_live_totals_and_an_automatic_number(
    page: Any, live_server: Any, axe_check: Any
) -> None:
    biller = factories.make_biller(legal_name="テストガス株式会社", tax_rounding=Biller.TaxRounding.HALF_UP)
    factories.make_customer(biller, code="G-1", name="佐藤 次郎")
    today = timezone.localdate()
    expected_number = InvoiceNumberPattern(biller.invoice_number_pattern).number(today, 1)
    log_in(page, live_server.url, biller)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live_server.url}/b/{biller.slug}/console/invoices/new/")
    expect(page.get_by_role("heading", name="New invoice", level=1)).to_be_visible()

    number = page.get_by_label("Invoice number")
    expect(number).to_have_value("")
    expect(page.get_by_text(f"Leave empty to number it automatically: {expected_number}")).to_be_visible()
    page.get_by_label("Customer code").fill("G-1")
    page.get_by_label("Due date").fill((today + datetime.timedelta(days=30)).isoformat())
    page.get_by_label("Description shown to payers (料金名)").fill("12月分ガス料金")

    rows = page.locator("fieldset.line-row")
    initial = rows.count()
    line(page, 1).get_by_label("Item").fill("ガス料金 基本")
    line(page, 1).get_by_label("Quantity").fill("3")
    line(page, 1).get_by_label("Unit price (yen)").fill("1,005")

    # -- add two rows: each appears at once, with the focus in its first field ---------------------------
    add = page.get_by_role("button", name="Add a line", exact=True)
    add.click()
    expect(rows).to_have_count(initial + 1)
    new = line(page, initial + 1)
    expect(new.get_by_label("Item")).to_be_focused()
    page.keyboard.type("定期購読 新聞")
    new.get_by_label("Quantity").fill("7")
    new.get_by_label("Unit price (yen)").fill("333")
    new.get_by_label("Tax rate").select_option(label="8% (reduced rate)")
    add.click()
    expect(rows).to_have_count(initial + 2)
    last = line(page, initial + 2)
    expect(last.get_by_label("Item")).to_be_focused()
    page.keyboard.type("値引き")
    last.get_by_label("Unit price (yen)").fill("-15")
    assert page.url.endswith("/invoices/new/")  # no request: the rows were added in the page

    totals = page.locator("[data-totals]")
    expect(totals).to_have_attribute("aria-live", "polite")
    # 3 × 1,005 − 15 = 3,000 at 10 % → 300; 7 × 333 = 2,331 at 8 % → 186.48 → 186 (half up)
    expect(page.locator("[data-total=tax_10]")).to_have_text(yen(300))
    expect(page.locator("[data-total=tax_8]")).to_have_text(yen(186))
    expect(page.locator("[data-total=total]")).to_have_text(yen(3000 + 300 + 2331 + 186))

    # -- remove one: an empty row between them; the rows after it are renumbered --------------------------
    page.get_by_role("button", name="Remove this line (line 2)", exact=True).click()
    expect(rows).to_have_count(initial + 1)
    expect(line(page, 2).get_by_label("Item")).to_be_focused()  # the row that took its place
    expect(line(page, initial).get_by_label("Item")).to_have_value("定期購読 新聞")
    expect(line(page, initial + 1).get_by_label("Item")).to_have_value("値引き")
    expect(
        page.get_by_role("button", name=f"Remove this line (line {initial + 1})", exact=True)
    ).to_be_visible()
    expect(
        page.get_by_role("button", name=f"Remove this line (line {initial + 2})", exact=True)
    ).to_have_count(0)
    expect(page.locator("[data-line-status]")).to_have_text("Line 2 was removed.")
    expect(page.locator("input[name='lines-TOTAL_FORMS']")).to_have_value(str(initial + 1))

    assert errors == []  # no script error, nothing the CSP refused
    axe_check(page, "the invoice form after adding and removing rows")
    errors.clear()  # axe_inject tries a script tag first, which the CSP refuses (tests/browser/conftest.py)

    # prices including tax: the same sums, the tax taken out of them
    page.get_by_label("Prices include tax").check()
    inclusive = compute_totals(
        [{"tax_category": "10", "amount": 3000}, {"tax_category": "8", "amount": 2331}],
        rounding="half_up",
        tax_inclusive=True,
    )
    expect(page.locator("[data-total=tax_10]")).to_have_text(yen(inclusive.tax_10))
    expect(page.locator("[data-total=subtotal_8]")).to_have_text(yen(inclusive.subtotal_8))
    expect(page.locator("[data-subtotal-heading]")).to_have_text("Amount excluding tax")
    page.get_by_label("Prices include tax").uncheck()
    live = {
        name: page.locator(f"[data-total={name}]").inner_text()
        for name in ("subtotal_10", "tax_10", "subtotal_8", "tax_8", "subtotal_exempt", "total")
    }

    # -- save: the server stores what the page showed, numbered by the pattern -------------------------------
    page.get_by_role("button", name="Save as draft", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(
        f"Invoice {expected_number} was saved as a draft."
    )
    invoice = Invoice.objects.get(biller=biller)
    assert invoice.number == expected_number
    assert re.fullmatch(r"\d{4}-\d{2}-\d{6}", invoice.number)
    assert [li["description"] for li in invoice.lines] == ["ガス料金 基本", "定期購読 新聞", "値引き"]
    stored = {
        "subtotal_10": yen(invoice.subtotal_10),
        "tax_10": yen(invoice.tax_10),
        "subtotal_8": yen(invoice.subtotal_8),
        "tax_8": yen(invoice.tax_8),
        "subtotal_exempt": yen(invoice.subtotal_exempt),
        "total": yen(invoice.total),
    }
    assert live == stored
    assert errors == []


def test_without_javascript_a_row_is_added_by_the_server_and_enter_saves(
    browser: Any, live_server: Any
) -> None:
    """The same form with JavaScript off: "Add a line" asks the server for the form again, one row more,
    the focus in it; Enter in a field saves (the form's default button), numbered by the pattern."""
    biller = factories.make_biller(legal_name="テスト水道株式会社")
    factories.make_customer(biller, code="W-1", name="高橋 三郎")
    today = timezone.localdate()
    context = browser.new_context(locale="en-US", java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        log_in(page, live_server.url, biller)
        page.goto(f"{live_server.url}/b/{biller.slug}/console/invoices/new/")
        rows = page.locator("fieldset.line-row")
        initial = rows.count()
        page.get_by_label("Customer code").fill("W-1")
        page.get_by_label("Due date").fill((today + datetime.timedelta(days=30)).isoformat())
        page.get_by_label("Description shown to payers (料金名)").fill("12月分水道料金")
        line(page, 1).get_by_label("Item").fill("水道料金")
        line(page, 1).get_by_label("Unit price (yen)").fill("2,000")
        page.get_by_role("button", name="Add a line", exact=True).click()
        expect(rows).to_have_count(initial + 1)
        expect(line(page, initial + 1).get_by_label("Item")).to_be_focused()  # autofocus
        expect(line(page, 1).get_by_label("Item")).to_have_value("水道料金")  # kept
        expect(page.get_by_label("Customer code")).to_have_value("W-1")
        expect(page.locator("[data-total=total]")).to_have_text(yen(2200))  # the server's totals
        page.keyboard.type("下水道料金")
        line(page, initial + 1).get_by_label("Unit price (yen)").fill("1,000")
        line(page, initial + 1).get_by_label("Unit price (yen)").press("Enter")
        number = InvoiceNumberPattern(biller.invoice_number_pattern).number(today, 1)
        expect(page.get_by_role("status").first).to_contain_text(f"Invoice {number} was saved as a draft.")
        invoice = Invoice.objects.get(biller=biller)
        assert (invoice.number, invoice.status, invoice.total) == (number, "draft", 3300)
    finally:
        context.close()
