"""Every page, through axe-core: the customer portal, the tenant console (its reconciliation pages too), the
iDC staff console, the sandbox bank, the pay-later page and the login pages.

The pages are listed below (``PAGES``) with the objects they show; ``test_every_get_page_is_listed``
enumerates the URL patterns of config.urls and config.urls_tenant and fails when a page that answers GET
is neither listed here nor named in ``NOT_PAGES`` (downloads, redirects, event streams): a new page must
be added. The data is the demo's (``seed_demo`` into the test database) plus what the demo lacks (a
payment over the line paid twice, a finding, a deposit statement, a teller file, an import, a webhook and
its delivery, invitations, a password-reset link).

Each area is one browser context, logged in once, in Japanese. Each page is loaded once, checked at
1280 px, then the same page is narrowed to 390 px and checked again: no serious or critical WCAG 2 A/AA
violation (axe) at either width, and nothing wider than the screen at 390 px. Every problem of an area is
collected and reported together. With SAVE_SCREENSHOTS=1 each page is also saved, at both widths, in
Japanese and (after the walk, with the language cookie) in English, to
docs/screenshots/<area>-<page>-<width>[-en].png.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from playwright.sync_api import expect

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

WIDTHS = (1280, 390)
DEMO_PASSWORD = "demo-pass-2026"  # the published demo login (payeasy.demo)
STAFF = "staff@idc.example"
ADMIN = "admin@toto-denryoku.example"
CONSUMER = "taro@example.jp"
APPROVER = "approver@toto-denryoku.corp.example"
SETUP_ADMIN = "new-admin@toto-denryoku.example"
TWO_BILLERS = "auditor@idc-partner.example"
DEPOSITS_CSV = (
    "入金日,金融機関コード,金額,摘要\r\n"
    '2026-11-30,0001,"1,234,500",ﾍﾟｲｼﾞｰ ｼｭｳﾉｳｷﾝ\r\n'
    "2026/12/01,0009,486200,三井住友 収納金\r\n"
)


# --- the data ---------------------------------------------------------------------------------------------


@dataclass
class Data:
    """The objects the pages show, by name (``Data.ids``), and the demo's first biller."""

    slug: str
    ids: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.ids[name]


