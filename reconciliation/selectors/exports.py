"""The rows of the exports (reconciliation.exports writes them): a tenant's payments and invoices of a
period, streamed from one query each (``iterator(chunk_size)``), so a million rows never sit in memory
and the number of queries does not grow with the rows.

Payments are read from payeasy's ledger (``LedgerEntry`` with its ``Notice``), not from billing's
``InvoicePayment``: the ledger also holds the provisional payments (仮消込) that reached no bill at all
(an unknown customer number), which an accountant must see as money received, and the notice carries
what the bank reported (branch, payer kana, processing date, transaction key).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass

from billing.models import Biller, Invoice
from payeasy.codec import JST
from payeasy.models import LedgerEntry

CHUNK_SIZE = 2000

PAYMENT_FIELDS = (
    "id",
    "outcome",
    "reason",
    "amount",
    "reverses_id",
    "reverses__outcome",
    "notice__paid_at",
    "notice__key_date",
    "notice__bank_code",
    "notice__branch_code",
    "notice__channel",
    "notice__source",
    "notice__transaction_key",
    "notice__payer_name_kana",
    "invoice__number",
    "invoice__customer__code",
    "invoice__customer__name",
    "invoice__recipient_name",
)

INVOICE_FIELDS = (
    "id",
    "number",
    "kind",
    "issue_date",
    "due_date",
    "customer__code",
    "customer__name",
    "recipient_name",
    "subtotal_10",
    "tax_10",
    "subtotal_8",
    "tax_8",
    "subtotal_exempt",
    "total",
    "status",
    "paid_at",
)


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """One ledger entry as the exports show it (amount signed: a reversal is negative)."""

    entry_id: int
    outcome: str
    reason: str
    amount: int
    reverses_id: int | None
    reversed_outcome: str  # the outcome of the entry a reversal undoes ("" for a payment)
    paid_at: datetime.datetime  # aware; shown in JST
    processing_date: datetime.date
    bank_code: str
    branch_code: str
    channel: str
    source: str
    transaction_key: str
    payer_kana: str
    invoice_number: str
    customer_code: str
    customer_name: str  # the customer's name, or the recipient of a payment request without one

    @property
    def paid_on(self) -> datetime.date:
        return self.paid_at.astimezone(JST).date()


@dataclass(frozen=True, slots=True)
class InvoiceRow:
    invoice_id: int
    number: str
    kind: str
    issue_date: datetime.date
    due_date: datetime.date
    customer_code: str
    customer_name: str
    subtotal_10: int
    tax_10: int
    subtotal_8: int
    tax_8: int
    subtotal_exempt: int
    total: int
    status: str
    paid_at: datetime.datetime | None


def jst_bounds(
    date_from: datetime.date | None, date_to: datetime.date | None
) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    """The instants a range of JST days covers: [start of ``date_from``, start of the day after
    ``date_to``) — either end open when not given."""
    start = datetime.datetime.combine(date_from, datetime.time.min, tzinfo=JST) if date_from else None
    end = (
        datetime.datetime.combine(date_to + datetime.timedelta(days=1), datetime.time.min, tzinfo=JST)
        if date_to
        else None
    )
    return start, end


def payment_export_rows(
    *, biller: Biller, date_from: datetime.date, date_to: datetime.date, outcome: str = ""
) -> Iterator[PaymentRow]:
    """The biller's ledger entries paid (JST) from ``date_from`` to ``date_to``, of ``outcome`` ("" for
    all), in the order they were paid: one query, read in chunks."""
    start, end = jst_bounds(date_from, date_to)
    qs = LedgerEntry.objects.for_biller(biller).filter(notice__paid_at__gte=start, notice__paid_at__lt=end)
    if outcome:
        qs = qs.filter(outcome=outcome)
    rows = qs.order_by("notice__paid_at", "id").values_list(*PAYMENT_FIELDS)
    for (
        entry_id,
        outcome_,
        reason,
        amount,
        reverses_id,
        reversed_outcome,
        paid_at,
        key_date,
        bank_code,
        branch_code,
        channel,
        source,
        key,
        kana,
        number,
        code,
        name,
        recipient,
    ) in rows.iterator(chunk_size=CHUNK_SIZE):
        yield PaymentRow(
            entry_id=entry_id,
            outcome=outcome_,
            reason=reason,
            amount=amount,
            reverses_id=reverses_id,
            reversed_outcome=reversed_outcome or "",
            paid_at=paid_at,
            processing_date=key_date,
            bank_code=bank_code,
            branch_code=branch_code,
            channel=channel,
            source=source,
            transaction_key=key,
            payer_kana=kana,
            invoice_number=number or "",
            customer_code=code or "",
            customer_name=name or recipient or "",
        )


def invoice_export_rows(
    *, biller: Biller, date_from: datetime.date, date_to: datetime.date
) -> Iterator[InvoiceRow]:
    """The biller's issued invoices (every kind and status but drafts, which are not issued) with an
    issue date from ``date_from`` to ``date_to``, by issue date: one query, read in chunks."""
    qs = (
        Invoice.objects.for_biller(biller)
        .exclude(status=Invoice.Status.DRAFT)
        .filter(issue_date__gte=date_from, issue_date__lte=date_to)
        .order_by("issue_date", "id")
        .values_list(*INVOICE_FIELDS)
    )
    for (
        invoice_id,
        number,
        kind,
        issue_date,
        due_date,
        code,
        name,
        recipient,
        subtotal_10,
        tax_10,
        subtotal_8,
        tax_8,
        subtotal_exempt,
        total,
        status,
        paid_at,
    ) in qs.iterator(chunk_size=CHUNK_SIZE):
        yield InvoiceRow(
            invoice_id=invoice_id,
            number=number,
            kind=kind,
            issue_date=issue_date,
            due_date=due_date,
            customer_code=code or "",
            customer_name=name or recipient or "",
            subtotal_10=subtotal_10,
            tax_10=tax_10,
            subtotal_8=subtotal_8,
            tax_8=tax_8,
            subtotal_exempt=subtotal_exempt,
            total=total,
            status=status,
            paid_at=paid_at,
        )
