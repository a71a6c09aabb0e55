"""Automatic invoice numbers: the biller's pattern (billing.numbers), the next number and creation with
retry (billing.invoicing), the console's create form and settings page, and the API's invoice create."""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import services
from billing.errors import ValidationFailed
from billing.invoicing import (
    invoice_create_numbered,
    invoice_number_next,
    invoice_number_take,
    invoice_numbering_update,
)
from billing.models import AuditEntry, Biller, Customer, Invoice, InvoiceNumberCounter, Membership
from billing.numbers import (
    INVOICE_NUMBER_PATTERN_DEFAULT,
    InvoiceNumberPattern,
    invoice_number_pattern_errors,
)
from billing.tenancy import cross_tenant, tenant_scope
from tests.factories import make_biller, make_customer, make_invoice, make_member

D = datetime.date
DEC = D(2026, 12, 3)
LINE = {"description": "基本料金", "quantity": 1, "unit_price": 1200, "tax_category": "10"}


def console(biller: Biller, route: str = "") -> str:
    return f"/b/{biller.slug}/console/{route}"


def stored(biller: Biller, *numbers: str, issue_date: D = DEC) -> None:
    customer = make_customer(biller)
    for number in numbers:
        make_invoice(biller=biller, customer=customer, number=number, issue_date=issue_date, published=False)


def invoice_data(customer: Customer, **overrides: Any) -> dict[str, Any]:
    return {
        "customer": customer,
        "issue_date": DEC,
        "due_date": D(2026, 12, 31),
        "description": "12月分",
        "lines": [dict(LINE)],
    } | overrides


# --- the pattern ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("{yyyy}-{mm}-{foo}", "Unknown placeholder {foo}"),
        ("{yyyy}-{mm}-{seq:6}", "Unknown placeholder {seq:6}"),
        ("{yyyy}-{mm}", "needs a sequence number"),
        ("", "needs a sequence number"),
        ("{seq}-{seq:04}", "only one sequence number"),
        ("{seq:013}", "1 to 12 digits"),
        ("INV {seq}", "“ ” cannot be part of an invoice number"),
        ("請求{seq}", "“請求” cannot be part"),
        ("INV-{yyyy-{seq}", "Every { needs its closing }"),
        ("-{seq}", "starts with a letter or a digit"),
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZ{seq:07}", "33 characters long"),
    ],
)
def test_a_bad_pattern_is_refused_saying_why(pattern: str, problem: str) -> None:
    problems = invoice_number_pattern_errors(pattern)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("pattern", "number"),
    [
        ("{yyyy}-{mm}-{seq:06}", "2026-12-000042"),
        ("INV{yy}{mm}{dd}-{seq:04}", "INV261203-0042"),
        ("{seq}", "42"),
        ("A/{yyyy}/{seq:03}.x", "A/2026/042.x"),
    ],
)
def test_a_good_pattern_makes_numbers(pattern: str, number: str) -> None:
    assert invoice_number_pattern_errors(pattern) == []
    assert InvoiceNumberPattern(pattern).number(DEC, 42) == number


def test_the_model_field_defaults_and_refuses_a_bad_pattern(biller: Biller) -> None:
    assert biller.invoice_number_pattern == INVOICE_NUMBER_PATTERN_DEFAULT == "{yyyy}-{mm}-{seq:06}"
    biller.invoice_number_pattern = "{yyyy}-{nn}-{seq}"
    with pytest.raises(ValidationError) as caught:
        biller.full_clean()
    assert "Unknown placeholder {nn}" in str(caught.value.message_dict["invoice_number_pattern"])


# --- the next number -----------------------------------------------------------------------------------


def test_the_first_number_of_a_period_is_1_and_the_next_is_one_more_than_the_highest(biller: Biller) -> None:
    assert invoice_number_next(biller=biller, on=DEC) == "2026-12-000001"
    # typed numbers count when they fit the pattern; others (and other periods) do not
    stored(biller, "2026-12-000041", "2026-12-000007", "2026-12-999", "2026-12-0000099", "X-2026-12-000500")
    stored(biller, "2026-11-000300", issue_date=D(2026, 11, 30))
    assert invoice_number_next(biller=biller, on=DEC) == "2026-12-000042"
    assert invoice_number_next(biller=biller, on=D(2026, 11, 1)) == "2026-11-000301"
    assert invoice_number_next(biller=biller, on=D(2027, 1, 1)) == "2027-01-000001"  # a new month restarts


