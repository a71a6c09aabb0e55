"""Payments on bills as billing sees them: the facts the payment network's app tells billing.

The network's app (payeasy) keeps its own ledger; inside the transaction of its ledger entries it calls
:func:`invoice_payments_record` with what the biller and the customer see of each entry on a bill (paid
at, amount, bank, channel, what it did) and the bills it made paid. Billing stores those facts
(``InvoicePayment``, append-only), saves the bills in one statement, and after commit starts the receipt
e-mails of the payments that paid a bill (``billing.tasks.receipts_send``). Billing's pages read these
rows only.

Built for the payment applier's batches (thousands of payments a second): one INSERT for the facts and
one UPDATE for the bills per call.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Field
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import events
from billing.errors import ValidationFailed
from billing.models import Biller, Invoice, InvoicePayment


@dataclass(frozen=True, slots=True)
class PaymentFact:
    """One entry of the network's ledger on one bill, in billing's terms.

    ``channel``, ``outcome`` and ``reason`` are values of ``InvoicePayment.Channel``, ``.Outcome`` and
    ``.Reason`` (the network maps its own onto them); ``entry_ref`` is the network's reference of its
    ledger entry (opaque here, unique per biller); ``payment_key`` is the reference the payer sees.
    """

    biller_id: int
    invoice_id: int
    entry_ref: int
    amount: int  # yen: positive for a payment, negative for a reversal
    paid_at: datetime.datetime
    bank_code: str
    channel: str
    outcome: str
    payment_key: str
    reason: str = ""


def invoice_payments_record(
    *, payments: Sequence[PaymentFact], invoices: Sequence[Invoice] = ()
) -> list[InvoicePayment]:
    """Store ``payments`` and save ``invoices``, inside the caller's transaction (the one of its
    ledger entries: both commit or neither does).

    ``invoices`` are bills the caller holds locked and has set paid or payable again (``status``, ``paid_at``,
    ``updated_at`` on the objects): saved in one statement. Each payment that paid a bill gets its
    receipt e-mailed once the transaction commits. Recording an ``entry_ref`` twice for a biller is
    refused by the unique constraint (the caller's transaction fails, as its own ledger would).
    """
    if invoices:
        invoices_payment_state_save(invoices=invoices)
    if not payments:
        return []
    rows = InvoicePayment.objects.bulk_create(
        [
            InvoicePayment(
                biller_id=fact.biller_id,
                invoice_id=fact.invoice_id,
                entry_ref=fact.entry_ref,
                amount=fact.amount,
                paid_at=fact.paid_at,
                bank_code=fact.bank_code,
                channel=fact.channel,
                outcome=fact.outcome,
                reason=fact.reason,
                payment_key=fact.payment_key,
            )
            for fact in payments
        ]
    )
    paying = [row.pk for row in rows if row.outcome == InvoicePayment.Outcome.PAID]
    if paying:
        events.after_commit("billing.tasks.receipts_send", paying)
    return rows


def invoice_payment_assign(
    *,
    biller: Biller,
    invoice: Invoice,
    amount: int,
    paid_at: datetime.datetime,
    bank_code: str,
    channel: str,
    payment_key: str,
    ref: int,
) -> InvoicePayment:
    """A payment the network could not put on a bill (or put on the wrong one), assigned by the biller's
    staff to ``invoice``: record it as a paid fact on that bill and make the bill paid, inside the
    caller's transaction, with ``invoice`` locked by the caller (``select_for_update``).

    ``ref`` is the caller's reference of the assignment, negative (reconciliation passes ``-action.pk``):
    the network's ledger entries are positive, so the two can never collide. Refused (nothing changes)
    unless the bill is the biller's own payable invoice (published, not paid, not cancelled, not a draft,
    not a chosen-amount request or a credit note) and ``amount`` is its total: one payment pays one bill
    once, so the money is never counted twice. The receipt is e-mailed after commit, as for any payment.
    """
    if ref >= 0:
        raise ValueError("an assigned payment's ref is negative (positive refs are the network's entries)")
    if invoice.biller_id != biller.pk:
        raise ValidationFailed({"invoice": [_("No such invoice.")]})
    if invoice.kind != Invoice.Kind.INVOICE:
        raise ValidationFailed(
            {
                "invoice": [
                    _("Invoice %(number)s is a %(kind)s; only an invoice can take this payment.")
                    % {"number": invoice.number, "kind": invoice.get_kind_display()}
                ]
            }
        )
    problems: dict[str, str] = {
        Invoice.Status.PAID: _("Invoice %(number)s is already paid: this would count the money twice."),
        Invoice.Status.CANCELLED: _("Invoice %(number)s is cancelled and cannot be paid."),
        Invoice.Status.DRAFT: _("Invoice %(number)s is a draft and cannot be paid."),
    }
    if invoice.status in problems:
        raise ValidationFailed({"invoice": [problems[invoice.status] % {"number": invoice.number}]})
    if amount != invoice.total:
        raise ValidationFailed(
            {
                "invoice": [
                    _("The payment of ¥%(amount)s differs from the total ¥%(total)s of invoice %(number)s.")
                    % {"amount": f"{amount:,}", "total": f"{invoice.total:,}", "number": invoice.number}
                ]
            }
        )
    invoice.status, invoice.paid_at, invoice.updated_at = Invoice.Status.PAID, paid_at, timezone.now()
    fact = PaymentFact(
        biller_id=biller.pk,
        invoice_id=invoice.pk,
        entry_ref=ref,
        amount=amount,
        paid_at=paid_at,
        bank_code=bank_code,
        channel=channel,
        outcome=InvoicePayment.Outcome.PAID,
        payment_key=payment_key,
    )
    (payment,) = invoice_payments_record(payments=[fact], invoices=[invoice])
    return payment


_SAVED = ("status", "paid_at", "updated_at")


def invoices_payment_state_save(*, invoices: Sequence[Invoice]) -> None:
    """Save ``status``, ``paid_at`` and ``updated_at`` as set on ``invoices`` (locked by the caller): bills
    a payment made paid or a reversal made payable again.

    On PostgreSQL one ``UPDATE … FROM unnest(…)`` (Django's bulk_update builds a CASE per row and
    column, which cost more than the rest of applying a batch); elsewhere bulk_update.
    """
    if not invoices:
        return
    if connection.vendor != "postgresql":
        Invoice.objects.bulk_update(list(invoices), list(_SAVED))
        return
    meta = Invoice._meta
    quote = connection.ops.quote_name
    pk = meta.pk
    assert pk is not None
    fields = [pk, *(f for name in _SAVED if isinstance(f := meta.get_field(name), Field))]
    columns = [quote(str(f.column)) for f in fields]
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    sets = ", ".join(f"{c} = v.{c}" for c in columns[1:])
    sql = (  # identifiers from the model's _meta, quoted; the values are parameters
        f"UPDATE {quote(meta.db_table)} AS i SET {sets} "  # noqa: S608
        f"FROM unnest({arrays}) AS v({', '.join(columns)}) WHERE i.{columns[0]} = v.{columns[0]}"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                [i.pk for i in invoices],
                [i.status for i in invoices],
                [i.paid_at for i in invoices],
                [i.updated_at for i in invoices],
            ],
        )


__all__ = ["PaymentFact", "invoice_payment_assign", "invoice_payments_record", "invoices_payment_state_save"]
