"""Customers' portal accounts: opening one (the rules every way in shares, and self-registration with
a bill's code), roles, blocking, and the password reset e-mail.

Invitations, the other way in, are in ``billing.portal.services.invitations``.
"""

from __future__ import annotations

import hmac

from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from billing import events
from billing.errors import Conflict, NotFound, ValidationFailed
from billing.models import Biller, Customer, CustomerAccount, User, customer_login
from billing.numbers import new_registration_code, normalise_registration_code
from billing.portal.services.access import portal_url
from billing.selectors import invoice_by_payment_numbers
from billing.services.audit import audit_field_set, audit_record
from billing.services.members import user_credentials_set

Role = CustomerAccount.Role


# --- the rules of every new account ----------------------------------------------------------------------


def customer_default_role(customer: Customer) -> str:
    """A consumer's single user pays; a corporate customer's new user starts as a viewer."""
    return Role.PAYER if customer.kind == Customer.Kind.CONSUMER else Role.VIEWER


def customer_role_check(customer: Customer, role: str) -> None:
    """ValidationFailed unless ``role`` is one an account of ``customer`` may have."""
    if role not in Role.values:
        raise ValidationFailed({"role": [_("unknown role %(role)r") % {"role": role}]})
    if customer.kind == Customer.Kind.CONSUMER and role != Role.PAYER:
        raise ValidationFailed({"role": [_("A consumer's account is always a payer.")]})


def portal_email_clean(email: str) -> str:
    """The e-mail address trimmed, or ValidationFailed naming ``email``."""
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationFailed({"email": [str(m) for m in exc.messages]}) from exc
    return email


def customer_login_taken(*, biller: Biller, email: str) -> bool:
    """Has this e-mail address an account at this biller's portal already?"""
    return User.objects.filter(login=customer_login(biller, email)).exists()


def _account_exists() -> str:
    return _("An account with this e-mail address already exists here. Log in, or reset your password.")


def customer_account_check_free(*, biller: Biller, customer: Customer, email: str) -> None:
    """Conflict when no new account can be opened: a consumer has one already (a consumer has one
    user), or the e-mail address has one here. Call with the customer row locked."""
    if customer.kind == Customer.Kind.CONSUMER and customer.accounts.exists():
        raise Conflict(
            _("This customer already has an account. Log in, or reset your password."),
            code="customer_has_account",
        )
    if customer_login_taken(biller=biller, email=email):
        raise Conflict(_account_exists(), code="account_exists")


def customer_account_create(
    *, biller: Biller, customer: Customer, email: str, name: str, password: str, role: str
) -> CustomerAccount:
    """Create the customer-realm user and its account (inside the caller's transaction)."""
    user = User(
        login=customer_login(biller, email),
        email=email,
        name=name.strip()[:100],
        realm=User.Realm.CUSTOMER,
        customer_biller=biller,
    )
    user_credentials_set(user=user, password=password)
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


def customer_account_open(
    *, biller: Biller, customer: Customer, email: str, name: str, password: str, role: str
) -> CustomerAccount:
    """Open a new account by any way in: refused (Conflict) unless it is free (see
    ``customer_account_check_free``), then created. Call with the customer row locked."""
    customer_account_check_free(biller=biller, customer=customer, email=email)
    return customer_account_create(
        biller=biller, customer=customer, email=email, name=name, password=password, role=role
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
    email = portal_email_clean(email)
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
        account = customer_account_open(
            biller=biller,
            customer=locked,
            email=email,
            name=name,
            password=password,
            role=customer_default_role(locked),
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


def customer_account_lock(*, biller: Biller | int, account: CustomerAccount | int) -> CustomerAccount:
    """The account (with its customer, user and biller) under a row lock; NotFound at another biller."""
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
        locked = customer_account_lock(biller=biller, account=account)
        customer_role_check(locked.customer, role)
        audit_field_set(
            actor=actor,
            action="customer_account.role",
            biller=biller,
            target=locked,
            field="role",
            value=role,
            summary=f"{locked.customer.code} {locked.user.email}",
        )
    return locked


def customer_account_set_active(
    *, actor: User, biller: Biller, account: CustomerAccount | int, active: bool
) -> CustomerAccount:
    """Block (or unblock) a portal account's login; its history stays."""
    with transaction.atomic():
        locked = customer_account_lock(biller=biller, account=account)
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
        events.after_commit("billing.tasks.portal_password_reset_send", user.pk, url)
    return True


__all__ = [
    "customer_account_check_free",
    "customer_account_create",
    "customer_account_lock",
    "customer_account_open",
    "customer_account_set_active",
    "customer_account_set_role",
    "customer_default_role",
    "customer_login_taken",
    "customer_register",
    "customer_registration_code_regenerate",
    "customer_role_check",
    "password_reset_request",
    "portal_email_clean",
]
