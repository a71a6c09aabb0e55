"""The console login's second factor in Chromium, on a 390 px phone, in Japanese.

An iDC staff member without two-step verification logs in: the console stays closed until they set it
up (the key shown as text, a wrong code refused with the error tied to the field, the right one
accepted, ten recovery codes shown once); then they log in again with a code typed from the keyboard,
and once more with a recovery code.
"""

from __future__ import annotations

import re
from typing import Any

import pyotp
from django.utils import timezone, translation
from playwright.sync_api import expect

from billing.models import AuditEntry
from tests import factories

EMAIL = "night-shift@idc.test"
PASSWORD = "correct horse battery"


def ja(message: str) -> str:
    """The page's words as the Japanese catalogue has them (the English msgid until translated)."""
    with translation.override("ja"):
        return translation.gettext(message)


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"


def enter_password(page: Any, base: str) -> None:
    page.goto(base + "/accounts/login/")
    main = page.get_by_role("main")
    main.get_by_label(ja("E-mail")).fill(EMAIL)
    main.get_by_label(ja("Password")).fill(PASSWORD)
    main.get_by_role("button", name=ja("Log in")).click()


def test_staff_sets_up_two_step_verification_then_logs_in_with_codes(browser: Any, live_server: Any) -> None:
    base = live_server.url
    factories.make_user(EMAIL, password=PASSWORD, name="夜勤 担当", is_idc_staff=True, totp=False)
    context = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        # -- the password alone opens nothing: set-up first ----------------------------------------
        enter_password(page, base)
        expect(page).to_have_url(base + "/accounts/two-step/setup/")
        expect(page.locator("html")).to_have_attribute("lang", "ja")
        expect(page.get_by_role("heading", level=1)).to_have_text(ja("Set up two-step verification"))
        page.goto(base + "/staff/")
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/staff/$"))
        enter_password(page, base)
        expect(page).to_have_url(base + "/accounts/two-step/setup/")
        no_sideways_scroll(page)

        secret = page.get_by_label(ja("Setup key")).inner_text().replace(" ", "")
        assert len(secret) == 32
        expect(page.get_by_role("link", name=ja("Open in the authenticator app"))).to_have_attribute(
            "href", re.compile(r"^otpauth://totp/")
        )
        code = page.get_by_label(ja("6-digit code from your authenticator app"))
        expect(code).to_be_focused()
        expect(code).to_have_attribute("autocomplete", "one-time-code")
        expect(code).to_have_attribute("inputmode", "numeric")

        # -- a wrong code: refused, the error tied to the field ------------------------------------
        valid = {pyotp.TOTP(secret).at(timezone.now().timestamp() + 30 * k) for k in (-1, 0, 1)}
        code.fill(next(c for c in ("123456", "654321", "111111") if c not in valid))
        page.keyboard.press("Enter")
        expect(page.get_by_role("alert")).to_be_visible()
        code = page.get_by_label(ja("6-digit code from your authenticator app"))
        expect(code).to_have_attribute("aria-invalid", "true")
        expect(code).to_have_attribute("aria-describedby", re.compile(r"\bid_code_error\b"))
        expect(page.locator("#id_code_error")).to_contain_text(
            ja("The code is not correct. Check the time on your phone.")
        )

        # -- the right code: on, ten recovery codes once -------------------------------------------
        code.fill(pyotp.TOTP(secret).now())
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text(ja("Your recovery codes"))
        codes = page.locator("ul.recovery-codes li")
        expect(codes).to_have_count(10)
        recovery = codes.first.inner_text().strip()
        no_sideways_scroll(page)
        page.get_by_role("link", name=ja("I have saved the codes — continue")).click()
        expect(page).to_have_url(base + "/staff/")

        # -- the next login: a code typed from the keyboard ----------------------------------------
        page.get_by_role("button", name=re.compile("ログアウト|Log out")).click()
        enter_password(page, base)
        expect(page).to_have_url(base + "/accounts/login/code/")
        no_sideways_scroll(page)
        expect(page.get_by_label(ja("6-digit code from your authenticator app"))).to_be_focused()
        page.keyboard.type(factories.totp_code(EMAIL))
        page.keyboard.press("Enter")
        expect(page).to_have_url(base + "/staff/")

        # -- phone lost: a recovery code, once -----------------------------------------------------
        page.get_by_role("button", name=re.compile("ログアウト|Log out")).click()
        enter_password(page, base)
        page.get_by_text(ja("Lost your phone? Use a recovery code")).click()
        page.get_by_label(ja("Recovery code")).fill(recovery)
        page.get_by_role("button", name=ja("Use the recovery code")).click()
        expect(page).to_have_url(base + "/staff/")
        assert AuditEntry.objects.filter(action="console.recovery_code_used", actor__login=EMAIL).count() == 1
        assert AuditEntry.objects.filter(action="console.login", actor__login=EMAIL).count() == 3
    finally:
        context.close()
