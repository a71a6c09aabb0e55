"""The figures of the console's home (one tenant) and of the iDC's reconciliation summary (every tenant).

Every figure is an aggregate in the database — a fixed number of queries whatever the volume:

- invoices: open (published, not yet due), overdue (published, past the due date) and paid today, each
  count and yen, in one query over ``Invoice``;
- payments per day of the last ``PAYMENT_DAYS`` days, in one ``GROUP BY`` over billing's
  ``InvoicePayment``. Billing's payment facts rather than payeasy's ``LedgerEntry``: they are what the
  biller sees everywhere else in its console and portal (paid at the payer's time, amount, outcome),
  recorded in the same transaction as the ledger entry, so the sums are the ledger's; and ``paid_at`` is
  when the payer paid, where a ledger entry's time is when it was applied;
- open findings by age (days since found, JST) in one query over ``Finding``;
- the last reconciliation run, one query.

Days are Japan's (JST): "today" is the JST date, a day runs from 00:00 to 24:00 JST.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing import selectors as billing_selectors
from billing.models import Biller, Invoice, InvoicePayment
from reconciliation.models import Finding, Run

TOKYO = ZoneInfo("Asia/Tokyo")
PAYMENT_DAYS = 30
# (key, first day, last day) of age in whole JST days since found; None: no upper bound
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-2", 0, 2),
    ("3-7", 3, 7),
    ("8-30", 8, 30),
    ("31+", 31, None),
)


DateRange = tuple[datetime.date | None, datetime.date]  # (oldest or None: no bound, newest)


def jst_today(now: datetime.datetime | None = None) -> datetime.date:
    return (now or timezone.now()).astimezone(TOKYO).date()


def jst_day_start(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=TOKYO)


@dataclass(frozen=True)
class Tally:
    count: int
    amount: int  # yen


@dataclass(frozen=True)
class InvoiceFigures:
    open: Tally
    overdue: Tally
    paid_today: Tally


@dataclass(frozen=True)
class DayPayments:
    day: datetime.date
    count: int  # payments received (every outcome but reversals)
    amount: int  # yen received
    reversals: int  # reversals (取消) made that day
    reversed_amount: int  # yen reversed, as a positive amount

    @property
    def net(self) -> int:
        return self.amount - self.reversed_amount


@dataclass(frozen=True)
class AgeBucket:
    key: str
    first_day: int
    last_day: int | None
    count: int
    amount: int
    found_from: datetime.date | None  # the oldest found date in the bucket (None: no lower bound)
    found_to: datetime.date  # the newest found date in the bucket


@dataclass(frozen=True)
class Dashboard:
    today: datetime.date
    counts: dict[str, int]
    invoices: InvoiceFigures
    payments: list[DayPayments]
    ages: list[AgeBucket]
    last_run: Run | None

    @property
    def payments_total(self) -> Tally:
        return Tally(sum(d.count for d in self.payments), sum(d.amount for d in self.payments))

    @property
    def open_findings(self) -> Tally:
        return Tally(sum(b.count for b in self.ages), sum(b.amount for b in self.ages))


def _tally(row: dict[str, int | None], name: str) -> Tally:
    return Tally(row[f"{name}_n"] or 0, row[f"{name}_yen"] or 0)


def invoice_figures(*, biller: Biller, today: datetime.date) -> InvoiceFigures:
    """Open, overdue and paid-today invoices of ``biller`` (credit notes are not owed to it): one query."""
    start = jst_day_start(today)
    end = jst_day_start(today + datetime.timedelta(days=1))
    unpaid = Q(status=Invoice.Status.PUBLISHED) & ~Q(kind=Invoice.Kind.CREDIT_NOTE)
    open_q = unpaid & Q(due_date__gte=today)
    overdue_q = unpaid & Q(due_date__lt=today)
    paid_q = Q(status=Invoice.Status.PAID, paid_at__gte=start, paid_at__lt=end) & ~Q(
        kind=Invoice.Kind.CREDIT_NOTE
    )
    row = (
        Invoice.objects.for_biller(biller)
        .filter(unpaid | paid_q)
        .aggregate(
            open_n=Count("id", filter=open_q),
            open_yen=Sum("total", filter=open_q),
            overdue_n=Count("id", filter=overdue_q),
            overdue_yen=Sum("total", filter=overdue_q),
            paid_n=Count("id", filter=paid_q),
            paid_yen=Sum("total", filter=paid_q),
        )
    )
    return InvoiceFigures(
        open=_tally(row, "open"), overdue=_tally(row, "overdue"), paid_today=_tally(row, "paid")
    )


def payments_by_day(*, biller: Biller, today: datetime.date, days: int = PAYMENT_DAYS) -> list[DayPayments]:
    """``biller``'s payments per JST day of the ``days`` days up to ``today``, oldest first, a row for
    every day (zero when nothing was paid): one query."""
    first = today - datetime.timedelta(days=days - 1)
    reversal = Q(outcome=InvoicePayment.Outcome.REVERSAL)
    rows = (
        InvoicePayment.objects.for_biller(biller)
        .filter(
            paid_at__gte=jst_day_start(first), paid_at__lt=jst_day_start(today + datetime.timedelta(days=1))
        )
        .annotate(day=TruncDate("paid_at", tzinfo=TOKYO))
        .values("day")
        .annotate(
            n=Count("id", filter=~reversal),
            yen=Sum("amount", filter=~reversal),
            rev_n=Count("id", filter=reversal),
            rev_yen=Sum("amount", filter=reversal),
        )
        .order_by("day")
    )
    by_day: dict[datetime.date, dict[str, Any]] = {r["day"]: dict(r) for r in rows}
    result = []
    for i in range(days):
        day = first + datetime.timedelta(days=i)
        r = by_day.get(day, {})
        result.append(
            DayPayments(
                day=day,
                count=r.get("n") or 0,
                amount=r.get("yen") or 0,
                reversals=r.get("rev_n") or 0,
                reversed_amount=-(r.get("rev_yen") or 0),
            )
        )
    return result


def _bucket_bounds(today: datetime.date, first_day: int, last_day: int | None) -> tuple[Q, DateRange]:
    """The filter on ``found_at`` of findings ``first_day``..``last_day`` JST days old, and the found
    dates it covers."""
    newest = today - datetime.timedelta(days=first_day)
    q = Q(found_at__lt=jst_day_start(newest + datetime.timedelta(days=1)))
    oldest = None
    if last_day is not None:
        oldest = today - datetime.timedelta(days=last_day)
        q &= Q(found_at__gte=jst_day_start(oldest))
    return q, (oldest, newest)


def finding_ages(*, biller: Biller, today: datetime.date) -> list[AgeBucket]:
    """``biller``'s open findings by age (whole JST days since found: 0–2, 3–7, 8–30, over 30), count
    and yen at stake: one query."""
    aggregates: dict[str, Count | Sum] = {}
    bounds: dict[str, DateRange] = {}
    for key, first_day, last_day in AGE_BUCKETS:
        q, bounds[key] = _bucket_bounds(today, first_day, last_day)
        name = key.replace("-", "_").replace("+", "_up")
        aggregates[f"b{name}_n"] = Count("id", filter=q)
        aggregates[f"b{name}_yen"] = Sum("amount", filter=q)
    row = Finding.objects.for_biller(biller).filter(state=Finding.State.OPEN).aggregate(**aggregates)
    buckets = []
    for key, first_day, last_day in AGE_BUCKETS:
        name = key.replace("-", "_").replace("+", "_up")
        found_from, found_to = bounds[key]
        buckets.append(
            AgeBucket(
                key=key,
                first_day=first_day,
                last_day=last_day,
                count=row[f"b{name}_n"] or 0,
                amount=row[f"b{name}_yen"] or 0,
                found_from=found_from,
                found_to=found_to,
            )
        )
    return buckets


def last_run(*, biller: Biller) -> Run | None:
    """``biller``'s latest reconciliation run (by start), with whoever started it: one query."""
    return Run.objects.for_biller(biller).select_related("started_by").order_by("-started_at", "-id").first()


