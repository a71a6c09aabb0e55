"""What the site answers when a request fails (config.errors, templates/4xx–5xx.html).

The database really unreachable — the connection pointed at a port nothing listens on (PostgreSQL) or a
file that cannot be opened (SQLite), as a restart or fail-over leaves it — is answered 503 with
Retry-After, in Japanese first, rendered without the database, with the request id the log lines carry;
the API gets its one error shape. Any other failure is a 500 of the same kind; an unknown page a 404 in
the product's language, not Django's English default.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import path

from billing.models import Biller
from tests.factories import make_invoice, make_portal_account

pytestmark = pytest.mark.django_db(transaction=True)


def _broken_view(request: Any) -> Any:
    raise RuntimeError("a bug the product did not expect")


urlpatterns = [path("broken/", _broken_view)]
handler500 = "config.errors.server_error"


@contextlib.contextmanager
def database_unreachable() -> Iterator[None]:
    """Every new connection fails, as while PostgreSQL restarts; the settings put back after."""
    settings_dict = connection.settings_dict
    saved = dict(settings_dict)
    connection.close()
    if connection.vendor == "postgresql":
        settings_dict["PORT"] = 1  # nothing listens there: connection refused
    else:
        settings_dict["NAME"] = "/nonexistent/directory/db.sqlite3"
    try:
        yield
    finally:
        connection.close()
        settings_dict.clear()
        settings_dict.update(saved)


@pytest.fixture
def database_down() -> Iterator[None]:
    with database_unreachable():
        yield


def test_a_page_while_the_database_is_down_is_a_503_to_retry_in_japanese(
    biller: Biller, database_down: None
) -> None:
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="ja")
    response = client.get(f"/b/{biller.slug}/my/invoices/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5" and response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert "一時的にご利用いただけません" in body and '<html lang="ja">' in body
    assert response["X-Request-ID"] in body  # the reference for the support desk is the log lines'
    assert "Traceback" not in body and "OperationalError" not in body


def test_the_apis_answer_while_the_database_is_down_is_its_error_shape(
    biller: Biller, database_down: None
) -> None:
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    response = client.get(f"/b/{biller.slug}/api/v1/invoices/", HTTP_AUTHORIZATION="Bearer x")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    error = json.loads(response.content)["error"]
    assert error["code"] == "unavailable" and error["request_id"] == response["X-Request-ID"]


def test_the_site_answers_again_once_the_database_is_back(biller: Biller) -> None:
    account = make_portal_account(biller)
    make_invoice(biller=biller, customer=account.customer, number="BACK-1")
    client = Client(raise_request_exception=False)
    client.force_login(account.user)
    url = f"/b/{biller.slug}/my/invoices/"
    with database_unreachable():
        assert client.get(url).status_code == 503
    shown = client.get(url)
    assert shown.status_code == 200 and b"BACK-1" in shown.content


@pytest.mark.urls("tests.config.test_error_pages")
def test_any_other_failure_is_a_500_without_retry_after(db: None) -> None:
    response = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="ja").get("/broken/")
    assert response.status_code == 500 and not response.has_header("Retry-After")
    body = response.content.decode()
    assert "エラーが発生しました" in body and response["X-Request-ID"] in body
    assert "RuntimeError" not in body and "did not expect" not in body


def test_an_unknown_page_is_a_404_in_the_products_language(biller: Biller) -> None:
    account = make_portal_account(biller)
    client = Client(HTTP_ACCEPT_LANGUAGE="ja")
    client.force_login(account.user)
    response = client.get(f"/b/{biller.slug}/my/invoices/999999999/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "ページが見つかりません" in body and "Not Found" not in body
    english = Client(HTTP_ACCEPT_LANGUAGE="en").get("/no-such-page/")
    assert english.status_code == 404 and "Page not found" in english.content.decode()
