"""The tenant console's invoice, customer and API key pages."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import selectors, services
from billing.models import ApiKey, AuditEntry, Biller, Customer, Invoice, Membership
from tests.factories import make_biller, make_customer, make_invoice, make_member
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db
D = datetime.date

LINES = [
    {"description": "基本料金", "quantity": "1", "unit_price": "1,200", "tax_category": "10"},
    {"description": "電力量料金", "quantity": "300", "unit_price": "31", "tax_category": "10"},
    {"description": "定期購読 新聞", "quantity": "1", "unit_price": "4400", "tax_category": "8"},
]


def console(biller: Biller, path: str = "") -> str:
    return f"/b/{biller.slug}/console/{path}"


def form_data(customer: Customer, lines: list[dict[str, str] | None], rows: int = 5, **fields: str) -> dict:
    """What the browser sends for the invoice form: ``None`` in ``lines`` is a row left empty."""
    data = {
        "customer": customer.code,
        "number": "INV-001",
        "external_id": "",
        "issue_date": "2026-11-01",
        "due_date": "2026-11-30",
        "description": "11月分電気料金",
        "lines-TOTAL_FORMS": str(rows),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "200",
    }
    for i in range(rows):
        line = lines[i] if i < len(lines) else None
        line = line or {"description": "", "quantity": "1", "unit_price": "", "tax_category": "10"}
        data.update({f"lines-{i}-{key}": value for key, value in line.items()})
    data.update(fields)
    return data


def draft(biller: Biller, customer: Customer | None = None, number: str = "INV-001", **data: Any) -> Invoice:
    """A draft of one 1,200 yen line, due 2026-11-30 (tests.factories.make_invoice)."""
    data = {"due_date": D(2026, 11, 30)} | data
    return make_invoice(biller=biller, customer=customer, number=number, amount=1200, published=False, **data)


def bulk_invoices(biller: Biller, customer: Customer, count: int, *, start: int = 0) -> None:
    """Many invoices at once, with their computed fields, and many ties in every sort key."""
    rows = []
    for i in range(start, start + count):
        amount = 1000 + (i % 13) * 100
        rows.append(
            Invoice(
                biller=biller,
                customer=customer,
                number=f"B-{i:04d}",
                issue_date=D(2026, 4, 1) + datetime.timedelta(days=i % 7),
                due_date=D(2026, 5, 1) + datetime.timedelta(days=i % 11),
                description="月額料金",
                lines=[
                    {"description": "月額", "quantity": 1, "unit_price": amount, "tax_category": "10"}
                    | {"amount": amount}
                ],
                tax_rounding="floor",
                subtotal_10=amount,
                tax_10=amount // 10,
                total=amount + amount // 10,
                recipient_name=customer.name,
            )
        )
    Invoice.objects.bulk_create(rows)


def numbers(response: Any) -> list[str]:
    return [inv.number for inv in response.context["page"].rows]


# --- the list ------------------------------------------------------------------------------------------


def test_list_filters(admin_client: Client, biller: Biller) -> None:
    alice = make_customer(biller, code="ALICE", name="有栖 花子")
    bob = make_customer(biller, code="BOB", name="房部 太郎")
    today = timezone.localdate()
    a = draft(biller, alice, "A-1", due_date=today + datetime.timedelta(days=10), issue_date=today)
    b = draft(
        biller,
        bob,
        "B-1",
        issue_date=today - datetime.timedelta(days=40),
        due_date=today - datetime.timedelta(days=5),
        lines=[{"description": "大口", "quantity": 1, "unit_price": 50000, "tax_category": "10"}],
    )
    services.invoice_publish(actor=None, biller=biller, invoice=b)
    b.refresh_from_db()
    draft(make_biller(), None, "A-1")  # another tenant's invoice never shows

    def listed(**params: str) -> list[str]:
        response = admin_client.get(console(biller, "invoices/"), params)
        assert response.status_code == 200
        return sorted(numbers(response))

    assert listed() == ["A-1", "B-1"]
    assert listed(status="draft") == ["A-1"]
    assert listed(status="overdue") == ["B-1"]
    assert listed(customer="ALICE") == ["A-1"]
    assert listed(amount_min="10,000") == ["B-1"]
    assert listed(amount_max="2000") == ["A-1"]
    assert listed(q="房部") == ["B-1"]
    assert listed(q=b.customer_number) == ["B-1"]
    assert listed(due_from=str(today)) == ["A-1"]
    assert listed(due_to=str(today)) == ["B-1"]
    page = admin_client.get(console(biller, "invoices/"), {"status": "overdue"})
    assert b"status-overdue" in page.content and a.number.encode() not in page.content


def test_invalid_filters_name_the_field_and_list_nothing(admin_client: Client, biller: Biller) -> None:
    draft(biller)
    response = admin_client.get(
        console(biller, "invoices/"), {"status": "lost", "amount_min": "lots", "due_from": "yesterday"}
    )
    assert response.status_code == 400
    assert response.context["page"] is None
    form = response.context["form"]
    assert set(form.errors) == {"status", "amount_min", "due_from"}
    html = response.content.decode()
    assert 'class="error-summary"' in html
    assert 'href="#id_status"' in html and 'href="#id_amount_min"' in html and 'href="#id_due_from"' in html
    assert "INV-001" not in html


def test_every_sort_pages_forwards_and_back_without_count(admin_client: Client, biller: Biller) -> None:
    customer = make_customer(biller)
    bulk_invoices(biller, customer, 120)
    other = make_biller()
    bulk_invoices(other, make_customer(other), 5)  # noise of another tenant
    for sort in selectors.INVOICE_SORTS:
        expected = list(
            selectors.invoice_list(biller=biller, filters=selectors.InvoiceFilters(sort=sort)).values_list(
                "number", flat=True
            )
        )
        url = console(biller, f"invoices/?sort={sort}")
        pages: list[list[str]] = []
        while url:
            with CaptureQueriesContext(connection) as queries:
                response = admin_client.get(url)
            assert response.status_code == 200
            assert not any("COUNT(" in q["sql"].upper() and "invoice" in q["sql"] for q in queries)
            pages.append(numbers(response))
            url = response.context["next_url"]
            assert not url or f"sort={sort}" in url
        walked = [n for page in pages for n in page]
        assert walked == expected, sort
        assert len(set(walked)) == 120
        assert [len(p) for p in pages] == [50, 50, 20]
        # and back again from the last page
        back: list[list[str]] = [pages[-1]]
        url = response.context["previous_url"]
        while url:
            response = admin_client.get(url)
            back.append(numbers(response))
            url = response.context["previous_url"]
        assert back[::-1] == pages, sort
        assert response.context["page"].is_first


def test_paging_keeps_the_filters(admin_client: Client, biller: Biller) -> None:
    bulk_invoices(biller, make_customer(biller), 120)
    first = admin_client.get(console(biller, "invoices/"), {"amount_min": "1500", "sort": "total"})
    second = admin_client.get(first.context["next_url"])
    everything = numbers(first) + numbers(second)
    assert len(everything) == len(set(everything))
    assert all(inv.total >= 1500 for inv in second.context["page"].rows)
    assert b'rel="next"' in first.content and b'rel="prev"' in second.content


def test_a_tampered_page_link_says_so(admin_client: Client, biller: Biller) -> None:
    draft(biller)
    response = admin_client.get(console(biller, "invoices/"), {"after": "not-a-cursor"})
    assert response.status_code == 400 and response.context["page"] is None
    assert b"out of date" in response.content


def test_list_rows_have_labelled_checkboxes(admin_client: Client, biller: Biller) -> None:
    draft(biller)
    html = admin_client.get(console(biller, "invoices/")).content.decode()
    assert re.search(r'<label for="select-\d+" class="visually-hidden">Select INV-001</label>', html)
    assert '<th scope="col" role="columnheader">' in html
    assert 'aria-current="page"' in html and ">Invoices</a>" in html


# --- create, edit, errors ------------------------------------------------------------------------------


def test_create_draft_through_the_form_shows_the_totals(admin_client: Client, biller: Biller) -> None:
    customer = make_customer(biller)
    response = admin_client.post(
        console(biller, "invoices/new/"), form_data(customer, [LINES[0], None, *LINES[1:]])
    )
    invoice = Invoice.objects.get(biller=biller)
    assert response.status_code == 302 and response["Location"] == console(biller, f"invoices/{invoice.pk}/")
    assert invoice.status == "draft" and invoice.customer == customer
    assert [line["amount"] for line in invoice.lines] == [1200, 9300, 4400]
    html = admin_client.get(response["Location"]).content.decode()
    assert "16,302円" in html and "1,050円" in html and "352円" in html and "8%※" in html
    assert "Invoice created" in html  # the history


def test_create_and_publish(admin_client: Client, biller: Biller) -> None:
    response = admin_client.post(
        console(biller, "invoices/new/"), form_data(make_customer(biller), LINES[:1], publish="1")
    )
    assert response.status_code == 302
    invoice = Invoice.objects.get(biller=biller)
    assert invoice.status == "published" and invoice.customer_number


def test_form_errors_are_named_and_nothing_is_saved(admin_client: Client, biller: Biller) -> None:
    customer = make_customer(biller)
    bad_rate = {**LINES[1], "tax_category": "12"}
    data = form_data(customer, [LINES[0], bad_rate], description="とても長い料金名" * 3)
    response = admin_client.post(console(biller, "invoices/new/"), data)
    assert response.status_code == 400
    assert "description" in response.context["form"].errors
    assert "tax_category" in response.context["formset"].forms[1].errors
    html = response.content.decode()
    assert 'href="#id_description"' in html and 'href="#id_lines-1-tax_category"' in html
    assert "Line 2 – Tax rate" in html
    assert not Invoice.objects.exists()


def test_service_line_errors_land_on_the_row_that_was_typed(admin_client: Client, biller: Biller) -> None:
    # row 2 (index 1) is empty, so the service sees the bad price as lines[1]: it belongs to row 3
    data = form_data(make_customer(biller), [LINES[0], None, {**LINES[1], "unit_price": "abc"}])
    response = admin_client.post(console(biller, "invoices/new/"), data)
    assert response.status_code == 400
    formset = response.context["formset"]
    assert "unit_price" in formset.forms[2].errors
    assert not formset.forms[1].errors
    assert b'href="#id_lines-2-unit_price"' in response.content
    assert not Invoice.objects.exists()


def test_service_errors_of_the_invoice_land_on_its_fields(admin_client: Client, biller: Biller) -> None:
    customer = make_customer(biller)
    draft(biller, customer, "TAKEN")
    response = admin_client.post(console(biller, "invoices/new/"), form_data(customer, LINES, number="TAKEN"))
    assert response.status_code == 400 and "number" in response.context["form"].errors
    response = admin_client.post(console(biller, "invoices/new/"), form_data(customer, [None, None]))
    assert response.context["formset"].non_form_errors()
    assert b'href="#invoice-lines"' in response.content
    inactive = make_customer(biller, status=Customer.Status.INACTIVE)
    response = admin_client.post(console(biller, "invoices/new/"), form_data(inactive, LINES, number="X"))
    assert "customer" in response.context["form"].errors
    theirs = make_customer(make_biller(), code="THEIRS")
    response = admin_client.post(console(biller, "invoices/new/"), form_data(theirs, LINES, number="Y"))
    assert "customer" in response.context["form"].errors
    assert Invoice.objects.filter(biller=biller).count() == 1


def test_edit_a_draft_but_not_a_published_invoice(admin_client: Client, biller: Biller) -> None:
    invoice = draft(biller)
    page = admin_client.get(console(biller, f"invoices/{invoice.pk}/edit/"))
    assert page.status_code == 200 and page.context["formset"].forms[0].initial["unit_price"] == "1200"
    # the browser sends the old line as row 1 (an initial form); emptying it removes the line
    data = form_data(invoice.customer, [None, *LINES[:2]], rows=6, description="12月分電気料金")
    data["lines-INITIAL_FORMS"] = "1"
    response = admin_client.post(console(biller, f"invoices/{invoice.pk}/edit/"), data)
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.description == "12月分電気料金" and invoice.total == 11550
    assert [line["description"] for line in invoice.lines] == ["基本料金", "電力量料金"]
    services.invoice_publish(actor=None, biller=biller, invoice=invoice)
    assert admin_client.get(console(biller, f"invoices/{invoice.pk}/edit/")).status_code == 409
    response = admin_client.post(console(biller, f"invoices/{invoice.pk}/edit/"), data)
    assert response.status_code == 409 and b"cannot be edited" in response.content
    invoice.refresh_from_db()
    assert invoice.description == "12月分電気料金"


# --- detail: publish, cancel ---------------------------------------------------------------------------


def test_publish_from_the_detail_page_shows_the_numbers(admin_client: Client, biller: Biller) -> None:
    invoice = draft(biller)
    detail = console(biller, f"invoices/{invoice.pk}/")
    assert b"given when the invoice is published" in admin_client.get(detail).content
    response = admin_client.post(console(biller, f"invoices/{invoice.pk}/publish/"))
    assert response.status_code == 302 and response["Location"] == detail
    invoice.refresh_from_db()
    assert invoice.status == "published"
    html = admin_client.get(detail).content.decode()
    assert invoice.customer_number in html and invoice.confirmation_number in html
    assert biller.payee_number in html and "Invoice published" in html
    # publishing twice is refused with a message, and changes nothing
    response = admin_client.post(console(biller, f"invoices/{invoice.pk}/publish/"), follow=True)
    assert b"was not published" in response.content


def test_cancel_with_a_reason(admin_client: Client, biller: Biller) -> None:
    invoice = draft(biller)
    services.invoice_publish(actor=None, biller=biller, invoice=invoice)
    response = admin_client.post(console(biller, f"invoices/{invoice.pk}/cancel/"), {"reason": "x" * 201})
    assert response.status_code == 400 and "reason" in response.context["cancel_form"].errors
    assert b'href="#id_reason"' in response.content
    response = admin_client.post(console(biller, f"invoices/{invoice.pk}/cancel/"), {"reason": "二重請求"})
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == "cancelled" and invoice.cancelled_at
    entry = AuditEntry.objects.get(action="invoice.cancel", target_id=str(invoice.pk))
    assert "二重請求" in entry.summary
    html = admin_client.get(console(biller, f"invoices/{invoice.pk}/")).content.decode()
    assert "二重請求" in html and "Cancel invoice" not in html and "Publish</button>" not in html


def test_cancel_a_draft(admin_client: Client, biller: Biller) -> None:
    invoice = draft(biller)
    response = admin_client.post(console(biller, f"invoices/{invoice.pk}/cancel/"), {"reason": "作成誤り"})
    assert response.status_code == 302  # never a 500: the view reports the refusal as a message
    invoice.refresh_from_db()
    assert invoice.status == "cancelled"


def test_pdf_download(admin_client: Client, biller: Biller) -> None:
    pytest.importorskip("billing.pdf")
    invoice = draft(biller, number="2026/11-1")
    response = admin_client.get(console(biller, f"invoices/{invoice.pk}/pdf/"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="invoice-2026-11-1.pdf"'
    assert response.content.startswith(b"%PDF")


# --- bulk actions --------------------------------------------------------------------------------------


def test_bulk_publish_three_drafts(admin_client: Client, biller: Biller) -> None:
    customer = make_customer(biller)
    drafts = [draft(biller, customer, f"INV-{i}") for i in range(3)]
    response = admin_client.post(
        console(biller, "invoices/bulk/"),
        {"action": "publish", "ids": [d.pk for d in drafts], "return_query": "status=draft&sort=number"},
    )
    assert response.status_code == 302
    assert response["Location"] == console(biller, "invoices/?status=draft&sort=number")
    assert set(Invoice.objects.values_list("status", flat=True)) == {"published"}
    assert b"3 invoices were published" in admin_client.get(response["Location"]).content


def test_bulk_publish_with_one_non_draft_changes_nothing(admin_client: Client, biller: Biller) -> None:
    customer = make_customer(biller)
    drafts = [draft(biller, customer, f"INV-{i}") for i in range(3)]
    services.invoice_publish(actor=None, biller=biller, invoice=drafts[1])
    response = admin_client.post(
        console(biller, "invoices/bulk/"), {"action": "publish", "ids": [d.pk for d in drafts]}, follow=True
    )
    assert b"Nothing was changed" in response.content and b"INV-1 is published" in response.content
    assert sorted(Invoice.objects.values_list("status", flat=True)) == ["draft", "draft", "published"]
    theirs = draft(make_biller(), None, "THEIRS")
    response = admin_client.post(
        console(biller, "invoices/bulk/"),
        {"action": "publish", "ids": [drafts[0].pk, theirs.pk]},
        follow=True,
    )
    assert b"Nothing was changed" in response.content
    assert Invoice.objects.get(pk=theirs.pk).status == "draft"
    assert Invoice.objects.get(pk=drafts[0].pk).status == "draft"


def test_bulk_cancel(admin_client: Client, biller: Biller) -> None:
    customer = make_customer(biller)
    drafts = [draft(biller, customer, f"INV-{i}") for i in range(2)]
    services.invoice_publish_many(actor=None, biller=biller, invoice_ids=[d.pk for d in drafts])
    response = admin_client.post(
        console(biller, "invoices/bulk/"),
        {"action": "cancel", "ids": [d.pk for d in drafts], "reason": "誤り"},
    )
    assert response.status_code == 302
    assert set(Invoice.objects.values_list("status", flat=True)) == {"cancelled"}
    assert AuditEntry.objects.filter(action="invoice.cancel", summary__contains="誤り").count() == 2
    response = admin_client.post(console(biller, "invoices/bulk/"), {"action": "cancel"}, follow=True)
    assert b"Select at least one invoice" in response.content


# --- roles and tenants ---------------------------------------------------------------------------------


def test_operator_reads_but_every_post_is_403(client: Client, biller: Biller) -> None:
    client.force_login(make_member(biller, role=Membership.Role.OPERATOR))
    customer = make_customer(biller)
    invoice = draft(biller, customer)
    key, _token = services.api_key_create(actor=None, biller=biller, name="k")
    page = client.get(console(biller, "invoices/"))
    assert (
        page.status_code == 200 and b'name="ids"' not in page.content and b"New invoice" not in page.content
    )
    assert client.get(console(biller, f"invoices/{invoice.pk}/")).status_code == 200
    assert client.get(console(biller, "customers/")).status_code == 200
    assert client.get(console(biller, "api-keys/")).status_code == 200
    posts = {
        "invoices/new/": form_data(customer, LINES, number="NEW"),
        "invoices/bulk/": {"action": "publish", "ids": [invoice.pk]},
        f"invoices/{invoice.pk}/edit/": form_data(customer, LINES),
        f"invoices/{invoice.pk}/publish/": {},
        f"invoices/{invoice.pk}/cancel/": {"reason": "x"},
        "customers/new/": {"code": "NEW", "name": "新規", "kind": "consumer", "status": "active"},
        f"customers/{customer.pk}/edit/": {"code": "X", "name": "x", "kind": "consumer", "status": "active"},
        "api-keys/": {"name": "mine"},
        f"api-keys/{key.pk}/revoke/": {},
    }
    for path, data in posts.items():
        assert client.post(console(biller, path), data).status_code == 403, path
    invoice.refresh_from_db()
    key.refresh_from_db()
    assert invoice.status == "draft" and Invoice.objects.count() == 1
    assert Customer.objects.count() == 1 and key.is_active and ApiKey.objects.count() == 1


def test_another_tenants_objects_answer_like_missing_ones(admin_client: Client, biller: Biller) -> None:
    other = make_biller()
    theirs = draft(other, None, "THEIRS")
    their_customer = theirs.customer
    their_key, _token = services.api_key_create(actor=None, biller=other, name="theirs")
    for path in ("invoices/{}/", "invoices/{}/edit/", "invoices/{}/pdf/", "customers/{}/edit/"):
        pk = their_customer.pk if path.startswith("customers") else theirs.pk
        assert_cross_tenant_hidden(admin_client, lambda i, p=path: console(biller, p.format(i)), pk)
    assert_cross_tenant_hidden(
        admin_client,
        lambda i: console(biller, f"invoices/{i}/edit/"),
        theirs.pk,
        method="post",
        data=form_data(make_customer(biller), LINES),
    )
    for path, data in (("publish", {}), ("cancel", {"reason": "x"})):
        assert_cross_tenant_hidden(
            admin_client,
            lambda i, p=path: console(biller, f"invoices/{i}/{p}/"),
            theirs.pk,
            method="post",
            data=data,
        )
    assert_cross_tenant_hidden(
        admin_client,
        lambda i: console(biller, f"customers/{i}/edit/"),
        their_customer.pk,
        method="post",
        data={"code": "X", "name": "x", "kind": "consumer", "status": "active"},
    )
    assert_cross_tenant_hidden(
        admin_client, lambda i: console(biller, f"api-keys/{i}/revoke/"), their_key.pk, method="post", data={}
    )
    theirs.refresh_from_db()
    their_customer.refresh_from_db()
    their_key.refresh_from_db()
    assert theirs.status == "draft" and their_customer.code != "X" and their_key.is_active


# --- customers -----------------------------------------------------------------------------------------


def test_customers_search_create_edit(admin_client: Client, biller: Biller) -> None:
    make_customer(biller, code="D-001", name="田中 一郎")
    make_customer(biller, code="D-002", name="鈴木 花子")
    make_customer(make_biller(), code="D-003", name="田中 三郎")
    page = admin_client.get(console(biller, "customers/"), {"q": "田中"})
    assert [c.code for c in page.context["page"]] == ["D-001"]
    response = admin_client.post(
        console(biller, "customers/new/"),
        {
            "code": "D-010",
            "name": "佐藤 次郎",
            "email": "jiro@example.jp",
            "kind": "consumer",
            "status": "active",
        },
    )
    assert response.status_code == 302
    customer = Customer.objects.get(biller=biller, code="D-010")
    assert AuditEntry.objects.filter(action="customer.create", target_id=str(customer.pk)).exists()
    response = admin_client.post(
        console(biller, "customers/new/"),
        {"code": "D-010", "name": "重複", "kind": "consumer", "status": "active"},
    )
    assert response.status_code == 400 and "code" in response.context["form"].errors
    assert b'href="#id_code"' in response.content
    edit = console(biller, f"customers/{customer.pk}/edit/")
    assert admin_client.get(edit).context["form"].initial["name"] == "佐藤 次郎"
    response = admin_client.post(
        edit, {"code": "D-010", "name": "佐藤 二郎", "kind": "corporate", "status": "inactive"}
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.kind, customer.status) == ("佐藤 二郎", "corporate", "inactive")
    response = admin_client.post(edit, {"code": "D-001", "name": "x", "kind": "consumer", "status": "active"})
    assert response.status_code == 400 and "code" in response.context["form"].errors


# --- API keys ------------------------------------------------------------------------------------------


def test_api_key_is_shown_once_works_and_is_revoked(admin_client: Client, biller: Biller) -> None:
    make_customer(biller)
    response = admin_client.post(console(biller, "api-keys/"), {"name": "基幹システム"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    match = re.search(r'value="(pe_[0-9a-f]+_[A-Za-z0-9_\-]+)"', response.content.decode())
    assert match, "the new key is on the page"
    token = match[1]
    assert b"cannot be shown again" in response.content
    listing = admin_client.get(console(biller, "api-keys/"))
    assert token.encode() not in listing.content and "基幹システム".encode() in listing.content

    api = Client()
    url = f"/b/{biller.slug}/api/v1/customers/"
    assert api.get(url, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    key = ApiKey.objects.get(biller=biller)
    response = admin_client.post(console(biller, f"api-keys/{key.pk}/revoke/"))
    assert response.status_code == 302
    assert api.get(url, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
    assert b"Revoked" in admin_client.get(console(biller, "api-keys/")).content


def test_api_key_needs_a_name(admin_client: Client, biller: Biller) -> None:
    response = admin_client.post(console(biller, "api-keys/"), {"name": "  "})
    assert response.status_code == 400 and "name" in response.context["form"].errors
    assert not ApiKey.objects.exists()


def test_nav_marks_the_current_section(admin_client: Client, biller: Biller) -> None:
    invoice = draft(biller)
    html = admin_client.get(console(biller, f"invoices/{invoice.pk}/")).content.decode()
    assert f'href="{console(biller, "invoices/")}" aria-current="true"' in html
    html = admin_client.get(console(biller, "customers/")).content.decode()
    assert f'href="{console(biller, "customers/")}" aria-current="page"' in html
    assert f'href="{console(biller, "members/")}"' in html and f'href="{console(biller)}"' in html