def dashboard_read(*, biller: Biller, now: datetime.datetime | None = None) -> Dashboard:
    """Everything the console's home shows of ``biller``: six queries, whatever the volume."""
    today = jst_today(now)
    return Dashboard(
        today=today,
        counts=billing_selectors.biller_counts(biller=biller),
        invoices=invoice_figures(biller=biller, today=today),
        payments=payments_by_day(biller=biller, today=today),
        ages=finding_ages(biller=biller, today=today),
        last_run=last_run(biller=biller),
    )


# --- the iDC's summary across tenants ---------------------------------------------------------------------


@dataclass
class TenantRow:
    biller: Biller
    open_count: int = 0
    open_amount: int = 0
    oldest_found_at: datetime.datetime | None = None
    last_run_at: datetime.datetime | None = None
    last_run_date: datetime.date | None = None  # the processing date of the latest run
    paid_today: Tally = field(default_factory=lambda: Tally(0, 0))

    def oldest_age_days(self, today: datetime.date) -> int | None:
        """Whole JST days since the oldest open finding was found (None: no open finding)."""
        if self.oldest_found_at is None:
            return None
        return (today - self.oldest_found_at.astimezone(TOKYO).date()).days


def staff_summary(*, now: datetime.datetime | None = None) -> tuple[datetime.date, list[TenantRow]]:
    """Every tenant's open findings (count, yen, oldest), last run and payments received today (JST),
    tenants with the oldest open finding first, then the rest by biller code: four queries.

    Crosses tenants: the caller (the staff console) runs it under ``billing.tenancy.cross_tenant``.
    """
    today = jst_today(now)
    start = jst_day_start(today)
    rows = {b.pk: TenantRow(biller=b) for b in Biller.objects.order_by("biller_code")}
    findings = (
        Finding.objects.cross_tenant("staff")
        .filter(state=Finding.State.OPEN)
        .values("biller_id")
        .annotate(n=Count("id"), yen=Sum("amount"), oldest=Min("found_at"))
        .order_by()
    )
    for f in findings:
        row = rows.get(f["biller_id"])
        if row is not None:
            row.open_count, row.open_amount, row.oldest_found_at = f["n"], f["yen"] or 0, f["oldest"]
    runs = (
        Run.objects.cross_tenant("staff")
        .values("biller_id")
        .annotate(at=Max("started_at"), day=Max("processing_date"))
        .order_by()
    )
    for r in runs:
        row = rows.get(r["biller_id"])
        if row is not None:
            row.last_run_at, row.last_run_date = r["at"], r["day"]
    payments = (
        InvoicePayment.objects.cross_tenant("staff")
        .filter(paid_at__gte=start, paid_at__lt=jst_day_start(today + datetime.timedelta(days=1)))
        .exclude(outcome=InvoicePayment.Outcome.REVERSAL)
        .values("biller_id")
        .annotate(n=Count("id"), yen=Sum("amount"))
        .order_by()
    )
    for p in payments:
        row = rows.get(p["biller_id"])
        if row is not None:
            row.paid_today = Tally(p["n"], p["yen"] or 0)
    ordered = sorted(
        rows.values(),
        key=lambda r: (
            r.oldest_found_at is None,
            r.oldest_found_at or start,
            r.biller.biller_code,
        ),
    )
    return today, ordered
