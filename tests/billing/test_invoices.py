"""Invoice services: drafts, publication with numbers, immutability, cancellation, credit notes, e-mail."""

import datetime
import itertools

import pytest

from billing import services
from billing.errors import InvalidTransition, ValidationFailed
from billing.models import AuditEntry, Biller, Invoice
from billing.numbers import NumberIssuer, check_digits_valid
from tests.factories import MIXED_RATE_LINES, make_biller, make_credit_note, make_customer

pytestmark = pytest.mark.django_db
D = datetime.date


def invoice_data(customer, **overrides):  # type: ignore[no-untyped-def]
    data = {
        "customer": customer,
        "number": "INV-0001",
        "issue_date": D(2026, 11, 1),
        "due_date": D(2026, 11, 30),
        "description": "11月分電気料金",
        "lines": MIXED_RATE_LINES,
    }
    data.update(overrides)
    return data


def test_create_computes_qualified_invoice_totals(biller: Biller) -> None:
    invoice = services.invoice_create(actor=None, biller=biller, data=invoice_data(make_customer(biller)))
    assert invoice.status == "draft" and invoice.customer_number is None
    assert (invoice.subtotal_10, invoice.tax_10, invoice.subtotal_8, invoice.tax_8) == (
        10500,
        1050,
        4400,
        352,
    )
    assert invoice.total == 16302
    assert [line["amount"] for line in invoice.lines] == [1200, 9300, 4400]


