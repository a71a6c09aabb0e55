"""Demo customer accounts for a demo biller's portal (``seed_portal_demo``), with fixed passwords.

Wired into the demo seed (payeasy.demo.seed_demo) by calling ``seed_portal_demo(biller)`` for
each demo biller after its customers exist. Running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from billing import services as billing_services
from billing.models import Biller, Customer, CustomerAccount, User, customer_login
from billing.portal.services.accounts import customer_account_create

PORTAL_DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - the published demo login (docs/demo.md)
DEMO_CORPORATE = {
    "code": "DEMO-CORP",
    "name": "株式会社デモ商事",
    "name_kana": "デモシヨウジ",
    "email": "keiri@demo-corp.example.jp",
    "kind": Customer.Kind.CORPORATE,
}


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    customer_code: str
    role: str


def _account(*, biller: Biller, customer: Customer, email: str, name: str, role: str) -> DemoLogin:
    user = User.objects.filter(login=customer_login(biller, email)).first()
    if user is None:
        customer_account_create(
            biller=biller, customer=customer, email=email, name=name, password=PORTAL_DEMO_PASSWORD, role=role
        )
    else:
        account = CustomerAccount.objects.filter(user=user).first()
        if account is not None:
            customer, role = account.customer, account.role
    return DemoLogin(email=email, password=PORTAL_DEMO_PASSWORD, customer_code=customer.code, role=role)


@transaction.atomic
def seed_portal_demo(biller: Biller) -> list[DemoLogin]:
    """A consumer's account, and a corporate customer's viewer, approver and payer, at ``biller``.

    The consumer is the biller's first consumer customer (its account's e-mail is the customer's
    e-mail); the corporate customer is its first corporate one, or DEMO-CORP, created here.
    Returns the logins (all with the password ``PORTAL_DEMO_PASSWORD``).
    """
    logins: list[DemoLogin] = []
    consumer = Customer.objects.filter(biller=biller, kind=Customer.Kind.CONSUMER).order_by("code").first()
    if consumer is not None:
        existing = CustomerAccount.objects.filter(customer=consumer).select_related("user").first()
        if existing is not None:
            logins.append(DemoLogin(existing.user.email, PORTAL_DEMO_PASSWORD, consumer.code, existing.role))
        else:
            email = consumer.email or f"consumer@{biller.slug}.example"
            logins.append(
                _account(
                    biller=biller,
                    customer=consumer,
                    email=email,
                    name=consumer.name,
                    role=CustomerAccount.Role.PAYER,
                )
            )
    corporate = Customer.objects.filter(biller=biller, kind=Customer.Kind.CORPORATE).order_by("code").first()
    if corporate is None:
        corporate = billing_services.customer_create(actor=None, biller=biller, data=dict(DEMO_CORPORATE))
    for role, name in (
        (CustomerAccount.Role.VIEWER, "閲覧 一郎"),
        (CustomerAccount.Role.APPROVER, "承認 花子"),
        (CustomerAccount.Role.PAYER, "支払 次郎"),
    ):
        logins.append(
            _account(
                biller=biller,
                customer=corporate,
                email=f"{role}@{biller.slug}.corp.example",
                name=name,
                role=role,
            )
        )
    return logins