def build_data() -> Data:
    """The demo data set, and for each page with an object of its own an object the demo lacks."""
    from billing import totp
    from billing.models import Biller, Customer, CustomerAccount, ImportJob, Invoice, Membership, User
    from billing.models import customer_login as portal_login
    from billing.paylater import token_for
    from billing.portal.services.invitations import customer_invitation_create
    from billing.services.invitations import invitation_create
    from payeasy import codec
    from payeasy.demo import seed_demo
    from payeasy.models import HandoffEndpoint, LedgerEntry, Message, TellerFile
    from payeasy.models.webhooks import WebhookDelivery, WebhookEventType
    from payeasy.services.payments import notices_apply
    from payeasy.services.teller import teller_file_import
    from payeasy.services.webhook_endpoints import webhook_endpoint_create
    from reconciliation.models import Finding
    from reconciliation.services.deposits import deposit_statement_import
    from tests import factories
    from tests.payeasy import line_helpers as h

    toto, midori = seed_demo()
    staff = User.objects.get(email=STAFF)
    ids: dict[str, Any] = {}
    taro = Customer.objects.get(biller=toto, code="D-000101")
    hanako = Customer.objects.get(biller=toto, code="D-000102")
    ids["customer"] = taro.pk
    ids["invoice"] = Invoice.objects.get(biller=toto, number="2026-11-000101").pk  # published, unpaid
    ids["draft"] = Invoice.objects.get(biller=toto, number="2026-12-000101").pk
    ids["corporate_invoice"] = Invoice.objects.get(biller=toto, number="2026-11-900001").pk
    order = Invoice.objects.filter(biller=toto, kind=Invoice.Kind.PAYMENT_REQUEST).order_by("pk").first()
    assert order is not None, "the demo has a pay-later order"
    ids["payment_request"] = order.pk
    ids["paylater_token"] = token_for(order)

    # a bill of taro's paid twice over the line: a payment, a receipt, a double payment, line messages
    paid = factories.make_invoice(
        biller=toto, customer=taro, number="2026-10-000101", amount=2400, description="10月分電気料金"
    )
    h.send(h.open_day(toto))
    h.send(h.payment(toto, paid), h.payment(toto, paid))
    notices_apply()
    entry = LedgerEntry.objects.filter(invoice=paid, outcome="paid").get()
    double = LedgerEntry.objects.filter(invoice=paid, outcome="double_payment").get()
    ids["entry"] = entry.pk
    ids["message"] = Message.objects.filter(biller=toto, message_type="1200").order_by("pk").first().pk
    from billing.models import Receipt

    receipt = Receipt.objects.filter(payment__invoice=paid).first()
    assert receipt is not None, "a paid bill has a receipt"
    ids["receipt"] = receipt.pk
    ids["finding"] = Finding.objects.create(
        biller=toto,
        key=f"double:{double.pk}",
        kind=Finding.Kind.DOUBLE_PAYMENT,
        processing_date=datetime.date(2026, 11, 26),
        amount=double.amount,
        bank_code="0001",
        invoice=paid,
        entry_id=double.pk,
        links={"entries": [double.pk]},
        facts={"payments": 2},
    ).pk

    # hanako's bill paid at a bank's teller: a teller file
    teller_bill = Invoice.objects.get(biller=toto, number="2026-11-000102")
    header = codec.BatchHeader(toto.biller_code, "ﾄｳﾄﾃﾞﾝﾘﾖｸ", "20261126", "0001", "ﾐｽﾞﾎｷﾞﾝｺｳ")
    record = codec.BatchData(
        customer_number=teller_bill.customer_number,
        confirmation_number=teller_bill.confirmation_number,
        amount=teller_bill.total,
        branch_code="101",
        paid_date="20261126",
        paid_time="110000",
        serial="00000050",
        payer_name_kana="ｻﾄｳ ﾊﾅｺ",
        cancel=0,
    )
    batch = codec.make_batch_file(header, [record], serial=1, crlf=True)
    assert teller_file_import(batch.name, codec.build_batch_file(batch)).accepted
    notices_apply()
    ids["teller_file"] = TellerFile.objects.order_by("pk").first().pk

    ids["statement"] = deposit_statement_import(
        actor=None, biller=toto, name="入金明細.csv", data=DEPOSITS_CSV.encode()
    ).pk
    ids["import"] = ImportJob.objects.create(
        biller=toto,
        status=ImportJob.Status.FAILED,
        file_path="/nonexistent",
        file_name="請求データ.csv",
        file_sha256="0" * 64,
        error_count=1,
        errors=[{"row": 2, "column": "due_date", "message": "支払期限が発行日より前です"}],
    ).pk
    endpoint, _secret = webhook_endpoint_create(
        actor=None,
        biller=toto,
        url="https://hooks.example.com/payeasy",
        description="経理システム",
        event_types=list(WebhookEventType.values),
    )
    ids["webhook"] = endpoint.pk
    ids["delivery"] = WebhookDelivery.objects.create(
        endpoint=endpoint,
        biller=toto,
        event_id=uuid.uuid4(),
        event_type=WebhookEventType.values[0],
        payload='{"type": "invoice.paid"}',
        status=WebhookDelivery.Status.FAILED,
        attempts=3,
        give_up_at=timezone.now() + datetime.timedelta(days=1),
        last_response_status=500,
        last_response_body="Internal Server Error",
    ).pk
    ids["handoff"] = HandoffEndpoint.objects.get(bank_code=settings.PAYEASY_SANDBOX_BANK_CODE).pk
    ids["biller"] = toto.pk

    # links from e-mails: a tenant admin's invitation, a portal invitation, a password reset
    ids["admin_invitation"] = invitation_create(
        actor=staff, biller=toto, email="keiri@toto-denryoku.example", role=Membership.Role.ADMIN
    )[1]
    ids["portal_invitation"] = customer_invitation_create(
        actor=None, biller=toto, customer=hanako, email="family@example.jp", send=False
    )[1]
    from django.contrib.auth.tokens import default_token_generator

    consumer = User.objects.get(login=portal_login(toto, CONSUMER))
    ids["reset_uid"] = urlsafe_base64_encode(force_bytes(consumer.pk))
    ids["reset_token"] = default_token_generator.make_token(consumer)

    # the corporate approver logs in with a code (the portal's second step)
    approver = CustomerAccount.objects.get(user__login=portal_login(toto, APPROVER))
    CustomerAccount.objects.filter(pk=approver.pk).update(
        totp_secret=totp.new_secret(), totp_enabled_at=timezone.now(), totp_last_step=None
    )
    # an administrator who has not set up two-step verification yet, and an operator of both billers
    setup_admin = factories.make_user(SETUP_ADMIN, password=DEMO_PASSWORD, name="新任 管理者", totp=False)
    Membership.objects.create(biller=toto, user=setup_admin, role=Membership.Role.ADMIN)
    both = factories.make_user(TWO_BILLERS, password=DEMO_PASSWORD, name="監査 一郎", totp=False)
    for biller in (toto, midori):
        Membership.objects.create(biller=biller, user=both, role=Membership.Role.OPERATOR)
    assert Biller.objects.count() == 2
    return Data(slug=toto.slug, ids=ids)