def test_the_sequence_grows_past_its_width_and_compares_as_a_number(biller: Biller) -> None:
    stored(biller, "2026-12-999999")
    assert invoice_number_next(biller=biller, on=DEC) == "2026-12-1000000"
    stored(biller, "2026-12-1000000")
    assert invoice_number_next(biller=biller, on=DEC) == "2026-12-1000001"
    biller.invoice_number_pattern = "INV-{seq}"
    stored(biller, "INV-9", "INV-10")
    assert invoice_number_next(biller=biller, on=DEC) == "INV-11"


def test_another_billers_numbers_do_not_count(biller: Biller) -> None:
    other = make_biller()
    with cross_tenant("tests"):
        stored(other, "2026-12-000500")
    assert invoice_number_next(biller=biller, on=DEC) == "2026-12-000001"


def test_a_number_too_long_for_an_invoice_is_an_error_naming_the_field(biller: Biller) -> None:
    biller.invoice_number_pattern = "ABCDEFGHIJKLMNOPQRSTUVW-{seq:08}"  # 32 characters at 8 digits
    stored(biller, "ABCDEFGHIJKLMNOPQRSTUVW-99999999")
    with pytest.raises(ValidationFailed) as caught:
        invoice_number_next(biller=biller, on=DEC)
    assert "longer than 32 characters" in caught.value.errors["number"][0]


# --- the counter: one row per period, locked while a number is taken -------------------------------------


def test_numbers_come_from_a_counter_seeded_from_the_stored_numbers(biller: Biller) -> None:
    stored(biller, "2026-12-000041")
    assert invoice_number_take(biller=biller, on=DEC) == "2026-12-000042"  # seeded from the highest
    assert invoice_number_take(biller=biller, on=DEC) == "2026-12-000043"  # taken, never given again
    counter = InvoiceNumberCounter.objects.get(biller=biller)
    assert (counter.scope, counter.last) == ("2026-12-{seq}", 43)
    # a number typed ahead of the counter is skipped when the counter reaches it
    stored(biller, "2026-12-000044")
    assert invoice_number_next(biller=biller, on=DEC) == "2026-12-000045"
    assert invoice_number_take(biller=biller, on=DEC) == "2026-12-000045"
    # another period has its own counter; another biller's counter is not this one's
    assert invoice_number_take(biller=biller, on=D(2027, 1, 5)) == "2027-01-000001"
    other = make_biller()
    with tenant_scope(other):
        assert invoice_number_take(biller=other, on=DEC) == "2026-12-000001"


def test_taking_a_number_reads_no_range_of_invoices(biller: Biller) -> None:
    """Once the period has its counter, the next number is the counter row and exact-number checks: no
    statement reads a range of the biller's invoices (a LIKE or regular expression over the period's
    numbers would cost in proportion to them), and the count of statements does not grow with them."""
    stored(biller, *(f"2026-12-{n:06d}" for n in range(1, 4)))
    invoice_number_take(biller=biller, on=DEC)  # the counter is created here, from the stored numbers

    def statements() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            invoice_number_take(biller=biller, on=DEC)
        return [q["sql"] for q in captured.captured_queries]

    few = statements()
    stored(biller, *(f"2026-12-{n:06d}" for n in range(100, 300)))
    many = statements()
    assert len(many) == len(few) <= 6, many
    reads = [sql for sql in many if '"billing_invoice"' in sql]
    assert reads and all('"billing_invoice"."number" = ' in sql for sql in reads), reads
    assert not [sql for sql in many if "LIKE" in sql.upper() or "REGEXP" in sql.upper() or " ~ " in sql], many


# --- creation with retry -------------------------------------------------------------------------------


def test_a_number_taken_between_reading_and_saving_is_skipped(biller: Biller) -> None:
    """Another creation commits the number this one read before it saves (the race, made to happen):
    the duplicate check refuses it and the next number is used. SQLite and PostgreSQL alike."""
    customer = make_customer(biller)
    tried: list[str] = []

    def create(number: str) -> Invoice:
        tried.append(number)
        if len(tried) == 1:  # the other request wins the race for this number
            services.invoice_create(actor=None, biller=biller, data=invoice_data(customer, number=number))
        return services.invoice_create(actor=None, biller=biller, data=invoice_data(customer, number=number))

    invoice = invoice_create_numbered(create, biller=biller, on=DEC)
    assert tried == ["2026-12-000001", "2026-12-000002"]
    assert invoice.number == "2026-12-000002"
    assert sorted(Invoice.objects.filter(biller=biller).values_list("number", flat=True)) == tried


