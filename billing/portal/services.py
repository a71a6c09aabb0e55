"""Customer portal: accounts, invitations, self-registration, TOTP, password reset, invoice approvals.

Every write is a service here: keyword-only, taking the biller explicitly, one transaction, one
audit entry, e-mail enqueued after commit. The reads every page and the paying code rely on
(``account_of``, ``customer_of``, ``can_pay``) are here too, so the rule lives in one place.
"""

from __future__ import annotations

import datetime
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from billing import totp
from billing.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from billing.models import (
    Biller,
    Customer,
    CustomerAccount,
    CustomerInvitation,
    Invoice,
    InvoiceApproval,
    User,
    customer_login,
)
from billing.numbers import new_registration_code, normalise_registration_code
from billing.services.core import audit_record, token_hash
from billing.tenancy import tenant_reverse

Role = CustomerAccount.Role

TOTP_INTERVAL = totp.INTERVAL


# --- reads every page relies on ------------------------------------------------------------------------


def account_of(user: Any, biller: Biller) -> CustomerAccount | None:
    """The portal account of ``user`` at ``biller``; None for anyone else (console users included)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.realm != User.Realm.CUSTOMER or user.customer_biller_id != biller.pk:
        return None
    return (
        CustomerAccount.objects.select_related("customer", "user")
        .filter(user=user, biller=biller, customer__biller=biller)
        .first()
    )


def customer_of(user: Any, biller: Biller) -> Customer | None:
    """The customer ``user`` sees in ``biller``'s portal, or None."""
    account = account_of(user, biller)
    return account.customer if account is not None else None


def latest_decision(invoice: Invoice) -> InvoiceApproval | None:
    return (
        InvoiceApproval.objects.filter(invoice=invoice, biller_id=invoice.biller_id)
        .select_related("decided_by")
        .order_by("-id")
        .first()
    )


def approval_state(invoice: Invoice) -> str:
    """``not_required`` (not a corporate customer's, or a payment request: an order's pay-later numbers
    or an amount the payer chose), ``pending``, ``approved`` or ``rejected``."""
    customer = invoice.customer
    if customer is None or not customer.is_corporate:
        return "not_required"
    if invoice.kind == Invoice.Kind.PAYMENT_REQUEST:
        return "not_required"
    latest = latest_decision(invoice)
    return latest.decision if latest is not None else "pending"


def past_due_refused(invoice: Invoice) -> bool:
    """The biller refuses payments after the due date (B003) and the date has passed."""
    return (
        invoice.biller.late_payment_policy == Biller.LatePaymentPolicy.REFUSE
        and invoice.due_date < timezone.localdate()
    )


# --- who sees the payment numbers ------------------------------------------------------------------------


@dataclass(frozen=True)
class NumbersVisibility:
    """What a reader may see of an invoice's payment numbers: the お客様番号, the 確認番号, and the
    portal registration code (and its link) printed beside them on the PDF.

    ``visible`` is all or nothing; ``reason`` says why they are withheld ("" when shown), so every
    output can say so plainly instead of leaving a blank:

    - ``approval``: a payer of a corporate customer, before an approver approved the invoice (or after
      a rejection withdrew the approval);
    - ``payers_after_approval``: a viewer or approver of a corporate customer's invoice that needs
      approval (only payers ever see them, and only once it is approved);
    - ``payers``: a viewer or approver, for a payment request (which needs no approval);
    - ``paid``, ``cancelled``: nothing is left to pay;
    - ``no_numbers``: the document has none (a credit note, a draft, an invoice without numbers);
    - ``not_yours``: anyone who is not a portal user of the invoice's customer.
    """

    visible: bool
    reason: str = ""

    @property
    def withheld_text(self) -> str:
        """What a page or a CSV shows in place of a withheld number ("" when there is none to show)."""
        if self.visible:
            return ""
        texts = {
            "approval": _("Shown after your company's approval"),
            "payers_after_approval": _("Shown to your company's payers after approval"),
            "payers": _("Shown to your company's payers"),
            "paid": _("Not shown: paid"),
            "cancelled": _("Not shown: cancelled"),
            "not_yours": _("Not shown"),
        }
        return str(texts.get(self.reason, ""))


NUMBERS_SHOWN = NumbersVisibility(True)


