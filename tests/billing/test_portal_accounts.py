"""Customer portal accounts: invitations, self-registration, per-biller logins, throttling, TOTP, reset."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pyotp
import pytest
from django.core import mail
from django.test import Client, RequestFactory
from django.utils import timezone

from billing.models import (
    AuditEntry,
    Biller,
    Customer,
    CustomerAccount,
    CustomerInvitation,
    Invoice,
    PortalLoginAttempt,
    User,
    customer_login,
)
from billing.portal import services as portal_services
from billing.portal.throttling import client_ip
from tests.factories import make_biller, make_customer, make_invoice, make_member, make_portal_account

pytestmark = pytest.mark.django_db
D = datetime.date
PASSWORD = "correct horse battery"


def my(biller: Biller, path: str = "") -> str:
    return f"/b/{biller.slug}/my/{path}"


def publish(biller: Biller, customer: Customer, number: str = "INV-1") -> Invoice:
    """A published invoice of 1,200 yen plus tax, due 2099-11-30 (tests.factories.make_invoice)."""
    return make_invoice(
        biller=biller, customer=customer, number=number, amount=1200, due_date=D(2099, 11, 30)
    )


def link_in(message: Any, pattern: str) -> str:
    found = re.search(rf"https?://\S*{pattern}\S*", message.body)
    assert found, message.body
    return found.group(0)


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def login(client: Client, biller: Biller, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(my(biller, "login/"), {"email": email, "password": password}, **extra)


def logged_in_at(client: Client, biller: Biller) -> bool:
    return client.get(my(biller, "invoices/")).status_code == 200


# --- invitations ---------------------------------------------------------------------------------------


def test_console_invitation_is_single_use(client: Client, django_capture_on_commit_callbacks: Any) -> None:
    biller = make_biller()
    admin = make_member(biller)
    customer = make_customer(biller, kind=Customer.Kind.CORPORATE, name="株式会社テスト")
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/b/{biller.slug}/console/customers/{customer.pk}/portal/invite/",
            {"email": "approver@corp.example", "role": "approver"},
        )
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    url = path_of(link_in(mail.outbox[0], "/my/invitations/"))
    invitation = CustomerInvitation.objects.get(customer=customer)
    assert url.rsplit("/", 2)[-2] not in invitation.token_hash  # only the hash is stored
    client.logout()

    assert client.get(url).status_code == 200
    response = client.post(url, {"name": "承認 花子", "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()
    account = CustomerAccount.objects.get(customer=customer)
    assert account.role == "approver" and account.user.realm == User.Realm.CUSTOMER
    assert account.user.login == customer_login(biller, "approver@corp.example")
    assert logged_in_at(client, biller)

    client.logout()
    again = client.post(url, {"name": "Someone else", "password": PASSWORD})
    assert again.status_code == 404
    assert "already been used" in again.content.decode()
    assert CustomerAccount.objects.filter(customer=customer).count() == 1


def test_expired_invitation_and_another_billers_token_are_refused(client: Client) -> None:
    biller, other = make_biller(), make_biller()
    customer = make_customer(biller)
    invitation, token = portal_services.customer_invitation_create(
        actor=None, biller=biller, customer=customer, email="late@example.jp", send=False
    )
    assert (
        client.get(my(other, f"invitations/{token}/")).status_code == 404
    )  # a token works at its biller only
    CustomerInvitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    response = client.post(my(biller, f"invitations/{token}/"), {"name": "遅刻 太郎", "password": PASSWORD})
    assert response.status_code == 404
    assert "expired" in response.content.decode()
    assert not CustomerAccount.objects.exists()


def test_publication_invites_a_customer_without_account(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    biller = make_biller()
    customer = make_customer(biller, email="taro@example.jp")
    with django_capture_on_commit_callbacks(execute=True):
        publish(biller, customer, "INV-1")
    url = link_in(mail.outbox[-1], "/my/invitations/")
    assert mail.outbox[-1].to == ["taro@example.jp"]
    # the next bill replaces the unused link: one invitation stays usable
    with django_capture_on_commit_callbacks(execute=True):
        publish(biller, customer, "INV-2")
    second = link_in(mail.outbox[-1], "/my/invitations/")
    assert client.get(path_of(url)).status_code == 404
    assert client.post(path_of(second), {"name": "山田 太郎", "password": PASSWORD}).status_code == 302
    account = CustomerAccount.objects.get(customer=customer)
    assert account.role == "payer" and account.user.email == "taro@example.jp"
    # with an account, the bill's e-mail links to the invoice page instead
    with django_capture_on_commit_callbacks(execute=True):
        third = publish(biller, customer, "INV-3")
    assert "/my/invitations/" not in mail.outbox[-1].body
    assert f"/b/{biller.slug}/my/invoices/{third.pk}/" in mail.outbox[-1].body


# --- self-registration ---------------------------------------------------------------------------------


def registration(invoice: Invoice, customer: Customer, **changes: str) -> dict[str, str]:
    data = {
        "customer_number": invoice.customer_number or "",
        "registration_code": customer.registration_code_display.lower(),  # typed loosely: still accepted
        "email": "self@example.jp",
        "name": "自己 登録",
        "password": PASSWORD,
    }
    data.update(changes)
    return data


def test_self_registration_needs_the_code_on_the_bill(client: Client) -> None:
    biller = make_biller()
    customer = make_customer(biller)
    invoice = publish(biller, customer)
    other_customer = make_customer(biller)

    wrong_code = client.post(
        my(biller, "register/"), registration(invoice, customer, registration_code="AAAA-BBBB-CCCC")
    )
    assert wrong_code.status_code == 400
    message = "do not match a bill"
    assert message in wrong_code.content.decode()
    # another customer's code with this bill's number: the same refusal
    stolen = client.post(my(biller, "register/"), registration(invoice, other_customer))
    assert stolen.status_code == 400 and message in stolen.content.decode()
    typo = client.post(
        my(biller, "register/"), registration(invoice, customer, customer_number="1234567890123456")
    )
    assert typo.status_code == 400 and message in typo.content.decode()
    assert not User.objects.filter(realm=User.Realm.CUSTOMER).exists()

    ok = client.post(my(biller, "register/"), registration(invoice, customer))
    assert ok.status_code == 302
    account = CustomerAccount.objects.get(customer=customer)
    assert account.role == "payer"
    assert logged_in_at(client, biller)
    # a consumer has one account
    client.logout()
    twice = client.post(my(biller, "register/"), registration(invoice, customer, email="second@example.jp"))
    assert twice.status_code == 409
    assert CustomerAccount.objects.filter(customer=customer).count() == 1


def test_registration_guessing_is_locked_out(client: Client, settings: Any) -> None:
    settings.PORTAL_LOGIN_MAX_FAILURES = 3
    biller = make_biller()
    customer = make_customer(biller)
    invoice = publish(biller, customer)
    for i in range(3):
        response = client.post(
            my(biller, "register/"), registration(invoice, customer, registration_code=f"WRONG{i}")
        )
        assert response.status_code == 400
    locked = client.post(
        my(biller, "register/"), registration(invoice, customer), HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert locked.status_code == 429
    assert not CustomerAccount.objects.exists()


def test_same_email_at_two_billers_is_two_accounts(client: Client) -> None:
    a, b = make_biller(), make_biller()
    at_a = make_portal_account(a, make_customer(a), email="same@example.jp", password="password at A 1")
    at_b = make_portal_account(b, make_customer(b), email="Same@Example.jp", password="password at B 2")
    assert at_a.user_id != at_b.user_id
    assert at_a.user.login != at_b.user.login
    # a console user with the same address is yet another account, unaffected
    console_user = make_member(a, email="same@example.jp")
    assert console_user.login == "same@example.jp"

    assert (
        login(client, a, "same@example.jp", "password at B 2").status_code == 400
    )  # B's password is not A's
    assert login(client, a, "same@example.jp", "password at A 1").status_code == 302
    assert logged_in_at(client, a)
    assert not logged_in_at(client, b)  # A's session is no account at B
    assert client.get(f"/b/{a.slug}/console/").status_code == 404  # nor a console member
    # the console login refuses customer accounts
    client.logout()
    client.post("/accounts/login/", {"email": "same@example.jp", "password": "password at A 1"})
    assert client.get(f"/b/{a.slug}/console/").status_code in {302, 404}


# --- throttling ----------------------------------------------------------------------------------------


def test_lockout_is_not_bypassed_by_x_forwarded_for(client: Client, settings: Any) -> None:
    biller = make_biller()
    account = make_portal_account(biller, email="victim@example.jp")
    for i in range(settings.PORTAL_LOGIN_MAX_FAILURES):
        response = login(
            client, biller, "victim@example.jp", f"guess {i}", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}"
        )
        assert response.status_code == 400
    # the right password, from a "new" address in a forged header: still locked
    locked = login(client, biller, "victim@example.jp", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.77")
    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.content.decode()
    assert not logged_in_at(client, biller)
    assert set(PortalLoginAttempt.objects.values_list("ip", flat=True)) == {"127.0.0.1"}
    # the lock ends with the window
    PortalLoginAttempt.objects.update(created_at=timezone.now() - datetime.timedelta(minutes=16))
    assert login(client, biller, "victim@example.jp", PASSWORD).status_code == 302
    assert account.user.pk == int(client.session["_auth_user_id"])


def test_one_address_trying_many_logins_is_locked(client: Client, settings: Any) -> None:
    settings.PORTAL_LOGIN_MAX_FAILURES_PER_IP = 3
    biller = make_biller()
    make_portal_account(biller, email="real@example.jp")
    for i in range(3):
        assert (
            login(
                client, biller, f"nobody{i}@example.jp", "x", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}"
            ).status_code
            == 400
        )
    assert login(client, biller, "real@example.jp", PASSWORD).status_code == 429
    other = Client(REMOTE_ADDR="192.0.2.10")
    assert login(other, biller, "real@example.jp", PASSWORD).status_code == 302


def test_client_ip_reads_forwarded_for_only_from_trusted_proxies(settings: Any) -> None:
    rf = RequestFactory()
    forged = rf.get("/", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip(forged) == "203.0.113.5"
    settings.PORTAL_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(forged) == "203.0.113.5"  # not from a trusted proxy: header ignored
    proxied = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7, 10.0.0.9")
    assert client_ip(proxied) == "198.51.100.7"  # the rightmost address no trusted proxy added
    garbage = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert client_ip(garbage) == "10.0.0.2"


# --- TOTP ----------------------------------------------------------------------------------------------


def test_totp_is_required_once_enrolled(client: Client) -> None:
    biller = make_biller()
    account = make_portal_account(biller, email="totp@example.jp")
    client.force_login(account.user)
    assert client.post(my(biller, "security/"), {"action": "begin"}).status_code == 200
    account.refresh_from_db()
    secret = account.totp_secret
    assert secret and not account.totp_enabled
    assert client.post(my(biller, "security/"), {"action": "confirm", "code": "000000"}).status_code == 400
    code = pyotp.TOTP(secret).now()
    assert client.post(my(biller, "security/"), {"action": "confirm", "code": code}).status_code == 302
    account.refresh_from_db()
    assert account.totp_enabled
    client.post(my(biller, "logout/"))

    response = login(client, biller, "totp@example.jp")
    assert response.status_code == 302 and response["Location"].endswith("/my/login/code/")
    assert not logged_in_at(client, biller)  # the password alone is not a login
    assert client.post(my(biller, "login/code/"), {"code": "123456"}).status_code == 400
    assert not logged_in_at(client, biller)
    # a code is accepted once: the one used for enrolment is refused (the step was remembered)
    assert client.post(my(biller, "login/code/"), {"code": code}).status_code == 400
    next_code = pyotp.TOTP(secret).at(timezone.now() + datetime.timedelta(seconds=30))
    assert client.post(my(biller, "login/code/"), {"code": next_code}).status_code == 302
    assert logged_in_at(client, biller)


def test_totp_failures_count_towards_the_lockout(client: Client, settings: Any) -> None:
    settings.PORTAL_LOGIN_MAX_FAILURES = 2
    biller = make_biller()
    account = make_portal_account(biller, email="t2@example.jp")
    account.totp_secret = pyotp.random_base32()
    account.totp_enabled_at = timezone.now()
    account.save()
    login(client, biller, "t2@example.jp")
    for _ in range(2):
        assert client.post(my(biller, "login/code/"), {"code": "000000"}).status_code == 400
    response = client.post(my(biller, "login/code/"), {"code": pyotp.TOTP(account.totp_secret).now()})
    assert response.status_code == 429
    assert not logged_in_at(client, biller)


# --- password reset ------------------------------------------------------------------------------------


def test_password_reset_by_email_for_this_billers_account(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    a, b = make_biller(), make_biller()
    make_portal_account(a, email="forgot@example.jp")
    make_portal_account(b, email="forgot@example.jp")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(my(a, "password-reset/"), {"email": "FORGOT@example.jp"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["forgot@example.jp"]
    url = link_in(mail.outbox[0], "/my/reset/")
    assert f"/b/{a.slug}/my/reset/" in url
    # an unknown address gets the same answer and no e-mail
    with django_capture_on_commit_callbacks(execute=True):
        unknown = client.post(my(a, "password-reset/"), {"email": "nobody@example.jp"})
    assert unknown.status_code == 302 and unknown["Location"] == response["Location"]
    assert len(mail.outbox) == 1
    # A's link does not work in B's portal
    other = client.get(path_of(url).replace(f"/b/{a.slug}/", f"/b/{b.slug}/"), follow=True)
    assert "not valid any more" in other.content.decode()

    form = client.get(path_of(url), follow=True)
    assert form.status_code == 200
    set_url = form.redirect_chain[-1][0]
    done = client.post(
        set_url, {"new_password1": "a brand new secret", "new_password2": "a brand new secret"}
    )
    assert done.status_code == 302
    assert login(client, a, "forgot@example.jp", "a brand new secret").status_code == 302
    client.logout()
    assert (
        login(client, b, "forgot@example.jp", "a brand new secret").status_code == 400
    )  # B's account unchanged


# --- console -------------------------------------------------------------------------------------------


def test_console_shows_the_registration_code_and_manages_roles(client: Client) -> None:
    biller = make_biller()
    admin = make_member(biller)
    customer = make_customer(biller, kind=Customer.Kind.CORPORATE)
    account = make_portal_account(biller, customer, role="viewer", email="viewer@corp.example")
    client.force_login(admin)
    page = client.get(f"/b/{biller.slug}/console/customers/{customer.pk}/edit/").content.decode()
    assert customer.registration_code_display in page
    assert "viewer@corp.example" in page

    base = f"/b/{biller.slug}/console/customers/{customer.pk}/portal/"
    assert (
        client.post(f"{base}accounts/{account.pk}/", {"action": "role", "role": "payer"}).status_code == 302
    )
    account.refresh_from_db()
    assert account.role == "payer"
    assert AuditEntry.objects.filter(action="customer_account.role").exists()
    old = customer.registration_code
    client.post(f"{base}code/")
    customer.refresh_from_db()
    assert customer.registration_code != old
    client.post(f"{base}accounts/{account.pk}/", {"action": "block"})
    account.user.refresh_from_db()
    assert not account.user.is_active
    # another biller's customer and account answer 404
    other = make_biller()
    other_customer = make_customer(other)
    assert (
        client.post(f"/b/{biller.slug}/console/customers/{other_customer.pk}/portal/code/").status_code == 404
    )


def test_consumer_accounts_are_payers_only() -> None:
    biller = make_biller()
    customer = make_customer(biller)
    with pytest.raises(Exception, match="always a payer"):
        portal_services.customer_invitation_create(
            actor=None, biller=biller, customer=customer, email="x@example.jp", role="viewer", send=False
        )


def test_demo_accounts_are_idempotent(client: Client) -> None:
    from billing.portal.demo import PORTAL_DEMO_PASSWORD, seed_portal_demo

    biller = make_biller()
    make_customer(biller, code="D-1", email="demo-consumer@example.jp")
    first = seed_portal_demo(biller)
    again = seed_portal_demo(biller)
    assert first == again
    assert sorted(login.role for login in first) == ["approver", "payer", "payer", "viewer"]
    assert CustomerAccount.objects.filter(biller=biller).count() == 4
    assert Customer.objects.get(biller=biller, code="DEMO-CORP").kind == Customer.Kind.CORPORATE
    consumer = next(login for login in first if login.customer_code == "D-1")
    assert login(client, biller, consumer.email, PORTAL_DEMO_PASSWORD).status_code == 302


def test_customer_of() -> None:
    a, b = make_biller(), make_biller()
    account = make_portal_account(a)
    assert portal_services.customer_of(account.user, a) == account.customer
    assert portal_services.customer_of(account.user, b) is None
    assert portal_services.customer_of(make_member(a), a) is None  # a console user is no customer
