"""Every kind of page works under the Content-Security-Policy, in Chromium, with no violation.

Chromium reports each violation as a ``securitypolicyviolation`` event and a console message; both are
collected for the whole browser context (every page, every navigation) and must stay empty. Each HTML
response must carry the policy (config.settings.security): nonces for scripts, ``default-src 'self'``,
``object-src 'none'``, ``base-uri 'none'``, ``frame-ancestors 'none'`` and ``form-action 'self'`` plus,
on the 情報リンク hand-off page, the origin of that bank's entry URL.

Kinds of page: the customer portal (with the hand-off that posts itself to the sandbox bank, the bank's
pages, the live status that turns paid over server-sent events, the receipt's print button), the
hand-off on a tenant host whose sandbox bank is on another origin, the pay-later page, the tenant
console, the iDC staff console, the Django admin and the API docs (Swagger UI). The console, staff and
admin pages are crawled: every page their links reach (one of each URL shape).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client, override_settings
from playwright.sync_api import expect

from billing.models import Biller, Invoice, Membership, User
from billing.paylater import paylater_url
from payeasy.models import Message
from payeasy.sandbox.forms import DEMO_LOGIN, DEMO_PASSWORD
from tests import factories
from tests.browser.test_paying import (
    PASSWORD,
    SANDBOX,
    TODAY,
    account,
    biller_with_sandbox_bank,
    expect_paid,
    invoice,
    ja,
    label,
    line,  # noqa: F401  (the module's commserver and worker)
    my,
    numbers_of,
    pay_at_atm,
    sandbox_bank_name,
    status_box,
    yen,
)

REQUIRED = {
    "default-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'none'"},
    "frame-ancestors": {"'none'"},
}

# Reports every violation to the test (window.__cspViolation is exposed by the context).
VIOLATION_SCRIPT = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolation({
    page: location.href, directive: e.effectiveDirective, blocked: e.blockedURI,
    source: e.sourceFile + ":" + e.lineNumber, sample: e.sample,
  });
}, true);
"""
# window.print() opens a dialog headless Chromium cannot answer: record the call instead.
PRINT_STUB = "window.print = () => { window.__printed = (window.__printed || 0) + 1; };"


def policy(header: str | None) -> dict[str, list[str]]:
    """The Content-Security-Policy header as directive → values."""
    directives: dict[str, list[str]] = {}
    for part in (header or "").split(";"):
        if words := part.split():
            directives[words[0].lower()] = words[1:]
    return directives


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Watch:
    """CSP violations and the policies of the HTML documents of one browser context."""

    def __init__(self, context: Any) -> None:
        self.violations: list[dict[str, Any]] = []
        self.documents: list[tuple[str, int, str | None]] = []  # url, status, CSP header
        context.expose_function("__cspViolation", self._violation)
        context.add_init_script(VIOLATION_SCRIPT)
        context.add_init_script(PRINT_STUB)
        context.on("console", self._console)
        context.on("response", self._response)

    def _violation(self, report: dict[str, Any]) -> None:
        self.violations.append(report)

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.violations.append({"console": text, "page": message.page.url if message.page else ""})

    def _response(self, response: Any) -> None:
        if response.request.resource_type == "document":
            self.documents.append(
                (response.url, response.status, response.headers.get("content-security-policy"))
            )

    def check(self) -> None:
        """No violation so far, and every HTML document carried the policy."""
        assert self.violations == [], "\n".join(map(str, self.violations))
        assert self.documents, "no page was loaded"
        for url, status, header in self.documents:
            if 300 <= status < 400:
                continue  # a redirect: the document it leads to is checked
            assert header, f"no Content-Security-Policy on {url} ({status})"
            directives = policy(header)
            for name, values in REQUIRED.items():
                assert set(directives.get(name, [])) == values, (url, name, header)
            assert "'self'" in directives.get("form-action", []), (url, header)
            # scripts: this site's files, and inline ones only with the response's nonce (the header names
            # one when the page used it); never 'unsafe-inline' or 'unsafe-eval'
            script = directives.get("script-src", [])
            assert "'self'" in script, (url, header)
            assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, (url, header)
            assert "'unsafe-inline'" not in directives.get("style-src", []), (url, header)


@pytest.fixture
def watched(browser: Any) -> Iterator[Callable[..., tuple[Any, Watch]]]:
    """``watched(**context options)``: a page in a fresh Japanese context and its :class:`Watch`."""
    contexts: list[Any] = []

    def new(**options: Any) -> tuple[Any, Watch]:
        options = {"locale": "ja-JP", "viewport": {"width": 1280, "height": 900}, **options}
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        watch = Watch(context)
        return context.new_page(), watch

    yield new
    for context in contexts:
        context.close()


