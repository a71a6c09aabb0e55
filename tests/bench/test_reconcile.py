"""Reconciling a day of a million payments for one biller, against a plain aggregate over the same rows
(issue: reconciliation).

Targets: the run (every comparison, findings stored) ≤ 60 s for 1,000,000 payments; reported beside a
plain ``SELECT count(*), sum(amount)`` over the same notices in the same run. The console's payments page
(first page, newest first) ≤ 50 ms with those 1,000,000 ledger entries. ``reconcile_check`` passes after.

The books are written by SQL as the owner (the line and the applier would take far longer than the
benchmark itself, and they are measured by their own benchmark): a published-then-paid invoice, its
frame, its notice, its ledger entry and billing's payment fact per payment, with a few hundred double and
provisional payments, as the line and applier would have written them. BENCH_RECONCILE_PAYMENTS makes
it smaller.
"""

from __future__ import annotations

import datetime
import os
import statistics
import time
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count
from django.test import Client

from billing.models import Invoice
from payeasy.models import LedgerEntry, Message, Notice
from reconciliation.models import Finding
from reconciliation.services.checks import reconcile_check
from reconciliation.services.reconcile import reconcile
from tests.bench.conftest import owner_execute, report
from tests.bench.test_invoice_import import owner_cursor
from tests.factories import make_member
from tests.payeasy import line_helpers as h

PAYMENTS = int(os.environ.get("BENCH_RECONCILE_PAYMENTS", 1_000_000))
DOUBLES = PAYMENTS // 5000  # 200 at a million
PROVISIONAL = PAYMENTS // 5000
DAY = datetime.date(2026, 11, 26)
TARGET_SECONDS = 60.0
PAGE_TARGET_MS = 50.0

pytestmark = pytest.mark.django_db(transaction=True)


def _columns(table: str) -> list[str]:
    with connection.cursor() as cursor:
        return [c.name for c in connection.introspection.get_table_description(cursor, table)]


def _copy_rows(table: str, template_id: int, overrides: dict[str, str], series: str) -> None:
    """INSERT into ``table`` one row per ``series`` value ``g``, copying the row ``template_id`` but for
    ``overrides`` (column → SQL expression of ``g`` and the template ``t``)."""
    columns = [c for c in _columns(table) if c != "id"]
    values = ", ".join(overrides.get(c, f"t.{connection.ops.quote_name(c)}") for c in columns)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    owner_execute(
        f"INSERT INTO {table} ({names}) SELECT {values} FROM {table} t, {series} WHERE t.id = {template_id}"  # noqa: S608
    )


class Steps:
    """Seconds per step of writing the books, printed (where the set-up's time goes)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        print(f"  books: {name} {now - self.last:.1f} s")
        self.last = now


def write_books(biller: Any) -> None:
    """A million paid invoices with their frames, notices, ledger entries and facts (see the docstring)."""
    step = Steps()
    invoice = h.published_invoice(biller, price=1000)
    h.send(h.payment(biller, invoice))
    from payeasy.services.payments import notices_apply

    notices_apply()
    message = Message.objects.get(message_type="1200")
    notice = Notice.objects.get()
    entry = LedgerEntry.objects.get()
    fact = invoice.payments.get()
    step("the template payment")
    n = PAYMENTS - 1
    series = f"generate_series(1, {n}) AS g"
    _copy_rows(
        "billing_invoice",
        invoice.pk,
        {
            "number": "'R-' || lpad(g::text, 8, '0')",
            "external_id": "'bench-' || g",
            "total": "1000 + g % 20000",
        },
        series,
    )
    step("invoices")
    _copy_rows(
        "payeasy_message",
        message.pk,
        {"transaction_key": "'MPNBENCH01' || '20261126' || lpad(g::text, 8, '0')"},
        series,
    )
    step("frames")
    # notice g pays invoice g (its number) reported by frame g (its key); banks 0001/0005/0009 in turn
    with owner_cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO payeasy_notice (transaction_key, kind, source, biller_id, key_date, customer_number,
                confirmation_number, amount, bank_code, branch_code, channel, paid_at, payer_name_kana,
                original_key, message_id, teller_file_id, received_at, applied_at, attempts, last_error,
                suspect)
            SELECT m.transaction_key, 'payment', 'line', {biller.pk}, %s, i.id::text, '123456', i.total,
                (ARRAY['0001','0005','0009'])[1 + i.id %% 3], '001', '02', now(), '', '', m.id, NULL, now(),
                now(), 0, '', ''
            FROM generate_series(1, {n}) AS g
            JOIN billing_invoice i ON i.biller_id = {biller.pk} AND i.number = 'R-' || lpad(g::text, 8, '0')
            JOIN payeasy_message m
              ON m.transaction_key = 'MPNBENCH01' || '20261126' || lpad(g::text, 8, '0')
             AND m.biller_id = {biller.pk}
            """,  # noqa: S608
            [DAY],
        )
        step("notices")
        # every notice paid its bill; the first DOUBLES bills are paid twice (a second notice later) and
        # PROVISIONAL payments matched no bill
        cursor.execute(
            f"""
            INSERT INTO payeasy_ledgerentry (biller_id, notice_id, invoice_id, outcome, reason, amount,
                reverses_id, created_at)
            SELECT {biller.pk}, n.id, n.customer_number::bigint, 'paid', '', n.amount, NULL, now()
            FROM payeasy_notice n WHERE n.biller_id = {biller.pk} AND n.id <> {notice.pk}
            """  # noqa: S608
        )
        step("ledger entries")
        cursor.execute(
            f"""
            INSERT INTO billing_invoicepayment (biller_id, invoice_id, amount, paid_at, bank_code, channel,
                outcome, reason, payment_key, entry_ref, created_at)
            SELECT e.biller_id, e.invoice_id, e.amount, now(), '0001', 'atm', e.outcome, '',
                'K' || e.id, e.id, now()
            FROM payeasy_ledgerentry e WHERE e.biller_id = {biller.pk} AND e.id <> {entry.pk}
            """  # noqa: S608
        )
        step("payment facts")
        cursor.execute(
            f"UPDATE billing_invoice SET status = 'paid', paid_at = now() "  # noqa: S608
            f"WHERE biller_id = {biller.pk} AND number LIKE 'R-%%'"
        )
        cursor.connection.close()
    step("bills paid")
    assert fact.entry_ref == entry.pk
    # the anomalies go through the real line and applier
    bills = list(Invoice.objects.filter(biller=biller, number__startswith="R-").order_by("pk")[:DOUBLES])
    for bill in bills:
        h.send(h.payment(biller, bill))
    for k in range(PROVISIONAL):
        h.send(h.payment(biller, invoice, customer_number=str(10**9 + k)))
    notices_apply(limit=10_000)
    step("double and provisional payments through the line")
    owner_execute(
        "VACUUM ANALYZE billing_invoice",
        "VACUUM ANALYZE payeasy_message",
        "VACUUM ANALYZE payeasy_notice",
        "VACUUM ANALYZE payeasy_ledgerentry",
        "VACUUM ANALYZE billing_invoicepayment",
    )
    step("vacuum analyze")


