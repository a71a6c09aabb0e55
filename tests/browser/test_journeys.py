"""The three journeys, at 1280 px and on a 390 px phone, with axe clean at every step.

1. iDC staff onboard a biller (two contracted banks) and invite its first administrator (English: the
   second language gets its turn here; the page walk of test_axe_pages is in Japanese).
2. A tenant administrator creates an invoice without typing its number — the biller's pattern
   ``{yyyy}-{mm}-{seq:06}`` numbers it (2026-12-000001 for the first one issued in December 2026) — saves
   the draft and publishes it (Japanese).
3. A consumer pays a bill by 情報リンク through the sandbox bank and comes back to a paid bill (Japanese;
   the real line: a commserver and a Celery worker, PostgreSQL and Redis, as in test_paying).

At every step: no serious or critical WCAG 2 A/AA violation (axe), and at 390 px nothing wider than the
screen. With SAVE_SCREENSHOTS=1 each step is saved as docs/screenshots/journey-<name>-<width>.png.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import Biller, Invoice, Membership
from billing.validators import corporate_check_digit
from payeasy.sandbox.forms import DEMO_LOGIN
from payeasy.sandbox.forms import DEMO_PASSWORD as BANK_PASSWORD
from tests import factories
from tests.browser import test_paying as paying
from tests.browser.conftest import (
    SCREENSHOT_DIR,
    axe_report,
    axe_violations,
    ja,
    ja_label,
    pass_second_factor,
    saving_screenshots,
    sideways_overflow,
)
from tests.browser.test_paying import biller_with_sandbox_bank, expect_paid

WIDTHS = (1280, 390)
PASSWORD = "correct horse battery"
NUMBER_PATTERN = "{yyyy}-{mm}-{seq:06}"
# the line for the paying journey (module scope: one commserver and one worker), as test_paying has it
line = paying.line
line_logs = paying.line_logs


class Steps:
    """``steps("name")``: the page as it is now passes axe and, on a phone, fits the screen."""

    def __init__(self, page: Any, axe_js: Any, width: int, journey: str) -> None:
        self.page, self.axe_js, self.width, self.journey = page, axe_js, width, journey

    def __call__(self, name: str) -> None:
        where = f"{self.journey}: {name} at {self.width}px ({self.page.url})"
        violations = axe_violations(self.page, self.axe_js)
        assert not violations, axe_report(where, violations)
        overflow = sideways_overflow(self.page)
        assert not overflow, f"{where}: sideways overflow: {overflow}"
        if saving_screenshots():
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            path = SCREENSHOT_DIR / f"journey-{self.journey}-{name}-{self.width}.png"
            self.page.screenshot(path=str(path), full_page=True)


@pytest.fixture
def open_context(browser: Any) -> Iterator[Callable[..., Any]]:
    """``open_context(width, locale)``: a page in a fresh context of that width (the policy bypassed so
    that axe goes in by a script tag); closed after the test."""
    contexts: list[Any] = []

    def new(width: int, locale: str = "ja-JP") -> Any:
        context = browser.new_context(
            locale=locale, viewport={"width": width, "height": 900}, bypass_csp=True
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield new
    for context in contexts:
        context.close()


# --- 1. staff onboard a biller -------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_staff_onboard_a_biller(
    open_context: Any, axe_path: Any, live_server: Any, mailoutbox: list, width: int
) -> None:
    base = live_server.url
    page = open_context(width, "en-US")
    step = Steps(page, axe_path, width, "onboarding")
    factories.make_user("staff@idc.test", password=PASSWORD, name="iDC 担当", is_idc_staff=True)

    page.goto(base + "/accounts/login/")
    step("login")
    page.get_by_label("E-mail").fill("staff@idc.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/accounts/login/code/"))
    step("login-code")
    pass_second_factor(page, "staff@idc.test")
    expect(page.get_by_role("heading", name="Billers", level=1)).to_be_visible()
    step("biller-list")

    page.get_by_role("main").get_by_role("link", name="Onboard a biller").click()
    expect(page.get_by_role("heading", name="Onboard a biller", level=1)).to_be_visible()
    step("onboard-form")
    biller = page.get_by_role("group", name="Biller", exact=True)
    biller.get_by_label("Legal name").fill("ジャーニー電気株式会社")
    biller.get_by_label("Short name").fill("ジャーニー電気")
    biller.get_by_label("Name (half-width kana)").fill("ジャーニーデンキ")
    biller.get_by_label("Payee number").fill("123")  # refused: five digits
    biller.get_by_label("Biller code").fill("54322001")
    base12 = "223456789012"
    biller.get_by_label("Registration number").fill(f"T{corporate_check_digit(base12)}{base12}")
    biller.get_by_label("Portal slug").fill("journey-denki")
    biller.get_by_label("Contact name").fill("電気 太郎")
    biller.get_by_label("Contact e-mail").fill("taro@journey-denki.jp")
    biller.get_by_label("Contact phone").fill("03-1234-5678")
    for n, (bank, channel) in enumerate((("0001", "ATM"), ("0009", "Teller (窓口)")), start=1):
        row = page.get_by_role("group", name=f"Bank row {n}", exact=True)
        row.get_by_label("Bank code").fill(bank)
        row.get_by_label("Contract start").fill("2026-04-01")
        row.get_by_role("group", name="Channels").get_by_label(channel, exact=True).check()
    page.get_by_role("button", name="Create biller").click()
    expect(page.get_by_role("alert")).to_contain_text("exactly 5 digits")
    step("onboard-errors")

    page.get_by_label("Payee number").fill("54322")
    page.get_by_role("button", name="Create biller").click()
    expect(page.get_by_role("status")).to_contain_text("was created")
    created = Biller.objects.get(slug="journey-denki")
    step("biller-detail")

    page.get_by_label("E-mail").fill("boss@journey-denki.jp")
    page.get_by_label("Role").select_option("admin")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text("Invitation sent to boss@journey-denki.jp.")
    step("invited")
    assert [m.to for m in mailoutbox] == [["boss@journey-denki.jp"]]
    link = re.search(r"/accounts/invitations/\S+/", mailoutbox[0].body)
    assert link, mailoutbox[0].body

    # the invitee, in another browser
    invitee = open_context(width, "en-US")
    step_invitee = Steps(invitee, axe_path, width, "onboarding")
    invitee.goto(base + link.group(0))
    expect(invitee.get_by_role("heading", level=1)).to_have_text(f"Join {created.legal_name}")
    step_invitee("invitation")
    invitee.get_by_label("Your name").fill("電気 花子")
    invitee.get_by_label("Password").fill("a-long-unique-pass")
    invitee.get_by_role("button", name="Accept invitation").click()
    expect(invitee).to_have_url(f"{base}/accounts/two-step/setup/")
    step_invitee("two-step-setup")
    pass_second_factor(invitee, "boss@journey-denki.jp")
    expect(invitee).to_have_url(f"{base}/b/journey-denki/console/")
    step_invitee("console")
    assert Membership.objects.get(biller=created).role == Membership.Role.ADMIN


# --- 2. a tenant administrator creates and publishes an invoice, numbered automatically -----------------


def console_admin(**biller: Any) -> tuple[Biller, str]:
    made = factories.make_biller(invoice_number_pattern=NUMBER_PATTERN, **biller)
    email = f"admin@{made.slug}.example"
    user = factories.make_user(email, password=PASSWORD, name="経理 花子")
    Membership.objects.create(biller=made, user=user, role=Membership.Role.ADMIN)
    factories.make_customer(made, code="D-1", name="田中 一郎", email="ichiro@example.jp")
    return made, email


def automatic_number(issue_date: datetime.date, seq: int = 1) -> str:
    return f"{issue_date:%Y}-{issue_date:%m}-{seq:06d}"


@pytest.mark.parametrize("width", WIDTHS)
def test_admin_creates_and_publishes_an_automatically_numbered_invoice(
    open_context: Any, axe_path: Any, live_server: Any, mailoutbox: list, width: int
) -> None:
    base = live_server.url
    biller, email = console_admin(legal_name="ジャーニー電力株式会社")
    console = f"{base}/b/{biller.slug}/console/"
    today = timezone.localdate()
    number = automatic_number(today)
    page = open_context(width)
    step = Steps(page, axe_path, width, "invoice")

    page.goto(base + "/accounts/login/")
    main = page.get_by_role("main")
    main.get_by_label(ja_label("E-mail")).fill(email)
    main.get_by_label(ja_label("Password")).fill(PASSWORD)
    main.get_by_role("button", name=ja("Log in")).click()
    pass_second_factor(page, email)
    expect(page).to_have_url(console)
    step("console")

    page.goto(console + "invoices/")
    expect(page.get_by_role("heading", name=ja("Invoices"), level=1)).to_be_visible()
    step("list")
    page.get_by_role("main").get_by_role("link", name=ja("New invoice")).click()
    expect(page.get_by_role("heading", name=ja("New invoice"), level=1)).to_be_visible()
    number_field = page.get_by_label(ja_label("Invoice number"))
    expect(number_field).to_have_value("")
    # the form says which number an empty field gets
    expect(page.get_by_role("main")).to_contain_text(number)
    step("new")

    page.get_by_label(ja_label("Customer code")).fill("D-1")
    page.get_by_label(ja_label("Due date")).fill((today + datetime.timedelta(days=30)).isoformat())
    page.get_by_label(ja_label("Description shown to payers (料金名)")).fill("12月分電気料金")
    line1 = page.get_by_role("group", name=ja("Line %(n)s", n=1), exact=True)
    line1.get_by_label(ja_label("Item")).fill("電力量料金 300kWh")
    line1.get_by_label(ja_label("Quantity")).fill("300")
    line1.get_by_label(ja_label("Unit price (yen)")).fill("31")
    step("filled")
    page.get_by_role("button", name=ja("Save as draft")).click()

    invoice = Invoice.objects.get(biller=biller)
    assert invoice.number == number, invoice.number
    assert invoice.status == Invoice.Status.DRAFT
    expect(page).to_have_url(f"{console}invoices/{invoice.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(number)
    step("draft")

    page.get_by_role("button", name=ja("Publish")).click()
    expect(page.get_by_role("status")).to_contain_text(number)
    expect(page.get_by_role("heading", level=1)).to_contain_text(ja("Published"))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PUBLISHED and invoice.confirmation_number
    assert [m.to for m in mailoutbox] == [["ichiro@example.jp"]]
    step("published")


# --- 3. a consumer pays by 情報リンク ----------------------------------------------------------------


def yen(amount: int) -> str:
    return f"{amount:,}円"


@pytest.mark.usefixtures("line_logs")
@pytest.mark.parametrize("width", WIDTHS)
def test_consumer_pays_by_joho_link(open_context: Any, axe_path: Any, live_server: Any, width: int) -> None:
    base = live_server.url
    biller = biller_with_sandbox_bank(legal_name="ジャーニーガス株式会社", short_name="ジャーニーガス")
    customer = factories.make_customer(biller, name="山田 太郎", email="taro@example.jp")
    factories.make_portal_account(
        biller, customer, email="taro@example.jp", password=PASSWORD, name="山田 太郎"
    )
    today = timezone.localdate()
    bill = factories.make_invoice(
        biller=biller,
        customer=customer,
        number=f"GAS-{width}",
        issue_date=today - datetime.timedelta(days=5),
        due_date=today + datetime.timedelta(days=25),
        description="11月分ガス料金",
        lines=factories.MIXED_RATE_LINES,
    )
    my = f"{base}/b/{biller.slug}/my/"
    page = open_context(width)
    step = Steps(page, axe_path, width, "paying")

    page.goto(my + "login/")
    step("login")
    main = page.get_by_role("main")
    main.get_by_label(ja_label("E-mail")).fill("taro@example.jp")
    main.get_by_label(ja_label("Password")).fill(PASSWORD)
    main.get_by_role("button", name=ja("Log in")).click()
    expect(page).to_have_url(re.compile(re.escape(my + "invoices/")))
    step("invoices")

    page.get_by_role("link", name=bill.number, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Invoice %(number)s", number=bill.number))
    step("invoice")
    page.get_by_role("link", name=ja("Pay by 情報リンク")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Pay with your bank's internet banking"))
    step("bank-chooser")

    bank_link = re.compile(rf"\b{settings.PAYEASY_SANDBOX_BANK_CODE}\b")  # the link names the bank's code
    page.get_by_role("list", name=ja("Banks")).get_by_role("link", name=bank_link).click()
    expect(page).to_have_url(f"{base}/sandbox-bank/entry/")  # the hand-off page posted itself
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Log in to pay this bill"))
    step("bank-login")
    main.get_by_label(ja_label("Login ID")).fill(DEMO_LOGIN)
    main.get_by_label(ja_label("Password")).fill(BANK_PASSWORD)
    main.get_by_role("button", name=ja("Log in")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Confirm the payment"))
    step("bank-confirm")

    main.get_by_role("button", name=ja("Pay %(amount)s", amount=yen(bill.total))).click()
    expect(page).to_have_url(f"{my}invoices/{bill.pk}/?returned=1")
    expect_paid(page, timeout=5000)
    step("paid")
    bill.refresh_from_db()
    assert bill.status == Invoice.Status.PAID
