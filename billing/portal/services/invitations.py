"""Portal invitations: a biller invites a customer's people to open their portal account.

The link's mechanism (token, hash, expiry, single use, revoking, the words of a dead link) is the one
of every invitation, :data:`billing.services.invitations.CUSTOMER_INVITATION`; what is the portal's
is who may be invited and that accepting opens a customer account.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import events
from billing.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from billing.models import Biller, Customer, CustomerAccount, CustomerInvitation, Invoice, User
from billing.portal.services.access import portal_url
from billing.portal.services.accounts import (
    customer_account_check_free,
    customer_account_open,
    customer_default_role,
    customer_login_taken,
    customer_role_check,
    portal_email_clean,
)
from billing.services.audit import audit_record
from billing.services.invitations import CUSTOMER_INVITATION


def customer_invitation_create(
    *,
    actor: User | None,
    biller: Biller,
    customer: Customer,
    email: str,
    role: str = "",
    send: bool = True,
) -> tuple[CustomerInvitation, str]:
    """Invite a person to ``customer``'s portal account. Returns the invitation and its token.

    The token exists only in the e-mail (sent by a worker after commit when ``send``); only its
    SHA-256 is stored. ``actor`` None is the system (an invitation sent with a published invoice).
    """
    if customer.biller_id != biller.pk:
        raise NotFound(_("No such customer."))
    if biller.is_suspended:
        raise InvalidTransition(_("A suspended biller cannot invite customers."), field="biller")
    role = role or customer_default_role(customer)
    customer_role_check(customer, role)
    email = portal_email_clean(email)
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk, biller=biller)
        customer_account_check_free(biller=biller, customer=locked, email=email)
        invitation, token = CUSTOMER_INVITATION.create(
            CustomerInvitation, biller=biller, customer=locked, email=email, role=role, created_by=actor
        )
        audit_record(
            actor=actor,
            action="customer_invitation.create",
            biller=biller,
            target=invitation,
            summary=f"{locked.code} {email} ({role})",
            after={
                "customer": locked.code,
                "email": email,
                "role": role,
                "expires_at": invitation.expires_at,
            },
        )
        if send:
            events.after_commit("billing.tasks.portal_invitation_send", invitation.pk, token)
    return invitation, token


def invitation_url(biller: Biller, token: str) -> str:
    """The link of a portal invitation, for its e-mail."""
    return portal_url(biller, "portal:invitation_accept", kwargs={"token": token})


def published_invoice_link(*, invoice: Invoice) -> tuple[str, bool]:
    """The portal link for the e-mail of a published invoice: (url, is_an_invitation).

    A customer without any account, whose invoice goes to an e-mail address that has no account
    here yet, is invited with the e-mail (earlier unused system invitations for the same customer
    are revoked, so one link works). Anyone else gets the invoice's page. Call it inside the
    transaction that sends the e-mail: if sending fails, the invitation is not kept.
    """
    biller = invoice.biller
    page = portal_url(biller, "portal:invoice_detail", args=[invoice.pk])
    customer = invoice.customer
    email = invoice.recipient_email
    if customer is None or not email or biller.is_suspended or customer.status != Customer.Status.ACTIVE:
        return page, False
    if customer.accounts.exists() or customer_login_taken(biller=biller, email=email):
        return page, False
    now = timezone.now()
    earlier = CustomerInvitation.objects.filter(
        biller=biller,
        customer=customer,
        created_by__isnull=True,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=now,
    )
    earlier.update(revoked_at=now)
    try:
        _invitation, token = customer_invitation_create(
            actor=None, biller=biller, customer=customer, email=email, send=False
        )
    except (ValidationFailed, Conflict, InvalidTransition, NotFound):
        return page, False
    return invitation_url(biller, token), True


def customer_invitation_get_pending(*, biller: Biller, token: str) -> CustomerInvitation:
    """The pending invitation of this biller for a token; NotFound for a wrong, used or expired one."""
    return CUSTOMER_INVITATION.pending(
        CustomerInvitation.objects.select_related("customer", "biller").filter(biller=biller), token=token
    )


def customer_invitation_accept(*, biller: Biller, token: str, name: str, password: str) -> CustomerAccount:
    """Open the account an invitation offers. Single use: the invitation is locked and marked used."""
    with transaction.atomic():
        pending = customer_invitation_get_pending(biller=biller, token=token)
        invitation = CUSTOMER_INVITATION.lock_pending(pending)
        customer = Customer.objects.select_for_update().get(pk=invitation.customer_id, biller=biller)
        if customer.status != Customer.Status.ACTIVE:
            raise CUSTOMER_INVITATION.not_valid()
        account = customer_account_open(
            biller=biller,
            customer=customer,
            email=invitation.email,
            name=name,
            password=password,
            role=invitation.role,
        )
        CUSTOMER_INVITATION.mark_accepted(invitation, user=account.user)
        audit_record(
            actor=account.user,
            action="customer_invitation.accept",
            biller=biller,
            target=invitation,
            summary=f"{customer.code} {invitation.email} ({invitation.role})",
        )
    return account


def customer_invitation_revoke(*, actor: User, biller: Biller, invitation: CustomerInvitation) -> None:
    with transaction.atomic():
        locked = (
            CustomerInvitation.objects.select_for_update().filter(pk=invitation.pk, biller=biller).first()
        )
        if locked is None:
            raise NotFound(_("No such invitation."))
        CUSTOMER_INVITATION.revoke(locked)
        audit_record(
            actor=actor,
            action="customer_invitation.revoke",
            biller=biller,
            target=locked,
            summary=locked.email,
        )


__all__ = [
    "customer_invitation_accept",
    "customer_invitation_create",
    "customer_invitation_get_pending",
    "customer_invitation_revoke",
    "invitation_url",
    "published_invoice_link",
]