def numbers_visibility(
    user: Any, invoice: Invoice | None, *, account: CustomerAccount | None = None
) -> NumbersVisibility:
    """May ``user`` see ``invoice``'s payment numbers? The one rule for every portal output.

    A bank shows the numbers only to whoever may pay: a payer account of the invoice's own biller and
    customer, for an unpaid, published invoice with numbers that is not a credit note, and for a
    corporate customer's invoice (not a payment request) whose latest decision is an approval. This is
    :func:`can_pay` without what does not depend on the reader or the company's decision (the biller
    being active, a due date the biller enforces): those are the network's to refuse, and the payer's
    numbers stay the payer's. ``account``: ``account_of(user, invoice.biller)`` when the caller holds
    it already (a page of many invoices); it is never trusted for another user.
    """
    if invoice is None or invoice.pk is None:
        return NumbersVisibility(False, "not_yours")
    if account is None or account.user_id != getattr(user, "pk", None):
        account = account_of(user, invoice.biller)
    if (
        account is None
        or account.biller_id != invoice.biller_id
        or account.customer_id != invoice.customer_id
        or not account.user.is_active
    ):
        return NumbersVisibility(False, "not_yours")
    if (
        invoice.kind == Invoice.Kind.CREDIT_NOTE
        or not invoice.customer_number
        or not invoice.confirmation_number
        or invoice.status == Invoice.Status.DRAFT
    ):
        return NumbersVisibility(False, "no_numbers")
    if invoice.status == Invoice.Status.PAID:
        return NumbersVisibility(False, "paid")
    if invoice.status == Invoice.Status.CANCELLED:
        return NumbersVisibility(False, "cancelled")
    needs_approval = account.customer.is_corporate and invoice.kind != Invoice.Kind.PAYMENT_REQUEST
    if account.role != Role.PAYER:
        return NumbersVisibility(False, "payers_after_approval" if needs_approval else "payers")
    if needs_approval and approval_state(invoice) != InvoiceApproval.Decision.APPROVED:
        return NumbersVisibility(False, "approval")
    return NUMBERS_SHOWN


def may_see_numbers(user: Any, invoice: Invoice | None) -> bool:
    return numbers_visibility(user, invoice).visible


def email_numbers_visibility(invoice: Invoice) -> NumbersVisibility:
    """What an invoice e-mail to ``invoice.recipient_email`` may carry of the numbers.

    The address of a portal user of this biller is that user: :func:`numbers_visibility` decides. An
    address without an account, for an invoice that needs the approval of a corporate customer who has
    portal accounts (the company approves in the portal), gets no numbers: nobody knows it is a payer's.
    Any other address gets them, as on the paper bill (a customer who does not use the portal).
    """
    biller = invoice.biller
    email = invoice.recipient_email
    user = (
        User.objects.filter(
            login=customer_login(biller, email), realm=User.Realm.CUSTOMER, customer_biller=biller
        ).first()
        if email
        else None
    )
    if user is not None:
        return numbers_visibility(user, invoice)
    customer = invoice.customer
    if (
        customer is not None
        and customer.is_corporate
        and invoice.kind != Invoice.Kind.PAYMENT_REQUEST
        and customer.accounts.exists()
    ):
        return NumbersVisibility(False, "payers_after_approval")
    return NUMBERS_SHOWN


def can_pay(user: Any, invoice: Invoice | None) -> bool:
    """May ``user`` pay ``invoice`` now?

    Yes only when the user may see its numbers (:func:`numbers_visibility`: a payer account of the
    invoice's own biller and customer, a published, unpaid invoice that is not a credit note, approved
    when a corporate customer's), of an active biller, and not past a due date the biller enforces.
    """
    if invoice is None or not numbers_visibility(user, invoice).visible:
        return False
    biller = invoice.biller
    return biller.status == Biller.Status.ACTIVE and not past_due_refused(invoice)


def chosen_amount_request(*, user: Any, biller: Biller, amount: Any) -> Invoice:
    """A payer asks for a payment request of an amount they chose, against their customer's balance
    (任意金額). Only a payer account pays; the range is the balance service's rule."""
    from billing.services.balances import balance_request_create

    account = account_of(user, biller)
    if account is None:
        raise NotFound(_("No such balance."))
    if account.role != Role.PAYER:
        raise Forbidden(
            _("Your role (%(role)s) cannot pay. A payer of your company can.")
            % {"role": account.get_role_display()}
        )
    return balance_request_create(actor=account.user, biller=biller, customer=account.customer, amount=amount)


