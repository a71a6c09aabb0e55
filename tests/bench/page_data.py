"""The data of the page benchmark (tests/bench/test_pages.py): billers, customers and invoices loaded with
PostgreSQL's COPY as the database owner (row-level security takes no COPY FROM; the owner's does not
apply), in the columns and shapes the product's CSV import stores (billing.imports), then analysed.

Each biller's customers are ``C0000000``…; its invoices spread over 24 monthly issue dates (December
2024 to November 2026): bills of the last two months published, older ones paid. One customer — the
*measured* one, ``C0000000`` — has ``measured_invoices`` bills of its own, the rest are dealt round the
other customers, newest month first (each customer has its latest months' bills).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection

from billing.imports.records import INVOICE_COLUMNS, INVOICE_TABLE
from billing.imports.storing import copy_escape
from billing.models import Biller, Customer, Invoice
from billing.numbers import new_registration_code
from tests.bench.generate import customer_code
from tests.factories import make_biller, make_contract

MONTHS = 24  # of bills: December 2024 … November 2026
FIRST_MONTH = (2024, 12)
PUBLISHED_MONTHS = 2  # the newest months are still open; older bills are paid
CHUNK = 1 << 20  # characters of COPY text sent at a time
ITEMS = (("基本料金", "10", 1200), ("電力量料金", "10", 31), ("食料品", "8", 540), ("手数料", "exempt", 330))
DESCRIPTIONS = ("月分電気料金", "月分ガス料金", "月分水道料金")


@dataclass
class Loaded:
    """What was loaded for one biller."""

    biller: Biller
    customers: int
    invoices: int
    measured: Customer


def owner_connection() -> Any:
    import psycopg

    from tests.conftest import owner_credentials

    return psycopg.connect(**owner_credentials(), dbname=connection.settings_dict["NAME"], autocommit=True)  # type: ignore[arg-type]


def _month(k: int) -> datetime.date:
    year, month = FIRST_MONTH
    month += k
    return datetime.date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def _lines(k: int, rng: random.Random) -> tuple[str, int, int, int, int, int, int]:
    """A bill's lines as the import stores them (JSON text) and its totals, tax floored per rate."""
    sums = {"10": 0, "8": 0, "exempt": 0}
    lines = []
    for description, category, price in ITEMS[: 1 + k % 3]:
        quantity = 1 if price > 500 else 100 + rng.randrange(400)
        amount = quantity * price
        sums[category] += amount
        lines.append(
            {
                "description": description,
                "quantity": quantity,
                "unit_price": price,
                "tax_category": category,
                "amount": amount,
            }
        )
    tax_10, tax_8 = sums["10"] // 10, sums["8"] * 8 // 100
    total = sums["10"] + tax_10 + sums["8"] + tax_8 + sums["exempt"]
    text = json.dumps(lines, ensure_ascii=False, separators=(",", ":"))
    return text, sums["10"], tax_10, sums["8"], tax_8, sums["exempt"], total


def copy_customers(cursor: Any, biller: Biller, count: int) -> None:
    columns = (
        "biller_id, code, name, name_kana, email, kind, postal_code, address, status, created_at, "
        "registration_code"
    )
    with cursor.copy(f"COPY billing_customer ({columns}) FROM STDIN") as copy:
        text: list[str] = []
        size = 0
        for i in range(count):
            line = (
                f"{biller.pk}\t{customer_code(i)}\t顧客{i}\tｺｷｬｸ\tc{i}@example.jp\tconsumer\t100-0001\t"
                f"東京都千代田区千代田{i % 9 + 1}-{i % 30 + 1}\tactive\t2024-11-01T00:00:00+00:00\t"
                f"{new_registration_code()}\n"
            )
            text.append(line)
            size += len(line)
            if size >= CHUNK:
                copy.write("".join(text))
                text, size = [], 0
        copy.write("".join(text))


