"""Applying notices to the ledger: paid, provisional, double payment, reversal; once each, per tenant."""

from __future__ import annotations

import pytest

from billing.models import Biller, Invoice, InvoicePayment, Receipt
from payeasy.models import LedgerEntry, Notice
from payeasy.services.payments import notices_apply, refund_due
from tests.payeasy import line_helpers as h

pytestmark = pytest.mark.django_db


send = h.send


@pytest.fixture
def biller() -> Biller:
    return h.open_line_biller()


@pytest.fixture
def invoice(biller: Biller) -> Invoice:
    return h.published_invoice(biller, price=3000)


def entries(invoice: Invoice | None = None) -> list[tuple[str, str, int]]:
    rows = LedgerEntry.objects.order_by("id")
    if invoice is not None:
        rows = rows.filter(invoice=invoice)
    return list(rows.values_list("outcome", "reason", "amount"))


def test_payment_pays_the_bill_once(  # type: ignore[no-untyped-def]
    biller: Biller, invoice: Invoice, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    send(h.payment(biller, invoice))
    with django_capture_on_commit_callbacks(execute=True):
        result = notices_apply()
    assert result.applied == 1
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.paid_at is not None
    assert entries(invoice) == [("paid", "", 3300)]
    with django_capture_on_commit_callbacks(execute=True):
        assert notices_apply().applied == 0  # nothing waits any more
    from billing import tasks

    payment = InvoicePayment.objects.get()  # billing's record of it, written with the ledger entry
    assert (payment.invoice_id, payment.outcome, payment.amount) == (invoice.pk, "paid", 3300)
    assert payment.entry_ref == LedgerEntry.objects.get().pk
    assert tasks.receipts_send.run([payment.pk]) == 0  # run twice: sent once
    assert Receipt.objects.get().payment == payment
    assert Notice.objects.get().applied_at is not None
    assert [m.to for m in mailoutbox] == [[invoice.recipient_email]]  # the receipt, once
    assert "3,300" in mailoutbox[0].body and Notice.objects.get().transaction_key in mailoutbox[0].body


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": 3299}, "amount_differs"),
        ({"bank": "0005"}, "bank_not_contracted"),
        ({"channel": "06"}, "channel_not_allowed"),
        ({"confirmation_number": "1"}, "unknown_number"),
        ({"customer_number": "77"}, "unknown_number"),
    ],
)
def test_a_payment_that_fails_a_check_is_provisional(
    biller: Biller, invoice: Invoice, change: dict, reason: str
) -> None:
    send(h.payment(biller, invoice, **change))
    notices_apply()
    invoice.refresh_from_db()
    assert invoice.status == "published"  # never silently paid
    entry = LedgerEntry.objects.get()
    assert (entry.outcome, entry.reason) == ("provisional", reason)
    assert entry.invoice_id == (None if reason == "unknown_number" else invoice.pk)


def test_payment_of_a_cancelled_bill_is_provisional(biller: Biller, invoice: Invoice) -> None:
    from billing import services

    services.invoice_cancel(actor=None, biller=biller, invoice=invoice)
    send(h.payment(biller, invoice))
    notices_apply()
    assert entries() == [("provisional", "cancelled", 3300)]


def test_double_payment_is_counted_and_due_for_refund_until_one_is_reversed(
    biller: Biller, invoice: Invoice
) -> None:
    first, second = h.payment(biller, invoice, channel="01"), h.payment(biller, invoice, channel="01")
    send(first, second)
    notices_apply()
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert entries(invoice) == [("paid", "", 3300), ("double_payment", "", 3300)]
    assert [e.notice.transaction_key for e in refund_due(biller=biller)] == [second.transaction_key]
    # reversing the first leaves the bill paid by the second, and nothing to refund
    send(h.reversal(biller, first))
    notices_apply()
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert refund_due(biller=biller) == []
    # reversing the second too makes the bill payable again for its full amount
    send(h.reversal(biller, second))
    notices_apply()
    invoice.refresh_from_db()
    assert invoice.status == "published" and invoice.paid_at is None
    assert sum(amount for _o, _r, amount in entries(invoice)) == 0


def test_reversal_applied_with_its_payment_in_one_claim(biller: Biller, invoice: Invoice) -> None:
    payment = h.payment(biller, invoice, channel="01")
    send(payment, h.reversal(biller, payment))
    notices_apply()
    invoice.refresh_from_db()
    assert invoice.status == "published"
    assert entries(invoice) == [("paid", "", 3300), ("reversal", "", -3300)]


def test_reversal_claimed_before_its_payment_applies_the_payment_first(  # type: ignore[no-untyped-def]
    biller: Biller, invoice: Invoice, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    payment = h.payment(biller, invoice, channel="01")
    send(payment, h.reversal(biller, payment))
    reversal = Notice.objects.get(kind="reversal")
    with django_capture_on_commit_callbacks(execute=True):
        result = notices_apply(notice_ids=[reversal.pk])
    # the payment applied on the reversal's behalf is told like any other (live event, receipt)
    assert [e.type for e in result.events] == [
        "payment.received",
        "invoice.paid",
        "payment.reversed",
        "invoice.payable_again",
    ]
    assert len(mailoutbox) == 1
    assert Notice.objects.filter(applied_at__isnull=True).count() == 0
    assert entries(invoice) == [("paid", "", 3300), ("reversal", "", -3300)]


def test_ledger_is_append_only(biller: Biller, invoice: Invoice) -> None:
    from django.db import DatabaseError, transaction

    send(h.payment(biller, invoice))
    notices_apply()
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.update(amount=1)


def test_one_bad_notice_does_not_hold_back_the_others(biller: Biller, invoice: Invoice, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from payeasy.services import payments

    other = h.published_invoice(biller, price=100)
    send(h.payment(biller, invoice), h.payment(biller, other))
    real = h.payments_failing_at(monkeypatch, 110)  # the other invoice's notice: 100 yen + tax
    result = notices_apply()
    assert result.applied == 1 and len(result.failed) == 1
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    stuck = Notice.objects.get(applied_at__isnull=True)
    assert stuck.amount == 110 and "a bug in one notice" in stuck.last_error and stuck.attempts == 1
    monkeypatch.setattr(payments, "_apply_payment", real)
    assert notices_apply().applied == 1  # fixed: the sweeper's next run applies it


def test_a_payment_never_touches_another_tenants_invoice(biller: Biller, invoice: Invoice) -> None:
    """Biller B's line code with biller A's invoice numbers: B's unknown number, A's bill untouched."""
    other = h.line_biller()
    send(h.payment(other, invoice))
    notices_apply()
    invoice.refresh_from_db()
    assert invoice.status == "published"
    entry = LedgerEntry.objects.get()
    assert (entry.biller_id, entry.invoice_id, entry.reason) == (other.pk, None, "unknown_number")
