"""The SQL queries of every page of the customer portal, the tenant console and the iDC staff console are
a fixed number: the same for a customer with a couple of invoices as with 500 (no query per row), and at
most the page's budget.

The pages are the ones tests/browser/test_axe_pages.py walks (``PAGES``, with its paths and ids) in the
namespaces ``portal``, ``console``, ``staff`` and ``staff_reconciliation``, and ``EXTRA``: lists filtered
to the paid bills, and the files (CSV, PDF, ZIP, JSON) those namespaces answer GET with.
``test_every_get_page_is_measured`` fails when a GET answer of those namespaces is neither measured nor
in ``EXCLUDED`` with the reason.

The data (tests/billing/page_queries_data.py) is two tenants of the same shape, a small and a large
one, built once for the module in a transaction rolled back at its end. A tenant's pages are measured
on both tenants; the staff console, which sees every tenant, once with only the small tenant in the
database and once with both (and a few more billers).

Each page is requested once to warm the caches (content types, the session), then once inside
``CaptureQueriesContext``; a streamed answer is read to its end inside it. ``BUDGET`` holds the counts
of the large tenant, per database (PostgreSQL adds the tenant's ``set_config`` and SAVEPOINTs): lower a
count when a page gets cheaper; a page that needs more must say why. ``pytest -s`` prints the table.
"""

from __future__ import annotations

import collections
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection, reset_queries, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.billing.page_queries_data import Tenant, build_tenant, make_staff
from tests.browser.test_axe_pages import NOT_PAGES, PAGES, Page, console, get_pages, my, page_path

NAMESPACES = ("portal:", "console:", "staff:", "staff_reconciliation:")

