"""Reads of the money side: each bank's lag, the statements imported, and the funds expected per value
date and bank beside what was deposited."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet, Sum

from billing.models import Biller
from reconciliation.models import Deposit, DepositLag, DepositStatement, ExpectedFunds

DAYS_PER_PAGE = 60  # (value date, bank) rows on one page of the funds table
_CURSOR = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})\.([0-9]{4})", re.ASCII)


def lags_of(biller: Biller) -> dict[str, int]:
    """The biller's lags: bank code ("" for the biller's default) → business days."""
    return dict(DepositLag.objects.for_biller(biller).values_list("bank_code", "business_days"))


def lag_list(*, biller: Biller) -> QuerySet[DepositLag]:
    """The biller's lags, the default ("") first."""
    return DepositLag.objects.for_biller(biller).order_by("bank_code")


def statement_list(*, biller: Biller) -> QuerySet[DepositStatement]:
    """The biller's statements, the latest import first (the order of ``STATEMENT_ORDERING``)."""
    return (
        DepositStatement.objects.for_biller(biller)
        .select_related("imported_by")
        .order_by(*STATEMENT_ORDERING)
    )


STATEMENT_ORDERING = ("-imported_at", "-id")


@dataclass
class FundsDay:
    """One value date and bank: the funds expected (with the last run's verdict) and the deposits."""

    value_date: datetime.date
    bank_code: str
    expected: int = 0
    expected_rows: int = 0
    payments: int = 0
    deposited: int = 0
    deposits: int = 0
    states: set[str] = field(default_factory=set)
    covered: bool = False  # inside the period of an imported statement

    @property
    def difference(self) -> int:
        """Deposited less expected: below 0 a shortfall, above 0 an excess."""
        return self.deposited - self.expected

    @property
    def state(self) -> str:
        """The run's state when funds were expected (the worst of its rows), else "" (deposit only)."""
        for state in (
            ExpectedFunds.State.SHORT,
            ExpectedFunds.State.EXCESS,
            ExpectedFunds.State.PENDING,
            ExpectedFunds.State.MATCHED,
        ):
            if state in self.states:
                return str(state)
        return ""

    @property
    def state_label(self) -> str:
        return str(ExpectedFunds.State(self.state).label) if self.state else ""

    @property
    def cursor(self) -> str:
        return f"{self.value_date.isoformat()}.{self.bank_code}"


@dataclass
class FundsPage:
    rows: list[FundsDay]
    next_cursor: str | None


def funds_cursor_parse(raw: str) -> tuple[datetime.date, str] | None:
    """A page cursor ("YYYY-MM-DD.bbbb", as ``FundsDay.cursor`` writes it) or None for anything else."""
    match = _CURSOR.fullmatch(raw or "")
    if match is None:
        return None
    try:
        return datetime.date.fromisoformat(match.group(1)), match.group(2)
    except ValueError:
        return None


def funds_by_day(
    *,
    biller: Biller,
    after: tuple[datetime.date, str] | None = None,
    bank_code: str = "",
    size: int = DAYS_PER_PAGE,
) -> FundsPage:
    """The biller's (value date, bank) pairs with funds expected or deposited, latest value date first,
    ``size`` at a time after the cursor ``after``: each with the sums of both sides."""
    expected = ExpectedFunds.objects.for_biller(biller)
    deposited = Deposit.objects.for_biller(biller)
    if bank_code:
        expected = expected.filter(bank_code=bank_code)
        deposited = deposited.filter(bank_code=bank_code)
    if after is not None:
        day, bank = after
        beyond = Q(value_date__lt=day) | Q(value_date=day, bank_code__gt=bank)
        expected = expected.filter(Q(value_date__lte=day) & beyond)
        deposited = deposited.filter(Q(value_date__lte=day) & beyond)
    keys = list(
        expected.order_by()
        .values_list("value_date", "bank_code")
        .union(deposited.order_by().values_list("value_date", "bank_code"))
        .order_by("-value_date", "bank_code")[: size + 1]
    )
    more = len(keys) > size
    keys = keys[:size]
    if not keys:
        return FundsPage(rows=[], next_cursor=None)
    rows = {key: FundsDay(value_date=key[0], bank_code=key[1]) for key in keys}
    first, last = min(k[0] for k in keys), max(k[0] for k in keys)
    banks = {k[1] for k in keys}
    window = Q(value_date__gte=first, value_date__lte=last, bank_code__in=banks)
    for item in (
        expected.filter(window)
        .order_by()
        .values("value_date", "bank_code", "state")
        .annotate(amount=Sum("amount"), payments=Sum("count"), n=Count("id"))
    ):
        row = rows.get((item["value_date"], item["bank_code"]))
        if row is not None:
            row.expected += item["amount"] or 0
            row.payments += item["payments"] or 0
            row.expected_rows += item["n"]
            row.states.add(item["state"])
    for sums in (
        deposited.filter(window)
        .order_by()
        .values("value_date", "bank_code")
        .annotate(amount=Sum("amount"), n=Count("id"))
    ):
        row = rows.get((sums["value_date"], sums["bank_code"]))
        if row is not None:
            row.deposited += sums["amount"] or 0
            row.deposits += sums["n"]
    periods = list(
        DepositStatement.objects.for_biller(biller)
        .filter(first_date__lte=last, last_date__gte=first)
        .values_list("first_date", "last_date")
    )
    page = [rows[key] for key in keys]
    for row in page:
        row.covered = any(start <= row.value_date <= end for start, end in periods)
    return FundsPage(rows=page, next_cursor=page[-1].cursor if more else None)
