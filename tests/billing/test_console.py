"""The tenant console: membership, roles, switching between billers, inviting members."""

import pytest
from django.test import Client

from billing.models import AuditEntry, Biller, Invitation, Membership
from tests.factories import make_biller, make_customer, make_member, make_user
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db


def test_operator_is_read_only(client: Client, biller: Biller) -> None:
    client.force_login(make_member(biller, role=Membership.Role.OPERATOR))
    assert client.get(f"/b/{biller.slug}/console/members/").status_code == 200
    response = client.post(f"/b/{biller.slug}/console/members/", {"email": "x@example.jp", "role": "admin"})
    assert response.status_code == 403
    assert not Invitation.objects.exists()


def test_admin_invites_a_member_from_the_console(admin_client: Client, biller: Biller, mailoutbox) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.post(
        f"/b/{biller.slug}/console/members/", {"email": "op@example.jp", "role": "operator"}
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get(biller=biller)
    assert invitation.role == "operator"
    assert AuditEntry.objects.filter(action="invitation.create", biller=biller).exists()


def test_bad_invite_names_the_field(admin_client: Client, biller: Biller) -> None:
    response = admin_client.post(
        f"/b/{biller.slug}/console/members/", {"email": "not-an-email", "role": "admin"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert not Invitation.objects.exists()


def test_user_of_two_billers_switches_between_them(client: Client) -> None:
    a, b = make_biller(), make_biller()
    user = make_user("two@example.jp")
    Membership.objects.create(biller=a, user=user, role="admin")
    Membership.objects.create(biller=b, user=user, role="operator")
    client.force_login(user)
    home = client.get("/")
    assert home.status_code == 200
    assert (
        f"/b/{a.slug}/console/".encode() in home.content and f"/b/{b.slug}/console/".encode() in home.content
    )
    page = client.get(f"/b/{b.slug}/console/")
    assert page.context["membership"].role == "operator"
    assert f'href="/b/{a.slug}/console/"'.encode() in page.content  # the switcher lists the other biller


def test_single_membership_lands_in_its_console(admin_client: Client, biller: Biller) -> None:
    response = admin_client.get("/")
    assert response.status_code == 302 and response["Location"] == f"/b/{biller.slug}/console/"


def test_login_with_wrong_password_says_so(client: Client, biller: Biller) -> None:
    make_member(biller, email="m@example.jp")
    response = client.post("/accounts/login/", {"email": "m@example.jp", "password": "wrong"})
    assert response.status_code == 400
    assert b"not correct" in response.content
    response = client.post("/accounts/login/", {"email": "M@Example.jp", "password": "correct horse battery"})
    assert response.status_code == 302


def test_console_customer_count_is_per_tenant(admin_client: Client, biller: Biller) -> None:
    make_customer(biller)
    make_customer(make_biller())
    response = admin_client.get(f"/b/{biller.slug}/console/")
    assert response.context["counts"]["customers"] == 1


def test_cross_tenant_helper_on_the_console_and_the_api(admin_client: Client, biller: Biller) -> None:
    theirs = make_customer(make_biller())
    assert_cross_tenant_hidden(admin_client, lambda pk: f"/b/{biller.slug}/api/v1/customers/{pk}/", theirs.pk)
