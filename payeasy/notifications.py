"""E-mails the payeasy app sends: the receipt for a payment that paid a bill (Japanese, then English)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage, mailers
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from payeasy import codec
from payeasy.models import LedgerEntry, Receipt


def receipts_send(*, entry_ids: list[int]) -> int:
    """Send the receipt of each entry that paid a bill, once (a Receipt row is written with the send)."""
    sent = 0
    entries = (
        LedgerEntry.objects.filter(pk__in=entry_ids, outcome=LedgerEntry.Outcome.PAID, receipt__isnull=True)
        .select_related("notice", "invoice__biller")
        .exclude(invoice__recipient_email="")
    )
    mail = mailers.default  # one SMTP session for the batch, not one per receipt
    with mail:
        for entry in entries:
            invoice = entry.invoice
            if invoice is None:
                continue
            try:
                with transaction.atomic():
                    Receipt.objects.create(entry=entry)
                    context = {
                        "invoice": invoice,
                        "biller": invoice.biller,
                        "entry": entry,
                        "notice": entry.notice,
                        "paid_at": entry.notice.paid_at.astimezone(codec.JST),
                    }
                    subject = render_to_string("payeasy/email/receipt_subject.txt", context).strip()
                    body = render_to_string("payeasy/email/receipt_body.txt", context)
                    message = EmailMessage(
                        subject, body, settings.DEFAULT_FROM_EMAIL, [invoice.recipient_email]
                    )
                    mail.send_messages([message])
            except IntegrityError:
                continue  # another worker sent it
            sent += 1
    return sent