def portal_url(biller: Biller, name: str, **kwargs: Any) -> str:
    """An absolute link into ``biller``'s portal for e-mails and paper (PORTAL_BASE_URL, path mode)."""
    return settings.PORTAL_BASE_URL.rstrip("/") + tenant_reverse(biller, name, **kwargs)


# --- helpers -------------------------------------------------------------------------------------------


def _default_role(customer: Customer) -> str:
    """A consumer's single user pays; a corporate customer's new user starts as a viewer."""
    return Role.PAYER if customer.kind == Customer.Kind.CONSUMER else Role.VIEWER


def _check_role(customer: Customer, role: str) -> None:
    if role not in Role.values:
        raise ValidationFailed({"role": [_("unknown role %(role)r") % {"role": role}]})
    if customer.kind == Customer.Kind.CONSUMER and role != Role.PAYER:
        raise ValidationFailed({"role": [_("A consumer's account is always a payer.")]})


def _check_email(email: str) -> str:
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationFailed({"email": [str(m) for m in exc.messages]}) from exc
    return email


def _consumer_taken(customer: Customer) -> bool:
    return customer.kind == Customer.Kind.CONSUMER and customer.accounts.exists()


def _login_taken(biller: Biller, email: str) -> bool:
    return User.objects.filter(login=customer_login(biller, email)).exists()


def _create_account(
    *, biller: Biller, customer: Customer, email: str, name: str, password: str, role: str
) -> CustomerAccount:
    """Create the customer-realm user and its account (inside the caller's transaction)."""
    name = name.strip()
    if not name:
        raise ValidationFailed({"name": [_("Enter your name.")]})
    user = User(
        login=customer_login(biller, email),
        email=email,
        name=name[:100],
        realm=User.Realm.CUSTOMER,
        customer_biller=biller,
    )
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationFailed({"password": [str(m) for m in exc.messages]}) from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # the same e-mail registered meanwhile
        raise Conflict(_account_exists(), code="account_exists") from exc
    account = CustomerAccount.objects.create(biller=biller, user=user, customer=customer, role=role)
    audit_record(
        actor=user,
        action="customer_account.create",
        biller=biller,
        target=account,
        summary=f"{customer.code} {email} ({role})",
        after={"customer": customer.code, "email": email, "role": role},
    )
    return account


def _account_exists() -> str:
    return _("An account with this e-mail address already exists here. Log in, or reset your password.")


def _consumer_has_account() -> str:
    return _("This customer already has an account. Log in, or reset your password.")


def _invitation_gone(state: str) -> str:
    labels = {
        "accepted": _("This invitation link has already been used."),
        "revoked": _("This invitation link has been replaced or revoked."),
        "expired": _("This invitation link has expired."),
    }
    return str(labels.get(state, _("This invitation link is not valid.")))


