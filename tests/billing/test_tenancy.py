"""Tenant resolution by host and by path; unknown and suspended billers answer 404."""

import pytest
from django.test import Client, override_settings

from billing.models import Biller
from tests.factories import make_biller, make_member

pytestmark = pytest.mark.django_db


def test_path_mode_resolves_the_biller_and_reverses_inside_it(admin_client: Client, biller: Biller) -> None:
    response = admin_client.get(f"/b/{biller.slug}/console/")
    assert response.status_code == 200
    assert response.wsgi_request.biller == biller
    assert f'href="/b/{biller.slug}/console/members/"'.encode() in response.content


def test_path_without_trailing_slash_redirects(admin_client: Client, biller: Biller) -> None:
    response = admin_client.get(f"/b/{biller.slug}")
    assert response.status_code == 301 and response["Location"] == f"/b/{biller.slug}/"


@override_settings(PORTAL_DOMAIN="portal.test", ALLOWED_HOSTS=[".portal.test"])
def test_host_mode_resolves_the_biller(admin_client: Client, biller: Biller) -> None:
    response = admin_client.get("/console/", HTTP_HOST=f"{biller.slug}.portal.test")
    assert response.status_code == 200
    assert response.wsgi_request.biller == biller
    assert b'href="/console/members/"' in response.content


@override_settings(PORTAL_DOMAIN="portal.test", ALLOWED_HOSTS=[".portal.test"])
def test_unknown_host_tenant_is_404(admin_client: Client) -> None:
    assert admin_client.get("/console/", HTTP_HOST="nobody.portal.test").status_code == 404


def test_unknown_and_suspended_billers_are_404(admin_client: Client, biller: Biller) -> None:
    assert admin_client.get("/b/no-such-biller/console/").status_code == 404
    Biller.objects.filter(pk=biller.pk).update(status=Biller.Status.SUSPENDED)
    assert admin_client.get(f"/b/{biller.slug}/console/").status_code == 404


def test_onboarding_biller_console_is_reachable_by_its_members(client: Client) -> None:
    biller = make_biller(status=Biller.Status.ONBOARDING)
    client.force_login(make_member(biller))
    assert client.get(f"/b/{biller.slug}/console/").status_code == 200


def test_console_of_a_biller_you_do_not_belong_to_is_404(admin_client: Client, other_biller: Biller) -> None:
    """Same answer as a biller that does not exist: membership is not revealed."""
    theirs = admin_client.get(f"/b/{other_biller.slug}/console/")
    missing = admin_client.get("/b/no-such-biller/console/")
    assert theirs.status_code == missing.status_code == 404


def test_anonymous_is_sent_to_log_in(client: Client, biller: Biller) -> None:
    response = client.get(f"/b/{biller.slug}/console/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_script_prefix_is_restored_after_a_tenant_request(admin_client: Client, biller: Biller) -> None:
    from django.urls import get_script_prefix, reverse

    admin_client.get(f"/b/{biller.slug}/console/")
    assert get_script_prefix() == "/"
    assert reverse("staff:biller_list") == "/staff/"


@override_settings(STATIC_URL="static/")  # forgets the prefixed STATIC_URL and the storage built with it
def test_static_urls_stay_at_the_root_when_a_tenant_page_is_the_first_to_use_them(
    client: Client, biller: Biller
) -> None:
    """STATIC_URL is relative: Django prefixes it with the script prefix of its first read and keeps that
    for the process. A tenant page rendered first must not move every static URL under /b/<slug>/."""
    response = client.get(f"/b/{biller.slug}/my/login/")
    assert response.status_code == 200
    assert b'href="/static/css/' in response.content
    assert f"/b/{biller.slug}/static/".encode() not in response.content
    assert b'href="/static/css/' in client.get("/accounts/login/").content