# --- the pages --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    area: str  # who looks: public, portal, corporate, console, staff
    slug: str  # the screenshot's name: <area>-<slug>-<width>[-en].png
    url_name: str  # the URL pattern's name (namespace:name), for test_every_get_page_is_listed
    path: Callable[[Data], str]
    final: str = ""  # a regular expression the final URL matches when the page redirects on GET
    how: str = "goto"  # goto, or flow: checked on the way (a login's second step, the sandbox bank)


def console(p: str) -> Callable[[Data], str]:
    return lambda d: f"/b/{d.slug}/console/{p.format(**d.ids)}"


def my(p: str) -> Callable[[Data], str]:
    return lambda d: f"/b/{d.slug}/my/{p.format(**d.ids)}"


def root(p: str) -> Callable[[Data], str]:
    return lambda d: "/" + p.format(**d.ids)


PAGES: list[Page] = [
    # -- without an account: the login pages, links from e-mails, the pay-later page, the sandbox bank --
    Page("public", "console-login", "login", root("accounts/login/")),
    Page("public", "portal-login", "portal:login", my("login/")),
    Page("public", "portal-register", "portal:register", my("register/")),
    Page("public", "portal-password-reset", "portal:password_reset", my("password-reset/")),
    Page("public", "portal-password-reset-sent", "portal:password_reset_done", my("password-reset/sent/")),
    Page(
        "public",
        "portal-password-reset-confirm",
        "portal:password_reset_confirm",
        my("reset/{reset_uid}/{reset_token}/"),
        final=r"/my/reset/[^/]+/set-password/$",
    ),
    Page("public", "portal-password-reset-done", "portal:password_reset_complete", my("reset/done/")),
    Page("public", "portal-invitation", "portal:invitation_accept", my("invitations/{portal_invitation}/")),
    Page(
        "public", "console-invitation", "invitation_accept", root("accounts/invitations/{admin_invitation}/")
    ),
    Page("public", "paylater", "paylater:page", lambda d: f"/b/{d.slug}/pay/{d['paylater_token']}/"),
    Page("public", "sandbox-bank", "sandbox_bank:home", root("sandbox-bank/")),
    Page("public", "sandbox-atm", "sandbox_bank:atm", root("sandbox-bank/atm/")),
    # a new administrator's first login: the second step to set up
    Page("setup", "two-step-setup", "two_factor_setup", root("accounts/two-step/setup/"), how="flow"),
    # a person in two billers: the choice of billers
    Page("choose", "choose-biller", "home", root("")),
    # -- the customer portal: a consumer ---------------------------------------------------------------
    Page("portal", "home", "portal:home", my(""), final=r"/my/(invoices/)?$"),
    Page("portal", "invoices", "portal:invoice_list", my("invoices/")),
    Page("portal", "invoice", "portal:invoice_detail", my("invoices/{invoice}/")),
    Page("portal", "bank-chooser", "portal:pay", my("invoices/{invoice}/pay/")),
    Page("portal", "handoff", "portal:pay_handoff", my("invoices/{invoice}/pay/{sandbox_bank}/"), how="flow"),
    Page("portal", "sandbox-bank-login", "sandbox_bank:entry", root("sandbox-bank/entry/"), how="flow"),
    Page("portal", "sandbox-bank-confirm", "sandbox_bank:login", root("sandbox-bank/login/"), how="flow"),
    Page("portal", "payments", "portal:payment_list", my("payments/")),
    Page("portal", "receipts", "portal:receipt_list", my("receipts/")),
    Page("portal", "receipt", "portal:receipt_detail", my("receipts/{receipt}/")),
    Page("portal", "balance", "portal:balance", my("balance/")),
    Page("portal", "security", "portal:security", my("security/")),
    # -- the customer portal: a corporate customer's approver (who logs in with a code) ---------------
    Page("corporate", "login-code", "portal:login_totp", my("login/code/"), how="flow"),
    Page("corporate", "approvals", "portal:approval_list", my("approvals/")),
    Page("corporate", "invoice", "portal:invoice_detail", my("invoices/{corporate_invoice}/")),
    # -- the tenant console: an administrator -----------------------------------------------------------
    Page("console", "login-code", "login_code", root("accounts/login/code/"), how="flow"),
    Page("console", "home", "console:home", console("")),
    Page("console", "account-security", "account_security", root("accounts/two-step/")),
    Page("console", "members", "console:members", console("members/")),
    Page("console", "login-security", "console:login_security", console("login-security/")),
    Page("console", "invoices", "console:invoice_list", console("invoices/")),
    Page("console", "invoice-new", "console:invoice_create", console("invoices/new/")),
    Page("console", "invoice", "console:invoice_detail", console("invoices/{invoice}/")),
    Page("console", "invoice-edit", "console:invoice_edit", console("invoices/{draft}/edit/")),
    Page("console", "customers", "console:customer_list", console("customers/")),
    Page("console", "customer-new", "console:customer_create", console("customers/new/")),
    Page("console", "customer-edit", "console:customer_edit", console("customers/{customer}/edit/")),
    Page("console", "customer-balance", "console:customer_balance", console("customers/{customer}/balance/")),
    Page("console", "payment-requests", "console:payment_request_list", console("payment-requests/")),
    Page(
        "console", "payment-request-new", "console:payment_request_create", console("payment-requests/new/")
    ),
    Page(
        "console",
        "payment-request",
        "console:payment_request_detail",
        console("payment-requests/{payment_request}/"),
    ),
    Page("console", "imports", "console:import_list", console("imports/")),
    Page("console", "import-help", "console:import_help", console("help/csv-import/")),
    Page("console", "invoice-settings", "console:invoice_settings", console("settings/invoices/")),
    Page("console", "import", "console:import_detail", console("imports/{import}/")),
    Page("console", "api-keys", "console:api_key_list", console("api-keys/")),
    Page("console", "webhooks", "console:webhook_list", console("webhooks/")),
    Page("console", "webhook-new", "console:webhook_create", console("webhooks/new/")),
    Page("console", "webhook", "console:webhook_edit", console("webhooks/{webhook}/")),
    Page("console", "webhook-deliveries", "console:webhook_delivery_list", console("webhooks/deliveries/")),
    Page(
        "console",
        "webhook-delivery",
        "console:webhook_delivery_detail",
        console("webhooks/deliveries/{delivery}/"),
    ),
    # the console's reconciliation pages
    Page("console", "payments", "console:payment_list", console("payments/")),
    Page("console", "payment", "console:payment_detail", console("payments/{entry}/")),
    Page("console", "exports", "console:export_list", console("exports/")),
    Page("console", "records", "console:record_search", console("records/?q=2026-10-000101")),
    Page("console", "findings", "console:finding_list", console("findings/")),
    Page("console", "finding", "console:finding_detail", console("findings/{finding}/")),
    Page("console", "refunds", "console:refund_list", console("refunds/")),
    Page("console", "refund-account", "console:refund_account", console("refunds/account/")),
    Page("console", "reports", "console:report_daily", console("reports/?day=2026-11-26")),
    Page("console", "deposits", "console:deposit_list", console("deposits/")),
    Page(
        "console",
        "deposit-statement",
        "console:deposit_statement_detail",
        console("deposits/statements/{statement}/"),
    ),
    Page("console", "deposit-lags", "console:deposit_lags", console("deposits/lags/")),
    # -- the iDC staff console ----------------------------------------------------------------------------
    Page("staff", "billers", "staff:biller_list", root("staff/")),
    Page("staff", "biller-onboard", "staff:biller_onboard", root("staff/billers/new/")),
    Page("staff", "biller", "staff:biller_detail", root("staff/billers/{biller}/")),
    Page("staff", "biller-edit", "staff:biller_edit", root("staff/billers/{biller}/edit/")),
    Page("staff", "biller-banks", "staff:contracts_edit", root("staff/billers/{biller}/banks/")),
    Page("staff", "audit", "staff:audit_list", root("staff/audit/")),
    Page("staff", "operations", "staff:operations", root("staff/operations/")),
    Page("staff", "messages", "staff:message_search", root("staff/operations/messages/")),
    Page("staff", "message", "staff:message_detail", root("staff/operations/messages/{message}/")),
    Page("staff", "handoff", "staff:handoff_list", root("staff/handoff/")),
    Page("staff", "handoff-new", "staff:handoff_create", root("staff/handoff/new/")),
    Page("staff", "handoff-edit", "staff:handoff_edit", root("staff/handoff/{handoff}/")),
    Page("staff", "teller-files", "staff:teller_files", root("staff/teller-files/")),
    Page("staff", "teller-file", "staff:teller_file", root("staff/teller-files/{teller_file}/")),
    Page("staff", "reconciliation", "staff_reconciliation:summary", root("staff/reconciliation/")),
]