# --- invitations ---------------------------------------------------------------------------------------


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
    from billing import tasks

    if customer.biller_id != biller.pk:
        raise NotFound(_("No such customer."))
    if biller.is_suspended:
        raise InvalidTransition(_("A suspended biller cannot invite customers."), field="biller")
    role = role or _default_role(customer)
    _check_role(customer, role)
    email = _check_email(email)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk, biller=biller)
        if _consumer_taken(locked):
            raise Conflict(_consumer_has_account(), code="customer_has_account")
        if _login_taken(biller, email):
            raise Conflict(_account_exists(), code="account_exists")
        invitation = CustomerInvitation.objects.create(
            biller=biller,
            customer=locked,
            email=email,
            role=role,
            token_hash=token_hash(token),
            created_by=actor,
            expires_at=timezone.now() + datetime.timedelta(hours=settings.PORTAL_INVITATION_TTL_HOURS),
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
            pk = invitation.pk
            transaction.on_commit(lambda: tasks.portal_invitation_send.delay(pk, token))
    return invitation, token


def invitation_url(biller: Biller, token: str) -> str:
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
    if customer.accounts.exists() or _login_taken(biller, email):
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
    invitation = (
        CustomerInvitation.objects.select_related("customer", "biller")
        .filter(token_hash=token_hash(token), biller=biller)
        .first()
    )
    if invitation is None:
        raise NotFound(_("This invitation link is not valid."), code="invitation_invalid")
    state = invitation.state
    if state != "pending":
        raise NotFound(_invitation_gone(state), code=f"invitation_{state}")
    return invitation


def customer_invitation_accept(*, biller: Biller, token: str, name: str, password: str) -> CustomerAccount:
    """Open the account an invitation offers. Single use: the invitation is locked and marked used."""
    with transaction.atomic():
        pending = customer_invitation_get_pending(biller=biller, token=token)
        invitation = CustomerInvitation.objects.select_for_update().get(pk=pending.pk)
        if invitation.state != "pending":
            raise NotFound(_invitation_gone(invitation.state), code="invitation_used")
        customer = Customer.objects.select_for_update().get(pk=invitation.customer_id, biller=biller)
        if customer.status != Customer.Status.ACTIVE:
            raise NotFound(_("This invitation link is not valid."), code="invitation_invalid")
        if _consumer_taken(customer):
            raise Conflict(_consumer_has_account(), code="customer_has_account")
        if _login_taken(biller, invitation.email):
            raise Conflict(_account_exists(), code="account_exists")
        account = _create_account(
            biller=biller,
            customer=customer,
            email=invitation.email,
            name=name,
            password=password,
            role=invitation.role,
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = account.user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
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
        if locked.state != "pending":
            raise InvalidTransition(_invitation_gone(locked.state), field="invitation")
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="customer_invitation.revoke",
            biller=biller,
            target=locked,
            summary=locked.email,
        )


# --- self-registration ---------------------------------------------------------------------------------


def customer_register(
    *,
    biller: Biller,
    customer_number: str,
    registration_code: str,
    email: str,
    name: str,
    password: str,
) -> CustomerAccount:
    """Open an account with an お客様番号 of one of the customer's bills and the code printed on it.

    A wrong number, a wrong code, a mistyped number and an inactive customer are refused with the
    same message, so the form tells nothing about which part was wrong.
    """
    from billing.selectors import invoice_by_payment_numbers

    email = _check_email(email)
    digits = "".join(ch for ch in (customer_number or "") if ch.isdigit())
    code = normalise_registration_code(registration_code)
    invoice = invoice_by_payment_numbers(biller=biller, customer_number=digits) if digits else None
    customer = (
        Customer.objects.filter(pk=invoice.customer_id, biller=biller).first()
        if invoice is not None and invoice.customer_id
        else None
    )
    expected = customer.registration_code if customer is not None else "-" * len(code or "x")
    matches = hmac.compare_digest(expected.encode(), code.encode())
    if customer is None or not matches or customer.status != Customer.Status.ACTIVE:
        raise ValidationFailed(
            {"registration_code": [_("The customer number and the registration code do not match a bill.")]}
        )
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk, biller=biller)
        if _consumer_taken(locked):
            raise Conflict(_consumer_has_account(), code="customer_has_account")
        if _login_taken(biller, email):
            raise Conflict(_account_exists(), code="account_exists")
        account = _create_account(
            biller=biller,
            customer=locked,
            email=email,
            name=name,
            password=password,
            role=_default_role(locked),
        )
        audit_record(
            actor=account.user,
            action="customer_account.register",
            biller=biller,
            target=account,
            summary=f"{locked.code} {email} with the code of invoice {invoice.number if invoice else ''}",
        )
    return account


def customer_registration_code_regenerate(*, actor: User, biller: Biller, customer: Customer) -> Customer:
    """A new registration code for the customer (the old one stops working at once)."""
    with transaction.atomic():
        locked = Customer.objects.select_for_update().filter(pk=customer.pk, biller=biller).first()
        if locked is None:
            raise NotFound(_("No such customer."))
        locked.registration_code = new_registration_code()
        locked.save(update_fields=["registration_code"])
        audit_record(
            actor=actor,
            action="customer.registration_code",
            biller=biller,
            target=locked,
            summary=f"{locked.code}: new portal registration code",
        )
    return locked


# --- accounts ------------------------------------------------------------------------------------------


def _locked_account(biller: Biller | int, account: CustomerAccount | int) -> CustomerAccount:
    pk = account if isinstance(account, int) else account.pk
    biller_id = biller if isinstance(biller, int) else biller.pk
    locked = (
        CustomerAccount.objects.select_for_update(of=("self",))
        .select_related("customer", "user", "biller")
        .filter(pk=pk, biller_id=biller_id)
        .first()
    )
    if locked is None:
        raise NotFound(_("No such account."))
    return locked


