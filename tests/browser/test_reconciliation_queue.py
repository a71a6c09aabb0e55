"""The work queue through the browser, at 1280 px and on a 390 px phone, from the keyboard.

A customer pays one bill twice through the line (the applier records a double payment); the run's
finding of the second payment is in the biller's queue. The admin opens the queue, sees the finding
with its age, opens it, and refunds the money to the payer's account — bank from the directory, branch,
account number, holder name typed in full-width kana — with the keyboard alone; the finding leaves the
open queue and the refund waits for the next 全銀 file.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from billing.models import Membership
from payeasy.models import LedgerEntry
from payeasy.services.payments import notices_apply
from reconciliation.models import Finding, Refund
from tests import factories
from tests.browser.conftest import pass_second_factor
from tests.payeasy import line_helpers as h

EMAIL = "keiri@queue-denki.jp"
PASSWORD = "correct horse battery"


def log_in(page: Any, base: str) -> None:
    page.goto(base + "/accounts/login/")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    pass_second_factor(page, EMAIL)


def no_sideways_scroll(page: Any, width: int) -> None:
    scroll = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll}px wide on a {width}px screen"


def focused_name(page: Any) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.name"))


@pytest.mark.parametrize("browser_locale", ["en-US"])
@pytest.mark.parametrize("width", [1280, 390])
def test_admin_refunds_a_double_payment_from_the_queue(
    browser: Any, browser_locale: str, live_server: Any, screenshot: Any, width: int
) -> None:
    base = live_server.url
    biller = h.open_line_biller(legal_name="キュー電気株式会社")
    user = factories.make_user(EMAIL, password=PASSWORD, name="経理 花子")
    Membership.objects.create(biller=biller, user=user, role=Membership.Role.ADMIN)
    invoice = h.published_invoice(biller, price=3000)
    h.send(h.payment(biller, invoice, channel="01"), h.payment(biller, invoice, channel="01"))
    notices_apply()
    entry = LedgerEntry.objects.get(outcome="double_payment")
    finding = Finding.objects.create(
        biller=biller,
        key=f"double:{entry.pk}",
        kind=Finding.Kind.DOUBLE_PAYMENT,
        processing_date=datetime.date(2026, 11, 26),
        amount=entry.amount,
        bank_code="0001",
        invoice=invoice,
        entry_id=entry.pk,
        links={"entries": [entry.pk]},
        facts={"payments": 2},
    )
    context = browser.new_context(locale=browser_locale, viewport={"width": width, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        log_in(page, base)
        page.goto(f"{base}/b/{biller.slug}/console/findings/")

        # -- the queue: the finding, its age bucket, the table scrolls inside its own box ----------------
        expect(page.get_by_role("heading", name="Findings to resolve", level=1)).to_be_visible()
        ages = page.get_by_role("navigation", name="Findings by age")
        expect(ages.get_by_role("link", name=re.compile(r"^1 0–2 days$"))).to_be_visible()
        table = page.get_by_role("table")
        expect(table.locator("caption")).to_have_text("1 finding")
        row = table.get_by_role("row").filter(has_text="Double payment")
        expect(row).to_contain_text("3,300円")
        expect(row.get_by_role("link", name=invoice.number)).to_be_visible()
        no_sideways_scroll(page, width)
        screenshot(page, f"reconciliation-queue-{width}")

        # -- open it from the keyboard ---------------------------------------------------------------
        link = row.get_by_role("link", name="Double payment (二重支払)")
        link.focus()
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(rf"/findings/{finding.pk}/$"))
        expect(page.get_by_role("heading", level=1)).to_contain_text("Double payment")
        expect(page.get_by_role("heading", name="Refund by bank transfer", level=3)).to_be_visible()
        no_sideways_scroll(page, width)

        # -- refund it: every field reached with Tab, the holder typed in full-width kana ---------------
        page.get_by_label("Bank code").focus()
        page.keyboard.type("0001")
        page.keyboard.press("Escape")  # close the directory's suggestions
        page.keyboard.press("Tab")
        assert focused_name(page) == "refund-branch_code"
        page.keyboard.type("001")
        page.keyboard.press("Tab")
        assert focused_name(page) == "refund-account_type"
        page.keyboard.press("Tab")
        assert focused_name(page) == "refund-account_number"
        page.keyboard.type("765")
        page.keyboard.press("Tab")
        assert focused_name(page) == "refund-holder_kana"
        page.keyboard.insert_text("ヤマダ　ハナコ")
        page.keyboard.press("Tab")
        assert focused_name(page) == "refund-transfer_date"  # the next business day, already filled in
        button = page.get_by_role("button", name="Request the refund")
        button.focus()
        page.keyboard.press("Enter")

        # -- back in the queue: the message, and the finding has left the open queue --------------------
        expect(page).to_have_url(re.compile(r"/console/findings/$"))
        expect(page.get_by_role("status")).to_contain_text("A refund of ¥3,300 to ﾔﾏﾀﾞ ﾊﾅｺ")
        expect(page.get_by_role("table")).to_contain_text("No finding matches")
        expect(ages.get_by_role("link", name=re.compile(r"^0 0–2 days$"))).to_be_visible()
        no_sideways_scroll(page, width)
        refund = Refund.objects.get()
        assert (refund.finding_id, refund.amount, refund.account_number, refund.holder_kana) == (
            finding.pk,
            3300,
            "0000765",
            "ﾔﾏﾀﾞ ﾊﾅｺ",
        )
        finding.refresh_from_db()
        assert finding.state == Finding.State.REFUNDED
    finally:
        context.close()