# GET answers that are not pages of their own, or pages reached only by paying over the line.
NOT_PAGES: dict[str, str] = {
    "logout": "GET redirects to the login page (logging out is a POST)",
    "portal:logout": "GET redirects to the portal's login page (logging out is a POST)",
    "set_language": "Django's set_language: GET redirects back",
    "favicon": "the site's icon",
    "console:invoice_pdf": "a PDF",
    "console:invoice_receipt_pdf": "a PDF (a receipt)",
    "portal:receipt_pdf": "a PDF (a receipt)",
    "portal:invoice_pdf": "a PDF",
    "console:import_sample": "a CSV file (the documented sample)",
    "portal:invoice_download": "a CSV download",
    "console:import_errors": "a CSV download",
    "console:export_download": "a CSV download",
    "console:deposit_import": "GET redirects to the deposits page, whose upload form posts here",
    "console:transfer_file_download": "a 全銀 transfer file download",
    "console:report_daily_csv": "a CSV download",
    "console:report_daily_pdf": "a PDF",
    "portal:invoice_status": "JSON (the live status)",
    "portal:invoice_events": "server-sent events",
    "paylater:status": "JSON (the live status)",
    "paylater:events": "server-sent events",
}
# Pages only a POST shows, reached only by paying over the line (commserver): test_journeys and
# test_paying check them when the line runs.
OVER_THE_LINE = {"sandbox_bank:pay", "sandbox_bank:atm_pay"}
SKIPPED_PREFIXES = ("admin/", "api/")  # Django's admin; the JSON API (and its docs: test_csp)


