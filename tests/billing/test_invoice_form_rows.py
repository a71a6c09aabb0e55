"""The invoice form without JavaScript: "Add a line" and "Remove this line (line n)" are submit buttons the
server answers with the form again (what was typed kept, nothing saved); the totals shown are the
server's (billing.invoicing.totals_preview, the rule static/js/invoice-form.js mirrors)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from billing.invoicing import LineError, clean_line, compute_totals, totals_preview
from billing.models import Biller, Customer, Invoice
from tests.factories import make_customer, make_invoice

pytestmark = pytest.mark.django_db


def console(biller: Biller, route: str = "") -> str:
    return f"/b/{biller.slug}/console/{route}"


def form_data(customer: Customer, rows: list[dict[str, str]], **fields: str) -> dict[str, str]:
    data = {
        "customer": customer.code,
        "number": "",
        "external_id": "",
        "issue_date": "2026-12-03",
        "due_date": "2026-12-31",
        "description": "12月分",
        "lines-TOTAL_FORMS": str(len(rows)),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "200",
    }
    for i, row in enumerate(rows):
        data.update({f"lines-{i}-{k}": v for k, v in row.items()})
    return data | fields


def row(description: str = "", quantity: str = "1", unit_price: str = "", tax: str = "10") -> dict[str, str]:
    return {"description": description, "quantity": quantity, "unit_price": unit_price, "tax_category": tax}


def values(response: Any, name: str) -> list[str]:
    return [f[name].value() or "" for f in response.context["formset"].forms]  # an empty row: None


def test_add_a_line_without_javascript_keeps_what_was_typed(admin_client: Client, biller: Biller) -> None:
    customer = make_customer(biller)
    rows = [row("基本料金", "1", "1,200"), row("新聞", "2", "2200", "8")]
    response = admin_client.post(
        console(biller, "invoices/new/"), form_data(customer, rows, add_line="1", description="12月分!")
    )
    assert response.status_code == 200
    assert not Invoice.objects.exists()  # nothing saved
    assert values(response, "description") == ["基本料金", "新聞", ""]
    assert values(response, "unit_price") == ["1,200", "2200", ""]
    assert values(response, "tax_category") == ["10", "8", "10"]
    html = response.content.decode()
    assert 'name="lines-TOTAL_FORMS" value="3"' in html
    # no error summary for a form not yet submitted, and the new row's first field has the focus
    assert 'id="error-summary"' not in html
    assert re.search(r'<input[^>]*name="lines-2-description"[^>]*autofocus', html)
    assert 'value="12月分!"' in html  # the invoice's own fields too
    # the totals shown are the server's: 1,200 at 10 % and 4,400 at 8 %, tax rounded down per rate
    assert re.search(r'data-total="tax_10">120円<', html) and re.search(r'data-total="tax_8">352円<', html)
    assert re.search(r'data-total="total">6,072円<', html)
    # saving that form (the third row left empty) stores what the totals said
    saved = admin_client.post(
        console(biller, "invoices/new/"), form_data(customer, [*rows, row()], save="1", number="R-1")
    )
    assert saved.status_code == 302
    invoice = Invoice.objects.get(biller=biller, number="R-1")
    assert (invoice.tax_10, invoice.tax_8, invoice.total) == (120, 352, 6072)


def test_remove_a_line_without_javascript(admin_client: Client, biller: Biller) -> None:
    customer = make_customer(biller)
    rows = [row("一", "1", "100"), row("二", "1", "200"), row("三", "1", "300")]
    response = admin_client.post(console(biller, "invoices/new/"), form_data(customer, rows, remove_line="1"))
    assert response.status_code == 200 and not Invoice.objects.exists()
    assert values(response, "description") == ["一", "三"]
    html = response.content.decode()
    assert "Remove this line (line 2)" in html and "Remove this line (line 3)" not in html
    assert re.search(r'<input[^>]*name="lines-1-description"[^>]*autofocus', html)
    assert re.search(r'data-total="total">440円<', html)
    # the last row removed leaves one empty row; a bad index changes nothing
    one = admin_client.post(console(biller, "invoices/new/"), form_data(customer, rows[:1], remove_line="0"))
    assert values(one, "description") == [""]
    same = admin_client.post(console(biller, "invoices/new/"), form_data(customer, rows, remove_line="9"))
    assert values(same, "description") == ["一", "二", "三"]


def test_rows_of_a_draft_are_added_and_removed_the_same_way(admin_client: Client, biller: Biller) -> None:
    invoice = make_invoice(biller=biller, customer=make_customer(biller), number="D-1", published=False)
    data = form_data(invoice.customer, [row("基本料金", "1", "1000")], number="D-1", add_line="1")
    data["lines-INITIAL_FORMS"] = "1"
    response = admin_client.post(console(biller, f"invoices/{invoice.pk}/edit/"), data)
    assert response.status_code == 200 and values(response, "description") == ["基本料金", ""]
    invoice.refresh_from_db()
    assert invoice.lines[0]["amount"] == 1000 and len(invoice.lines) == 1


def test_the_page_is_built_for_the_script_and_works_without_it(admin_client: Client, biller: Biller) -> None:
    html = admin_client.get(console(biller, "invoices/new/")).content.decode()
    assert re.search(r'<script src="[^"]*js/invoice-form\.js" defer></script>', html)
    assert "<script>" not in html and not re.search(r"\son[a-z]+=", html)  # CSP: no inline code
    form = html[html.index('<form method="post" novalidate data-invoice-form') :]
    # Enter in a field saves: the form's first submit button is a hidden "save", not a line button
    first_button = re.search(r"<button[^>]*>", form)
    assert first_button and 'name="save"' in first_button[0] and 'tabindex="-1"' in first_button[0]
    assert f'data-tax-rounding="{biller.tax_rounding}"' in form
    assert '<button type="submit" name="add_line" value="1" data-add-line>Add a line</button>' in form
    assert (
        '<button type="submit" name="remove_line" value="0" data-remove-line>Remove this line (line 1)'
        in form
    )
    # the row the script copies, with the placeholders it fills in
    template = form[form.index('<template id="line-template">') : form.index("</template>")]
    assert 'name="lines-__prefix__-description"' in template and "Line __num__" in template
    assert re.search(r'<div aria-live="polite" data-totals>', form)


@pytest.mark.parametrize("rounding", ["floor", "half_up", "ceiling"])
@pytest.mark.parametrize("tax_inclusive", [False, True])
def test_the_preview_is_the_rule_the_service_stores(rounding: str, tax_inclusive: bool) -> None:
    lines = [
        {"quantity": "3", "unit_price": "1,005", "tax_category": "10"},
        {"quantity": "7", "unit_price": "333", "tax_category": "8"},
        {"unit_price": "-15", "tax_category": "10"},  # quantity left empty: 1
        {"quantity": "1", "unit_price": "999", "tax_category": "exempt"},
    ]
    stored = [
        {"tax_category": "10", "amount": 3015},
        {"tax_category": "8", "amount": 2331},
        {"tax_category": "10", "amount": -15},
        {"tax_category": "exempt", "amount": 999},
    ]
    assert totals_preview(lines, rounding=rounding, tax_inclusive=tax_inclusive) == compute_totals(
        stored, rounding=rounding, tax_inclusive=tax_inclusive
    )
    assert (
        totals_preview([{"quantity": "0", "unit_price": "1", "tax_category": "10"}], rounding=rounding)
        is None
    )
    assert (
        totals_preview([{"quantity": "1", "unit_price": "1.5", "tax_category": "10"}], rounding=rounding)
        is None
    )
    assert (
        totals_preview([{"quantity": "1", "unit_price": "-1", "tax_category": "8"}], rounding=rounding)
        is None
    )


def test_a_doubled_minus_is_a_clear_line_error_not_a_crash() -> None:
    with pytest.raises(LineError) as caught:
        clean_line({"description": "x", "quantity": "1", "unit_price": "--5", "tax_category": "10"})
    assert caught.value.field == "unit_price"
    assert totals_preview([{"unit_price": "--5", "tax_category": "10"}], rounding="floor") is None
    assert (
        clean_line({"description": "x", "unit_price": "１，２００".replace("，", ","), "tax_category": "10"})[
            "amount"
        ]
        == 1200
    )  # full-width digits, as before (static/js/invoice-form.js reads them too)
