"""The payments API (GET /api/v1/payments/: ledger entries with the page's filters, cursor pages, 速報/確報)
and the bill's payments (GET /api/v1/invoices/{id}/payments/: billing's own record): real data from the
real line code and applier, one error shape, never another tenant's rows."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from billing import services
from billing.models import Biller, Invoice, InvoicePayment, Receipt
from payeasy import codec
from payeasy.models import LedgerEntry
from payeasy.services.payments import notices_apply
from reconciliation.models import ExpectedFunds, ReportPair
from tests.payeasy import line_helpers as h
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db
DAY = datetime.date(2026, 11, 26)


class Api:
    """A client of one tenant's API with an API key."""

    def __init__(self, biller: Biller) -> None:
        _, token = services.api_key_create(actor=None, biller=biller, name="accounting")
        self.client = Client()
        self.base = f"/b/{biller.slug}/api/v1"
        self.headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def get(self, path: str, **params: Any):  # type: ignore[no-untyped-def]
        return self.client.get(path if path.startswith("http") else self.base + path, params, **self.headers)


@pytest.fixture
def biller() -> Biller:
    return h.open_line_biller()


@pytest.fixture
def api(biller: Biller) -> Api:
    return Api(biller)


def pay(biller: Biller, invoice: Invoice, **kw: Any) -> codec.Message:
    message = h.payment(biller, invoice, **kw)
    h.send(message)
    notices_apply()
    return message


def keys(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content[:1000]
    return [row["transaction_key"] for row in response.json()["results"]]


def test_the_api_path_reaches_the_payments_api(api: Api) -> None:
    response = api.get("/payments/")
    assert response.status_code == 200, "GET /api/v1/payments/ is answered by another view (URL order?)"
    assert response.json()["results"] == []


def test_lists_every_entry_with_its_facts(api: Api, biller: Biller) -> None:
    bill = h.published_invoice(biller, price=3000, number="INV-API-1")
    payment = pay(biller, bill, channel="01")
    reversal = h.reversal(biller, payment)
    h.send(reversal)
    notices_apply()
    rows = api.get("/payments/").json()["results"]
    paid, undone = LedgerEntry.objects.order_by("id")
    assert [r["id"] for r in rows] == [undone.pk, paid.pk]
    assert rows[1] == {
        "id": paid.pk,
        "paid_at": "2026-11-26T10:30:00+09:00",
        "processing_date": "2026-11-26",
        "amount": 3300,
        "kind": "payment",
        "outcome": "paid",
        "reason": "",
        "source": "line",
        "bank": {"code": "0001", "name": "みずほ"},
        "branch": {"code": "001", "name": "東京営業部"},
        "channel": "01",
        "transaction_key": payment.transaction_key,
        "original_transaction_key": None,
        "confirmation": "preliminary",
        "invoice": {"id": bill.pk, "number": "INV-API-1"},
        "customer_number": bill.customer_number,
        "reverses": None,
    }
    assert (rows[0]["amount"], rows[0]["outcome"], rows[0]["reverses"]) == (-3300, "reversal", paid.pk)
    assert rows[0]["original_transaction_key"] == payment.transaction_key


def test_confirmation_follows_pairs_and_matched_funds(api: Api, biller: Biller) -> None:
    a = pay(biller, h.published_invoice(biller, price=1000))
    b = pay(biller, h.published_invoice(biller, price=2000))

    def states() -> dict[str, str]:
        return {r["transaction_key"]: r["confirmation"] for r in api.get("/payments/").json()["results"]}

    assert set(states().values()) == {"preliminary"}
    notice_a = LedgerEntry.objects.get(notice__transaction_key=a.transaction_key).notice_id
    ReportPair.objects.create(biller=biller, line_notice_id=notice_a, file_notice_id=123456)
    assert states() == {a.transaction_key: "confirmed", b.transaction_key: "preliminary"}
    ExpectedFunds.objects.create(
        biller=biller, bank_code="0001", processing_date=DAY, value_date=DAY, count=2, amount=3300,
        state=ExpectedFunds.State.MATCHED,
    )  # fmt: skip
    assert states() == {a.transaction_key: "confirmed", b.transaction_key: "confirmed"}


def test_filters_combine(api: Api, biller: Biller) -> None:
    atm = pay(biller, h.published_invoice(biller, price=3000))
    net = pay(biller, h.published_invoice(biller, price=2000), channel="03", paid_at="20261125120000")
    short = pay(biller, h.published_invoice(biller, price=5000), amount=5400)
    assert keys(api.get("/payments/", channel="03")) == [net.transaction_key]
    assert keys(api.get("/payments/", outcome="provisional")) == [short.transaction_key]
    assert keys(api.get("/payments/", amount_min="3,000", amount_max="4000")) == [atm.transaction_key]
    assert keys(api.get("/payments/", paid_to="2026-11-25")) == [net.transaction_key]
    assert keys(api.get("/payments/", paid_from="2026-11-26", channel="02", bank="0001")) == [
        short.transaction_key,
        atm.transaction_key,
    ]
    assert keys(api.get("/payments/", processing_date="2026-11-27")) == []
    assert keys(api.get("/payments/", bank="0005")) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"channel": "7"}, "channel"),
        ({"bank": "abcd"}, "bank"),
        ({"outcome": "refund"}, "outcome"),
        ({"amount_max": "-1"}, "amount_max"),
        ({"amount_min": "9" * 30}, "amount_min"),
        ({"paid_to": "26/11/2026"}, "paid_to"),
        ({"processing_date": "2026-02-30"}, "processing_date"),
        ({"amount_min": "5000", "amount_max": "10"}, "amount_max"),
        ({"cursor": "garbage"}, "cursor"),
        ({"page_size": "0"}, "page_size"),
        ({"channel": "01\x00"}, "channel"),
    ],
)
def test_bad_values_are_400_in_the_one_error_shape(api: Api, params: dict[str, str], field: str) -> None:
    response = api.get("/payments/", **params)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and list(error["fields"]) == [field]