def page_path(page: Page, data: Data) -> str:
    ids = {**data.ids, "sandbox_bank": settings.PAYEASY_SANDBOX_BANK_CODE}
    return page.path(Data(slug=data.slug, ids=ids))


# --- the walk ---------------------------------------------------------------------------------------------


@dataclass
class Walker:
    """Checks pages of one area in one browser context, collecting every problem."""

    page: Any
    area: str
    axe_js: Any
    problems: list[str] = field(default_factory=list)
    seen: list[Page] = field(default_factory=list)

    def check(self, entry: Page) -> None:
        """The page as it is now, at each width: axe; no sideways overflow; the screenshots."""
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 900})
            where = f"{entry.area}-{entry.slug} at {width}px ({self.page.url})"
            violations = axe_violations(self.page, self.axe_js)
            if violations:
                self.problems.append(axe_report(where, violations))
            if overflow := sideways_overflow(self.page):
                self.problems.append(f"{where}: sideways overflow: {overflow}")
            if saving_screenshots():
                self.shot(entry, width)
        self.page.set_viewport_size({"width": WIDTHS[0], "height": 900})
        self.seen.append(entry)

    def shot(self, entry: Page, width: int, suffix: str = "") -> None:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        name = f"{entry.area}-{entry.slug}-{width}{suffix}.png"
        self.page.screenshot(path=str(SCREENSHOT_DIR / name), full_page=True)

    def visit(self, base: str, entry: Page, data: Data) -> None:
        path = page_path(entry, data)
        response = self.page.goto(base + path)
        status = response.status if response is not None else 0
        final = re.compile(entry.final) if entry.final else None
        landed = self.page.url.removeprefix(base)
        if status != 200 or (final is None and landed != path) or (final and not final.search(landed)):
            self.problems.append(f"{entry.area}-{entry.slug}: GET {path} gave {status} at {landed}")
            return
        self.check(entry)

    def english(self, base: str, data: Data) -> None:
        """The same pages in English (the language cookie), for the screenshots only."""
        self.page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": "en", "url": base}])
        for entry in self.seen:
            if entry.how != "goto":
                continue
            self.page.goto(base + page_path(entry, data))
            for width in WIDTHS:
                self.page.set_viewport_size({"width": width, "height": 900})
                self.shot(entry, width, "-en")
        self.page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def entries(area: str) -> list[Page]:
    return [p for p in PAGES if p.area == area]