def customer_account_set_role(
    *, actor: User, biller: Biller, account: CustomerAccount | int, role: str
) -> CustomerAccount:
    with transaction.atomic():
        locked = _locked_account(biller, account)
        _check_role(locked.customer, role)
        if locked.role != role:
            before = {"role": locked.role}
            locked.role = role
            locked.save(update_fields=["role"])
            audit_record(
                actor=actor,
                action="customer_account.role",
                biller=biller,
                target=locked,
                summary=f"{locked.customer.code} {locked.user.email}",
                before=before,
                after={"role": role},
            )
    return locked


def customer_account_set_active(
    *, actor: User, biller: Biller, account: CustomerAccount | int, active: bool
) -> CustomerAccount:
    """Block (or unblock) a portal account's login; its history stays."""
    with transaction.atomic():
        locked = _locked_account(biller, account)
        user = User.objects.select_for_update().get(pk=locked.user_id)
        if user.is_active != active:
            user.is_active = active
            user.save(update_fields=["is_active"])
            audit_record(
                actor=actor,
                action="customer_account.activate" if active else "customer_account.block",
                biller=biller,
                target=locked,
                summary=f"{locked.customer.code} {user.email}",
            )
        locked.user = user
    return locked


# --- password reset ------------------------------------------------------------------------------------