def test_cursor_pages_cover_every_entry_once(api: Api, biller: Biller) -> None:
    bill = h.published_invoice(biller)
    h.send(*(h.payment(biller, bill) for _ in range(5)))
    notices_apply()
    expected = list(LedgerEntry.objects.order_by("-id").values_list("id", flat=True))
    seen: list[int] = []
    body = api.get("/payments/", page_size="2").json()
    assert body["previous"] is None
    while True:
        seen += [row["id"] for row in body["results"]]
        if not body["next"]:
            break
        body = api.get(body["next"]).json()
    assert seen == expected and len(seen) == 5
    back = api.get(body["previous"]).json()
    assert [row["id"] for row in back["results"]] == expected[2:4]


def test_another_tenants_entries_are_never_listed(api: Api, biller: Biller) -> None:
    other = h.line_biller()
    h.send(h.open_day(other))
    theirs = pay(other, h.published_invoice(other))
    mine = pay(biller, h.published_invoice(biller))
    assert keys(api.get("/payments/")) == [mine.transaction_key]
    assert keys(Api(other).get("/payments/")) == [theirs.transaction_key]


@pytest.mark.parametrize("count", [1, 50])
def test_the_list_takes_a_fixed_number_of_queries(
    api: Api,
    biller: Biller,
    count: int,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    bill = h.published_invoice(biller)
    h.send(*(h.payment(biller, bill) for _ in range(count)))
    notices_apply()
    api.get("/payments/")
    with django_assert_num_queries(QUERIES_LIST[connection.vendor]):
        assert len(keys(api.get("/payments/"))) == count


# the API key and the page (one query; the tenant is kept by the process after the first request); on
# PostgreSQL also the savepoint of the tenant scope, its two set_config (in and out) and the release
# (billing.tenancy)
QUERIES_LIST = {"sqlite": 2, "postgresql": 6}


# --- billing's record of the bill's payments -------------------------------------------------------------


def test_invoice_payments_are_billings_record_of_them(api: Api, biller: Biller) -> None:
    bill = h.published_invoice(biller, price=3000)
    first = pay(biller, bill, channel="01")
    second = pay(biller, bill, channel="01")
    h.send(h.reversal(biller, second))
    notices_apply()
    recorded = list(InvoicePayment.objects.filter(invoice=bill).order_by("id"))
    receipt = Receipt.objects.create(biller=biller, payment=recorded[0])
    body = api.get(f"/invoices/{bill.pk}/payments/").json()
    assert body["invoice"] == bill.pk
    rows = body["results"]
    assert [(r["outcome"], r["amount"], r["payment_key"]) for r in rows] == [
        ("paid", 3300, first.transaction_key),
        ("double_payment", 3300, second.transaction_key),
        ("reversal", -3300, recorded[2].payment_key),
    ]
    assert rows[0] == {
        "id": recorded[0].pk,
        "amount": 3300,
        "paid_at": "2026-11-26T10:30:00+09:00",
        "bank_code": "0001",
        "channel": "teller",
        "outcome": "paid",
        "reason": "",
        "payment_key": first.transaction_key,
        "receipt_number": receipt.number,
    }
    assert rows[1]["receipt_number"] is None


def test_invoice_payments_of_another_tenant_are_404(api: Api, biller: Biller) -> None:
    other = h.line_biller()
    h.send(h.open_day(other))
    theirs = h.published_invoice(other)
    pay(other, theirs)
    assert_cross_tenant_hidden(
        api.client, lambda pk: f"{api.base}/invoices/{pk}/payments/", theirs.pk, **api.headers
    )


def test_the_schema_describes_both_operations(api: Api) -> None:
    schema = api.get("/schema/", format="json").json()
    listed = (
        schema["paths"]["/b/{slug}/api/v1/payments/"]["get"]
        if "/b/{slug}/api/v1/payments/" in schema["paths"]
        else next(
            op["get"] for p, op in schema["paths"].items() if p.endswith("/payments/") and "invoices" not in p
        )
    )
    assert listed["operationId"] == "payments_list"
    names = {p["name"] for p in listed["parameters"]}
    assert {"paid_from", "paid_to", "processing_date", "channel", "bank", "outcome", "amount_min"} <= names
    components = schema["components"]["schemas"]
    assert "confirmation" in components["PaymentOutputDoc"]["properties"]
    assert "receipt_number" in components["InvoicePaymentOutput"]["properties"]
    assert "results" in components["InvoicePayments"]["properties"]