def test_other_errors_are_not_retried(biller: Biller) -> None:
    customer = make_customer(biller, status=Customer.Status.INACTIVE)
    calls: list[str] = []

    def create(number: str) -> Invoice:
        calls.append(number)
        return services.invoice_create(actor=None, biller=biller, data=invoice_data(customer, number=number))

    with pytest.raises(ValidationFailed) as caught:
        invoice_create_numbered(create, biller=biller, on=DEC)
    assert "customer" in caught.value.errors and calls == ["2026-12-000001"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_get_distinct_numbers_on_postgresql(postgres: None) -> None:
    """Four threads, each its own connection and transaction, create five invoices each at the same time:
    the period's counter row, locked FOR UPDATE while a number is taken, hands out 1…20 once each —
    no number twice, none lost (no creation failed, so no gap)."""
    with cross_tenant("tests"):
        biller = make_biller()
        customer = make_customer(biller)
    start = threading.Barrier(4, timeout=20)
    made: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        def create(number: str) -> Invoice:
            return services.invoice_create(
                actor=None, biller=biller, data=invoice_data(customer, number=number)
            )

        try:
            start.wait()
            numbers = []
            for _ in range(5):
                with tenant_scope(biller):
                    numbers.append(invoice_create_numbered(create, biller=biller, on=DEC).number)
            made[name] = numbers
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(name,)) for name in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = [f"2026-12-{n:06d}" for n in range(1, 21)]
    assert sorted(n for numbers in made.values() for n in numbers) == expected
    with cross_tenant("tests"):
        assert sorted(Invoice.objects.for_biller(biller).values_list("number", flat=True)) == expected
        assert InvoiceNumberCounter.objects.for_biller(biller).get().last == 20


# --- the console's create form -------------------------------------------------------------------------


def form_data(customer: Customer, **fields: str) -> dict[str, str]:
    data = {
        "customer": customer.code,
        "number": "",
        "external_id": "",
        "issue_date": "2026-12-03",
        "due_date": "2026-12-31",
        "description": "12月分電気料金",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "200",
        "lines-0-description": "基本料金",
        "lines-0-quantity": "1",
        "lines-0-unit_price": "1200",
        "lines-0-tax_category": "10",
    }
    return data | fields


def test_the_form_shows_the_next_number_and_numbers_an_empty_one(
    admin_client: Client, biller: Biller
) -> None:
    today = timezone.localdate()
    expected = InvoiceNumberPattern(biller.invoice_number_pattern).number(today, 1)
    page = admin_client.get(console(biller, "invoices/new/")).content.decode()
    assert f"Leave empty to number it automatically: {expected} (for this issue date)." in page
    customer = make_customer(biller)
    stored(biller, "2026-12-000041")
    response = admin_client.post(console(biller, "invoices/new/"), form_data(customer))
    invoice = Invoice.objects.get(biller=biller, customer=customer)
    assert response.status_code == 302 and invoice.number == "2026-12-000042"
    # a number typed is used as it is, and the existing rule (unique per biller) still holds
    response = admin_client.post(console(biller, "invoices/new/"), form_data(customer, number="MINE-1"))
    assert response.status_code == 302 and Invoice.objects.filter(biller=biller, number="MINE-1").exists()
    response = admin_client.post(console(biller, "invoices/new/"), form_data(customer, number="MINE-1"))
    assert response.status_code == 400 and "already exists" in str(response.context["form"].errors["number"])


def test_the_preview_follows_the_issue_date_typed(admin_client: Client, biller: Biller) -> None:
    stored(biller, "2026-11-000009", issue_date=D(2026, 11, 30))
    data = form_data(make_customer(biller), issue_date="2026-11-15", due_date="bad")
    response = admin_client.post(console(biller, "invoices/new/"), data)
    assert response.status_code == 400
    assert "automatically: 2026-11-000010 (for this issue date)" in response.content.decode()


def test_editing_a_draft_still_needs_its_number(admin_client: Client, biller: Biller) -> None:
    invoice = make_invoice(biller=biller, customer=make_customer(biller), number="D-1", published=False)
    data = form_data(invoice.customer) | {"number": ""}
    response = admin_client.post(console(biller, f"invoices/{invoice.pk}/edit/"), data)
    assert response.status_code == 400 and "number" in response.context["form"].errors
    invoice.refresh_from_db()
    assert invoice.number == "D-1"


# --- the console's invoice settings --------------------------------------------------------------------


