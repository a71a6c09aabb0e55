"""The tenant API base: tenant filter, roles, one error shape."""

import pytest
from django.test import Client

from billing.models import Biller, Membership
from tests.factories import make_biller, make_customer, make_member
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db


def test_list_shows_only_this_tenants_customers(admin_client: Client, biller: Biller) -> None:
    mine = make_customer(biller)
    make_customer(make_biller())
    response = admin_client.get(f"/b/{biller.slug}/api/v1/customers/")
    assert response.status_code == 200
    assert [row["code"] for row in response.json()["results"]] == [mine.code]


def test_detail_of_another_tenants_customer_answers_like_a_missing_one(
    admin_client: Client, biller: Biller
) -> None:
    other = make_customer(make_biller())
    assert_cross_tenant_hidden(admin_client, lambda pk: f"/b/{biller.slug}/api/v1/customers/{pk}/", other.pk)
    body = admin_client.get(f"/b/{biller.slug}/api/v1/customers/{other.pk}/").json()
    assert body == {"error": {"code": "not_found", "message": "Not found."}}


def test_member_of_another_biller_gets_nothing(client: Client, biller: Biller) -> None:
    make_customer(biller)
    outsider = make_member(make_biller())
    client.force_login(outsider)
    response = client.get(f"/b/{biller.slug}/api/v1/customers/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_anonymous_gets_the_error_shape(client: Client, biller: Biller) -> None:
    response = client.get(f"/b/{biller.slug}/api/v1/customers/")
    assert response.status_code in {401, 403}
    assert set(response.json()["error"]) == {"code", "message"}


def test_operator_can_read(client: Client, biller: Biller) -> None:
    client.force_login(make_member(biller, role=Membership.Role.OPERATOR))
    customer = make_customer(biller)
    assert client.get(f"/b/{biller.slug}/api/v1/customers/{customer.pk}/").json()["code"] == customer.code