def copy_invoices(
    cursor: Any, biller: Biller, customer_ids: list[int], invoices: int, measured_invoices: int, seed: int
) -> None:
    """``invoices`` bills of ``biller``: ``measured_invoices`` of the first customer, the rest dealt round
    the others; numbered ``B<n>``, issued monthly, published or paid, each with its 確認番号. Each row is
    a few strings made once (a month's dates and status, a line set and its totals) joined."""
    rng = random.Random(seed)
    now = datetime.datetime.now(datetime.UTC).isoformat()
    bodies = []  # a few line sets, reused: the import's JSON shapes, escaped for COPY, and their totals
    for k in range(64):
        lines, s10, t10, s8, t8, exempt, total = _lines(k, rng)
        bodies.append(
            f"{copy_escape(lines)}\tf\t{biller.tax_rounding}\t{s10}\t{t10}\t{s8}\t{t8}\t{exempt}\t{total}\t"
        )
    heads, tails = [], []  # by month: dates and 料金名 (three kinds); status … paid_at
    for month in range(MONTHS):
        issued = _month(month)
        due = issued + datetime.timedelta(days=27)
        heads.append([f"{issued.isoformat()}\t{due.isoformat()}\t{issued.month}{d}\t" for d in DESCRIPTIONS])
        paid = month < MONTHS - PUBLISHED_MONTHS  # on its due date
        status, paid_at = ("paid", f"{due.isoformat()} 10:00+09") if paid else ("published", "\\N")
        tails.append((f"{status}\t顧客\t\t", f"\t\t{now}\t{now}\t{now}\t{paid_at}\n"))
    others = customer_ids[1:] or customer_ids
    spread = len(others)
    prefix = f"{biller.pk}\tinvoice\t"
    columns = ", ".join((*INVOICE_COLUMNS, "paid_at"))
    confirmation = rng.randrange
    with cursor.copy(f"COPY {INVOICE_TABLE} ({columns}) FROM STDIN") as copy:
        text: list[str] = []
        for n in range(invoices):
            if n < measured_invoices:
                customer, month = customer_ids[0], MONTHS - 1 - n % MONTHS
            else:
                m = n - measured_invoices
                customer, month = others[m % spread], MONTHS - 1 - (m // spread) % MONTHS
            status, rest = tails[month]
            text.append(
                f"{prefix}{customer}\tB{n:08d}\t\t{heads[month][n % 3]}{bodies[n % 64]}{status}"
                f"{confirmation(1_000_000):06d}{rest}"
            )
            if len(text) == 4096:
                copy.write("".join(text))
                text = []
        copy.write("".join(text))


@contextlib.contextmanager
def plain_indexes_dropped(cursor: Any) -> Iterator[int]:
    """The invoice table's indexes other than its constraints' dropped for a bulk load and built again
    after it (after a failure too): one sorted build each instead of a million inserts into each."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [INVOICE_TABLE, INVOICE_TABLE],
    )
    indexes = cursor.fetchall()
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    try:
        yield len(indexes)
    finally:
        cursor.execute("SET maintenance_work_mem = '256MB'")
        for _name, definition in indexes:
            cursor.execute(definition)


@dataclass
class Spec:
    """A biller to load: its slug and payee number (収納機関番号), customers, bills, the measured
    customer's bills."""

    slug: str
    payee: str
    customers: int
    invoices: int
    measured_invoices: int


def load(specs: list[Spec], seed: int = 7) -> tuple[list[Loaded], dict[str, float]]:
    """Billers (each with a bank contract for every channel), their customers and bills, by COPY; the
    seconds of each step."""
    seconds: dict[str, float] = {}
    billers = []
    for spec in specs:
        biller = make_biller(payee_number=spec.payee, biller_code=f"{spec.payee}001", slug=spec.slug)
        make_contract(biller, "0001", channels=("01", "02", "03", "05"))
        billers.append(biller)
    ids: list[list[int]] = []
    with owner_connection() as conn, conn.cursor() as cursor:
        started = time.perf_counter()
        for biller, spec in zip(billers, specs, strict=True):
            copy_customers(cursor, biller, max(spec.customers, 2))
            cursor.execute("SELECT id FROM billing_customer WHERE biller_id = %s ORDER BY code", [biller.pk])
            ids.append([row[0] for row in cursor.fetchall()])
        seconds["customers"] = time.perf_counter() - started
        started = time.perf_counter()
        with plain_indexes_dropped(cursor):
            for k, (biller, spec) in enumerate(zip(billers, specs, strict=True)):
                measured = min(spec.measured_invoices, spec.invoices)
                copy_invoices(cursor, biller, ids[k], spec.invoices, measured, seed + k)
            seconds["invoices"] = time.perf_counter() - started
        seconds["indexes"] = time.perf_counter() - started - seconds["invoices"]
    loaded = [
        Loaded(
            biller,
            max(spec.customers, 2),
            spec.invoices,
            Customer.objects.get(biller=biller, code=customer_code(0)),
        )
        for biller, spec in zip(billers, specs, strict=True)
    ]
    return loaded, seconds


def bills_of(biller: Biller, customer: Customer) -> list[Invoice]:
    """``customer``'s bills, newest first, as the portal lists them."""
    return list(Invoice.objects.filter(biller=biller, customer=customer).order_by("-issue_date", "-id"))
