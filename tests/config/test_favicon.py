"""/favicon.ico answers on the root host and on a tenant host: a permanent redirect to the static icon,
which is served as an icon (the SVG one that base.html links as image/svg+xml)."""

from __future__ import annotations

import urllib.request

import pytest
from django.test import Client, override_settings

from billing.models import Biller


@pytest.mark.django_db
def test_favicon_redirects_to_the_static_icon(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/favicon.ico"


@pytest.mark.django_db
@override_settings(PORTAL_DOMAIN="portal.test", ALLOWED_HOSTS=[".portal.test"])
def test_favicon_on_a_tenant_host(client: Client, biller: Biller) -> None:
    response = client.get("/favicon.ico", HTTP_HOST=f"{biller.slug}.portal.test")
    assert response.status_code == 301
    assert response["Location"] == "/static/favicon.ico"


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - the test's own live server
        return answer.status, answer.headers.get("Content-Type", ""), answer.read()


@pytest.mark.django_db(transaction=True)
def test_favicon_is_served_with_an_icon_content_type(live_server) -> None:  # type: ignore[no-untyped-def]
    status, content_type, body = _get(f"{live_server.url}/favicon.ico")  # follows the redirect
    assert status == 200
    assert content_type in {"image/vnd.microsoft.icon", "image/x-icon"}
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO file

    status, content_type, body = _get(f"{live_server.url}/static/favicon.svg")
    assert status == 200
    assert content_type.startswith("image/svg+xml")
    assert body.lstrip().startswith(b"<svg")