def test_the_admin_changes_the_pattern_and_it_is_audited(admin_client: Client, biller: Biller) -> None:
    page = admin_client.get(console(biller, "settings/invoices/"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="{yyyy}-{mm}-{seq:06}"' in html
    today = timezone.localdate()
    assert InvoiceNumberPattern("{yyyy}-{mm}-{seq:06}").number(today, 1) in html
    response = admin_client.post(
        console(biller, "settings/invoices/"), {"invoice_number_pattern": " INV{yy}-{seq:05} "}
    )
    assert response.status_code == 302
    biller.refresh_from_db()
    assert biller.invoice_number_pattern == "INV{yy}-{seq:05}"
    entry = AuditEntry.objects.for_biller(biller).get(action="biller.invoice_numbering")
    assert entry.before == {"invoice_number_pattern": "{yyyy}-{mm}-{seq:06}"}
    assert entry.after == {"invoice_number_pattern": "INV{yy}-{seq:05}"}
    # the create form links here and numbers with the new pattern
    form = admin_client.get(console(biller, "invoices/new/")).content.decode()
    assert console(biller, "settings/invoices/") in form
    assert f"automatically: INV{today:%y}-00001" in form


def test_a_bad_pattern_is_refused_on_the_page_and_nothing_changes(
    admin_client: Client, biller: Biller
) -> None:
    response = admin_client.post(
        console(biller, "settings/invoices/"), {"invoice_number_pattern": "{yyyy}-{month}"}
    )
    assert response.status_code == 400
    errors = response.context["form"].errors["invoice_number_pattern"]
    assert any("Unknown placeholder {month}" in e for e in errors)
    assert any("needs a sequence number" in e for e in errors)
    assert 'href="#id_invoice_number_pattern"' in response.content.decode()
    biller.refresh_from_db()
    assert biller.invoice_number_pattern == INVOICE_NUMBER_PATTERN_DEFAULT
    assert not AuditEntry.objects.for_biller(biller).filter(action="biller.invoice_numbering").exists()


def test_an_operator_reads_the_settings_but_cannot_change_them(client: Client, biller: Biller) -> None:
    client.force_login(make_member(biller, role=Membership.Role.OPERATOR))
    page = client.get(console(biller, "settings/invoices/"))
    assert page.status_code == 200 and b'<form method="post"' not in page.content.split(b"<main")[1]
    assert (
        client.post(console(biller, "settings/invoices/"), {"invoice_number_pattern": "X{seq}"}).status_code
        == 403
    )
    biller.refresh_from_db()
    assert biller.invoice_number_pattern == INVOICE_NUMBER_PATTERN_DEFAULT


def test_the_service_refuses_a_bad_pattern(biller: Biller) -> None:
    with pytest.raises(ValidationFailed) as caught:
        invoice_numbering_update(actor=None, biller=biller, pattern="{seq}{seq}")
    assert "only one sequence number" in caught.value.errors["invoice_number_pattern"][0]


# --- the API -------------------------------------------------------------------------------------------


@pytest.fixture
def api(biller: Biller) -> tuple[Client, dict[str, str]]:
    _, token = services.api_key_create(actor=None, biller=biller, name="billing system")
    return Client(), {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def api_create(api: tuple[Client, dict[str, str]], biller: Biller, **body: Any) -> Any:
    client, headers = api
    payload = {
        "customer": "D-1",
        "issue_date": "2026-12-03",
        "due_date": "2026-12-31",
        "description": "12月分",
        "lines": [LINE],
    } | body
    return client.post(
        f"/b/{biller.slug}/api/v1/invoices/", json.dumps(payload), content_type="application/json", **headers
    )


def test_the_api_numbers_an_invoice_without_a_number(api: Any, biller: Biller) -> None:
    make_customer(biller, code="D-1")
    first = api_create(api, biller)
    assert first.status_code == 201, first.content
    assert first.json()["number"] == "2026-12-000001"
    assert api_create(api, biller, number="").json()["number"] == "2026-12-000002"
    assert api_create(api, biller, number="OWN-7").json()["number"] == "OWN-7"
    taken = api_create(api, biller, number="OWN-7")
    assert taken.status_code == 400 and "number" in taken.json()["error"]["fields"]
    assert api_create(api, biller, issue_date="2027-01-05", due_date="2027-01-31").json()["number"] == (
        "2027-01-000001"
    )


def test_the_api_schema_documents_the_automatic_number(client: Client, biller: Biller) -> None:
    doc = client.get(f"/b/{biller.slug}/api/v1/schema/?format=json").json()
    create = doc["paths"]["/api/v1/invoices/"]["post"]
    assert "numbered automatically" in create["description"]
    schema_name = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    schema = doc["components"]["schemas"][schema_name]
    assert "number" not in schema.get("required", [])
    assert "{yyyy}-{mm}-{seq:06}" in schema["properties"]["number"]["description"]
