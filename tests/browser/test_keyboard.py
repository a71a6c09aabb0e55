"""Two journeys with the keyboard alone: no mouse, no clicks — Tab, Shift+Tab, Enter, Space and typing.

1. A consumer pays a bill: portal login → invoice list → the bill → "Pay by 情報リンク" → the bank chooser →
   the sandbox bank (log in, pay) → back on the bill, paid → back to the invoice list (the real line, as
   in test_paying: PostgreSQL, Redis, a commserver and a worker).
2. A tenant administrator publishes an invoice: console login with the second factor → New invoice →
   fill (the number left empty: the biller's pattern numbers it) → save the draft → publish.

Each Tab lands on something visible, on screen, drawn with a focus indicator and with an accessible name
(axe's computation); the journeys reach their controls by their names, not by counting. Japanese.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import Invoice, Membership
from payeasy.sandbox.forms import DEMO_LOGIN
from payeasy.sandbox.forms import DEMO_PASSWORD as BANK_PASSWORD
from tests import factories
from tests.browser import test_paying as paying
from tests.browser.conftest import axe_inject, focused, ja
from tests.browser.test_paying import biller_with_sandbox_bank, expect_paid

PASSWORD = "correct horse battery"
MAX_TABS = 80
NATIVE_FOCUS_TYPES = {"date", "time", "datetime-local", "month", "week"}
# the line for the paying journey (module scope: one commserver and one worker), as test_paying has it
line = paying.line
line_logs = paying.line_logs


class Keyboard:
    """Moves the focus with Tab / Shift+Tab until it is on the control of a given name, checking every
    element it passes; types; presses Enter and Space. Never clicks."""

    def __init__(self, page: Any, axe_js: Any) -> None:
        self.page, self.axe_js = page, axe_js
        self.trail: list[str] = []

    def _check_focus(self) -> dict[str, Any] | None:
        """The focused element, checked; None when the focus is on the document itself (past the last
        control, Tab goes to the browser and then back to the top)."""
        axe_inject(self.page, self.axe_js)  # for the accessible name; every new page needs it again
        now = focused(self.page)
        if now is None:
            self.trail.append("(the document)")
            return None
        label = f"<{now['tag']}{' ' + now['type'] if now['type'] else ''}> {now['name']!r}"
        self.trail.append(label)
        assert now["name"], f"a focused control has no accessible name: {label} at {self.page.url}"
        assert now["visible"] and now["inViewport"], f"focused but not visible on screen: {label}"
        # a date field shows its focus natively (the highlighted part of the date), not by an outline
        native = now["tag"] == "input" and now["type"] in NATIVE_FOCUS_TYPES
        assert now["outline"] or native, (
            f"focused without a visible focus indicator (outline or shadow): {label}"
        )
        return now

    def tab_to(
        self, name: str | re.Pattern[str], *, backwards: bool = False, tag: str = ""
    ) -> dict[str, Any]:
        """Tab (or Shift+Tab) until the focused element's accessible name matches ``name``."""
        pattern = name if isinstance(name, re.Pattern) else re.compile(rf"^\s*{re.escape(name)}\s*[:：]?\s*$")
        self.page.wait_for_load_state()
        for _ in range(MAX_TABS):
            self.page.keyboard.press("Shift+Tab" if backwards else "Tab")
            now = self._check_focus()
            if now is not None and pattern.search(now["name"]) and (not tag or now["tag"] == tag):
                return now
        raise AssertionError(
            f"no control named {pattern.pattern!r} within {MAX_TABS} tabs: {self.trail[-12:]}"
        )

    def type_into(self, name: str | re.Pattern[str], text: str) -> None:
        self.tab_to(name)  # tabbing into a field selects its text: typing replaces it
        self.page.keyboard.type(text)

    def type_date(self, name: re.Pattern[str], day: datetime.date) -> None:
        """Type a date into the focused date field. Its parts follow the browser's own language (month/day/
        year in an English Chromium, year/month/day in a Japanese one): try one order, then the other."""
        for text in (f"{day:%m%d%Y}", f"{day:%Y%m%d}"):
            self.page.keyboard.type(text)
            if self.page.evaluate("document.activeElement.value") == day.isoformat():
                return
            self.page.keyboard.press("Shift+Tab")  # out and back in: the field's first part again
            self.tab_to(name)
        raise AssertionError(f"could not type {day} into the date field")

    def enter(self) -> None:
        self.page.keyboard.press("Enter")

    def space(self) -> None:
        self.page.keyboard.press("Space")


@pytest.fixture
def keyboard_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900}, bypass_csp=True)
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def label(msgid: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(ja(msgid))}\s*[:：]?\s*\*?\s*$")


def yen(amount: int) -> str:
    return f"{amount:,}円"


