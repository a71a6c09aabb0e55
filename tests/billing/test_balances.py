"""Chosen amounts (任意金額): the tenant states a balance (API, console), a payer chooses an amount in
range and gets a fresh payment request, the line pays it → allocated oldest first, excess → credit;
once per payment; a reversal undoes it; other customers and billers see nothing (404)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from billing import services
from billing.models import (
    BalanceAccount,
    BalanceAllocation,
    BalanceItem,
    Biller,
    Customer,
    CustomerAccount,
    Invoice,
)
from billing.portal.services import can_pay
from payeasy.services.payments import notices_apply, refund_due
from tests.factories import make_biller, make_customer, make_invoice, make_member, make_portal_account
from tests.payeasy import line_helpers as h
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
OLD, NEW = datetime.date(2026, 10, 10), datetime.date(2026, 11, 10)
ITEMS = [
    {"date": NEW.isoformat(), "description": "10月ご利用分", "amount": 12_000},
    {"date": OLD.isoformat(), "description": "9月ご利用分", "amount": 30_000},
]


@pytest.fixture
def biller() -> Biller:
    return h.open_line_biller()


@pytest.fixture
def consumer(biller: Biller) -> CustomerAccount:
    return make_portal_account(biller, make_customer(biller, code="CARD-1", name="山田 太郎"))


@pytest.fixture
def account(biller: Biller, consumer: CustomerAccount) -> BalanceAccount:
    return services.balance_account_set(
        actor=None, biller=biller, customer=consumer.customer, minimum_payment=5_000, items=ITEMS
    )


@pytest.fixture
def portal(client: Client, consumer: CustomerAccount) -> Client:
    client.force_login(consumer.user)
    return client


def my(biller: Biller, path: str = "") -> str:
    return f"/b/{biller.slug}/my/{path}"


def outstanding(account: BalanceAccount) -> list[tuple[str, int]]:
    return [
        (i.description, i.outstanding) for i in BalanceItem.objects.filter(account=account).order_by("date")
    ]


def pay(biller: Biller, invoice: Invoice, **kw: Any) -> Any:
    message = h.payment(biller, invoice, **kw)
    h.send(message)
    notices_apply()
    return message


def request_for(biller: Biller, customer: Customer, amount: int) -> Invoice:
    invoice = services.balance_request_create(actor=None, biller=biller, customer=customer, amount=amount)
    invoice.refresh_from_db()
    return invoice


# --- the tenant states the balance ---------------------------------------------------------------------


class Api:
    def __init__(self, biller: Biller) -> None:
        _, token = services.api_key_create(actor=None, biller=biller, name="card system")
        self.client = Client()
        self.base = f"/b/{biller.slug}/api/v1"
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def put(self, path: str, body: dict) -> Any:
        return self.client.put(
            self.base + path,
            json.dumps(body, ensure_ascii=False),
            content_type="application/json",
            **self.headers,
        )

    def get(self, path: str) -> Any:
        return self.client.get(self.base + path, **self.headers)


def test_api_puts_and_gets_a_balance(biller: Biller, consumer: CustomerAccount) -> None:
    api = Api(biller)
    assert api.get("/customers/CARD-1/balance/").status_code == 404  # no balance yet
    put = api.put("/customers/CARD-1/balance/", {"minimum_payment": 5000, "items": ITEMS})
    assert put.status_code == 200, put.content
    body = put.json()
    assert (body["balance"], body["credit"], body["payable_from"], body["payable_to"]) == (
        42_000,
        0,
        5_000,
        42_000,
    )
    assert [i["description"] for i in body["items"]] == ["9月ご利用分", "10月ご利用分"]  # oldest first
    assert api.get("/customers/CARD-1/balance/").json() == body
    # restated: a known item keeps its outstanding unless given; one left out is settled
    again = api.put(
        "/customers/CARD-1/balance/",
        {"minimum_payment": 3000, "items": [{**ITEMS[0], "outstanding": 2_000}]},
    ).json()
    assert (again["balance"], again["payable_from"]) == (2_000, 2_000)  # the minimum, or all when smaller
    assert [(i["description"], i["outstanding"]) for i in again["items"]] == [
        ("9月ご利用分", 0),
        ("10月ご利用分", 2_000),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"minimum_payment": 0, "items": ITEMS}, "minimum_payment"),
        ({"minimum_payment": 5000, "items": [{**ITEMS[0], "amount": 0}]}, "items[0].amount"),
        (
            {"minimum_payment": 5000, "items": [ITEMS[0], {**ITEMS[1], "outstanding": 40_000}]},
            "items[1].outstanding",
        ),
        ({"minimum_payment": 5000, "items": [ITEMS[0], ITEMS[0]]}, "items[1].description"),
        ({"minimum_payment": 5000, "items": [{**ITEMS[0], "date": "soon"}]}, "items[0].date"),
        ({"items": ITEMS}, "minimum_payment"),
    ],
)
def test_api_balance_errors_name_the_field(
    biller: Biller, consumer: CustomerAccount, body: dict, field: str
) -> None:
    response = Api(biller).put("/customers/CARD-1/balance/", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert not BalanceAccount.objects.exists()


def test_api_balance_of_another_billers_customer_is_404(biller: Biller, account: BalanceAccount) -> None:
    other = make_biller()
    make_customer(other, code="OTHER-1")
    api = Api(other)
    for path in ("/customers/CARD-1/balance/", "/customers/NOBODY/balance/"):
        assert api.get(path).status_code == 404
        assert api.put(path, {"minimum_payment": 1, "items": []}).status_code == 404
    assert outstanding(account) == [("9月ご利用分", 30_000), ("10月ご利用分", 12_000)]
    mine = Api(biller)
    assert mine.get("/customers/OTHER-1/balance/").status_code == 404


def test_console_sets_a_balance(client: Client, biller: Biller, consumer: CustomerAccount) -> None:
    admin = make_member(biller)
    client.force_login(admin)
    url = f"/b/{biller.slug}/console/customers/{consumer.customer.pk}/balance/"
    assert client.get(url).status_code == 200
    data = {
        "minimum_payment": "5,000",
        "items-TOTAL_FORMS": "3",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "200",
        "items-0-date": OLD.isoformat(),
        "items-0-description": "9月ご利用分",
        "items-0-amount": "30,000",
        "items-1-date": NEW.isoformat(),
        "items-1-description": "10月ご利用分",
        "items-1-amount": "12000",
    }
    bad = client.post(url, {**data, "items-1-amount": "zero"})
    assert bad.status_code == 400 and 'href="#id_items-1-amount"' in bad.content.decode()
    saved = client.post(url, data)
    assert saved.status_code == 302
    account = BalanceAccount.objects.get(customer=consumer.customer)
    assert account.minimum_payment == 5_000
    assert outstanding(account) == [("9月ご利用分", 30_000), ("10月ご利用分", 12_000)]
    page = client.get(url).content.decode()
    assert "42,000" in page
    # another biller's admin: the customer does not exist for them
    other = Client()
    other.force_login(make_member(make_biller()))
    assert other.get(url).status_code == 404
    assert_cross_tenant_hidden(
        client,
        lambda pk: f"/b/{biller.slug}/console/customers/{pk}/balance/",
        make_customer(make_biller()).pk,
    )


# --- the payer chooses an amount -------------------------------------------------------------------------


def test_portal_balance_page_and_amount_out_of_range(
    portal: Client, biller: Biller, account: BalanceAccount
) -> None:
    page = portal.get(my(biller, "balance/"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "42,000" in text and "5,000" in text and 'name="amount"' in text
    assert (
        f'href="/b/{biller.slug}/my/balance/"' in portal.get(my(biller, "invoices/")).content.decode()
    )  # nav
    for amount, message in (
        ("4,999", "at least the minimum payment"),
        ("42001", "at most the balance"),
        ("ten thousand", "whole number of yen"),
        ("", "required"),
    ):
        response = portal.post(my(biller, "balance/"), {"amount": amount})
        assert response.status_code == 400, amount
        body = response.content.decode()
        assert message in body and 'href="#id_amount"' in body, amount  # the error names the field
    assert not Invoice.objects.exists()


def test_amount_in_range_gives_a_fresh_request_with_numbers(
    portal: Client, biller: Biller, consumer: CustomerAccount, account: BalanceAccount
) -> None:
    response = portal.post(
        my(biller, "balance/"), {"amount": "１０，０００"}
    )  # full-width, as typed in Japanese
    assert response.status_code == 302
    invoice = Invoice.objects.get()
    assert response["Location"] == my(biller, f"invoices/{invoice.pk}/")
    assert (invoice.kind, invoice.status, invoice.total) == ("payment_request", "published", 10_000)
    assert invoice.customer_id == consumer.customer.pk and invoice.description == "ご返済"
    assert invoice.subtotal_exempt == 10_000 and invoice.due_date == TODAY + datetime.timedelta(days=7)
    assert invoice.balance_request.account == account
    assert can_pay(consumer.user, invoice)
    detail = portal.get(response["Location"]).content.decode()
    for text in (biller.payee_number, invoice.customer_number, invoice.confirmation_number, "10,000"):
        assert text in detail
    assert "Pay by 情報リンク" in detail
    second = portal.post(my(biller, "balance/"), {"amount": "5000"})
    other = Invoice.objects.exclude(pk=invoice.pk).get()
    assert second["Location"] == my(biller, f"invoices/{other.pk}/")
    assert other.customer_number != invoice.customer_number  # its own numbers
    assert outstanding(account) == [("9月ご利用分", 30_000), ("10月ご利用分", 12_000)]  # nothing paid yet


def test_corporate_viewer_cannot_pay_payer_can_without_approval(client: Client, biller: Biller) -> None:
    company = make_customer(biller, code="CORP-1", kind=Customer.Kind.CORPORATE)
    services.balance_account_set(
        actor=None, biller=biller, customer=company, minimum_payment=1000, items=ITEMS
    )
    viewer = make_portal_account(biller, company, role=CustomerAccount.Role.VIEWER)
    payer = make_portal_account(biller, company, role=CustomerAccount.Role.PAYER)
    client.force_login(viewer.user)
    assert client.get(my(biller, "balance/")).status_code == 200
    refused = client.post(my(biller, "balance/"), {"amount": "1000"})
    assert refused.status_code == 403 and not Invoice.objects.exists()
    client.force_login(payer.user)
    made = client.post(my(biller, "balance/"), {"amount": "1000"})
    assert made.status_code == 302
    invoice = Invoice.objects.get()
    assert can_pay(payer.user, invoice)  # a chosen amount needs no 社内決裁
    assert not can_pay(viewer.user, invoice)
    assert "Pay by 情報リンク" in client.get(made["Location"]).content.decode()


def test_others_cannot_see_or_create_on_this_balance(
    client: Client, biller: Biller, consumer: CustomerAccount, account: BalanceAccount
) -> None:
    mine = request_for(biller, consumer.customer, 6_000)
    stranger = make_portal_account(biller, make_customer(biller))  # same biller, another customer
    client.force_login(stranger.user)
    assert client.get(my(biller, "balance/")).status_code == 404
    assert client.post(my(biller, "balance/"), {"amount": "6000"}).status_code == 404
    assert client.get(my(biller, f"invoices/{mine.pk}/")).status_code == 404
    # the same person at another biller: this biller's portal does not know them
    other = make_biller()
    elsewhere = make_portal_account(other, make_customer(other))
    client.force_login(elsewhere.user)
    assert client.get(my(biller, "balance/")).status_code != 200
    assert client.post(my(biller, "balance/"), {"amount": "6000"}).status_code != 200
    assert client.get(my(other, "balance/")).status_code == 404
    assert Invoice.objects.count() == 1


# --- the line pays: allocation -----------------------------------------------------------------------------


def test_paid_amount_goes_to_the_oldest_item_first_and_excess_to_credit(
    biller: Biller, consumer: CustomerAccount, account: BalanceAccount
) -> None:
    first = request_for(biller, consumer.customer, 35_000)
    second = request_for(biller, consumer.customer, 20_000)  # chosen before the first was paid
    pay(biller, first)
    first.refresh_from_db()
    assert first.status == "paid"
    assert outstanding(account) == [("9月ご利用分", 0), ("10月ご利用分", 7_000)]
    pay(biller, second)
    account.refresh_from_db()
    assert outstanding(account) == [("9月ご利用分", 0), ("10月ご利用分", 0)]
    assert account.credit == 13_000  # 20,000 − 7,000
    rows = list(
        BalanceAllocation.objects.order_by("id").values_list("invoice_id", "item__description", "amount")
    )
    assert rows == [
        (first.pk, "9月ご利用分", 30_000),
        (first.pk, "10月ご利用分", 5_000),
        (second.pk, "10月ご利用分", 7_000),
        (second.pk, None, 13_000),
    ]
    assert sum(a for _i, _d, a in rows) == 55_000  # every yen paid is somewhere


def test_the_same_payment_allocates_once(
    biller: Biller, consumer: CustomerAccount, account: BalanceAccount
) -> None:
    invoice = request_for(biller, consumer.customer, 10_000)
    message = pay(biller, invoice)
    h.send(message)  # the centre resends it (再送)
    notices_apply()
    notices_apply()
    invoice.refresh_from_db()
    again = services.balance_payment_allocate(
        invoice=invoice, amount=10_000, paid_at=timezone.now(), payment_key=message.transaction_key
    )
    assert again == []
    assert BalanceAllocation.objects.count() == 1
    assert outstanding(account) == [("9月ご利用分", 20_000), ("10月ご利用分", 12_000)]


def test_a_reversal_undoes_the_allocation(
    biller: Biller, consumer: CustomerAccount, account: BalanceAccount
) -> None:
    invoice = request_for(biller, consumer.customer, 40_000)
    extra = request_for(biller, consumer.customer, 5_000)
    payment = pay(biller, invoice, channel="01")
    pay(biller, extra)
    account.refresh_from_db()
    assert outstanding(account) == [("9月ご利用分", 0), ("10月ご利用分", 0)] and account.credit == 3_000
    h.send(h.reversal(biller, payment))
    notices_apply()
    invoice.refresh_from_db()
    account.refresh_from_db()
    assert invoice.status == "published"  # owed again
    # the reversed 40,000 is owed again on its items; the other payment's credit stays
    assert outstanding(account) == [("9月ご利用分", 30_000), ("10月ご利用分", 10_000)]
    assert account.credit == 3_000
    assert sum(BalanceAllocation.objects.filter(invoice=invoice).values_list("amount", flat=True)) == 0
    assert sum(BalanceAllocation.objects.values_list("amount", flat=True)) == 5_000
    # paying it again allocates again, once
    pay(biller, invoice, channel="02")
    account.refresh_from_db()
    assert outstanding(account) == [("9月ご利用分", 0), ("10月ご利用分", 0)] and account.credit == 3_000
    assert sum(BalanceAllocation.objects.values_list("amount", flat=True)) == 45_000


def test_double_payment_allocates_once_and_reversing_it_keeps_the_allocation(
    biller: Biller, consumer: CustomerAccount, account: BalanceAccount
) -> None:
    invoice = request_for(biller, consumer.customer, 10_000)
    first, second = h.payment(biller, invoice, channel="01"), h.payment(biller, invoice, channel="01")
    h.send(first, second)
    notices_apply()
    assert sum(BalanceAllocation.objects.values_list("amount", flat=True)) == 10_000  # not 20,000
    assert [e.notice.transaction_key for e in refund_due(biller=biller)] == [second.transaction_key]
    h.send(h.reversal(biller, first))  # the other payment now pays the request
    notices_apply()
    assert sum(BalanceAllocation.objects.values_list("amount", flat=True)) == 10_000
    h.send(h.reversal(biller, second))  # nothing pays it any more
    notices_apply()
    assert sum(BalanceAllocation.objects.values_list("amount", flat=True)) == 0
    assert outstanding(account) == [("9月ご利用分", 30_000), ("10月ご利用分", 12_000)]


def test_allocations_are_append_only(
    biller: Biller, consumer: CustomerAccount, account: BalanceAccount
) -> None:
    from django.db import DatabaseError, transaction

    pay(biller, request_for(biller, consumer.customer, 10_000))
    row = BalanceAllocation.objects.get()
    with pytest.raises(TypeError):
        row.save()
    with pytest.raises(TypeError):
        BalanceAllocation.objects.update(amount=1)
    with pytest.raises(DatabaseError), transaction.atomic():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("UPDATE billing_balanceallocation SET amount = 1")


def test_pay_later_request_without_a_balance_is_untouched(biller: Biller) -> None:
    invoice = make_invoice(biller=biller, kind=Invoice.Kind.PAYMENT_REQUEST, amount=3_000)
    pay(biller, invoice)
    invoice.refresh_from_db()
    assert invoice.status == "paid" and not BalanceAllocation.objects.exists()


def test_demo_seed_is_idempotent(biller: Biller) -> None:
    from billing.balances_demo import seed_balance_demo

    consumer = make_customer(biller, code="A-0001")
    first = seed_balance_demo(biller)
    second = seed_balance_demo(biller)
    assert first == second and first.customer_code == consumer.code and first.balance == 42_000
    account = BalanceAccount.objects.get(customer=consumer)
    assert account.minimum_payment == 5_000 and BalanceItem.objects.filter(account=account).count() == 2
    assert Invoice.objects.filter(kind="payment_request").count() == 1
    assert f"/b/{biller.slug}/pay/" in first.paylater_url