def sign_in(page: Any, base: str, user: User) -> None:
    """The browser holds a console session of ``user``, past the password and any second factor (the
    login pages themselves are visited, and checked, before)."""
    page.goto(base + "/accounts/login/")
    try:
        from billing.services import two_factor
        from billing.totp import totp
    except ImportError:  # no second factor for the console
        pass
    else:
        if two_factor.totp_required(user) and two_factor.two_factor_of(user) is None:
            factor = two_factor.enrolment_begin(user=user)
            two_factor.enrolment_confirm(user=user, code=totp(factor.secret).now(), ip="127.0.0.1")
    client = Client()
    client.force_login(user)  # as billing's login view does once both factors passed
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": base}])


SKIP = re.compile(
    r"/(logout|pdf|download|events|status)/|\.(csv|pdf|zip|json)(\?|$)|/refunds/files/|/api/v1/(?!docs/)|/i18n/"
)


def crawl(page: Any, start: str, *, within: str, limit: int = 60) -> list[str]:
    """Visit ``start`` and every page its links reach below ``within`` (GET only; one URL per shape, digits
    counting as one shape). Each must answer without a server error and finish loading."""
    queue, shapes, visited = [start], set(), []
    while queue and len(visited) < limit:
        url = queue.pop(0)
        shape = re.sub(r"\d+", "N", urlsplit(url).path)
        if shape in shapes:
            continue
        shapes.add(shape)
        response = page.goto(url)
        assert response is not None and response.status < 500, (url, response and response.status)
        page.wait_for_load_state("load")
        visited.append(url)
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            href = href.split("#", 1)[0]
            if href.startswith(within) and not SKIP.search(href) and href not in queue:
                queue.append(href)
    return visited


# --- the customer portal, 情報リンク, the sandbox bank, live status, receipts -----------------------------


