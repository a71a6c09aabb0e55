"""Factories for tests. Every tenant-owned object takes its biller explicitly."""

from __future__ import annotations

import datetime
import itertools
from typing import Any

from django.utils import timezone

from billing.models import Biller, ConsoleTwoFactor, Customer, Membership, User
from billing.validators import corporate_check_digit
from payeasy.models import ContractedBank

_seq = itertools.count(1)


def registration_number(base12: str) -> str:
    return f"T{corporate_check_digit(base12)}{base12}"


def biller_data(**overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    payee = f"{60000 + n:05d}"
    data = {
        "legal_name": f"テスト収納企業{n}株式会社",
        "short_name": f"テスト{n}",
        "name_kana": f"ﾃｽﾄ{n}(ｶ",
        "payee_number": payee,
        "biller_code": f"{payee}001",
        "registration_number": registration_number(f"{n:012d}"),
        "slug": f"biller-{n}",
        "contact_name": "担当 一郎",
        "contact_email": f"contact{n}@example.jp",
        "contact_phone": "03-0000-0000",
        "late_payment_policy": Biller.LatePaymentPolicy.ACCEPT,
        "tax_rounding": Biller.TaxRounding.FLOOR,
        "reminder_days": 3,
    }
    data.update(overrides)
    return data


def make_biller(*, status: str = Biller.Status.ACTIVE, **overrides: Any) -> Biller:
    from billing.kana import to_double_byte

    data = biller_data(**overrides)
    data["short_name"] = to_double_byte(data["short_name"])
    return Biller.objects.create(status=status, **data)


def make_user(
    email: str | None = None, *, password: str = "correct horse battery", totp: bool = True, **extra: Any
) -> User:
    """A console user; with ``totp`` (the default) enrolled in two-step verification, as every iDC staff
    member and tenant admin must be (log in with ``totp_code(user)``)."""
    email = email or f"user{next(_seq)}@example.jp"
    user = User.objects.create_user(email, password, name=extra.pop("name", "Test User"), **extra)
    if totp:
        enrol_totp(user)
    return user


def enrol_totp(user: User) -> ConsoleTwoFactor:
    from billing import totp

    return ConsoleTwoFactor.objects.create(user=user, secret=totp.new_secret(), enabled_at=timezone.now())


def totp_code(user: User | str) -> str:
    """A code the login will accept now: the next time step after the last one used (codes are single use)."""
    from billing import totp

    factor = ConsoleTwoFactor.objects.get(user__login=user if isinstance(user, str) else user.login)
    current = int(timezone.now().timestamp() // totp.INTERVAL)
    step = current if factor.last_step is None or factor.last_step < current else factor.last_step + 1
    if step > current + 1:
        raise AssertionError("two logins of one user within one time step: wait for the next one")
    return str(totp.totp(factor.secret).at(step * totp.INTERVAL))


def make_member(biller: Biller, *, role: str = Membership.Role.ADMIN, email: str | None = None) -> User:
    user = make_user(email)
    Membership.objects.create(biller=biller, user=user, role=role)
    return user


def make_customer(biller: Biller, **overrides: Any) -> Customer:
    n = next(_seq)
    data = {"code": f"C{n:06d}", "name": f"顧客 {n}", "email": f"c{n}@example.jp"}
    data.update(overrides)
    return Customer.objects.create(biller=biller, **data)


def make_contract(
    biller: Biller,
    bank_code: str = "0001",
    *,
    channels: tuple[str, ...] = ("02", "05"),
    valid_from: datetime.date = datetime.date(2026, 4, 1),
    valid_to: datetime.date | None = None,
) -> ContractedBank:
    from payeasy.models import CHANNEL_FIELDS

    flags = {field: code in channels for code, field in CHANNEL_FIELDS.items()}
    return ContractedBank.objects.create(
        biller=biller, bank_code=bank_code, valid_from=valid_from, valid_to=valid_to, **flags
    )


def make_portal_account(
    biller: Biller,
    customer: Customer | None = None,
    *,
    role: str = "",
    email: str | None = None,
    password: str = "correct horse battery",
    name: str = "Portal User",
) -> Any:
    """A customer-portal account (billing.portal): a customer-realm user linked to ``customer``."""
    from billing.models import CustomerAccount, customer_login

    customer = customer or make_customer(biller)
    role = role or (
        CustomerAccount.Role.PAYER if customer.kind == "consumer" else CustomerAccount.Role.VIEWER
    )
    email = email or f"portal{next(_seq)}@example.jp"
    user = User(
        login=customer_login(biller, email),
        email=email,
        name=name,
        realm=User.Realm.CUSTOMER,
        customer_biller=biller,
    )
    user.set_password(password)
    user.save()
    return CustomerAccount.objects.create(biller=biller, user=user, customer=customer, role=role)
