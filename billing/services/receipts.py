"""Receipts of the payments that paid a bill: issued once (``Receipt``, one per ``InvoicePayment``) and
e-mailed to the invoice's recipient, Japanese then English. Started after commit by
``billing.services.payments.invoice_payments_record`` (task ``billing.tasks.receipts_send``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage, mailers
from django.db import transaction
from django.template.loader import render_to_string

from billing.models import InvoicePayment, Receipt

JST = ZoneInfo("Asia/Tokyo")


def receipts_send(*, payment_ids: list[int]) -> int:
    """Send the receipt of each payment that paid a bill, once: in one transaction the payments are
    locked (another worker skips them), a Receipt row is written for each, the mails go out over one
    SMTP session, then the commit. A failure rolls back the receipts and the task retries (a mail sent
    before the failure may then go out twice; none is lost)."""
    with transaction.atomic():
        payments = list(
            InvoicePayment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=payment_ids, outcome=InvoicePayment.Outcome.PAID, receipt__isnull=True)
            .exclude(invoice__recipient_email="")
            .select_related("invoice__biller")
            .order_by("id")
        )
        if not payments:
            return 0
        Receipt.objects.bulk_create([Receipt(biller_id=p.biller_id, payment=p) for p in payments])
        messages = []
        for payment in payments:
            invoice = payment.invoice
            context = {
                "invoice": invoice,
                "biller": invoice.biller,
                "payment": payment,
                "paid_at": payment.paid_at.astimezone(JST),
            }
            subject = render_to_string("billing/email/receipt_subject.txt", context).strip()
            body = render_to_string("billing/email/receipt_body.txt", context)
            messages.append(
                EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [invoice.recipient_email])
            )
        with mailers.default as mail:  # one SMTP session for the batch
            mail.send_messages(messages)
    return len(payments)


__all__ = ["receipts_send"]
