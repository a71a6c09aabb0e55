"""E-mails of the customer portal. Bilingual like every e-mail of the product: Japanese, then English."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from billing.models import CustomerInvitation, User
from billing.portal.services.invitations import invitation_url


def _send(template: str, context: dict, to: str) -> None:
    subject = render_to_string(f"billing/portal/email/{template}_subject.txt", context).strip()
    body = render_to_string(f"billing/portal/email/{template}_body.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])


def invitation_email_send(*, invitation_id: int, token: str) -> bool:
    """Send a portal invitation if it is still pending. Safe to run twice."""
    invitation = (
        CustomerInvitation.objects.select_related("biller", "customer").filter(pk=invitation_id).first()
    )
    if invitation is None or invitation.state != "pending":
        return False
    context = {
        "invitation": invitation,
        "biller": invitation.biller,
        "customer": invitation.customer,
        "url": invitation_url(invitation.biller, token),
    }
    _send("invitation", context, invitation.email)
    return True


def password_reset_email_send(*, user_id: int, url: str) -> bool:
    user = User.objects.select_related("customer_biller").filter(pk=user_id, is_active=True).first()
    if user is None or user.customer_biller is None:
        return False
    _send("password_reset", {"user": user, "biller": user.customer_biller, "url": url}, user.email)
    return True
