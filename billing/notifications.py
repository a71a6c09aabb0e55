"""E-mails the billing app sends. Bilingual: Japanese first, then English."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from billing.models import Invitation
from billing.tenancy import root_reverse


def invitation_url(token: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + root_reverse("invitation_accept", kwargs={"token": token})


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
