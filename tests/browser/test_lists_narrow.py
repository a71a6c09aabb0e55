"""Lists at phone width (390 px), through the browser.

At narrow widths (≤ 40rem) every list table turns each row into a card (static/css/lists.css): the
primary cell on top, then label: value pairs from the cells' ``data-label``. This checks the three
lists that broke before: the customer portal's invoices (料金名 wrapped one character a line, the paid
badge was cut off), the tenant console's invoices and the iDC staff's billers (both scrolled sideways).
On each: the page never scrolls sideways, the 料金名/title cell is wide and a few lines high at most,
and the status badge is wholly inside the viewport. The table keeps its table semantics (explicit
roles), and the bulk-action checkbox still ticks. Set SAVE_SCREENSHOTS=1 to refresh docs/screenshots/.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from django.templatetags.static import static
from django.utils import timezone, translation
from playwright.sync_api import expect

from billing.models import Biller, Invoice, Membership
from tests import factories
from tests.browser.conftest import ROOT, pass_second_factor

PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}
LISTS_CSS = ROOT / "static" / "css" / "lists.css"
DESCRIPTION = "11月分 電気料金（従量電灯Ｂ・30Ａ）"
LEGAL_NAME = "株式会社サンプル電力ホールディングス西日本サービス"


def ja(msgid: str) -> str:
    with translation.override("ja"):
        return translation.gettext(msgid)


def field(msgid: str) -> re.Pattern[str]:
    """A form field's label in Japanese, with or without Django's label suffix."""
    return re.compile(rf"^{re.escape(ja(msgid))}\s*[:：]?$")


def console_log_in(page: Any, base: str, email: str) -> None:
    page.goto(base + "/accounts/login/")
    main = page.get_by_role("main")
    main.get_by_label(field("E-mail")).fill(email)
    main.get_by_label(field("Password")).fill(PASSWORD)
    main.get_by_role("button", name=ja("Log in")).click()
    pass_second_factor(page, email)


def portal_log_in(page: Any, base: str, biller: Biller, email: str) -> None:
    page.goto(f"{base}/b/{biller.slug}/my/login/")
    main = page.get_by_role("main")
    main.get_by_label(field("E-mail")).fill(email)
    main.get_by_label(field("Password")).fill(PASSWORD)
    main.get_by_role("button", name=ja("Log in")).click()
    expect(page).to_have_url(re.compile(re.escape(f"{base}/b/{biller.slug}/my/invoices/")))


def open_narrow(page: Any, url: str) -> None:
    """Open ``url`` at 390 px, with static/css/lists.css on the page.

    FALLBACK until templates/base.html links lists.css: the test adds the file itself when the page has
    no <link> to it. Remove this once base.html includes it."""
    page.set_viewport_size(PHONE)
    page.goto(url)
    if page.locator("link[href*=lists]").count() == 0:
        assert LISTS_CSS.exists()
        # a <link> to the live server's copy: the Content-Security-Policy refuses an inline <style>
        page.add_style_tag(url=static("css/lists.css"))
    # the card layout is in force (the media query of lists.css matches at 390 px)
    expect(page.locator("table.list tbody tr").first).to_have_css("display", "grid")


def no_sideways_scroll(page: Any) -> None:
    sizes = page.evaluate(
        "({doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,"
        " view: window.innerWidth})"
    )
    assert sizes["view"] == PHONE["width"], sizes
    assert sizes["doc"] <= PHONE["width"] and sizes["body"] <= PHONE["width"], sizes


def readable_title(cell: Any) -> None:
    """The 料金名/title cell: wider than 150 px and fewer than 4 lines high."""
    box = cell.bounding_box()
    line_height = cell.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)")
    assert box is not None and box["width"] > 150, box
    assert box["height"] < 4 * line_height + 24, (box, line_height)  # + the label line and padding
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box


def inside_viewport(badge: Any) -> None:
    expect(badge).to_be_visible()
    box = badge.bounding_box()
    assert box is not None, "the badge is not rendered"
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert box["width"] > 0 and box["height"] > 0, box


def keeps_table_semantics(page: Any, table: Any, column: str) -> None:
    """Screen readers still get a table: the roles are explicit on the elements the cards re-display,
    and the column headers are still in the accessibility tree (visually hidden, not display: none)."""
    expect(table).to_have_attribute("role", "table")
    expect(table.get_by_role("columnheader", name=column, exact=True)).to_have_count(1)
    assert table.locator("tbody tr").first.get_attribute("role") == "row"
    roles = table.locator("tbody tr").first.evaluate(
        "tr => [...tr.children].map(c => c.getAttribute('role'))"
    )
    assert roles and set(roles) <= {"cell", "rowheader"}, roles


def test_portal_invoice_list_at_phone_width(page: Any, live_server: Any, screenshot: Any) -> None:
    base = live_server.url
    biller = factories.make_biller(legal_name="サンプル電力株式会社")
    customer = factories.make_customer(biller, name="山田 太郎")
    factories.make_portal_account(
        biller, customer, email="taro@example.jp", password=PASSWORD, name="山田 太郎"
    )
    today = timezone.localdate()
    paid = factories.make_invoice(
        biller=biller,
        customer=customer,
        number="INV-2026-1101",
        description=DESCRIPTION,
        issue_date=today - datetime.timedelta(days=30),
        due_date=today + datetime.timedelta(days=1),
        amount=123456,
    )
    factories.make_payment(paid)
    factories.make_invoice(
        biller=biller,
        customer=customer,
        number="INV-2026-1201",
        description="12月分電気料金",
        issue_date=today,
        due_date=today + datetime.timedelta(days=30),
    )

    portal_log_in(page, base, biller, "taro@example.jp")
    open_narrow(page, f"{base}/b/{biller.slug}/my/invoices/?tab=all")
    no_sideways_scroll(page)
    table = page.locator("table.list")
    keeps_table_semantics(page, table, ja("Description"))
    # the caption still names the table for a screen reader
    caption = table.locator("caption").inner_text().strip()
    expect(page.get_by_role("table", name=caption, exact=True)).to_have_count(1)
    row = table.get_by_role("row").filter(has_text="INV-2026-1101")
    readable_title(row.get_by_role("cell", name=re.compile(re.escape(DESCRIPTION))))
    inside_viewport(row.locator(".status-paid"))
    # the primary cell (the invoice's link) is the card's first line, above the 料金名
    link = row.get_by_role("link", name="INV-2026-1101")
    assert link.bounding_box()["y"] < row.get_by_text(DESCRIPTION).bounding_box()["y"]
    # the label of a cell comes from its data-label
    amount = row.locator("td[data-label]").filter(has_text="135,801")
    assert amount.evaluate("td => getComputedStyle(td, '::before').content").startswith(f'"{ja("Amount")}"')
    inside_viewport(amount)
    # the download checkbox still works
    box = row.get_by_role("checkbox")
    box.check()
    expect(box).to_be_checked()
    inside_viewport(box)
    screenshot(page, "lists-portal-invoices-390")


def test_console_invoice_list_at_phone_width(page: Any, live_server: Any, screenshot: Any) -> None:
    base = live_server.url
    biller = factories.make_biller(legal_name="サンプル電力株式会社")
    admin = factories.make_user("keiri@sample-denryoku.jp", password=PASSWORD, name="経理 花子")
    Membership.objects.create(biller=biller, user=admin, role=Membership.Role.ADMIN)
    customer = factories.make_customer(biller, name="株式会社サンプル商事 本社経理部", code="C-000123")
    paid = factories.make_invoice(
        biller=biller, customer=customer, number="INV-2026-0001", description=DESCRIPTION, amount=98765
    )
    factories.make_payment(paid)
    draft = factories.make_invoice(
        biller=biller,
        customer=customer,
        number="INV-2026-0002",
        description="12月分電気料金",
        published=False,
    )
    assert draft.status == Invoice.Status.DRAFT

    console_log_in(page, base, "keiri@sample-denryoku.jp")
    open_narrow(page, f"{base}/b/{biller.slug}/console/invoices/")
    no_sideways_scroll(page)
    table = page.locator("table.list")
    keeps_table_semantics(page, table, ja("Description"))
    row = table.get_by_role("row").filter(has_text="INV-2026-0001")
    readable_title(row.get_by_role("cell", name=re.compile(re.escape(DESCRIPTION))))
    inside_viewport(row.locator(".status-paid"))
    inside_viewport(row.get_by_role("link", name="INV-2026-0001"))
    # bulk actions: the draft's checkbox ticks and publishing it works from the phone
    draft_row = table.get_by_role("row").filter(has_text="INV-2026-0002")
    box = draft_row.get_by_role("checkbox")
    inside_viewport(box)
    box.check()
    screenshot(page, "lists-console-invoices-390")
    page.get_by_role("button", name=ja("Publish selected")).click()
    expect(page.get_by_role("status")).to_be_visible()
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.PUBLISHED
    open_narrow(page, page.url)
    no_sideways_scroll(page)


def test_staff_biller_list_at_phone_width(page: Any, live_server: Any, screenshot: Any) -> None:
    base = live_server.url
    factories.make_user("night@idc.test", password=PASSWORD, name="夜勤 担当", is_idc_staff=True)
    factories.make_biller(legal_name=LEGAL_NAME, name_kana="ｻﾝﾌﾟﾙﾃﾞﾝﾘｮｸﾎｰﾙﾃﾞｨﾝｸﾞｽ(ｶ")
    factories.make_biller(legal_name="テスト水道株式会社", status=Biller.Status.SUSPENDED)

    console_log_in(page, base, "night@idc.test")
    expect(page).to_have_url(base + "/staff/")
    open_narrow(page, base + "/staff/")
    no_sideways_scroll(page)
    table = page.locator("table.list")
    keeps_table_semantics(page, table, ja("Legal name"))
    row = table.get_by_role("row").filter(has_text=LEGAL_NAME)
    title = row.get_by_role("cell", name=LEGAL_NAME)
    readable_title(title)
    expect(title.get_by_role("link", name=LEGAL_NAME)).to_be_visible()
    inside_viewport(row.locator(".status-active"))
    inside_viewport(
        table.get_by_role("row").filter(has_text="テスト水道株式会社").locator(".status-suspended")
    )
    screenshot(page, "lists-staff-billers-390")


# --- every list page -----------------------------------------------------------------------------------


def cards_fit(page: Any, where: str) -> int:
    """Every card (row) of every table.list on the page lies within the viewport, and so does every status
    badge in it; returns how many rows were checked."""
    out = page.evaluate(
        """() => {
          const view = window.innerWidth, bad = [];
          let rows = 0;
          for (const tr of document.querySelectorAll("table.list > tbody > tr, table.list > tfoot > tr")) {
            rows += 1;
            for (const el of [tr, ...tr.querySelectorAll(".status, .badge, a, input, button")]) {
              const r = el.getBoundingClientRect();
              if (r.width && (r.left < 0 || r.right > view + 0.5)) bad.push(el.outerHTML.slice(0, 120));
            }
          }
          return {rows, bad};
        }"""
    )
    assert not out["bad"], (where, out["bad"])
    return int(out["rows"])


def seed_console(biller: Biller) -> Any:
    """A customer with a bill paid on the line, an unpaid one, a payment request, an API key, a webhook
    endpoint, a finding: a row on most list pages of the console."""
    from billing import services as billing_services
    from payeasy.models import WebhookEventType
    from payeasy.services.payments import notices_apply
    from payeasy.services.webhook_endpoints import webhook_endpoint_create
    from reconciliation.models import Finding
    from tests.payeasy import line_helpers as h

    customer = factories.make_customer(biller, name="株式会社サンプル商事 本社経理部", code="C-000123")
    paid = factories.make_invoice(
        biller=biller, customer=customer, number="INV-2026-0001", description=DESCRIPTION
    )
    h.send(h.payment(biller, paid))
    notices_apply()
    factories.make_invoice(biller=biller, customer=customer, number="INV-2026-0002")
    factories.make_invoice(biller=biller, kind=Invoice.Kind.PAYMENT_REQUEST, customer=customer)
    billing_services.api_key_create(actor=None, biller=biller, name="経理システム連携用キー")
    webhook_endpoint_create(
        actor=None,
        biller=biller,
        url="https://hooks.example.com/payeasy/very/long/path/for/the/accounting-system",
        description="経理システム",
        event_types=list(WebhookEventType.values),
    )
    Finding.objects.create(
        biller=biller,
        key="double:1",
        kind=Finding.Kind.DOUBLE_PAYMENT,
        processing_date=timezone.localdate(),
        amount=110000,
        found_at=timezone.now() - datetime.timedelta(days=3),
    )
    return customer


CONSOLE_LISTS = [
    "invoice_list",
    "customer_list",
    "payment_request_list",
    "members",
    "api_key_list",
    "webhook_list",
    "webhook_delivery_list",
    "payment_list",
    "finding_list",
    "refund_list",
    "deposit_list",
    "deposit_lags",
    "report_daily",
    "home",
]
STAFF_LISTS = [
    "staff:biller_list",
    "staff:handoff_list",
    "staff:teller_files",
    "staff_reconciliation:summary",
]


def test_every_list_page_fits_a_phone(page: Any, browser: Any, live_server: Any) -> None:
    """The console's, the staff console's and the portal's list pages at 390 px: no sideways scroll, every
    card and badge on screen."""
    from django.urls import reverse

    from billing.tenancy import tenant_reverse
    from tests.payeasy import line_helpers as h

    base = live_server.url
    biller = h.open_line_biller(legal_name=LEGAL_NAME)
    admin = factories.make_user("keiri@sample-denryoku.jp", password=PASSWORD, name="経理 花子")
    Membership.objects.create(biller=biller, user=admin, role=Membership.Role.ADMIN)
    factories.make_user("night@idc.test", password=PASSWORD, name="夜勤 担当", is_idc_staff=True)
    customer = seed_console(biller)
    factories.make_portal_account(biller, customer, email="keiri@sample-shoji.jp", password=PASSWORD)

    console_log_in(page, base, "keiri@sample-denryoku.jp")
    checked = 0
    for name in CONSOLE_LISTS:
        url = base + tenant_reverse(biller, f"console:{name}")
        if name == "report_daily":
            url += f"?date={h.DAY[:4]}-{h.DAY[4:6]}-{h.DAY[6:]}"  # the line's open day: the payment is in it
        page.set_viewport_size(PHONE)
        page.goto(url)
        if page.locator("link[href*=lists]").count() == 0:  # FALLBACK until base.html links lists.css
            page.add_style_tag(url=static("css/lists.css"))
        no_sideways_scroll(page)
        checked += cards_fit(page, name)
    assert checked >= 10, checked  # the seeded rows were there to check

    staff = browser.new_context(locale="ja-JP", viewport=PHONE)
    try:
        staff_page = staff.new_page()
        console_log_in(staff_page, base, "night@idc.test")
        expect(staff_page).to_have_url(base + "/staff/")
        for name in [*STAFF_LISTS, "staff:message_search"]:
            staff_page.goto(base + reverse(name))
            if staff_page.locator("link[href*=lists]").count() == 0:  # FALLBACK, as above
                staff_page.add_style_tag(url=static("css/lists.css"))
            no_sideways_scroll(staff_page)
            cards_fit(staff_page, name)
    finally:
        staff.close()

    portal = browser.new_context(locale="ja-JP", viewport=PHONE)
    try:
        portal_page = portal.new_page()
        portal_log_in(portal_page, base, biller, "keiri@sample-shoji.jp")
        for path in ("invoices/?tab=all", "payments/"):
            portal_page.goto(f"{base}/b/{biller.slug}/my/{path}")
            if portal_page.locator("link[href*=lists]").count() == 0:  # FALLBACK, as above
                portal_page.add_style_tag(url=static("css/lists.css"))
            no_sideways_scroll(portal_page)
            assert cards_fit(portal_page, path) >= 1, path
    finally:
        portal.close()