@pytest.mark.usefixtures("line")
def test_portal_handoff_bank_and_live_status_under_the_policy(watched: Any, live_server: Any) -> None:
    base = live_server.url
    page, watch = watched()
    biller = biller_with_sandbox_bank(legal_name="テスト電力株式会社", short_name="テスト電力")
    customer = factories.make_customer(biller, name="山田 太郎", email="taro@example.jp")
    account(biller, customer, "taro@example.jp")
    bill = invoice(biller, customer, "INV-CSP-0001")
    other = invoice(biller, customer, "INV-CSP-0002")
    bank = sandbox_bank_name()

    page.goto(my(base, biller, "login/"))
    main = page.get_by_role("main")
    main.get_by_label(label("E-mail")).fill("taro@example.jp")
    main.get_by_label(label("Password")).fill(PASSWORD)
    main.get_by_role("button", name=ja("Log in")).click()
    expect(page).to_have_url(my(base, biller, "invoices/"))
    for path in ("payments/", "receipts/", "security/", f"invoices/{other.pk}/"):
        page.goto(my(base, biller, path))
    page.goto(my(base, biller, f"invoices/{bill.pk}/pay/"))
    bank_link = page.get_by_role("list", name=ja("Banks")).get_by_role("link", name=re.compile(bank))
    handoff_url = base + (bank_link.get_attribute("href") or "")

    # the hand-off page names its bank's entry in form-action, and posts itself there
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/sandbox-bank/entry/")):
        bank_link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Log in to pay this bill"))
    [handoff] = [d for d in watch.documents if d[0] == handoff_url]
    assert "'self'" in policy(handoff[2]).get("form-action", []), handoff

    # the bank: log in, pay, back to the invoice, which turns paid over server-sent events
    main = page.get_by_role("main")
    main.get_by_label(label("Login ID")).fill(DEMO_LOGIN)
    main.get_by_label(label("Password")).fill(DEMO_PASSWORD)
    main.get_by_role("button", name=ja("Log in")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Confirm the payment"))
    with page.expect_request(lambda r: "/events/" in r.url):  # live-status.js opened its stream
        main.get_by_role("button", name=ja("Pay %(amount)s", amount=yen(bill.total))).click()
    expect(page).to_have_url(re.compile(re.escape(my(base, biller, f"invoices/{bill.pk}/?returned=1"))))
    expect_paid(page, timeout=10_000)

    # the receipt's print button (static JS, no onclick)
    # the row's first link opens the receipt (the second downloads its PDF)
    receipt = page.get_by_role("row").filter(has_text=bill.number).get_by_role("link").first
    for _ in range(40):  # the receipt is issued by the worker right after the payment
        page.goto(my(base, biller, "receipts/"))
        if receipt.count():
            break
        page.wait_for_timeout(500)
    receipt.click()
    page.get_by_role("button", name=ja("Print")).click()
    assert page.evaluate("window.__printed") == 1

    # the sandbox bank's own pages: home and the ATM, paying the other invoice's numbers
    page.goto(base + "/sandbox-bank/")
    page.goto(my(base, biller, f"invoices/{other.pk}/"))
    numbers = numbers_of(page)
    pay_at_atm(page, base, numbers, other.total)
    watch.check()


@pytest.mark.usefixtures("line")
def test_handoff_on_a_tenant_host_allows_the_other_origin(watched: Any, live_server: Any) -> None:
    """Host mode: the portal is on <slug>.localhost, the sandbox bank on PORTAL_BASE_URL (127.0.0.1), so
    the hand-off page's form-action must name that origin, and the bank's confirm page the portal's."""
    port = urlsplit(live_server.url).port
    root, tenant = f"http://127.0.0.1:{port}", None
    with override_settings(PORTAL_DOMAIN="localhost", PORTAL_BASE_URL=root):
        biller = biller_with_sandbox_bank()
        tenant = f"http://{biller.slug}.localhost:{port}"
        customer = factories.make_customer(biller, name="佐藤 花子")
        account(biller, customer, "hanako@example.jp")
        bill = invoice(biller, customer, "INV-CSP-1001")
        page, watch = watched()
        page.goto(tenant + "/my/login/")
        main = page.get_by_role("main")
        main.get_by_label(label("E-mail")).fill("hanako@example.jp")
        main.get_by_label(label("Password")).fill(PASSWORD)
        main.get_by_role("button", name=ja("Log in")).click()
        expect(page).to_have_url(tenant + "/my/invoices/")
        page.goto(tenant + f"/my/invoices/{bill.pk}/pay/")
        bank_link = page.get_by_role("list", name=ja("Banks")).get_by_role(
            "link", name=re.compile(sandbox_bank_name())
        )
        with page.expect_request(lambda r: r.method == "POST" and r.url == root + "/sandbox-bank/entry/"):
            bank_link.click()
        expect(page.get_by_role("heading", level=1)).to_have_text(ja("Log in to pay this bill"))
        [handoff] = [d for d in watch.documents if f"/pay/{SANDBOX}/" in d[0]]
        assert root in policy(handoff[2]).get("form-action", []), handoff
        main = page.get_by_role("main")
        main.get_by_label(label("Login ID")).fill(DEMO_LOGIN)
        main.get_by_label(label("Password")).fill(DEMO_PASSWORD)
        main.get_by_role("button", name=ja("Log in")).click()
        main.get_by_role("button", name=ja("Pay %(amount)s", amount=yen(bill.total))).click()
        expect(page).to_have_url(tenant + f"/my/invoices/{bill.pk}/?returned=1")  # the 303 back is allowed
        expect_paid(page, timeout=10_000)
        watch.check()


@pytest.mark.usefixtures("line")
def test_pay_later_page_under_the_policy(watched: Any, live_server: Any) -> None:
    base = live_server.url
    biller = biller_with_sandbox_bank()
    order = factories.make_invoice(
        biller=biller,
        kind=Invoice.Kind.PAYMENT_REQUEST,
        amount=5_500,
        description="ご注文",
        due_date=TODAY + datetime.timedelta(days=14),
        email="order@example.jp",
        name="購買 三郎",
        external_id="ORDER-CSP",
    )
    page, watch = watched()
    page.goto(base + urlsplit(paylater_url(order)).path)
    expect(status_box(page)).to_contain_text(ja("Unpaid"))
    pay_at_atm(watched()[0], base, numbers_of(page), order.total)
    expect_paid(page, timeout=10_000)
    watch.check()


# --- the consoles, the admin, the API docs -----------------------------------------------------------------


@pytest.fixture
def tenant(transactional_db: None) -> Biller:
    biller = biller_with_sandbox_bank(legal_name="テスト電力株式会社")
    customer = factories.make_customer(biller, name="山田 太郎")
    invoice(biller, customer, "INV-CSP-2001")
    factories.make_invoice(
        biller=biller,
        customer=customer,
        number="INV-CSP-DRAFT",
        published=False,
        issue_date=TODAY,
        due_date=TODAY,
        description="下書き",
    )
    return biller


def test_tenant_console_under_the_policy(watched: Any, live_server: Any, tenant: Biller) -> None:
    base = live_server.url
    user = factories.make_user("keiri@test.jp", password=PASSWORD, name="経理 花子")
    Membership.objects.create(biller=tenant, user=user, role=Membership.Role.ADMIN)
    page, watch = watched()
    sign_in(page, base, user)
    console = f"{base}/b/{tenant.slug}/console/"
    visited = crawl(page, console, within=console)
    assert len(visited) >= 12, visited
    # a form posts and redirects (form-action 'self')
    page.goto(console + "customers/new/")
    main = page.get_by_role("main")
    main.locator("input[name=code]").fill("CSP-1")
    main.locator("input[name=name]").fill("CSP 太郎")
    main.get_by_role("button", name=ja("Add customer")).click()
    expect(page).to_have_url(re.compile(r"/console/customers/"))
    expect(page.get_by_role("main")).to_contain_text("CSP 太郎")
    watch.check()


def test_staff_console_under_the_policy(watched: Any, live_server: Any, tenant: Biller) -> None:
    base = live_server.url
    user = factories.make_user("staff@idc.test", password=PASSWORD, name="iDC 担当", is_idc_staff=True)
    page, watch = watched()
    sign_in(page, base, user)
    visited = crawl(page, base + "/staff/", within=base + "/staff/")
    assert any("/operations/" in u for u in visited) and any("/handoff/" in u for u in visited), visited
    # the charts draw under the policy (colours and sizes from charts.css, no inline styles): the current
    # minute's bar of messages is the peak (the full plot height), the others empty
    Message.objects.bulk_create(
        [Message(message_type="1100", outcome=Message.Outcome.PROCESSED, raw=b"x") for _ in range(3)]
    )
    page.goto(base + "/staff/operations/")
    chart = page.locator('section[aria-labelledby="rates-heading"] svg[role="img"]')
    bars = chart.locator("rect.bar")
    expect(bars).to_have_count(60)
    top = chart.locator(".y-axis .grid").last.bounding_box()
    baseline = chart.locator(".baseline").bounding_box()
    full, empty = bars.nth(59).bounding_box(), bars.nth(0).bounding_box()
    assert top and baseline and full, (top, baseline, full)
    assert full["height"] > 0.95 * (baseline["y"] - top["y"]), (full, top, baseline)
    assert empty is None or empty["height"] < 1, empty
    watch.check()


def test_admin_under_the_policy(watched: Any, live_server: Any, tenant: Biller) -> None:
    base = live_server.url
    user = User.objects.create_superuser("root@idc.test", PASSWORD, name="root")
    page, watch = watched()
    sign_in(page, base, user)
    visited = crawl(page, base + "/admin/", within=base + "/admin/", limit=25)
    assert len(visited) >= 5, visited
    # the admin's own JavaScript runs: the action bar counts the selected rows
    page.goto(base + "/admin/billing/user/")
    page.locator("#result_list tbody tr input.action-select").first.check()
    expect(page.locator("#result_list tbody tr").first).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator(".action-counter")).to_contain_text("1")
    watch.check()


