"""What a client sends is input: a tampered cursor, a page size out of range, a NUL, a filter of odd
digits or a path that names no operation is a 400 or 404 in the API's one error shape, never a 500
or the site's HTML page."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest
from django.test import Client

from billing import services
from billing.models import Biller
from tests.factories import make_customer

pytestmark = pytest.mark.django_db


def cursor(**fields: str) -> str:
    return base64.b64encode(urlencode(fields).encode()).decode()


LISTS = [
    ("/customers/", {}),
    ("/invoices/", {}),
    ("/invoices/", {"sort": "due_date"}),
    ("/invoices/", {"sort": "-total"}),
    ("/invoices/", {"sort": "number"}),
    ("/payment-requests/", {}),
]
POSITIONS = ["not-a-date", "12ab", "9999-99-99", "99999999999999999999999", "a\x00b", ""]


@pytest.mark.parametrize(("path", "params"), LISTS)
@pytest.mark.parametrize("position", POSITIONS)
def test_a_tampered_cursor_answers_400_in_the_error_shape(
    postgres: None, biller: Biller, path: str, params: dict[str, str], position: str
) -> None:
    make_customer(biller)
    _, token = services.api_key_create(actor=None, biller=biller, name="k")
    client = Client(raise_request_exception=False)
    url = f"/b/{biller.slug}/api/v1{path}"
    response = client.get(
        url, {**params, "cursor": cursor(o="0", r="0", p=position)}, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code in {200, 400}, (response.status_code, response.content[:300])
    if response.status_code == 400:
        error = response.json()["error"]
        assert error["code"] == "invalid" and set(error["fields"]) == {"cursor"}, error


@pytest.mark.parametrize("raw", ["not base64!", cursor(o="x"), cursor(o="-1"), cursor(o="0", r="x", p="1")])
def test_an_unreadable_cursor_answers_400_in_the_error_shape(biller: Biller, raw: str) -> None:
    _, token = services.api_key_create(actor=None, biller=biller, name="k")
    response = Client(raise_request_exception=False).get(
        f"/b/{biller.slug}/api/v1/invoices/", {"cursor": raw}, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert response.json()["error"]["code"] == "invalid"
    assert set(response.json()["error"]["fields"]) == {"cursor"}


@pytest.mark.parametrize("amount", ["²", "١٢", "１０００"])
def test_an_amount_filter_of_non_ascii_digits_answers_400(biller: Biller, amount: str) -> None:
    _, token = services.api_key_create(actor=None, biller=biller, name="k")
    response = Client(raise_request_exception=False).get(
        f"/b/{biller.slug}/api/v1/invoices/", {"amount_min": amount}, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert set(response.json()["error"]["fields"]) == {"amount_min"}


@pytest.mark.parametrize("page_size", ["0", "501", "x", "-1", "1.5", "²"])
def test_a_page_size_out_of_range_answers_400(biller: Biller, page_size: str) -> None:
    _, token = services.api_key_create(actor=None, biller=biller, name="k")
    response = Client().get(
        f"/b/{biller.slug}/api/v1/customers/", {"page_size": page_size}, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert set(response.json()["error"]["fields"]) == {"page_size"}


@pytest.mark.parametrize("path", ["/customers/", "/invoices/", "/payment-requests/"])
def test_a_nul_in_a_query_parameter_answers_400(postgres: None, biller: Biller, path: str) -> None:
    _, token = services.api_key_create(actor=None, biller=biller, name="k")
    response = Client(raise_request_exception=False).get(
        f"/b/{biller.slug}/api/v1{path}", {"q": "a\x00b"}, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert response.json()["error"]["fields"] == {"q": ["must not contain NUL characters"]}


@pytest.mark.parametrize(
    "path",
    ["/invoices/-5/", "/customers/abc/", "/invoices/1%0A2/", "/no-such-thing/", "/customers/a%0Ab/balance/"],
)
def test_a_path_that_names_no_operation_answers_the_apis_404(biller: Biller, path: str) -> None:
    _, token = services.api_key_create(actor=None, biller=biller, name="k")
    response = Client().get(f"/b/{biller.slug}/api/v1{path}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}
