"""The invoice and customer API: API keys, idempotency, filters, one error shape, tenant isolation."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from billing import services
from billing.models import AuditEntry, Biller, Customer, Invoice
from tests.factories import make_biller, make_customer, make_invoice
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db


class Api:
    """A client of one tenant's API with an API key."""

    def __init__(self, biller: Biller, token: str) -> None:
        self.client = Client()
        self.base = f"/b/{biller.slug}/api/v1"
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def get(self, path: str, **params):  # type: ignore[no-untyped-def]
        return self.client.get(self.base + path, params, **self.headers)

    def post(self, path: str, body: dict | None = None, key: str | None = None, raw: bytes | None = None):  # type: ignore[no-untyped-def]
        extra = dict(self.headers)
        if key is not None:
            extra["HTTP_IDEMPOTENCY_KEY"] = key
        data = raw if raw is not None else json.dumps(body or {}, ensure_ascii=False)
        return self.client.post(self.base + path, data, content_type="application/json", **extra)

    def patch(self, path: str, body: dict):  # type: ignore[no-untyped-def]
        return self.client.patch(
            self.base + path, json.dumps(body), content_type="application/json", **self.headers
        )


@pytest.fixture
def api(biller: Biller) -> Api:
    _, token = services.api_key_create(actor=None, biller=biller, name="billing system")
    return Api(biller, token)


def invoice_body(**overrides):  # type: ignore[no-untyped-def]
    body = {
        "customer": "D-1",
        "number": "2026-11-0001",
        "external_id": "cis-1",
        "issue_date": "2026-11-01",
        "due_date": "2026-11-30",
        "description": "11月分電気料金",
        "lines": [
            {"description": "基本料金", "quantity": 1, "unit_price": 1200, "tax_category": "10"},
            {"description": "電力量料金", "quantity": 300, "unit_price": 31, "tax_category": "10"},
        ],
        "publish": True,
    }
    body.update(overrides)
    return body


def test_create_publish_retrieve_list_cancel(api: Api, biller: Biller) -> None:
    make_customer(biller, code="D-1")
    created = api.post("/invoices/", invoice_body())
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "published" and body["totals"]["total"] == 11550
    numbers = body["payment_numbers"]
    assert numbers["payee_number"] == biller.payee_number and len(numbers["customer_number"]) == 16
    assert api.get(f"/invoices/{body['id']}/").json() == body
    listed = api.get("/invoices/", status="published", amount_min="11000", amount_max="12000").json()
    assert [row["id"] for row in listed["results"]] == [body["id"]]
    assert api.get("/invoices/", status="draft").json()["results"] == []
    assert api.get(f"/invoices/{body['id']}/payments/").json() == {"invoice": body["id"], "results": []}
    cancelled = api.post(f"/invoices/{body['id']}/cancel/", {"reason": "誤請求"})
    assert cancelled.json()["status"] == "cancelled"
    entry = AuditEntry.objects.get(action="invoice.cancel")
    assert entry.actor is None and entry.actor_label.startswith("api-key:")


def test_draft_then_publish(api: Api, biller: Biller) -> None:
    make_customer(biller, code="D-1")
    draft = api.post("/invoices/", invoice_body(publish=False)).json()
    assert draft["status"] == "draft" and draft["payment_numbers"] is None
    published = api.post(f"/invoices/{draft['id']}/publish/").json()
    assert published["status"] == "published" and published["payment_numbers"]["confirmation_number"]
    again = api.post(f"/invoices/{draft['id']}/publish/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"


def test_validation_errors_name_the_field(api: Api, biller: Biller) -> None:
    make_customer(biller, code="D-1")
    bad = api.post(
        "/invoices/",
        invoice_body(lines=[{"description": "x", "quantity": 0, "unit_price": 1, "tax_category": "12"}]),
    )
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"lines[0].quantity", "lines[0].tax_category"}
    unknown = api.post("/invoices/", invoice_body(customer="NOPE"))
    assert unknown.json()["error"]["fields"] == {"customer": ["no customer 'NOPE' for this biller"]}
    assert api.get("/invoices/", status="lost").json()["error"]["fields"]["status"]
    assert not Invoice.objects.exists()


def test_idempotency_key_replays_and_refuses_a_different_body(api: Api, biller: Biller) -> None:
    make_customer(biller, code="D-1")
    first = api.post("/invoices/", invoice_body(), key="order-778")
    second = api.post("/invoices/", invoice_body(), key="order-778")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() and second["Idempotent-Replayed"] == "true"
    assert Invoice.objects.count() == 1
    other = api.post("/invoices/", invoice_body(number="2026-11-0002", external_id="cis-2"), key="order-778")
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert Invoice.objects.count() == 1


