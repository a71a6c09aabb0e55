"""Demo data of chosen amounts and pay-later numbers for a demo biller (``seed_balance_demo``).

Wired into the demo seed (payeasy.demo.seed_demo) by calling ``seed_balance_demo(biller)`` for each
demo biller after its customers exist (and after billing.portal.demo.seed_portal_demo, so the consumer
has a portal account to see the balance with). Running it again changes nothing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from billing import services
from billing.models import BalanceAccount, Biller, Customer, Invoice
from billing.paylater import paylater_url

DEMO_PAYLATER_REFERENCE = "DEMO-ORDER-0001"
DEMO_MINIMUM = 5_000


@dataclass(frozen=True)
class BalanceDemo:
    customer_code: str | None  # the consumer given a balance (None: the biller has no consumer)
    balance: int
    paylater_number: str
    paylater_url: str


@transaction.atomic
def seed_balance_demo(biller: Biller) -> BalanceDemo:
    """The biller's first consumer customer gets a balance (minimum ¥5,000; items of ¥30,000 and ¥12,000,
    oldest first), and the biller one pay-later order of ¥12,800 (order reference DEMO-ORDER-0001)."""
    today = timezone.localdate()
    consumer = Customer.objects.filter(biller=biller, kind=Customer.Kind.CONSUMER).order_by("code").first()
    balance = 0
    if consumer is not None:
        account = BalanceAccount.objects.filter(biller=biller, customer=consumer).first()
        if account is None:
            services.balance_account_set(
                actor=None,
                biller=biller,
                customer=consumer,
                minimum_payment=DEMO_MINIMUM,
                items=[
                    {
                        "date": (today - datetime.timedelta(days=45)).replace(day=10),
                        "description": "ご利用代金（前々月分）",
                        "amount": 30_000,
                    },
                    {
                        "date": (today - datetime.timedelta(days=15)).replace(day=10),
                        "description": "ご利用代金（前月分）",
                        "amount": 12_000,
                    },
                ],
            )
        from billing.selectors import balance_account_of, balance_range

        account = balance_account_of(biller=biller, customer=consumer)
        balance = balance_range(account).balance if account is not None else 0
    order = Invoice.objects.filter(biller=biller, external_id=DEMO_PAYLATER_REFERENCE).first()
    if order is None:
        order = services.payment_request_create(
            actor=None,
            biller=biller,
            data={
                "amount": 12_800,
                "description": "カタログ通販ご注文",
                "due_date": today + datetime.timedelta(days=14),
                "email": f"order@{biller.slug}.example",
                "name": "株式会社デモ購買",
                "external_id": DEMO_PAYLATER_REFERENCE,
                "tax_category": "10",
            },
        )
    return BalanceDemo(
        customer_code=consumer.code if consumer is not None else None,
        balance=balance,
        paylater_number=order.number,
        paylater_url=paylater_url(order),
    )
