"""E-mails the billing app sends. Bilingual: Japanese first, then English."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from billing.models import Biller, Invitation, Invoice
from billing.numbers import ATM_CASH_LIMIT
from billing.portal.services.access import absolute_url, email_numbers_visibility
from billing.portal.services.invitations import published_invoice_link
from billing.tenancy import root_reverse


def invitation_url(token: str) -> str:
    """The console invitation's link (PORTAL_BASE_URL, billing.portal.services.access.absolute_url)."""
    return absolute_url(root_reverse("invitation_accept", kwargs={"token": token}))


def invitation_email_send(*, invitation_id: int, token: str) -> bool:
    """Send the invitation e-mail if the invitation is still pending. Safe to run twice."""
    invitation = Invitation.objects.select_related("biller", "created_by").filter(pk=invitation_id).first()
    if invitation is None or invitation.state != "pending":
        return False
    context = {"invitation": invitation, "biller": invitation.biller, "url": invitation_url(token)}
    subject = render_to_string("billing/email/invitation_subject.txt", context).strip()
    body = render_to_string("billing/email/invitation_body.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email])
    return True


def _send_invoice_mail(invoice: Invoice, template: str, extra: dict | None = None) -> None:
    """Send one invoice e-mail. ``numbers`` in the context says whether the payment numbers may go in
    it (billing.portal.services.email_numbers_visibility: not to a corporate customer's viewer, nor to
    its payer before the invoice is approved)."""
    context = {
        "invoice": invoice,
        "biller": invoice.biller,
        "numbers": email_numbers_visibility(invoice),
        **(extra or {}),
    }
    subject = render_to_string(f"billing/email/{template}_subject.txt", context).strip()
    body = render_to_string(f"billing/email/{template}_body.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invoice.recipient_email])


def invoices_published_email_send(*, invoice_ids: list[int]) -> int:
    """Tell each customer their invoice is published, once: ``notified_at`` marks what was sent."""
    sent = 0
    for pk in invoice_ids:
        with transaction.atomic():
            invoice = (
                Invoice.objects.select_for_update(of=("self",))
                .select_related("biller", "customer")
                .filter(pk=pk, notified_at__isnull=True, status=Invoice.Status.PUBLISHED)
                .exclude(recipient_email="")
                .first()
            )
            if invoice is None:
                continue
            # The portal link: an invitation when the customer has no account yet (kept only if sent).
            portal_url, portal_invitation = published_invoice_link(invoice=invoice)
            _send_invoice_mail(
                invoice,
                "invoice_published",
                {"portal_url": portal_url, "portal_invitation": portal_invitation},
            )
            Invoice.objects.filter(pk=pk).update(notified_at=timezone.now())
            sent += 1
    return sent


def due_reminders_send(*, today: datetime.date | None = None) -> int:
    """Remind customers of unpaid invoices due within their biller's reminder days, once per invoice."""
    today = today or timezone.localdate()
    sent = 0
    for biller in Biller.objects.filter(status=Biller.Status.ACTIVE, reminder_days__gt=0):
        due = Invoice.objects.filter(
            biller=biller,
            status=Invoice.Status.PUBLISHED,
            reminded_at__isnull=True,
            due_date__gte=today,
            due_date__lte=today + datetime.timedelta(days=biller.reminder_days),
        ).exclude(recipient_email="")
        for pk in due.values_list("pk", flat=True).iterator():
            with transaction.atomic():
                invoice = (
                    Invoice.objects.select_for_update(of=("self",))
                    .select_related("biller")
                    .filter(pk=pk, reminded_at__isnull=True, status=Invoice.Status.PUBLISHED)
                    .first()
                )
                if invoice is None:
                    continue
                _send_invoice_mail(invoice, "invoice_reminder")
                Invoice.objects.filter(pk=pk).update(reminded_at=timezone.now())
                sent += 1
    return sent


def payment_request_email_send(*, invoice_id: int) -> bool:
    """E-mail a payment request's numbers and its pay-later link, once (``notified_at`` marks it)."""
    from billing.paylater import link_expires, paylater_url

    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update(of=("self",))
            .select_related("biller", "customer")
            .filter(
                pk=invoice_id,
                kind=Invoice.Kind.PAYMENT_REQUEST,
                status=Invoice.Status.PUBLISHED,
                notified_at__isnull=True,
            )
            .exclude(recipient_email="")
            .first()
        )
        if invoice is None:
            return False
        _send_invoice_mail(
            invoice,
            "payment_request",
            {
                "url": paylater_url(invoice),
                "expires": link_expires(invoice),
                "atm_cash_limit": ATM_CASH_LIMIT,
            },
        )
        Invoice.objects.filter(pk=invoice.pk).update(notified_at=timezone.now())
    return True