# Queries per page, measured on the large tenant, one table per database (connection.vendor). The key is
# the URL name; ``@corporate``: the approver's view of a page; ``?…``: a variant or a file of EXTRA.
BUDGET: dict[str, dict[str, int]] = {
    "sqlite": {
        "console:api_key_list": 6,
        "console:customer_balance": 11,
        "console:customer_create": 5,
        "console:customer_edit": 8,
        "console:customer_edit?corporate": 8,
        "console:customer_list": 7,
        "console:deposit_lags": 6,
        "console:deposit_list": 10,
        "console:deposit_statement_detail": 7,
        "console:export_download?invoices": 5,
        "console:export_download?payments": 5,
        "console:export_download?yayoi": 5,
        "console:export_list": 5,
        "console:finding_detail": 9,
        "console:finding_list": 8,
        "console:home": 11,
        "console:import_detail": 7,
        "console:import_errors?csv": 5,
        "console:import_help": 5,
        "console:import_list": 7,
        "console:import_sample?csv": 4,
        "console:invoice_create": 9,
        "console:invoice_detail": 10,
        "console:invoice_detail?paid": 12,
        "console:invoice_edit": 7,
        "console:invoice_list": 6,
        "console:invoice_list?status=paid": 6,
        "console:invoice_pdf?pdf": 6,
        "console:invoice_receipt_pdf?pdf": 6,
        "console:invoice_settings": 8,
        "console:login_security": 7,
        "console:members": 7,
        "console:payment_detail": 9,
        "console:payment_list": 6,
        "console:payment_request_create": 6,
        "console:payment_request_detail": 9,
        "console:payment_request_list": 7,
        "console:record_search": 7,
        "console:record_search?period": 7,
        "console:refund_account": 6,
        "console:refund_list": 9,
        "console:report_daily": 14,
        "console:report_daily_csv?csv": 12,
        "console:report_daily_pdf?pdf": 12,
        "console:webhook_create": 5,
        "console:webhook_delivery_detail": 7,
        "console:webhook_delivery_list": 7,
        "console:webhook_edit": 7,
        "console:webhook_list": 6,
        "portal:approval_list@corporate": 5,
        "portal:balance": 8,
        "portal:home": 3,
        "portal:invitation_accept": 1,
        "portal:invoice_detail": 5,
        "portal:invoice_detail?paid": 5,
        "portal:invoice_detail@corporate": 7,
        "portal:invoice_download?csv": 4,
        "portal:invoice_download?zip": 4,
        "portal:invoice_list": 5,
        "portal:invoice_list?tab=all": 6,
        "portal:invoice_list?tab=paid": 6,
        "portal:invoice_pdf?pdf": 4,
        "portal:invoice_status?json": 4,
        "portal:login": 0,
        "portal:login_totp@corporate": 3,
        "portal:password_reset": 0,
        "portal:password_reset_complete": 0,
        "portal:password_reset_confirm": 1,
        "portal:password_reset_done": 0,
        "portal:pay": 8,
        "portal:pay_handoff": 9,
        "portal:payment_list": 5,
        "portal:receipt_detail": 4,
        "portal:receipt_list": 5,
        "portal:receipt_pdf?pdf": 5,
        "portal:register": 0,
        "portal:security": 3,
        "staff:audit_list": 6,
        "staff:biller_detail": 9,
        "staff:biller_edit": 5,
        "staff:biller_list": 6,
        "staff:biller_onboard": 4,
        "staff:contracts_edit": 6,
        "staff:handoff_create": 4,
        "staff:handoff_edit": 6,
        "staff:handoff_list": 6,
        "staff:message_detail": 6,
        "staff:message_search": 6,
        # within the line's online hours (JST) its alert rule reads the line's state and last message: two
        # more than outside them; the budget is the larger count, whatever the hour the suite runs at
        "staff:operations": 52,
        "staff:teller_file": 7,
        "staff:teller_files": 6,
        "staff_reconciliation:summary": 8,
    },
    "postgresql": {
        "console:api_key_list": 12,
        "console:customer_balance": 17,
        "console:customer_create": 11,
        "console:customer_edit": 14,
        "console:customer_edit?corporate": 14,
        "console:customer_list": 13,
        "console:deposit_lags": 12,
        "console:deposit_list": 16,
        "console:deposit_statement_detail": 13,
        "console:export_download?invoices": 13,
        "console:export_download?payments": 13,
        "console:export_download?yayoi": 13,
        "console:export_list": 11,
        "console:finding_detail": 15,
        "console:finding_list": 14,
        "console:home": 17,
        "console:import_detail": 13,
        "console:import_errors?csv": 9,
        "console:import_help": 11,
        "console:import_list": 13,
        "console:import_sample?csv": 8,
        "console:invoice_create": 15,
        "console:invoice_detail": 16,
        "console:invoice_detail?paid": 18,
        "console:invoice_edit": 13,
        "console:invoice_list": 12,
        "console:invoice_list?status=paid": 12,
        "console:invoice_pdf?pdf": 10,
        "console:invoice_receipt_pdf?pdf": 10,
        "console:invoice_settings": 14,
        "console:login_security": 13,
        "console:members": 13,
        "console:payment_detail": 15,
        "console:payment_list": 12,
        "console:payment_request_create": 12,
        "console:payment_request_detail": 15,
        "console:payment_request_list": 13,
        "console:record_search": 13,
        "console:record_search?period": 13,
        "console:refund_account": 12,
        "console:refund_list": 15,
        "console:report_daily": 20,
        "console:report_daily_csv?csv": 16,
        "console:report_daily_pdf?pdf": 16,
        "console:webhook_create": 11,
        "console:webhook_delivery_detail": 13,
        "console:webhook_delivery_list": 13,
        "console:webhook_edit": 13,
        "console:webhook_list": 12,
        "portal:approval_list@corporate": 9,
        "portal:balance": 12,
        "portal:home": 7,
        "portal:invitation_accept": 5,
        "portal:invoice_detail": 7,
        "portal:invoice_detail?paid": 7,
        "portal:invoice_detail@corporate": 7,
        "portal:invoice_download?csv": 8,
        "portal:invoice_download?zip": 8,
        "portal:invoice_list": 7,
        "portal:invoice_list?tab=all": 7,
        "portal:invoice_list?tab=paid": 7,
        "portal:invoice_pdf?pdf": 8,
        "portal:invoice_status?json": 8,
        "portal:login": 4,
        "portal:login_totp@corporate": 7,
        "portal:password_reset": 4,
        "portal:password_reset_complete": 4,
        "portal:password_reset_confirm": 5,
        "portal:password_reset_done": 4,
        "portal:pay": 12,
        "portal:pay_handoff": 13,
        "portal:payment_list": 9,
        "portal:receipt_detail": 8,
        "portal:receipt_list": 9,
        "portal:receipt_pdf?pdf": 9,
        "portal:register": 4,
        "portal:security": 7,
        "staff:audit_list": 11,
        "staff:biller_detail": 14,
        "staff:biller_edit": 10,
        "staff:biller_list": 11,
        "staff:biller_onboard": 9,
        "staff:contracts_edit": 11,
        "staff:handoff_create": 9,
        "staff:handoff_edit": 11,
        "staff:handoff_list": 11,
        "staff:message_detail": 11,
        "staff:message_search": 11,
        "staff:operations": 62,  # within the line's online hours (the SQLite budget says why)
        "staff:teller_file": 12,
        "staff:teller_files": 11,
        "staff_reconciliation:summary": 14,
    },
}

