"""Console and Django admin logins: lockout (shared with the portal's throttle), the TOTP second factor
for iDC staff, administrators and (when the biller says so) operators, recovery codes, the audit trail."""

from __future__ import annotations

import datetime
import re
from html import unescape as html_unescape
from typing import Any

import pyotp
import pytest
import segno
from django.apps import apps
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from billing import services
from billing.models import AuditEntry, Biller, Membership, User
from tests.factories import make_biller

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"
CONSOLE = "/accounts/login/"
CODE = "/accounts/login/code/"
SETUP = "/accounts/two-step/setup/"


# --- helpers (the models are looked up by name, so the file also runs against a tree without them) ----


def model(name: str) -> Any:
    try:
        return apps.get_model("billing", name)
    except LookupError:
        return None


def person(email: str, *, staff: bool = False, totp: bool = True) -> tuple[User, str]:
    """A console user and the TOTP secret they enrolled ("" for none)."""
    user = User.objects.create_user(email, PASSWORD, name="担当", is_idc_staff=staff)
    factor = model("ConsoleTwoFactor")
    if not totp or factor is None:
        return user, ""
    secret = pyotp.random_base32()
    factor.objects.create(user=user, secret=secret, enabled_at=timezone.now())
    return user, secret


def member(biller: Biller, email: str, role: str = Membership.Role.ADMIN, **kw: Any) -> tuple[User, str]:
    user, secret = person(email, **kw)
    Membership.objects.create(biller=biller, user=user, role=role)
    return user, secret


def code_at(secret: str, offset: int = 0) -> str:
    return pyotp.TOTP(secret).at(timezone.now() + datetime.timedelta(seconds=30 * offset))


def wrong_code(secret: str) -> str:
    valid = {code_at(secret, offset) for offset in (-1, 0, 1)}
    return next(c for c in ("123456", "654321", "111111", "222222") if c not in valid)


def password(client: Client, email: str, pw: str = PASSWORD, url: str = CONSOLE, **extra: Any) -> Any:
    field = "username" if url.startswith("/admin/") else "email"
    return client.post(url, {field: email, "password": pw}, **extra)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def attempts(**filters: Any) -> Any:
    found = model("LoginAttempt")
    assert found is not None, "no LoginAttempt model: console logins are not counted"
    return found.objects.filter(realm="console", **filters)


def audit(action: str) -> Any:
    return AuditEntry.objects.filter(action=action)


# --- lockout -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [CONSOLE, "/admin/login/"])
def test_sixty_wrong_passwords_then_the_right_one_is_refused(client: Client, url: str) -> None:
    user, _secret = person("root@idc.test", staff=True)
    User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    for i in range(60):
        assert password(client, "root@idc.test", f"guess {i}", url=url).status_code in {200, 400, 429}
    locked = password(client, "root@idc.test", url=url)
    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.content.decode()
    assert not logged_in(client)
    assert "console_login_pending" not in client.session  # not even the second step is offered
    # only the failures up to the lock were counted; the refused attempts were not checked at all
    assert attempts(login="root@idc.test", succeeded=False).count() == 5
    assert audit("console.login_failed").count() == 5
    locks = audit("console.login_locked")
    assert locks.count() == 1 and locks.get().after["ip"] == "127.0.0.1"
    # the lock ends with the window
    attempts().update(created_at=timezone.now() - datetime.timedelta(minutes=16))
    assert password(client, "root@idc.test", url=url).status_code == 302


def test_one_address_trying_many_logins_is_locked(client: Client, settings: Any) -> None:
    settings.CONSOLE_LOGIN_MAX_FAILURES_PER_IP = 3
    person("real@idc.test", staff=True)
    for i in range(3):
        assert password(client, f"nobody{i}@idc.test", "x").status_code == 400
    assert password(client, "real@idc.test").status_code == 429
    assert "console_login_pending" not in client.session
    elsewhere = Client(REMOTE_ADDR="192.0.2.10")
    assert password(elsewhere, "real@idc.test").status_code == 302
    assert elsewhere.session["console_login_pending"]


