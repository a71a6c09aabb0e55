"""The foundation's "done means", through the browser.

An iDC staff member logs in, onboards a biller with two contracted banks
(after one refused attempt), invites its first admin; the admin follows the
e-mailed link, creates an account and lands in the biller's console; the link
then no longer works. Set SAVE_SCREENSHOTS=1 to refresh docs/screenshots/.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from billing.models import Biller, Membership
from billing.validators import corporate_check_digit
from payeasy.models import ContractedBank
from tests import factories
from tests.browser.conftest import pass_second_factor

STAFF_EMAIL = "staff@idc.test"
STAFF_PASSWORD = "correct horse battery"
STAFF_NAME = "iDC 担当"
ADMIN_EMAIL = "boss@test-denki.jp"

PAYEE = "54321"
REGISTRATION_BASE = "123456789012"
LEGAL_NAME = "テスト電気株式会社"
SLUG = "test-denki"


def log_in(page: Any, base_url: str, email: str, password: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    pass_second_factor(page, email)


def fill_bank_row(page: Any, n: int, bank_code: str, channels: list[str], valid_from: str) -> None:
    row = page.get_by_role("group", name=f"Bank row {n}", exact=True)
    row.get_by_label("Bank code").fill(bank_code)
    row.get_by_label("Contract start").fill(valid_from)
    for channel in channels:
        row.get_by_role("group", name="Channels").get_by_label(channel, exact=True).check()


@pytest.mark.parametrize("browser_locale", ["en-US"])
def test_staff_onboards_a_biller_and_its_first_admin_joins(
    page: Any, live_server: Any, mailoutbox: list, screenshot: Any
) -> None:
    base = live_server.url
    factories.make_user(STAFF_EMAIL, password=STAFF_PASSWORD, name=STAFF_NAME, is_idc_staff=True)

    # -- the staff member logs in and lands on the staff console ------------------------------------
    log_in(page, base, STAFF_EMAIL, STAFF_PASSWORD)
    expect(page).to_have_url(base + "/staff/")
    expect(page.get_by_role("heading", name="Billers", level=1)).to_be_visible()
    expect(page.get_by_role("table")).to_contain_text("No biller matches.")
    screenshot(page, "staff-biller-list")

    # -- onboarding: a first attempt with a bad payee number is refused -----------------------------
    page.get_by_role("main").get_by_role("link", name="Onboard a biller").click()
    expect(page.get_by_role("heading", name="Onboard a biller", level=1)).to_be_visible()
    biller = page.get_by_role("group", name="Biller", exact=True)
    biller.get_by_label("Legal name").fill(LEGAL_NAME)
    biller.get_by_label("Short name").fill("テスト電気")
    biller.get_by_label("Name (half-width kana)").fill("テストデンキ")  # full-width; the server converts
    biller.get_by_label("Payee number").fill("123")
    biller.get_by_label("Biller code").fill(f"{PAYEE}001")
    registration = f"T{corporate_check_digit(REGISTRATION_BASE)}{REGISTRATION_BASE}"
    biller.get_by_label("Registration number").fill(registration)
    biller.get_by_label("Portal slug").fill(SLUG)
    biller.get_by_label("Contact name").fill("電気 太郎")
    biller.get_by_label("Contact e-mail").fill("taro@test-denki.jp")
    biller.get_by_label("Contact phone").fill("03-1234-5678")
    biller.get_by_label("Late payment policy").select_option("refuse")
    biller.get_by_label("Tax rounding rule").select_option("half_up")
    fill_bank_row(page, 1, "0001", ["ATM", "Information link (情報リンク)"], "2026-04-01")
    fill_bank_row(page, 2, "0009", ["Teller (窓口)"], "2026-04-01")
    page.get_by_role("button", name="Create biller").click()

    summary = page.get_by_role("alert")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("Please correct the following:")
    field_link = summary.get_by_role("link", name="Payee number (収納機関番号)")
    expect(field_link).to_have_attribute("href", "#id_payee_number")
    expect(summary).to_contain_text("exactly 5 digits")
    expect(page).to_have_url(base + "/staff/billers/new/")
    assert Biller.objects.count() == 0
    assert ContractedBank.objects.count() == 0
    screenshot(page, "staff-biller-onboard-errors")

    # -- the summary link leads to the field; fix it and submit again -------------------------------
    field_link.click()
    expect(page).to_have_url(re.compile(r"#id_payee_number$"))
    payee = page.get_by_label("Payee number")
    expect(payee).to_have_value("123")
    expect(payee).to_have_attribute("aria-invalid", "true")
    payee.fill(PAYEE)
    # everything else survived the round trip, the bank rows included
    expect(page.get_by_label("Legal name")).to_have_value(LEGAL_NAME)
    row1 = page.get_by_role("group", name="Bank row 1", exact=True)
    expect(row1.get_by_label("ATM", exact=True)).to_be_checked()
    page.get_by_role("button", name="Create biller").click()

    # -- the detail page ---------------------------------------------------------------------------
    expect(page.get_by_role("status")).to_contain_text(
        f"Biller {LEGAL_NAME} was created (status: onboarding)."
    )
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(LEGAL_NAME)
    expect(heading).to_contain_text("Onboarding")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("ﾃｽﾄﾃﾞﾝｷ")  # converted to half-width kana
    expect(facts).to_contain_text(f"{PAYEE}001")
    expect(facts).to_contain_text(registration)
    banks = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Channels"))
    expect(banks.get_by_role("row")).to_have_count(3)  # header + two banks
    expect(banks.get_by_role("row", name=re.compile("0001 みずほ"))).to_contain_text(
        "ATM, Information link (情報リンク)"
    )
    expect(banks.get_by_role("row", name=re.compile("0009 三井住友"))).to_contain_text("Teller (窓口)")
    created = Biller.objects.get()
    assert (created.slug, created.status, created.name_kana) == (SLUG, "onboarding", "ﾃｽﾄﾃﾞﾝｷ")
    assert created.short_name == "テスト電気"
    assert sorted(ContractedBank.objects.filter(biller=created).values_list("bank_code", flat=True)) == [
        "0001",
        "0009",
    ]
    screenshot(page, "staff-biller-detail")

    # -- invite the first admin ----------------------------------------------------------------------
    page.get_by_label("E-mail").fill(ADMIN_EMAIL)
    page.get_by_label("Role").select_option("admin")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text(f"Invitation sent to {ADMIN_EMAIL}.")
    invitations = page.get_by_role("table", name="Invitations")
    expect(invitations.get_by_role("row", name=re.compile(re.escape(ADMIN_EMAIL)))).to_contain_text("pending")

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == [ADMIN_EMAIL]
    assert LEGAL_NAME in message.subject
    link = re.search(r"https?://\S+/accounts/invitations/\S+/", message.body)
    assert link, message.body
    parts = urlsplit(link.group(0))
    invitation_path = parts.path  # the e-mail names PORTAL_BASE_URL's host, not the live server's

    # -- the staff member logs out; the invitee follows the link --------------------------------------
    page.get_by_role("button", name=f"Log out ({STAFF_NAME})").click()
    expect(page.get_by_role("heading", name="Log in", level=1)).to_be_visible()

    page.goto(base + invitation_path)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Join {LEGAL_NAME}")
    expect(page.get_by_label("E-mail")).to_have_value(ADMIN_EMAIL)
    page.get_by_label("Your name").fill("電気 花子")
    page.get_by_label("Password").fill("a-long-unique-pass")
    page.get_by_role("button", name="Accept invitation").click()

    # an administrator sets up two-step verification before the console opens
    expect(page).to_have_url(f"{base}/accounts/two-step/setup/")
    expect(page.get_by_role("status")).to_contain_text(f"Welcome to {LEGAL_NAME}.")
    pass_second_factor(page, ADMIN_EMAIL)
    expect(page).to_have_url(f"{base}/b/{SLUG}/console/")
    expect(page.get_by_role("heading", level=1)).to_have_text(LEGAL_NAME)
    expect(page.get_by_role("main")).to_contain_text("Administrator")
    membership = Membership.objects.select_related("user").get(biller=created)
    assert (membership.user.email, membership.role) == (ADMIN_EMAIL, "admin")
    screenshot(page, "tenant-console")

    # -- the link works once ------------------------------------------------------------------------
    response = page.goto(base + invitation_path)
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("This invitation link cannot be used")
    expect(page.get_by_role("alert")).to_have_text("The link has already been used. Log in instead.")


def test_pages_follow_a_japanese_browser(page: Any, live_server: Any) -> None:
    page.goto(live_server.url + "/accounts/login/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", level=1)).to_have_text("ログイン")
    expect(page.get_by_role("button", name="ログイン")).to_be_visible()