def test_api_docs_under_the_policy(watched: Any, live_server: Any, tenant: Biller) -> None:
    page, watch = watched()
    page.goto(f"{live_server.url}/b/{tenant.slug}/api/v1/docs/")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=15_000)
    page.locator(".swagger-ui .opblock-summary").first.click()  # an operation opens
    expect(page.locator(".swagger-ui .opblock-body").first).to_be_visible()
    watch.check()
    [(_url, _status, header)] = [d for d in watch.documents if "/docs/" in d[0]]
    assert any(v.startswith("'nonce-") for v in policy(header)["script-src"]), header


def test_every_html_page_kind_sends_the_policy(client: Any, tenant: Biller) -> None:
    """Without a browser: the header itself, as settings.SECURE_CSP builds it, nonce fresh per response."""
    first = client.get(f"/b/{tenant.slug}/api/v1/docs/")  # a page with inline script and style
    second = client.get(f"/b/{tenant.slug}/api/v1/docs/")
    one, two = (
        policy(first.headers.get("Content-Security-Policy")),
        policy(second.headers.get("Content-Security-Policy")),
    )
    for name, values in REQUIRED.items():
        assert set(one.get(name, [])) == values, (name, one)
    assert one["form-action"] == ["'self'"], one
    assert one["script-src"] != two["script-src"], "the nonce must change with every response"
    nonce = next(v for v in one["script-src"] if v.startswith("'nonce-"))
    assert nonce in one["style-src"], one
    html = first.content.decode()
    assert html.count(f'nonce="{nonce[7:-1]}"') == html.count("<script") + html.count("<style"), html
    assert client.get(f"/b/{tenant.slug}/my/login/").headers["Content-Security-Policy"]
