"""One rule each, whatever the door: the tax rate aliases and the description (料金名) check are the same
through the CSV import, the console form and the API (invoices and payment requests)."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from billing import imports, services
from billing.errors import ValidationFailed
from billing.invoicing import TAX_CATEGORY_ALIASES, tax_category_parse
from billing.models import Biller, Invoice
from billing.validators import description_errors
from tests.billing.test_api_invoices import Api, invoice_body
from tests.billing.test_console_invoices import console, form_data
from tests.billing.test_payment_requests import Api as PaymentRequestApi
from tests.billing.test_payment_requests import order
from tests.factories import make_customer

pytestmark = pytest.mark.django_db

CSV_HEADER = "請求番号,外部ID,顧客コード,請求日,支払期限,料金名,品目,数量,単価,税区分,請求金額\n"
ALIASES = sorted({**TAX_CATEGORY_ALIASES, "EXEMPT": "exempt", " 8% ": "8"}.items())
LONG = "とても長い料金名" * 3  # 24 characters
NOT_CP932 = "料金🍣"


@pytest.fixture
def api(biller: Biller) -> Api:
    _, token = services.api_key_create(actor=None, biller=biller, name="billing system")
    return Api(biller, token)


def csv_import(
    biller: Biller, *, tax_category: str = "10", description: str = "料金"
) -> imports.ImportResult:
    row = f"A-1,,D-1,2026-11-01,2026-11-30,{description},品目,1,1000,{tax_category},\n"
    return imports.run(io.BytesIO((CSV_HEADER + row).encode()), biller=biller, write=True)


def test_the_aliases() -> None:
    assert {text: tax_category_parse(text) for text in ("8%※", "軽減", "0%", "免税", "Exempt", "12", "")} == {
        "8%※": "8",
        "軽減": "8",
        "0%": "exempt",
        "免税": "exempt",
        "Exempt": "exempt",
        "12": None,
        "": None,
    }


@pytest.mark.parametrize(("alias", "category"), ALIASES)
def test_every_alias_through_the_csv_import(biller: Biller, alias: str, category: str) -> None:
    make_customer(biller, code="D-1")
    result = csv_import(biller, tax_category=alias)
    assert result.ok and result.invoices_new == 1, result.errors
    assert Invoice.objects.get(biller=biller).lines[0]["tax_category"] == category


@pytest.mark.parametrize(("alias", "category"), ALIASES)
def test_every_alias_through_the_console_form(
    admin_client: Client, biller: Biller, alias: str, category: str
) -> None:
    customer = make_customer(biller)
    line = {"description": "品目", "quantity": "1", "unit_price": "1000", "tax_category": alias}
    response = admin_client.post(console(biller, "invoices/new/"), form_data(customer, [line]))
    assert response.status_code == 302, response.context["formset"].errors
    assert Invoice.objects.get(biller=biller).lines[0]["tax_category"] == category


@pytest.mark.parametrize(("alias", "category"), ALIASES)
def test_every_alias_through_the_api(api: Api, biller: Biller, alias: str, category: str) -> None:
    make_customer(biller, code="D-1")
    lines = [{"description": "品目", "quantity": 1, "unit_price": 1000, "tax_category": alias}]
    response = api.post("/invoices/", invoice_body(lines=lines))
    assert response.status_code == 201, response.content
    assert response.json()["lines"][0]["tax_category"] == category


@pytest.mark.parametrize(("alias", "category"), ALIASES)
def test_every_alias_through_the_payment_request_api(biller: Biller, alias: str, category: str) -> None:
    response = PaymentRequestApi(biller).post("/payment-requests/", order(tax_category=alias))
    assert response.status_code == 201, response.content
    assert Invoice.objects.get(biller=biller).lines[0]["tax_category"] == category


def test_an_unknown_rate_is_refused_by_every_door(admin_client: Client, api: Api, biller: Biller) -> None:
    make_customer(biller, code="D-1")
    assert [e.column for e in csv_import(biller, tax_category="12").errors] == ["tax_category"]
    line = {"description": "品目", "quantity": "1", "unit_price": "1000", "tax_category": "12"}
    response = admin_client.post(console(biller, "invoices/new/"), form_data(make_customer(biller), [line]))
    assert response.status_code == 400 and "tax_category" in response.context["formset"].forms[0].errors
    lines = [{"description": "品目", "unit_price": 1000, "tax_category": "12"}]
    response = api.post("/invoices/", invoice_body(lines=lines))
    assert response.status_code == 400 and "lines[0].tax_category" in str(response.json()["error"]["fields"])
    assert not Invoice.objects.exists()


@pytest.mark.parametrize("description", [LONG, NOT_CP932])
def test_one_description_rule_and_message_through_every_door(
    admin_client: Client, api: Api, biller: Biller, description: str
) -> None:
    make_customer(biller, code="D-1")
    message = description_errors(description)[0]
    assert [(e.column, e.message) for e in csv_import(biller, description=description).errors] == [
        ("description", message)
    ]
    response = admin_client.post(
        console(biller, "invoices/new/"),
        form_data(
            make_customer(biller), [{"description": "品目", "unit_price": "1000", "tax_category": "10"}]
        )
        | {"description": description},
    )
    assert response.status_code == 400 and response.context["form"].errors["description"][0] == message
    response = api.post("/invoices/", invoice_body(description=description))
    assert response.status_code == 400 and response.json()["error"]["fields"]["description"][0] == message
    response = PaymentRequestApi(biller).post("/payment-requests/", order(description=description))
    assert response.status_code == 400 and response.json()["error"]["fields"]["description"][0] == message
    with pytest.raises(ValidationFailed) as raised:
        services.invoice_create(
            actor=None,
            biller=biller,
            data={
                "customer": make_customer(biller),
                "number": "S-1",
                "issue_date": "2026-11-01",
                "due_date": "2026-11-30",
                "description": description,
                "lines": [{"description": "品目", "unit_price": 1000, "tax_category": "10"}],
            },
        )
    assert raised.value.errors["description"][0] == message
    assert not Invoice.objects.exists()


def test_description_problems_in_order() -> None:
    assert description_errors("") == ["is required"]
    assert description_errors("請求") == []
    assert len(description_errors(LONG + "🍣")) == 2
    assert description_errors("a\x00b") == ["must not contain NUL characters"]