def test_idempotency_keys_are_per_tenant(api: Api, biller: Biller) -> None:
    other = make_biller()
    make_customer(biller, code="D-1")
    make_customer(other, code="D-1")
    _, token = services.api_key_create(actor=None, biller=other, name="theirs")
    theirs = Api(other, token)
    assert api.post("/customers/", {"code": "N-1", "name": "甲"}, key="k1").status_code == 201
    assert theirs.post("/customers/", {"code": "N-1", "name": "乙"}, key="k1").status_code == 201
    assert Customer.objects.get(biller=other, code="N-1").name == "乙"


def test_a_failed_request_is_not_stored_and_may_be_retried(api: Api, biller: Biller) -> None:
    bad = api.post("/invoices/", invoice_body(), key="retry-me")  # customer D-1 does not exist yet
    assert bad.status_code == 400
    make_customer(biller, code="D-1")
    assert api.post("/invoices/", invoice_body(), key="retry-me").status_code == 201


def test_expired_idempotency_key_can_be_reused(api: Api, biller: Biller) -> None:
    import datetime

    from django.utils import timezone

    from billing.models import IdempotencyRecord

    assert api.post("/customers/", {"code": "N-1", "name": "甲"}, key="k").status_code == 201
    IdempotencyRecord.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert api.post("/customers/", {"code": "N-2", "name": "乙"}, key="k").status_code == 201


def test_api_keys(biller: Biller) -> None:
    key, token = services.api_key_create(actor=None, biller=biller, name="k")
    assert token not in key.key_hash and len(key.key_hash) == 64
    good = Api(biller, token)
    assert good.get("/customers/").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None
    wrong = Api(biller, token[:-2] + "xx")
    assert wrong.get("/customers/").status_code == 401
    assert wrong.get("/customers/").json()["error"]["code"] == "authentication_failed"
    other = make_biller()
    assert Api(other, token).get("/customers/").status_code == 401  # a key works for its own biller only
    services.api_key_revoke(actor=None, biller=biller, key_id=key.pk)
    assert good.get("/customers/").status_code == 401


def test_customers_create_update_and_duplicates(api: Api, biller: Biller) -> None:
    created = api.post("/customers/", {"code": "N-1", "name": "青葉商事", "kind": "corporate"})
    assert created.status_code == 201
    dup = api.post("/customers/", {"code": "N-1", "name": "x"})
    assert dup.status_code == 400 and "code" in dup.json()["error"]["fields"]
    patched = api.patch(f"/customers/{created.json()['id']}/", {"email": "keiri@aoba.example.jp"})
    assert patched.json()["email"] == "keiri@aoba.example.jp"


def test_every_endpoint_hides_other_tenants_objects(api: Api, biller: Biller) -> None:
    other = make_biller()
    theirs_customer = make_customer(other)
    theirs = make_invoice(biller=other, customer=theirs_customer, number="T-1", published=False)
    c, h = api.client, api.headers
    b = api.base
    assert_cross_tenant_hidden(c, lambda pk: f"{b}/customers/{pk}/", theirs_customer.pk, **h)
    assert_cross_tenant_hidden(
        c,
        lambda pk: f"{b}/customers/{pk}/",
        theirs_customer.pk,
        method="patch",
        data={"name": "x"},
        content_type="application/json",
        **h,
    )
    assert_cross_tenant_hidden(c, lambda pk: f"{b}/invoices/{pk}/", theirs.pk, **h)
    assert_cross_tenant_hidden(c, lambda pk: f"{b}/invoices/{pk}/payments/", theirs.pk, **h)
    for action in ("publish", "cancel"):
        assert_cross_tenant_hidden(
            c,
            lambda pk, a=action: f"{b}/invoices/{pk}/{a}/",
            theirs.pk,
            method="post",
            data={},
            content_type="application/json",
            **h,
        )
    assert api.get("/invoices/", customer=str(theirs_customer.pk)).json()["results"] == []
    assert api.get("/invoices/", q="T-1").json()["results"] == []
    theirs.refresh_from_db()
    assert theirs.status == "draft"


def test_openapi_schema_and_swagger_ui(client: Client, biller: Biller) -> None:
    schema = client.get(f"/b/{biller.slug}/api/v1/schema/?format=json")
    assert schema.status_code == 200
    doc = schema.json()
    assert {"/api/v1/invoices/", "/api/v1/invoices/{id}/publish/", "/api/v1/customers/"} <= set(doc["paths"])
    create = doc["paths"]["/api/v1/invoices/"]["post"]
    assert "電気料金" in json.dumps(create, ensure_ascii=False)
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    docs = client.get(f"/b/{biller.slug}/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content


def test_create_api_key_command(biller: Biller, capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("create_api_key", "--biller", biller.biller_code, "--name", "nightly batch")
    out = capsys.readouterr().out
    token = out.splitlines()[1]
    assert token.startswith("pe_") and Api(biller, token).get("/customers/").status_code == 200
    with pytest.raises(CommandError, match="--biller"):
        call_command("create_api_key", "--biller", "00000000", "--name", "x")
    with pytest.raises(CommandError, match="--name"):
        call_command("create_api_key", "--biller", biller.slug, "--name", " ")