def find(area: str, slug: str) -> Page:
    return next(p for p in PAGES if p.area == area and p.slug == slug)


def console_password(page: Any, base: str, email: str) -> None:
    page.goto(base + "/accounts/login/")
    main = page.get_by_role("main")
    main.get_by_label(ja_label("E-mail")).fill(email)
    main.get_by_label(ja_label("Password")).fill(DEMO_PASSWORD)
    main.get_by_role("button", name=ja("Log in")).click()


def portal_password(page: Any, base: str, data: Data, email: str) -> None:
    page.goto(f"{base}/b/{data.slug}/my/login/")
    main = page.get_by_role("main")
    main.get_by_label(ja_label("E-mail")).fill(email)
    main.get_by_label(ja_label("Password")).fill(DEMO_PASSWORD)
    main.get_by_role("button", name=ja("Log in")).click()


def walk_area(walker: Walker, base: str, data: Data) -> None:
    page, area = walker.page, walker.area
    if area == "console":
        console_password(page, base, ADMIN)
        page.wait_for_url(re.compile(r"/accounts/login/code/"))
        walker.check(find(area, "login-code"))
        pass_second_factor(page, ADMIN)
    elif area == "staff":
        console_password(page, base, STAFF)
        pass_second_factor(page, STAFF)
    elif area == "setup":
        console_password(page, base, SETUP_ADMIN)
        page.wait_for_url(re.compile(r"/accounts/two-step/setup/"))
        walker.check(find(area, "two-step-setup"))
    elif area == "choose":
        console_password(page, base, TWO_BILLERS)
        expect(page).to_have_url(base + "/")
    elif area == "portal":
        portal_password(page, base, data, CONSUMER)
        expect(page).to_have_url(re.compile(r"/my/invoices/"))
    elif area == "corporate":
        from billing import totp
        from billing.models import Biller, CustomerAccount, customer_login

        portal_password(page, base, data, APPROVER)
        page.wait_for_url(re.compile(r"/my/login/code/"))
        walker.check(find(area, "login-code"))
        login = customer_login(Biller.objects.get(slug=data.slug), APPROVER)
        secret = CustomerAccount.objects.get(user__login=login).totp_secret
        main = page.get_by_role("main")
        main.get_by_role("textbox").first.fill(totp.totp(secret).now())
        main.get_by_role("button", name=ja("Verify")).click()
        expect(page).to_have_url(re.compile(r"/my/(invoices/)?$"))
    for entry in entries(area):
        if entry.how == "goto":
            walker.visit(base, entry, data)
    if area == "portal":
        sandbox_flow(walker, base, data)


