"""Payment requests for orders (ATM後払い): API and console creation, validation naming the field,
Idempotency-Key replay, the e-mail with the numbers and the link, cancellation, tenant isolation."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from billing import services
from billing.models import AuditEntry, Biller, Invoice, Membership
from billing.paylater import token_for
from tests.factories import make_biller, make_customer, make_invoice, make_member
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
DUE = TODAY + datetime.timedelta(days=14)


class Api:
    def __init__(self, biller: Biller) -> None:
        _, token = services.api_key_create(actor=None, biller=biller, name="shop")
        self.client = Client()
        self.base = f"/b/{biller.slug}/api/v1"
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(self.base + path, params, **self.headers)

    def post(self, path: str, body: dict | None = None, key: str | None = None) -> Any:
        extra = dict(self.headers)
        if key is not None:
            extra["HTTP_IDEMPOTENCY_KEY"] = key
        data = json.dumps(body or {}, ensure_ascii=False)
        return self.client.post(self.base + path, data, content_type="application/json", **extra)


@pytest.fixture
def api(biller: Biller) -> Api:
    return Api(biller)


def order(**overrides: Any) -> dict[str, Any]:
    body = {
        "amount": 12800,
        "description": "カタログ通販ご注文",
        "due_date": DUE.isoformat(),
        "email": "hanako@example.jp",
        "name": "佐藤 花子",
        "external_id": "order-0042",
    }
    body.update(overrides)
    return body


def test_api_creates_a_published_request_with_numbers_and_link(  # type: ignore[no-untyped-def]
    api: Api, biller: Biller, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/payment-requests/", order())
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "published" and body["amount"] == 12800 and body["tax_category"] == "10"
    # tax-included at 10 %, rounded down once: 12800 × 10 / 110 = 1163.6…
    assert body["totals"] | {"rounding": None} == {
        "subtotal_10": 11637,
        "tax_10": 1163,
        "subtotal_8": 0,
        "tax_8": 0,
        "subtotal_exempt": 0,
        "total": 12800,
        "rounding": None,
    }
    numbers = body["payment_numbers"]
    assert numbers["payee_number"] == biller.payee_number
    assert len(numbers["customer_number"]) == 16 and len(numbers["confirmation_number"]) == 6
    assert body["customer"] is None and body["balance"] is False
    invoice = Invoice.objects.get(pk=body["id"])
    assert invoice.kind == "payment_request" and invoice.lines[0]["amount"] == 12800
    assert body["pay_url"].endswith(f"/b/{biller.slug}/pay/{token_for(invoice)}/")
    assert api.get(f"/payment-requests/{body['id']}/").json() | {"notified_at": None} == body | {
        "notified_at": None
    }
    assert [row["id"] for row in api.get("/payment-requests/").json()["results"]] == [body["id"]]
    assert api.get("/payment-requests/", q="order-0042").json()["results"][0]["id"] == body["id"]
    assert api.get("/payment-requests/", status="paid").json()["results"] == []
    assert api.get("/payment-requests/", status="nonsense").json()["error"]["fields"] == {
        "status": ["unknown status 'nonsense'"]
    }
    # the e-mail: the three numbers, the amount, the due date and the link
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["hanako@example.jp"]
    for text in (biller.payee_number, numbers["customer_number"], numbers["confirmation_number"], "12,800"):
        assert text in mail.body
    assert f"/b/{biller.slug}/pay/{token_for(invoice)}/" in mail.body
    invoice.refresh_from_db()
    assert invoice.notified_at is not None
    from billing import notifications

    assert notifications.payment_request_email_send(invoice_id=invoice.pk) is False  # sent once
    assert AuditEntry.objects.filter(action="payment_request.create", target_id=str(invoice.pk)).exists()


def test_api_with_a_customer_and_a_reduced_rate(api: Api, biller: Biller) -> None:
    customer = make_customer(biller, code="K-1", email="k1@example.jp", name="鈴木 一郎")
    body = api.post(
        "/payment-requests/", order(customer="K-1", email="", name="", tax_category="8", amount=1080)
    ).json()
    assert body["customer"] == {"id": customer.pk, "code": "K-1"}
    assert body["email"] == "k1@example.jp" and body["name"] == "鈴木 一郎"
    assert (body["totals"]["subtotal_8"], body["totals"]["tax_8"]) == (1000, 80)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"amount": None}, "amount"),
        ({"description": "あ" * 21}, "description"),
        ({"description": "😀"}, "description"),
        ({"due_date": (TODAY - datetime.timedelta(days=1)).isoformat()}, "due_date"),
        ({"due_date": "next week"}, "due_date"),
        ({"email": "not an address"}, "email"),
        ({"email": ""}, "email"),
        ({"tax_category": "5"}, "tax_category"),
        ({"customer": "NOBODY"}, "customer"),
    ],
)
def test_api_validation_errors_name_the_field(api: Api, change: dict, field: str) -> None:
    response = api.post("/payment-requests/", order(**change))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"], error
    assert not Invoice.objects.exists()


def test_api_external_id_is_unique(api: Api) -> None:
    assert api.post("/payment-requests/", order()).status_code == 201
    again = api.post("/payment-requests/", order())
    assert again.status_code == 400 and "external_id" in again.json()["error"]["fields"]


def test_idempotency_key_replays_the_same_request(  # type: ignore[no-untyped-def]
    api: Api, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post("/payment-requests/", order(external_id=""), key="order-42-attempt")
    with django_capture_on_commit_callbacks(execute=True):
        second = api.post("/payment-requests/", order(external_id=""), key="order-42-attempt")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() and second["Idempotent-Replayed"] == "true"
    assert Invoice.objects.count() == 1 and len(mailoutbox) == 1
    other = api.post("/payment-requests/", order(external_id="", amount=1), key="order-42-attempt")
    assert other.status_code == 422
    # a failed request is not stored: the same key may be retried once it is right
    bad = api.post("/payment-requests/", order(external_id="x", amount=0), key="k2")
    assert bad.status_code == 400
    assert api.post("/payment-requests/", order(external_id="x"), key="k2").status_code == 201


def test_api_cancel(api: Api) -> None:
    body = api.post("/payment-requests/", order()).json()
    cancelled = api.post(f"/payment-requests/{body['id']}/cancel/", {"reason": "注文取消"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = api.post(f"/payment-requests/{body['id']}/cancel/", {})
    assert again.status_code == 409


def test_api_is_tenant_scoped_and_only_payment_requests(api: Api, biller: Biller) -> None:
    other = make_biller()
    theirs = make_invoice(biller=other, kind=Invoice.Kind.PAYMENT_REQUEST, amount=500)
    assert_cross_tenant_hidden(
        api.client, lambda pk: f"{api.base}/payment-requests/{pk}/", theirs.pk, **api.headers
    )
    assert_cross_tenant_hidden(
        api.client,
        lambda pk: f"{api.base}/payment-requests/{pk}/cancel/",
        theirs.pk,
        method="post",
        data={},
        **api.headers,
    )
    theirs.refresh_from_db()
    assert theirs.status == "published"
    # an ordinary invoice is not a payment request
    plain = make_invoice(biller=biller, number="INV-1", amount=100)
    assert api.get(f"/payment-requests/{plain.pk}/").status_code == 404
    assert api.get("/payment-requests/").json()["results"] == []


def test_openapi_documents_payment_requests(client: Client, biller: Biller) -> None:
    doc = client.get(f"/b/{biller.slug}/api/v1/schema/?format=json").json()
    assert {
        "/api/v1/payment-requests/",
        "/api/v1/payment-requests/{id}/",
        "/api/v1/payment-requests/{id}/cancel/",
        "/api/v1/customers/{code}/balance/",
    } <= set(doc["paths"])
    create = doc["paths"]["/api/v1/payment-requests/"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])


# --- console -------------------------------------------------------------------------------------------


def console(biller: Biller, path: str = "") -> str:
    return f"/b/{biller.slug}/console/payment-requests/{path}"


def form(**overrides: Any) -> dict[str, Any]:
    data = {
        "amount": "9,800",
        "description": "チケット代金",
        "due_date": DUE.isoformat(),
        "email": "buyer@example.jp",
        "name": "購入 太郎",
        "external_id": "T-100",
        "customer": "",
        "tax_category": "10",
    }
    data.update(overrides)
    return data


def test_console_create_detail_list_and_cancel(  # type: ignore[no-untyped-def]
    admin_client: Client, biller: Biller, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    page = admin_client.get(console(biller, "new/"))
    assert page.status_code == 200 and 'name="amount"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        created = admin_client.post(console(biller, "new/"), form())
    assert created.status_code == 302
    invoice = Invoice.objects.get()
    assert created["Location"] == console(biller, f"{invoice.pk}/")
    assert (invoice.kind, invoice.status, invoice.total) == ("payment_request", "published", 9800)
    detail = admin_client.get(created["Location"]).content.decode()
    for text in (invoice.customer_number, invoice.confirmation_number, biller.payee_number):
        assert text in detail
    assert f"/b/{biller.slug}/pay/{token_for(invoice)}/" in detail
    assert len(mailoutbox) == 1 and invoice.customer_number in mailoutbox[0].body
    listing = admin_client.get(console(biller)).content.decode()
    assert invoice.number in listing and "T-100" in listing
    assert (
        invoice.number
        in admin_client.get(console(biller), {"q": "T-100", "status": "published"}).content.decode()
    )
    assert invoice.number not in admin_client.get(console(biller), {"status": "paid"}).content.decode()
    cancelled = admin_client.post(console(biller, f"{invoice.pk}/cancel/"), {"reason": "取消"})
    assert cancelled.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == "cancelled"


def test_console_errors_name_the_field(admin_client: Client, biller: Biller) -> None:
    response = admin_client.post(console(biller, "new/"), form(amount="0", email=""))
    assert response.status_code == 400
    page = response.content.decode()
    assert re.search(r'href="#id_amount"', page) and re.search(r'href="#id_email"', page)
    too_long = admin_client.post(console(biller, "new/"), form(description="あ" * 21))
    assert too_long.status_code == 400 and 'href="#id_description"' in too_long.content.decode()
    unknown = admin_client.post(console(biller, "new/"), form(customer="NOBODY"))
    assert unknown.status_code == 400 and "NOBODY" in unknown.content.decode()
    assert not Invoice.objects.exists()


def test_console_operator_reads_only_and_other_tenants_are_404(client: Client, biller: Biller) -> None:
    operator = make_member(biller, role=Membership.Role.OPERATOR)
    client.force_login(operator)
    assert client.get(console(biller)).status_code == 200
    assert client.post(console(biller, "new/"), form()).status_code == 403
    other = make_biller()
    theirs = make_invoice(biller=other, kind=Invoice.Kind.PAYMENT_REQUEST, amount=500)
    assert_cross_tenant_hidden(client, lambda pk: console(biller, f"{pk}/"), theirs.pk)
    # a member of the other biller only: this biller's console does not exist for them
    stranger = Client()
    stranger.force_login(make_member(other))
    mine = make_invoice(biller=biller, kind=Invoice.Kind.PAYMENT_REQUEST, amount=500)
    assert stranger.get(console(biller, f"{mine.pk}/")).status_code == 404
