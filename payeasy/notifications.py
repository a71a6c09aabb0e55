"""E-mails the payeasy app sends: the receipt for a payment that paid a bill (Japanese, then English)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage, mailers
from django.db import transaction
from django.template.loader import render_to_string

from payeasy import codec
from payeasy.models import LedgerEntry, Receipt


def receipts_send(*, entry_ids: list[int]) -> int:
    """Send the receipt of each entry that paid a bill, once: in one transaction the entries are locked
    (another worker skips them), a Receipt row is written for each, the mails go out over one SMTP
    session, then the commit. A failure rolls back the receipts and the task retries (a mail sent
    before the failure may then go out twice; none is lost)."""
    with transaction.atomic():
        entries = list(
            LedgerEntry.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=entry_ids, outcome=LedgerEntry.Outcome.PAID, receipt__isnull=True)
            .exclude(invoice__recipient_email="")
            .select_related("notice", "invoice__biller")
        )
        entries = [e for e in entries if e.invoice is not None]
        if not entries:
            return 0
        Receipt.objects.bulk_create([Receipt(entry=e) for e in entries])
        messages = []
        for entry in entries:
            invoice = entry.invoice
            assert invoice is not None
            context = {
                "invoice": invoice,
                "biller": invoice.biller,
                "entry": entry,
                "notice": entry.notice,
                "paid_at": entry.notice.paid_at.astimezone(codec.JST),
            }
            subject = render_to_string("payeasy/email/receipt_subject.txt", context).strip()
            body = render_to_string("payeasy/email/receipt_body.txt", context)
            messages.append(
                EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [invoice.recipient_email])
            )
        with mailers.default as mail:  # one SMTP session for the batch
            mail.send_messages(messages)
    return len(entries)