@pytest.mark.usefixtures("line_logs")
def test_consumer_pays_with_the_keyboard_alone(keyboard_page: Any, axe_path: Any, live_server: Any) -> None:
    page, base = keyboard_page, live_server.url
    keys = Keyboard(page, axe_path)
    biller = biller_with_sandbox_bank(legal_name="キーボード電力株式会社", short_name="キーボード電力")
    customer = factories.make_customer(biller, name="山田 太郎", email="taro@example.jp")
    factories.make_portal_account(
        biller, customer, email="taro@example.jp", password=PASSWORD, name="山田 太郎"
    )
    today = timezone.localdate()
    bill = factories.make_invoice(
        biller=biller,
        customer=customer,
        number="KEY-2026-0001",
        issue_date=today - datetime.timedelta(days=5),
        due_date=today + datetime.timedelta(days=25),
        lines=factories.MIXED_RATE_LINES,
    )
    my = f"{base}/b/{biller.slug}/my/"

    page.goto(my + "login/")
    keys.type_into(label("E-mail"), "taro@example.jp")
    keys.type_into(label("Password"), PASSWORD)
    keys.enter()
    expect(page).to_have_url(re.compile(re.escape(my + "invoices/")))
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Invoices"))

    keys.tab_to(bill.number, tag="a")
    keys.enter()
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Invoice %(number)s", number=bill.number))

    keys.tab_to(ja("Pay by 情報リンク"))
    keys.enter()
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Pay with your bank's internet banking"))

    keys.tab_to(re.compile(rf"\b{settings.PAYEASY_SANDBOX_BANK_CODE}\b"))  # the link names the bank's code
    keys.enter()  # the hand-off page posts itself to the bank
    expect(page).to_have_url(f"{base}/sandbox-bank/entry/")
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Log in to pay this bill"))
    keys.type_into(label("Login ID"), DEMO_LOGIN)
    keys.type_into(label("Password"), BANK_PASSWORD)
    keys.enter()
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Confirm the payment"))

    keys.tab_to(ja("Pay %(amount)s", amount=yen(bill.total)))
    keys.space()  # a button answers Space as well as Enter
    expect(page).to_have_url(f"{my}invoices/{bill.pk}/?returned=1")
    expect_paid(page, timeout=5000)
    bill.refresh_from_db()
    assert bill.status == Invoice.Status.PAID

    # back to the list (Shift+Tab, back up the page)
    keys.tab_to(ja("Invoices"), backwards=True, tag="a")
    keys.enter()
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Invoices"))
    expect(page).to_have_url(re.compile(re.escape(my + "invoices/")))


def test_admin_publishes_an_invoice_with_the_keyboard_alone(
    keyboard_page: Any, axe_path: Any, live_server: Any, mailoutbox: list
) -> None:
    page, base = keyboard_page, live_server.url
    keys = Keyboard(page, axe_path)
    biller = factories.make_biller(
        legal_name="キーボード電気株式会社", invoice_number_pattern="{yyyy}-{mm}-{seq:06}"
    )
    email = "keiri@keyboard-denki.example"
    user = factories.make_user(email, password=PASSWORD, name="経理 花子")
    Membership.objects.create(biller=biller, user=user, role=Membership.Role.ADMIN)
    factories.make_customer(biller, code="D-1", name="田中 一郎", email="ichiro@example.jp")
    console = f"{base}/b/{biller.slug}/console/"
    today = timezone.localdate()

    page.goto(base + "/accounts/login/")
    keys.type_into(label("E-mail"), email)
    keys.type_into(label("Password"), PASSWORD)
    keys.enter()
    page.wait_for_url(re.compile(r"/accounts/login/code/"))
    keys.tab_to(re.compile(r"."), tag="input")  # the code: the page's first field
    page.keyboard.type(factories.totp_code(email))
    keys.enter()
    expect(page).to_have_url(console)

    keys.tab_to(re.compile(rf"^{re.escape(ja('Invoices'))}$"))
    keys.enter()
    expect(page.get_by_role("heading", name=ja("Invoices"), level=1)).to_be_visible()
    keys.tab_to(ja("New invoice"))
    keys.enter()
    expect(page.get_by_role("heading", name=ja("New invoice"), level=1)).to_be_visible()

    keys.type_into(label("Customer code"), "D-1")
    keys.tab_to(label("Invoice number"))  # left empty: numbered automatically
    keys.tab_to(label("Due date"))
    due = today + datetime.timedelta(days=30)
    keys.type_date(label("Due date"), due)
    expect(page.get_by_label(label("Due date"))).to_have_value(due.isoformat())
    keys.type_into(label("Description shown to payers (料金名)"), "12月分電気料金")
    keys.type_into(label("Item"), "電力量料金 300kWh")
    keys.type_into(label("Quantity"), "300")
    keys.type_into(label("Unit price (yen)"), "31")
    keys.tab_to(ja("Save as draft"))
    keys.enter()

    number = f"{today:%Y}-{today:%m}-000001"
    expect(page.get_by_role("heading", level=1)).to_contain_text(number)
    invoice = Invoice.objects.get(biller=biller)
    assert (invoice.number, invoice.status, invoice.total) == (number, Invoice.Status.DRAFT, 10230)

    keys.tab_to(ja("Publish"), tag="button")
    keys.enter()
    expect(page.get_by_role("status")).to_contain_text(number)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PUBLISHED
    assert [m.to for m in mailoutbox] == [["ichiro@example.jp"]]