def test_console_and_portal_failures_are_counted_apart(client: Client, settings: Any) -> None:
    from tests.factories import make_portal_account

    settings.CONSOLE_LOGIN_MAX_FAILURES_PER_IP = 2
    biller = make_biller()
    make_portal_account(biller, email="payer@example.jp")
    for i in range(3):
        client.post(f"/b/{biller.slug}/my/login/", {"email": "payer@example.jp", "password": f"x{i}"})
    person("staff@idc.test", staff=True)
    assert password(client, "staff@idc.test").status_code == 302  # the portal's failures lock no console


def test_x_forwarded_for_from_an_untrusted_client_is_ignored(client: Client, settings: Any) -> None:
    settings.PORTAL_TRUSTED_PROXIES = ["10.0.0.0/8"]
    person("victim@idc.test", staff=True)
    forged = Client(REMOTE_ADDR="203.0.113.5")
    for i in range(5):
        response = password(forged, "victim@idc.test", f"guess {i}", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
        assert response.status_code == 400
    assert set(attempts().values_list("ip", flat=True)) == {"203.0.113.5"}
    assert password(forged, "victim@idc.test", HTTP_X_FORWARDED_FOR="192.0.2.77").status_code == 429
    # behind a trusted proxy the header names the client
    proxied = Client(REMOTE_ADDR="10.0.0.2")
    password(proxied, "someone@idc.test", "x", HTTP_X_FORWARDED_FOR="198.51.100.99, 10.0.0.9")
    assert attempts(login="someone@idc.test").get().ip == "198.51.100.99"


# --- the second factor ---------------------------------------------------------------------------------


def test_staff_without_totp_must_enrol_before_the_console(client: Client) -> None:
    user, _ = person("new@idc.test", staff=True, totp=False)
    response = password(client, "new@idc.test")
    assert response.status_code == 302 and response["Location"] == SETUP
    assert not logged_in(client)  # the password alone logs nobody in
    assert client.get("/staff/").status_code == 302
    assert client.get("/admin/").status_code == 302
    page = client.get(SETUP)
    assert page.status_code == 200
    html = page.content.decode()
    secret = model("ConsoleTwoFactor").objects.get(user=user).secret
    assert "otpauth://totp/" in html and " ".join(secret[i : i + 4] for i in range(0, 32, 4)) in html
    assert 'autocomplete="one-time-code"' in html and 'inputmode="numeric"' in html
    # a QR code of the same otpauth:// URI as the link, for the phone's camera, named for screen readers
    uri = html_unescape(re.search(r'href="(otpauth://totp/[^"]+)"', html).group(1))
    drawn = re.search(r'<svg role="img"[^>]*><title>([^<]+)</title>.*?<path stroke="#000" d="([^"]+)"', html)
    assert drawn is not None and drawn.group(1)
    expected = segno.make(uri, error="m").svg_inline(scale=4, border=4, lineclass=None)
    assert f'd="{drawn.group(2)}"' in expected
    wrong = client.post(SETUP, {"code": "000000"})
    assert wrong.status_code == 400 and not logged_in(client)
    assert 'aria-describedby="id_code_error"' in wrong.content.decode()
    done = client.post(SETUP, {"code": code_at(secret)})
    assert done.status_code == 200 and logged_in(client)
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", done.content.decode())
    assert len(set(codes)) == 10
    stored = model("ConsoleTwoFactor").objects.get(user=user).recovery_hashes
    assert len(stored) == 10 and not set(codes) & set(stored)  # only digests are kept
    assert client.get("/staff/").status_code == 200
    assert audit("console.totp_on").filter(actor=user).exists()
    assert audit("console.login").filter(actor=user).get().after["step"] == "totp_setup"


def test_admin_without_totp_is_sent_to_enrol_even_when_logged_in(client: Client) -> None:
    biller = make_biller()
    admin, _ = member(biller, "boss@biller.test", totp=False)
    assert password(client, "boss@biller.test")["Location"] == SETUP
    # a session logged in some other way (before two-step verification existed, or when the iDC
    # reset the factor) reaches only the set-up page
    other = Client()
    other.force_login(admin)
    response = other.get(f"/b/{biller.slug}/console/")
    assert response.status_code == 302 and response["Location"] == f"/b/{biller.slug}{SETUP}"
    assert other.get(response["Location"]).status_code == 200
    assert other.get("/staff/").status_code == 302


def test_a_session_from_before_the_second_factor_is_logged_out(client: Client) -> None:
    user, _ = person("old@idc.test", staff=True)
    client.force_login(user)
    session = client.session
    session.pop("console_second_factor", None)
    session.save()
    response = client.get("/staff/")
    assert response.status_code == 302 and response["Location"].startswith(CONSOLE)
    assert not logged_in(client)


def test_wrong_totp_is_refused_and_counted(client: Client) -> None:
    _user, secret = person("staff@idc.test", staff=True)
    assert password(client, "staff@idc.test")["Location"] == CODE
    for _i in range(5):
        response = client.post(CODE, {"code": wrong_code(secret)})
        assert response.status_code == 400
        assert not logged_in(client)
    assert attempts(login="staff@idc.test", succeeded=False).count() == 5
    assert audit("console.login_failed").filter(after__step="totp").count() == 5
    # locked: even the right code is refused now, and the password step too
    locked = client.post(CODE, {"code": code_at(secret)})
    assert locked.status_code == 429 and not logged_in(client)
    assert password(client, "staff@idc.test").status_code == 429


def test_a_code_cannot_be_replayed(client: Client) -> None:
    _user, secret = person("staff@idc.test", staff=True)
    code = code_at(secret)
    password(client, "staff@idc.test")
    assert client.post(CODE, {"code": code}).status_code == 302 and logged_in(client)
    client.post("/accounts/logout/")
    thief = Client()
    password(thief, "staff@idc.test")
    assert thief.post(CODE, {"code": code}).status_code == 400
    assert not logged_in(thief)


def test_a_recovery_code_works_once(client: Client) -> None:
    user, _ = person("staff@idc.test", staff=True, totp=False)
    password(client, "staff@idc.test")
    assert client.get(SETUP).status_code == 200
    secret = model("ConsoleTwoFactor").objects.get(user=user).secret
    done = client.post(SETUP, {"code": code_at(secret)})
    recovery = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", done.content.decode())[0]
    client.post("/accounts/logout/")

    phone_lost = Client()
    password(phone_lost, "staff@idc.test")
    response = phone_lost.post(CODE, {"recovery_code": recovery.upper()})
    assert response.status_code == 302 and logged_in(phone_lost)
    used = audit("console.recovery_code_used").get()
    assert used.actor == user and used.after == {"ip": "127.0.0.1", "left": 9}

    again = Client()
    password(again, "staff@idc.test")
    refused = again.post(CODE, {"recovery_code": recovery})
    assert refused.status_code == 400 and not logged_in(again)
    assert 'aria-describedby="id_recovery_code_helptext id_recovery_code_error"' in refused.content.decode()


def test_recovery_codes_can_be_made_again(client: Client) -> None:
    user, secret = person("staff@idc.test", staff=True)
    password(client, "staff@idc.test")
    code = code_at(secret)  # once: a 30 s step may end between two calls
    client.post(CODE, {"code": code})
    assert client.post("/accounts/two-step/", {"code": code}).status_code == 400  # replayed
    response = client.post("/accounts/two-step/", {"code": code_at(secret, 1)})
    assert response.status_code == 200
    assert len(re.findall(r"<code>[a-z0-9]{5}-[a-z0-9]{5}</code>", response.content.decode())) == 10
    assert audit("console.recovery_codes_regenerate").filter(actor=user).exists()


def test_a_biller_may_require_totp_of_its_operators(client: Client) -> None:
    biller = make_biller()
    admin, admin_secret = member(biller, "boss@biller.test")
    member(biller, "clerk@biller.test", role=Membership.Role.OPERATOR, totp=False)
    clerk = Client()
    assert password(clerk, "clerk@biller.test")["Location"] == "/"  # no second factor needed yet
    assert logged_in(clerk)
    assert clerk.post(f"/b/{biller.slug}/console/login-security/", {"required": "on"}).status_code == 403

    password(client, "boss@biller.test")
    client.post(CODE, {"code": code_at(admin_secret)})
    page = client.get(f"/b/{biller.slug}/console/login-security/")
    assert page.status_code == 200
    response = client.post(f"/b/{biller.slug}/console/login-security/", {"required": "on"})
    assert response.status_code == 302
    biller.refresh_from_db()
    assert biller.console_totp_for_operators
    entry = audit("biller.console_totp_for_operators").get()
    assert (
        entry.actor == admin
        and entry.biller == biller
        and entry.after == {"console_totp_for_operators": True}
    )

    # the operator's open session now reaches only the set-up page; a new login must enrol first
    assert clerk.get(f"/b/{biller.slug}/console/")["Location"] == f"/b/{biller.slug}{SETUP}"
    fresh = Client()
    assert password(fresh, "clerk@biller.test")["Location"] == SETUP
    assert not logged_in(fresh)


def test_a_new_admin_from_an_invitation_enrols_before_the_console(client: Client) -> None:
    biller = make_biller()
    staff, _ = person("staff@idc.test", staff=True)
    _invitation, token = services.invitation_create(
        actor=staff, biller=biller, email="first@biller.test", role=Membership.Role.ADMIN
    )
    response = client.post(
        f"/accounts/invitations/{token}/", {"name": "初代 管理者", "password": "a long new password 1"}
    )
    assert response.status_code == 302 and response["Location"] == SETUP
    assert not logged_in(client)
    assert client.get(f"/b/{biller.slug}/console/").status_code == 302


def test_staff_can_reset_a_users_totp(client: Client) -> None:
    staff, _ = person("staff@idc.test", staff=True)
    user, _ = person("boss@biller.test")
    with pytest.raises(CommandError):
        call_command("console_totp_reset", "boss@biller.test", "--by", "boss@biller.test")
    call_command("console_totp_reset", "boss@biller.test", "--by", "staff@idc.test", "--reason", "lost phone")
    assert not model("ConsoleTwoFactor").objects.filter(user=user).exists()
    entry = audit("console.totp_reset").get()
    assert entry.actor == staff and entry.target_id == str(user.pk) and "lost phone" in entry.summary


def test_the_login_pages_are_japanese_first(client: Client) -> None:
    person("staff@idc.test", staff=True)
    password(client, "staff@idc.test")
    html = client.get(CODE, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert '<html lang="ja">' in html
    assert 'autocomplete="one-time-code"' in html and 'inputmode="numeric"' in html
    assert re.search(r'<label for="id_code">[^<]*</label>', html)
    assert re.search(r'<label for="id_recovery_code">[^<]*</label>', html)


def test_the_demo_logins_work_with_the_published_key(client: Client) -> None:
    """`make run`: the README's logins still open the consoles, with the code demo_info prints."""
    import io

    from payeasy.demo import DEMO_PASSWORD, DEMO_TOTP_SECRET, seed_demo

    seed_demo()
    out = io.StringIO()
    call_command("demo_info", "--code", stdout=out)
    code = out.getvalue().strip()
    assert code == pyotp.TOTP(DEMO_TOTP_SECRET).now() or code == code_at(DEMO_TOTP_SECRET, -1)
    assert password(client, "staff@idc.example", DEMO_PASSWORD)["Location"] == CODE
    assert client.post(CODE, {"code": code}).status_code == 302
    assert client.get("/staff/").status_code == 200
    admin = Client()
    assert password(admin, "admin@toto-denryoku.example", DEMO_PASSWORD)["Location"] == CODE
    assert admin.post(CODE, {"code": code}).status_code == 302  # once per person, not once per key
    assert admin.get("/b/toto-denryoku/console/").status_code == 200
    operator = Client()
    assert password(operator, "operator@toto-denryoku.example", DEMO_PASSWORD).status_code == 302
    assert logged_in(operator)