YEAR = "date_from=2026-10-01&date_to=2026-11-30"
# Besides PAGES: lists with the filters that show the paid bills (a receipt, a payment per row), and the
# files (a query per row of a CSV of 500 bills is the same fault as on a page). Keyed like BUDGET.
EXTRA: dict[str, Page] = {
    f"{p.url_name}?{p.slug}": p
    for p in [
        Page("portal", "tab=paid", "portal:invoice_list", my("invoices/?tab=paid")),
        Page("portal", "tab=all", "portal:invoice_list", my("invoices/?tab=all")),
        Page("console", "status=paid", "console:invoice_list", console("invoices/?status=paid")),
        Page("portal", "paid", "portal:invoice_detail", my("invoices/{paid_invoice}/")),
        Page("console", "paid", "console:invoice_detail", console("invoices/{paid_invoice}/")),
        Page("console", "corporate", "console:customer_edit", console("customers/{company}/edit/")),
        Page("console", "period", "console:record_search", console(f"records/?{YEAR}")),
        Page("portal", "csv", "portal:invoice_download", my("invoices/download/?format=csv-utf8&{download}")),
        Page("portal", "zip", "portal:invoice_download", my("invoices/download/?format=zip&{download_zip}")),
        Page("portal", "pdf", "portal:invoice_pdf", my("invoices/{invoice}/pdf/")),
        Page("portal", "pdf", "portal:receipt_pdf", my("receipts/{receipt}/pdf/")),
        Page("portal", "json", "portal:invoice_status", my("invoices/{invoice}/status/")),
        Page("console", "pdf", "console:invoice_pdf", console("invoices/{invoice}/pdf/")),
        Page(
            "console",
            "pdf",
            "console:invoice_receipt_pdf",
            console("invoices/{paid_invoice}/receipts/{receipt}/pdf/"),
        ),
        Page("console", "csv", "console:import_errors", console("imports/{import}/errors.csv")),
        Page("console", "csv", "console:import_sample", console("help/csv-import/invoices-sample.csv")),
        Page(
            "console",
            "payments",
            "console:export_download",
            console(f"exports/download/?what=payments&{YEAR}"),
        ),
        Page(
            "console",
            "invoices",
            "console:export_download",
            console(f"exports/download/?what=invoices&{YEAR}"),
        ),
        Page("console", "yayoi", "console:export_download", console(f"exports/download/?what=yayoi&{YEAR}")),
        Page("console", "csv", "console:report_daily_csv", console("reports/2026-11-26.csv")),
        Page("console", "pdf", "console:report_daily_pdf", console("reports/2026-11-26.pdf")),
    ]
}

# GET answers of those namespaces that are not measured, with the reason.
EXCLUDED: dict[str, str] = {
    **{name: reason for name, reason in NOT_PAGES.items() if name.startswith(NAMESPACES)},
    "console:transfer_file_download": "a 全銀 transfer file download (the data has no refunds)",
    "portal:invoice_events": "server-sent events: the stream does not end",
}

# The status a page answers when it is not 200: the portal's home sends a customer to the invoices.
STATUS: dict[str, int] = {"portal:home": 302}


def key(page: Page) -> str:
    if page in EXTRA.values():
        return f"{page.url_name}?{page.slug}"
    return page.url_name + ("@corporate" if page.area == "corporate" else "")


MEASURED: list[Page] = [*(p for p in PAGES if p.url_name.startswith(NAMESPACES)), *EXTRA.values()]
for _page in MEASURED:
    EXCLUDED.pop(_page.url_name, None)  # measured after all (a file among EXTRA)
# who asks: the area's client; the approver's code page, the approver between password and code
CLIENT: dict[str, str] = {"portal:login_totp": "totp"}


@dataclass(frozen=True)
class Measure:
    path: str
    status: int
    sql: list[str]
    size: int  # bytes of the answer: the large tenant's lists are longer (their rows are there)

    @property
    def count(self) -> int:
        return len(self.sql)


def measure(client: Client, path: str) -> Measure:
    """The queries of ``GET path`` (a streamed answer read to its end), after one GET to warm the caches."""
    read(client.get(path))
    # CaptureQueriesContext slices connection.queries_log, a deque of at most 9,000 queries: once the data
    # has filled it, the slice comes out short. Empty it first.
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
        body = read(response)
    sql = [q["sql"] for q in queries.captured_queries]
    return Measure(path, response.status_code, sql, len(body))


