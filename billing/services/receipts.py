"""Receipts (領収書) of the payments that paid a bill: issued once (``Receipt``, one per ``InvoicePayment``),
numbered per biller (R-2026-000001, ``receipt_numbers_allocate``) and e-mailed to the invoice's recipient
when it has an address, Japanese then English. Started after commit by
``billing.services.payments.invoice_payments_record`` (task ``billing.tasks.receipts_send``). The PDF is
``billing.receipt_pdf``."""

from __future__ import annotations

from collections import Counter
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage, mailers
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from billing.models import InvoicePayment, Receipt
from billing.models.payments import ReceiptCounter

JST = ZoneInfo("Asia/Tokyo")


def receipt_numbers_allocate(*, biller_id: int, year: int, count: int) -> list[str]:
    """``count`` new receipt numbers of the biller for ``year`` (``ReceiptCounter.numbers_allocate``: the
    biller's counter row locked until the caller's transaction ends)."""
    return ReceiptCounter.numbers_allocate(biller_id=biller_id, year=year, count=count)


def receipts_send(*, payment_ids: list[int]) -> int:
    """Issue the receipt of each payment that paid a bill, once, and e-mail it where the bill has an
    address: in one transaction the payments are locked (another worker skips them), each gets a Receipt
    with the biller's next number, the mails go out over one SMTP session, then the commit. A failure
    rolls back the receipts and their numbers and the task retries (a mail sent before the failure may
    then go out twice; none is lost). Returns how many receipts were issued."""
    with transaction.atomic():
        payments = list(
            InvoicePayment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=payment_ids, outcome=InvoicePayment.Outcome.PAID, receipt__isnull=True)
            .select_related("invoice__biller")
            .order_by("id")
        )
        if not payments:
            return 0
        now = timezone.now()
        year = now.astimezone(JST).year
        per_biller = Counter(p.biller_id for p in payments)
        numbers = {
            biller_id: iter(receipt_numbers_allocate(biller_id=biller_id, year=year, count=count))
            for biller_id, count in sorted(per_biller.items())  # locks in one order: no deadlock
        }
        receipts = [
            Receipt(biller_id=p.biller_id, payment=p, number=next(numbers[p.biller_id]), sent_at=now)
            for p in payments
        ]
        Receipt.objects.bulk_create(receipts)
        messages = []
        for payment, receipt in zip(payments, receipts, strict=True):
            invoice = payment.invoice
            if not invoice.recipient_email:
                continue  # issued (the portal and the console show it), not mailed
            context = {
                "invoice": invoice,
                "biller": invoice.biller,
                "payment": payment,
                "receipt": receipt,
                "paid_at": payment.paid_at.astimezone(JST),
            }
            subject = render_to_string("billing/email/receipt_subject.txt", context).strip()
            body = render_to_string("billing/email/receipt_body.txt", context)
            messages.append(
                EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [invoice.recipient_email])
            )
        if messages:
            with mailers.default as mail:  # one SMTP session for the batch
                mail.send_messages(messages)
    return len(payments)


__all__ = ["receipt_numbers_allocate", "receipts_send"]