def plain_aggregate_seconds(biller: Any) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), sum(amount) FROM payeasy_notice WHERE biller_id = %s AND key_date = %s",
                [biller.pk, DAY],
            )
            count, _total = cursor.fetchone()
        best = min(best, time.perf_counter() - started)
    assert count == PAYMENTS + DOUBLES + PROVISIONAL
    return best


def payments_page_ms(biller: Any) -> tuple[float, float]:
    """The first page's time as a server spends it: through Django's handler, without the test runner's
    template instrumentation (which records every context for assertions and doubles a page's cost)."""
    from django.template import Template
    from django.test import utils as test_utils

    instrumented = Template._render
    Template._render = test_utils._TestState.saved_data.template_render  # type: ignore[attr-defined,method-assign]
    try:
        return _payments_page_ms(biller)
    finally:
        Template._render = instrumented  # type: ignore[method-assign]


def _payments_page_ms(biller: Any) -> tuple[float, float]:
    user = make_member(biller)
    client = Client()
    client.force_login(user)
    url = f"/b/{biller.slug}/console/payments/"
    for _ in range(3):
        assert client.get(url).status_code == 200
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        for query in sorted(queries.captured_queries, key=lambda q: -float(q["time"])):
            print(f"  page query {float(query['time']) * 1000:.1f} ms: {query['sql'][:300]}")
        slowest = max(queries.captured_queries, key=lambda q: float(q["time"]))["sql"]
        if slowest.lstrip().upper().startswith("SELECT"):
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN ANALYZE " + slowest)
                print("\n".join(r[0] for r in cursor.fetchall()))
        profile = cProfile.Profile()
        profile.runcall(client.get, url)
        pstats.Stats(profile).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(40)
    times = []
    for _ in range(20):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return statistics.median(times), max(times)


def test_reconcile_a_million_payments(postgres_only: None) -> None:
    from billing.tenancy import bind_cross_tenant

    bind_cross_tenant("tests")
    biller = h.open_line_biller()
    started = time.perf_counter()
    write_books(biller)
    written = time.perf_counter() - started
    plain = plain_aggregate_seconds(biller)
    started = time.perf_counter()
    if os.environ.get("BENCH_PROFILE"):  # where the run's time goes: cProfile, sorted by cumulative time
        import cProfile
        import pstats

        profile = cProfile.Profile()
        run = profile.runcall(reconcile, biller=biller, processing_date=DAY)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    else:
        run = reconcile(biller=biller, processing_date=DAY)
    seconds = time.perf_counter() - started
    print(f"  reconcile: {seconds:.2f} s (plain count/sum {plain:.3f} s)")
    again_started = time.perf_counter()
    reconcile(biller=biller, processing_date=DAY)
    again = time.perf_counter() - again_started
    kinds = dict(Finding.objects.for_biller(biller).values_list("kind").annotate(n=Count("id")))
    check_started = time.perf_counter()
    failures = reconcile_check(billers=[biller], day=DAY)
    check_seconds = time.perf_counter() - check_started
    owner_execute("CHECKPOINT")  # the bulk load's dirty pages written first: the page on a settled database
    page_median, page_max = payments_page_ms(biller)
    report(
        "reconcile",
        {
            "payments": PAYMENTS + DOUBLES + PROVISIONAL,
            "books_written_s": round(written, 1),
            "reconcile_s": round(seconds, 2),
            "reconcile_again_s": round(again, 2),
            "plain_count_sum_s": round(plain, 3),
            "reconcile_over_plain": round(seconds / plain, 1),
            "reconcile_check_s": round(check_seconds, 2),
            "findings": kinds,
            "payments_page_first_ms_median": round(page_median, 1),
            "payments_page_first_ms_max": round(page_max, 1),
            "target_reconcile_s": TARGET_SECONDS,
            "target_page_ms": PAGE_TARGET_MS,
        },
    )
    assert failures == []
    assert run.found == DOUBLES + PROVISIONAL
    assert kinds == {"double_payment": DOUBLES, "provisional": PROVISIONAL}
    assert seconds <= TARGET_SECONDS
    assert page_median <= PAGE_TARGET_MS