def sandbox_flow(walker: Walker, base: str, data: Data) -> None:
    """The hand-off page (kept from posting itself), then the sandbox bank's login and confirm pages."""
    from payeasy.sandbox.forms import DEMO_LOGIN
    from payeasy.sandbox.forms import DEMO_PASSWORD as BANK_PASSWORD

    page = walker.page
    handoff = find("portal", "handoff")
    page.route(re.compile(r"/static/js/handoff\.js"), lambda route: route.abort())
    walker.visit(base, handoff, data)
    page.unroute(re.compile(r"/static/js/handoff\.js"))
    # the button names the bank (its name as the page spells it): match any name
    continue_to = re.escape(ja("Continue to %(bank)s", bank="BANK")).replace("BANK", ".+")
    page.get_by_role("button", name=re.compile(f"^{continue_to}$")).click()
    expect(page).to_have_url(f"{base}/sandbox-bank/entry/")
    walker.check(find("portal", "sandbox-bank-login"))
    main = page.get_by_role("main")
    main.get_by_label(ja_label("Login ID")).fill(DEMO_LOGIN)
    main.get_by_label(ja_label("Password")).fill(BANK_PASSWORD)
    main.get_by_role("button", name=ja("Log in")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Confirm the payment"))
    walker.check(find("portal", "sandbox-bank-confirm"))


AREAS = ["public", "setup", "choose", "portal", "corporate", "console", "staff"]


@pytest.mark.parametrize("area", AREAS)
def test_every_page_passes_axe_and_fits_a_phone(
    browser: Any, axe_path: Any, live_server: Any, area: str
) -> None:
    base = live_server.url
    data = build_data()
    context = browser.new_context(
        locale="ja-JP", viewport={"width": WIDTHS[0], "height": 900}, bypass_csp=True
    )
    context.set_default_timeout(15_000)
    walker = Walker(page=context.new_page(), area=area, axe_js=axe_path)
    try:
        walk_area(walker, base, data)
        if saving_screenshots():
            walker.english(base, data)
    finally:
        context.close()
    missed = [p.slug for p in entries(area) if p not in walker.seen]
    problems = walker.problems + ([f"not checked: {', '.join(missed)}"] if missed else [])
    assert not problems, f"{len(problems)} problem(s) in {area}:\n\n" + "\n\n".join(problems)


# --- every page is listed -----------------------------------------------------------------------------------


def allowed_methods(callback: Any) -> set[str] | None:
    """The HTTP methods a view answers (a class's handlers; a function's require_http_methods list), or
    None when a function view does not say (it answers anything)."""
    view_class = getattr(callback, "view_class", None)
    if view_class is not None:
        return {m.upper() for m in view_class.http_method_names if hasattr(view_class, m)} - {"OPTIONS"}
    func = callback
    while func is not None:
        for cell in getattr(func, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if (
                isinstance(value, list | tuple)
                and value
                and all(isinstance(v, str) and v.isupper() for v in value)
            ):
                return set(value)
        func = getattr(func, "__wrapped__", None)
    return None


def url_names(patterns: list[Any], prefix: str = "", namespace: str = "") -> list[tuple[str, str, Any]]:
    found: list[tuple[str, str, Any]] = []
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            ns = namespace + (f"{p.namespace}:" if p.namespace else "")
            found += url_names(p.url_patterns, route, ns)
        elif isinstance(p, URLPattern):
            found.append((route, namespace + (p.name or ""), p.callback))
    return found


def get_pages() -> dict[str, str]:
    """Every named URL of both URLconfs (the admin and the API aside) that answers GET: name → route."""
    pages: dict[str, str] = {}
    for conf in ("config.urls", "config.urls_tenant"):
        for route, name, callback in url_names(get_resolver(conf).url_patterns):
            if route.startswith(SKIPPED_PREFIXES):
                continue
            assert name and not name.endswith(":"), f"{conf}: {route} has no name to list it by"
            methods = allowed_methods(callback)
            if methods is None or "GET" in methods:
                pages[name] = route
    return pages


def test_every_get_page_is_listed() -> None:
    """A page that answers GET is walked by the test above or named in NOT_PAGES with the reason."""
    answering = get_pages()
    listed = {p.url_name for p in PAGES}
    missing = {name: route for name, route in answering.items() if name not in listed | NOT_PAGES.keys()}
    assert not missing, f"add these pages to PAGES in {__name__} (or to NOT_PAGES, with a reason): {missing}"
    stale = (listed | NOT_PAGES.keys()) - answering.keys()
    # pages reached only by a POST (the sandbox bank's) are walked as flow pages
    stale -= {p.url_name for p in PAGES if p.how == "flow"}
    assert not stale, f"listed but no such GET page: {sorted(stale)}"
    assert "sandbox_bank:atm_pay" not in answering and OVER_THE_LINE.isdisjoint(answering)


def test_the_listing_knows_posts_from_gets() -> None:
    """The enumeration itself: a POST-only view is not a page, a GET view and an undecorated function are."""
    from billing.console_views import InvoicePublishView
    from payeasy.sandbox import views as sandbox

    assert allowed_methods(InvoicePublishView.as_view()) == {"POST"}
    assert allowed_methods(sandbox.pay) == {"POST"}
    assert allowed_methods(sandbox.atm) == {"GET", "POST"}
    assert allowed_methods(sandbox.home) is None
    pages = get_pages()
    assert "sandbox_bank:pay" not in pages and "console:invoice_publish" not in pages
    assert pages["console:invoice_list"] == "console/invoices/"


def test_the_checks_catch_a_bad_page(browser: Any, axe_path: Any) -> None:
    """The checker itself: an image without a text alternative, an unlabelled field and a table wider than
    the phone are reported; a plain page is not."""
    context = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 900})
    page = context.new_page()
    try:
        page.set_content(
            '<html lang="ja"><head><title>t</title></head><body><main><h1>見出し</h1>'
            '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><input type="text">'
            '<div style="width: 900px">広い表</div></main></body></html>'
        )
        found = {v["id"]: v for v in axe_violations(page, axe_path)}
        assert {"image-alt", "label"} <= found.keys(), found
        assert found["label"]["nodes"][0]["target"] == ["input"]
        report = axe_report("bad page", list(found.values()))
        assert "[critical] image-alt" in report and "at input" in report
        assert "900px" not in sideways_overflow(page) and "390px screen" in sideways_overflow(page)
        page.set_content(
            '<html lang="ja"><head><title>t</title></head><body><main><h1>見出し</h1>'
            '<label for="q">検索</label><input id="q" type="text"></main></body></html>'
        )
        assert axe_violations(page, axe_path) == []
        assert sideways_overflow(page) == ""
    finally:
        context.close()