def read(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def shape(sql: str) -> str:
    """A query without its literals: the queries of one line of code look alike."""
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+\b", "?", sql)
    return re.sub(r"\(\?(?:, \?)*\)", "(…)", sql)


def explain(small: Measure, large: Measure) -> str:
    """What the large tenant's page asked more than the small one's, then both lists of queries."""
    more = collections.Counter(map(shape, large.sql)) - collections.Counter(map(shape, small.sql))
    lines = [f"{small.count} queries for {small.path}, {large.count} for {large.path}"]
    lines += ["queries the large tenant made more often:", *(f"  +{n} × {q}" for q, n in more.most_common())]
    lines += [f"--- {large.path}:", *(f"  {q}" for q in large.sql)]
    lines += [f"--- {small.path}:", *(f"  {q}" for q in small.sql)]
    return "\n".join(lines)


@dataclass
class World:
    small: Tenant
    large: Tenant
    staff_small: dict[str, Measure]  # the staff pages when only the small tenant existed
    counts: dict[str, tuple[Measure, Measure, int]]  # key → small, large, budget (for the table)


def client_of(tenant: Tenant, page: Page) -> Client:
    return tenant.clients[CLIENT.get(page.url_name, page.area)]


def path_of(page: Page, tenant: Tenant) -> str:
    try:
        return page_path(page, tenant.data)
    except KeyError as exc:
        pytest.fail(f"{key(page)} shows an object tests/billing/page_queries_data.py does not make: {exc}")


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """Both tenants, in a transaction of the module's that is rolled back at its end."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            staff = make_staff()
            small = build_tenant("small", staff)
            staff_small = {
                key(p): measure(client_of(small, p), path_of(p, small)) for p in MEASURED if p.area == "staff"
            }
            large = build_tenant("large", staff)
        except BaseException:
            atomic.__exit__(*sys.exc_info())  # rolled back: the next module starts from an empty database
            raise
    world = World(small=small, large=large, staff_small=staff_small, counts={})
    yield world
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        atomic.__exit__(None, None, None)
    print_table(world.counts)


def print_table(counts: dict[str, tuple[Measure, Measure, int]]) -> None:
    if not counts:
        return
    width = max(map(len, counts))
    print(f"\nqueries per page ({connection.vendor}): small, large, budget; bytes small, large")
    for name in sorted(counts):
        small, large, budget = counts[name]
        flag = "  GROWS" if small.count != large.count else "  OVER" if large.count > budget else ""
        print(
            f"  {name:<{width}}  {small.count:>4}  {large.count:>4}  {budget:>4}"
            f"  {small.size:>7}  {large.size:>7}{flag}"
        )


@pytest.mark.django_db
@pytest.mark.parametrize("page", MEASURED, ids=key)
def test_page_queries_are_fixed(world: World, page: Page) -> None:
    if page.area == "staff":
        small = world.staff_small[key(page)]
    else:
        small = measure(client_of(world.small, page), path_of(page, world.small))
    large = measure(client_of(world.large, page), path_of(page, world.large))
    budget = BUDGET[connection.vendor].get(key(page), 0)
    world.counts[key(page)] = (small, large, budget)
    expected = STATUS.get(page.url_name, 200)
    assert (small.status, large.status) == (expected, expected), (
        f"{small.path} answered {small.status}, {large.path} {large.status}, not {expected}"
    )
    assert small.count == large.count, "the queries grow with the data:\n" + explain(small, large)
    where = f"BUDGET[{connection.vendor!r}][{key(page)!r}]"
    assert large.count <= budget, (
        f"{large.count} queries, over the budget of {budget} ({where}):\n" + explain(small, large)
    )


def test_every_get_page_is_measured() -> None:
    """A page of the portal or the consoles that answers GET is measured above or named in EXCLUDED."""
    answering = {name: route for name, route in get_pages().items() if name.startswith(NAMESPACES)}
    measured = {p.url_name for p in MEASURED}
    missing = {name: route for name, route in answering.items() if name not in measured | EXCLUDED.keys()}
    assert not missing, f"add these pages to tests/browser/test_axe_pages.PAGES (or to EXCLUDED): {missing}"
    stale = (measured | EXCLUDED.keys()) - answering.keys()
    assert not stale, f"measured or excluded but no such GET page: {sorted(stale)}"
    for vendor, budgets in BUDGET.items():
        unknown = budgets.keys() - {key(p) for p in MEASURED}
        assert not unknown, f"BUDGET[{vendor!r}] names pages not measured: {sorted(unknown)}"


def test_a_query_per_row_is_shown() -> None:
    """The failure message names the query the large tenant repeats, literals aside."""
    one = "SELECT name FROM billing_customer WHERE id = 1"
    small = Measure("/b/small/", 200, ["SELECT 1", one], 0)
    large = Measure("/b/large/", 200, ["SELECT 1", one, one.replace("1", "2"), one.replace("1", "3")], 0)
    assert "+2 × SELECT name FROM billing_customer WHERE id = ?" in explain(small, large)