def password_reset_request(*, biller: Biller, email: str) -> bool:
    """E-mail a reset link to the account with this e-mail at this biller, if there is one.

    The caller answers the same either way. The link is built from PORTAL_BASE_URL, never from
    the request's Host header. Returns whether an e-mail was enqueued (for tests and logs).
    """
    from billing import tasks

    user = (
        User.objects.filter(
            login=customer_login(biller, email or ""),
            realm=User.Realm.CUSTOMER,
            customer_biller=biller,
            is_active=True,
        )
        .select_related("customer_account")
        .first()
    )
    if user is None or not user.has_usable_password() or not hasattr(user, "customer_account"):
        return False
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    url = portal_url(biller, "portal:password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    with transaction.atomic():
        audit_record(actor=user, action="customer_account.password_reset_request", biller=biller, target=user)
        user_id = user.pk
        transaction.on_commit(lambda: tasks.portal_password_reset_send.delay(user_id, url))
    return True


# --- TOTP ----------------------------------------------------------------------------------------------


def totp_provisioning_uri(account: CustomerAccount) -> str:
    biller_name = Biller.objects.only("legal_name").get(pk=account.biller_id).legal_name
    return totp.provisioning_uri(account.totp_secret, name=account.user.email, issuer=biller_name)


def totp_enrol_begin(*, account: CustomerAccount) -> CustomerAccount:
    """Give the account a new secret to put in an authenticator app; it counts once confirmed."""
    with transaction.atomic():
        locked = _locked_account(account.biller_id, account)
        if locked.totp_enabled:
            raise InvalidTransition(_("Two-step verification is already on."))
        locked.totp_secret = totp.new_secret()
        locked.save(update_fields=["totp_secret"])
    return locked


def totp_enrol_confirm(*, account: CustomerAccount, code: str) -> CustomerAccount:
    with transaction.atomic():
        locked = _locked_account(account.biller_id, account)
        if locked.totp_enabled or not locked.totp_secret:
            raise InvalidTransition(_("Start setting up two-step verification first."))
        step = totp.matching_step(locked.totp_secret, code, after=None)
        if step is None:
            raise ValidationFailed({"code": [_("The code is not correct. Check the time on your phone.")]})
        locked.totp_enabled_at = timezone.now()
        locked.totp_last_step = step
        locked.save(update_fields=["totp_enabled_at", "totp_last_step"])
        audit_record(
            actor=locked.user, action="customer_account.totp_on", biller=locked.biller, target=locked
        )
    return locked


def totp_verify(*, account: CustomerAccount, code: str) -> bool:
    """Check a login code. Each code is accepted once (the step is remembered under a row lock)."""
    with transaction.atomic():
        locked = _locked_account(account.biller_id, account)
        if not locked.totp_enabled:
            return False
        step = totp.matching_step(locked.totp_secret, code, after=locked.totp_last_step)
        if step is None:
            return False
        locked.totp_last_step = step
        locked.save(update_fields=["totp_last_step"])
    return True


def totp_disable(*, account: CustomerAccount, code: str) -> CustomerAccount:
    """Turn two-step verification off; it takes a current code, so a stolen session alone cannot."""
    with transaction.atomic():
        locked = _locked_account(account.biller_id, account)
        if not locked.totp_enabled:
            raise InvalidTransition(_("Two-step verification is off."))
        step = totp.matching_step(locked.totp_secret, code, after=locked.totp_last_step)
        if step is None:
            raise ValidationFailed({"code": [_("The code is not correct. Check the time on your phone.")]})
        locked.totp_secret, locked.totp_enabled_at, locked.totp_last_step = "", None, None
        locked.save(update_fields=["totp_secret", "totp_enabled_at", "totp_last_step"])
        audit_record(
            actor=locked.user, action="customer_account.totp_off", biller=locked.biller, target=locked
        )
    return locked


# --- approvals (社内決裁) ------------------------------------------------------------------------------


def invoice_decide(
    *, actor: User, biller: Biller, invoice: Invoice | int, decision: str, comment: str = ""
) -> InvoiceApproval:
    """An approver of the invoice's corporate customer approves or rejects it. Appends a decision.

    A rejection needs a comment. Approving an invoice whose latest decision is an approval is a
    conflict (it is approved already); rejecting an approved invoice withdraws the approval.
    """
    if decision not in InvoiceApproval.Decision.values:
        raise ValidationFailed({"decision": [_("unknown decision %(d)r") % {"d": decision}]})
    comment = (comment or "").strip()
    if len(comment) > 500:
        raise ValidationFailed({"comment": [_("at most 500 characters")]})
    if decision == InvoiceApproval.Decision.REJECTED and not comment:
        raise ValidationFailed({"comment": [_("Say why the invoice is rejected.")]})
    account = account_of(actor, biller)
    if account is None:
        raise NotFound(_("No such invoice."))
    pk = invoice if isinstance(invoice, int) else invoice.pk
    with transaction.atomic():
        locked = (
            Invoice.objects.select_for_update(of=("self",))
            .select_related("customer", "biller")
            .filter(pk=pk, biller=biller, customer_id=account.customer_id)
            .exclude(status=Invoice.Status.DRAFT)
            .first()
        )
        if locked is None:
            raise NotFound(_("No such invoice."))
        if not account.can_approve:
            raise Forbidden(_("Only an approver of the company can approve or reject invoices."))
        if not locked.is_payable:
            raise InvalidTransition(
                _("Only an unpaid invoice can be approved or rejected; this one is %(status)s.")
                % {"status": locked.get_status_display().lower()},
                field="status",
            )
        latest = latest_decision(locked)
        if latest is not None and latest.decision == decision == InvoiceApproval.Decision.APPROVED:
            raise Conflict(_("This invoice is approved already."), code="already_approved")
        approval = InvoiceApproval.objects.create(
            biller=biller,
            invoice=locked,
            customer_id=account.customer_id,
            decision=decision,
            comment=comment,
            decided_by=actor,
        )
        audit_record(
            actor=actor,
            action=f"invoice.{'approve' if decision == InvoiceApproval.Decision.APPROVED else 'reject'}",
            biller=biller,
            target=locked,
            summary=f"{locked.number} {comment}"[:300],
            after={"decision": decision},
        )
    return approval


__all__ = [
    "NUMBERS_SHOWN",
    "NumbersVisibility",
    "account_of",
    "approval_state",
    "can_pay",
    "chosen_amount_request",
    "customer_account_set_active",
    "customer_account_set_role",
    "customer_invitation_accept",
    "customer_invitation_create",
    "customer_invitation_get_pending",
    "customer_invitation_revoke",
    "customer_of",
    "customer_register",
    "customer_registration_code_regenerate",
    "email_numbers_visibility",
    "invoice_decide",
    "latest_decision",
    "may_see_numbers",
    "numbers_visibility",
    "password_reset_request",
    "portal_url",
    "published_invoice_link",
    "totp_disable",
    "totp_enrol_begin",
    "totp_enrol_confirm",
    "totp_verify",
]