def test_publish_assigns_unique_unguessable_numbers(
    biller: Biller, mailoutbox, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    customer = make_customer(biller, email="payer@example.jp")
    drafts = [
        services.invoice_create(actor=None, biller=biller, data=invoice_data(customer, number=f"INV-{i}"))
        for i in range(30)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        published = services.invoice_publish_many(
            actor=None, biller=biller, invoice_ids=[d.pk for d in drafts]
        )
    numbers = [p.customer_number for p in published]
    confirmations = [p.confirmation_number for p in published]
    assert len(set(numbers)) == 30 and all(check_digits_valid(n) for n in numbers)
    assert all(len(c) == 6 for c in confirmations)
    # not sequential: neighbours' numbers differ by far more than one
    sorted_numbers = [int(n) for n in numbers]
    assert all(abs(a - b) > 1000 for a, b in itertools.pairwise(sorted_numbers))
    assert len(mailoutbox) == 30 and published[0].customer_number in mailoutbox[0].body
    issuer = NumberIssuer(biller.number_key)
    assert [p.customer_number for p in published] == [issuer.customer_number(p.pk) for p in published]


def test_numbers_are_never_reused_across_billers_counters_or_rollbacks(biller: Biller) -> None:
    from django.db import transaction

    customer = make_customer(biller)
    first = services.invoice_create(
        actor=None, biller=biller, data=invoice_data(customer, number="A"), publish=True
    )
    with pytest.raises(RuntimeError), transaction.atomic():
        services.invoice_create(
            actor=None, biller=biller, data=invoice_data(customer, number="B"), publish=True
        )
        raise RuntimeError("roll back after the numbers were reserved")
    second = services.invoice_create(
        actor=None, biller=biller, data=invoice_data(customer, number="C"), publish=True
    )
    assert first.customer_number != second.customer_number
    other = make_biller()
    third = services.invoice_create(
        actor=None, biller=other, data=invoice_data(make_customer(other), number="A"), publish=True
    )
    assert third.customer_number != first.customer_number  # another biller's key


def test_published_invoice_is_immutable(biller: Biller) -> None:
    invoice = services.invoice_create(
        actor=None, biller=biller, data=invoice_data(make_customer(biller)), publish=True
    )
    with pytest.raises(InvalidTransition, match="Only a draft"):
        services.invoice_update_draft(actor=None, biller=biller, invoice=invoice, data={"description": "x"})
    with pytest.raises(InvalidTransition):
        services.invoice_publish(actor=None, biller=biller, invoice=invoice)


def test_cancel_published_then_never_again(biller: Biller) -> None:
    invoice = services.invoice_create(
        actor=None, biller=biller, data=invoice_data(make_customer(biller)), publish=True
    )
    cancelled = services.invoice_cancel(actor=None, biller=biller, invoice=invoice, reason="誤請求")
    assert cancelled.status == "cancelled" and cancelled.customer_number == invoice.customer_number
    with pytest.raises(InvalidTransition):
        services.invoice_cancel(actor=None, biller=biller, invoice=invoice)
    assert AuditEntry.objects.filter(action="invoice.cancel", target_id=str(invoice.pk)).count() == 1


def test_paid_invoice_is_reduced_by_a_credit_note(biller: Biller) -> None:
    invoice = services.invoice_create(
        actor=None, biller=biller, data=invoice_data(make_customer(biller)), publish=True
    )
    Invoice.objects.filter(pk=invoice.pk).update(status="paid")
    with pytest.raises(InvalidTransition, match="credit note"):
        services.invoice_cancel(actor=None, biller=biller, invoice=invoice)
    note = make_credit_note(invoice, number="CN-1", amount=1000)
    assert note.kind == "credit_note" and note.original == invoice
    assert (note.subtotal_10, note.tax_10, note.total) == (1000, 100, 1100)
    assert note.customer_number is None
    with pytest.raises(ValidationFailed, match="more than the invoice"):
        make_credit_note(invoice, number="CN-2", amount=15000, reason="x")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"number": "INV 1"}, "number"),
        ({"description": "あ" * 21}, "description"),
        ({"description": "料金🙂"}, "description"),
        ({"due_date": D(2026, 10, 1)}, "due_date"),
        ({"lines": []}, "lines"),
        (
            {"lines": [{"description": "x", "quantity": 1, "unit_price": 1, "tax_category": "12"}]},
            "lines[0].tax_category",
        ),
        ({"lines": [{"description": "x", "quantity": 1, "unit_price": -5, "tax_category": "10"}]}, "lines"),
    ],
)
def test_bad_invoice_input_names_the_field(biller: Biller, overrides: dict, field: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.invoice_create(
            actor=None, biller=biller, data=invoice_data(make_customer(biller), **overrides)
        )
    assert field in exc.value.errors, exc.value.errors
    assert not Invoice.objects.exists()


def test_duplicate_number_and_foreign_customer_are_refused(biller: Biller) -> None:
    customer = make_customer(biller)
    services.invoice_create(actor=None, biller=biller, data=invoice_data(customer))
    with pytest.raises(ValidationFailed, match="already exists"):
        services.invoice_create(actor=None, biller=biller, data=invoice_data(customer))
    foreign = make_customer(make_biller())
    with pytest.raises(ValidationFailed) as exc:
        services.invoice_create(actor=None, biller=biller, data=invoice_data(foreign, number="X-2"))
    assert "customer" in exc.value.errors


def test_reminders_are_sent_once_within_the_reminder_window(biller: Biller, mailoutbox) -> None:  # type: ignore[no-untyped-def]
    from billing.notifications import due_reminders_send

    customer = make_customer(biller, email="r@example.jp")
    soon = services.invoice_create(
        actor=None,
        biller=biller,
        data=invoice_data(customer, number="S", due_date=D(2026, 12, 3)),
        publish=True,
    )
    services.invoice_create(
        actor=None,
        biller=biller,
        data=invoice_data(customer, number="L", due_date=D(2026, 12, 20)),
        publish=True,
    )
    mailoutbox.clear()
    assert due_reminders_send(today=D(2026, 12, 1)) == 1
    assert due_reminders_send(today=D(2026, 12, 1)) == 0
    assert len(mailoutbox) == 1 and soon.number in mailoutbox[0].subject


def test_payment_numbers_find_the_published_invoice_only(biller: Biller) -> None:
    from billing.selectors import invoice_by_payment_numbers

    customer = make_customer(biller)
    published = services.invoice_create(actor=None, biller=biller, data=invoice_data(customer), publish=True)
    draft = services.invoice_create(actor=None, biller=biller, data=invoice_data(customer, number="D-1"))
    number = published.customer_number
    assert invoice_by_payment_numbers(biller=biller, customer_number=number) == published
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert invoice_by_payment_numbers(biller=biller, customer_number=typo) is None
    assert invoice_by_payment_numbers(biller=make_biller(), customer_number=number) is None
    draft_number = NumberIssuer(biller.number_key).customer_number(draft.pk)
    assert invoice_by_payment_numbers(biller=biller, customer_number=draft_number) is None
