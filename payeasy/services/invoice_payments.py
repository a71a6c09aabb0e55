"""What billing is told of each ledger entry on a bill, in billing's terms.

Billing stores what the biller and the customer see of a payment (``billing.models.InvoicePayment``)
and shows only that; payeasy maps its own values (channel codes, outcomes, 仮消込 reasons) onto billing's
choices here and records the facts through ``billing.services.payments`` inside the transaction of its
ledger entries. The 仮消込 reasons are the line's and the contract's business: the customer sees
whether the amount or the bill is at issue, else that the biller is checking the payment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from billing.models import Invoice, InvoicePayment
from billing.services.payments import PaymentFact, invoice_payments_record
from payeasy.models import Channel, LedgerEntry, Notice

CHANNELS: dict[str, str] = {
    Channel.TELLER: InvoicePayment.Channel.TELLER,
    Channel.ATM: InvoicePayment.Channel.ATM,
    Channel.INTERNET_BANKING: InvoicePayment.Channel.INTERNET_BANKING,
    Channel.MOBILE: InvoicePayment.Channel.MOBILE,
    Channel.INFO_LINK: InvoicePayment.Channel.INFO_LINK,
    Channel.TELEPHONE: InvoicePayment.Channel.TELEPHONE,
}
# every other 仮消込 reason (bank or channel not contracted, the bill not payable, a suspect paid-at or
# processing date) is the biller's to check: InvoicePayment.Reason.CHECKING
REASONS: dict[str, str] = {
    LedgerEntry.Reason.NONE: InvoicePayment.Reason.NONE,
    LedgerEntry.Reason.AMOUNT_DIFFERS: InvoicePayment.Reason.AMOUNT_DIFFERS,
    LedgerEntry.Reason.CANCELLED: InvoicePayment.Reason.BILL_CANCELLED,
    LedgerEntry.Reason.PAST_DUE: InvoicePayment.Reason.PAID_LATE,
}


def payment_fact(*, entry: LedgerEntry, notice: Notice) -> PaymentFact:
    """The fact of ``entry`` (saved, on a bill) and the notice behind it, for billing."""
    assert entry.pk is not None and entry.invoice_id is not None
    return PaymentFact(
        biller_id=entry.biller_id,
        invoice_id=entry.invoice_id,
        entry_ref=entry.pk,
        amount=entry.amount,
        paid_at=notice.paid_at,
        bank_code=notice.bank_code,
        channel=CHANNELS[notice.channel],
        outcome=entry.outcome,  # LedgerEntry.Outcome is billing's InvoicePayment.Outcome
        reason=REASONS.get(entry.reason, InvoicePayment.Reason.CHECKING),
        payment_key=notice.transaction_key,
    )


def invoice_payments_tell(*, entries: Iterable[LedgerEntry], invoices: Sequence[Invoice] = ()) -> None:
    """Tell billing, in the ledger's transaction, of the saved ``entries`` on a bill (their ``notice``
    loaded) and of the bills whose status they changed (saved by billing in one statement)."""
    facts = [payment_fact(entry=e, notice=e.notice) for e in entries if e.invoice_id is not None]
    if facts or invoices:
        invoice_payments_record(payments=facts, invoices=invoices)


__all__ = ["CHANNELS", "REASONS", "invoice_payments_tell", "payment_fact"]
