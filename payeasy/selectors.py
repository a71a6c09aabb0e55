"""Reads of the payeasy app that carry a rule."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from billing.models import Biller
from payeasy.banks import Bank
from payeasy.codec import JST
from payeasy.models import (
    Channel,
    ContractedBank,
    HandoffEndpoint,
    HandoffKey,
    LedgerEntry,
    LineState,
    Message,
    Notice,
)


def line_payment_counts(
    *, biller: Biller, days: Iterable[datetime.date]
) -> dict[datetime.date, tuple[int, int]]:
    """Spec §5 rule 7: the count and sum of the distinct payments (1200, 1700) the line stored for each of
    ``days``, reversals not subtracted — what the 1610 answers and what reconciliation compares with the
    centre's 1600. Days without payments are absent."""
    return {
        row["key_date"]: (row["n"], row["total"] or 0)
        for row in Notice.objects.filter(
            biller=biller, kind=Notice.Kind.PAYMENT, source=Notice.Source.LINE, key_date__in=list(days)
        )
        .values("key_date")
        .annotate(n=Count("id"), total=Sum("amount"))
    }


def contracted_bank_list(*, biller: Biller) -> QuerySet[ContractedBank]:
    return ContractedBank.objects.filter(biller=biller).order_by("bank_code", "valid_from")


def contract_code(
    contracts: Iterable[ContractedBank], *, bank_code: str, channel: str, day: datetime.date
) -> str:
    """Spec §5 rule 5's first checks over a biller's contracts: "" when ``bank_code`` may take
    ``channel`` on ``day``, else ``A002`` (no contract then) or ``A010`` (channel not allowed)."""
    rows = [r for r in contracts if r.bank_code == bank_code and r.covers(day)]
    if not rows:
        return "A002"
    if not any(r.allows(channel) for r in rows):
        return "A010"
    return ""


def contracted_bank_check(*, biller: Biller, bank_code: str, channel: str, day: datetime.date) -> str | None:
    """The MPN response code for a bank/channel on a day: None when allowed, else ``A002`` or ``A010``."""
    rows = ContractedBank.objects.filter(biller=biller, bank_code=bank_code)
    return contract_code(rows, bank_code=bank_code, channel=channel, day=day) or None


# ---------------------------------------------------------------------------------------------------------
# 情報リンク: the banks a payer may be handed over to
# ---------------------------------------------------------------------------------------------------------

FREQUENT_DAYS = 90


@dataclass(frozen=True)
class HandoffBank:
    """A bank in the chooser: its master data, its endpoint, and this biller's recent 情報リンク payments
    through it (the chooser lists frequently used banks first)."""

    bank: Bank
    endpoint: HandoffEndpoint
    uses: int

    @property
    def code(self) -> str:
        return self.bank.code


def bank_matches(bank: Bank, query: str) -> bool:
    """The query in the bank's code, name, kana (any kana width: compared as 全銀 half-width kana),
    hiragana or romaji."""
    from billing.kana import to_zengin_kana

    q = query.strip()
    if not q:
        return True
    q_kana = to_zengin_kana(q)
    return (
        q in bank.code
        or q in bank.name
        or (bool(q_kana) and q_kana in bank.kana)
        or q in bank.hira
        or q.lower() in bank.roma.lower()
    )


def handoff_banks(biller: Biller, day: datetime.date, *, query: str = "") -> list[HandoffBank]:
    """The banks ``biller``'s payers may pay through by 情報リンク on ``day`` (JST): banks with an enabled
    endpoint and an active key that the biller has a contract with covering ``day`` and allowing channel
    05. ``query`` filters by code, name or kana. Most used first (the biller's 情報リンク payments of the
    last 90 days, from the notices), then by kana."""
    from payeasy.banks import bank_get

    contracts = [
        c for c in ContractedBank.objects.filter(biller=biller, allows_info_link=True) if c.covers(day)
    ]
    contracted = {c.bank_code for c in contracts}
    if not contracted:
        return []
    endpoints = {
        e.bank_code: e
        for e in HandoffEndpoint.objects.filter(
            bank_code__in=contracted,
            enabled=True,
            keys__status=HandoffKey.Status.ACTIVE,
        ).distinct()
    }
    uses = dict(
        Notice.objects.filter(  # index notice_biller_date
            biller=biller,
            key_date__gte=day - datetime.timedelta(days=FREQUENT_DAYS),
            key_date__lte=day,
            kind=Notice.Kind.PAYMENT,
            channel=Channel.INFO_LINK,
            bank_code__in=list(endpoints),
        )
        .values("bank_code")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("bank_code", "n")
    )
    rows = []
    for code, endpoint in endpoints.items():  # each contracted for 05 today (contracts above)
        bank = bank_get(code)
        if bank is None or not bank_matches(bank, query):
            continue
        rows.append(HandoffBank(bank=bank, endpoint=endpoint, uses=uses.get(code, 0)))
    return sorted(rows, key=lambda r: (-r.uses, r.bank.kana, r.code))


def handoff_bank(biller: Biller, day: datetime.date, bank_code: str) -> HandoffBank | None:
    """One bank of :func:`handoff_banks`, or None when the payer may not be handed over to it."""
    return next((b for b in handoff_banks(biller, day) if b.code == bank_code), None)


# ---------------------------------------------------------------------------------------------------------
# The operations view of the iDC staff: the line, message rates, notices per tenant, the message history.
# Read-only, and bounded for tables of millions of rows: every query runs on an index (see each function).
# ---------------------------------------------------------------------------------------------------------

KEY_LENGTH = 26
SEARCH_MAX_DAYS = 31
NOTICE_TYPES = ("1200", "1300", "1700")
PAYMENT_MESSAGE_TYPES = frozenset({"1200", "1700"})  # a payment (1700: sent again by the centre)


def jst_today() -> datetime.date:
    return timezone.now().astimezone(JST).date()


def jst_day_start(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=JST)


@dataclass(frozen=True)
class LineOverview:
    """The online state (an unsaved closed state when the server never ran) and the last frame's time."""

    line: LineState
    last_message_at: datetime.datetime | None


def line_overview() -> LineOverview:
    line = LineState.objects.filter(pk=1).first() or LineState()
    # index message_time, read backwards: one row
    last = Message.objects.order_by("-received_at").values_list("received_at", flat=True).first()
    return LineOverview(line=line, last_message_at=last)


@dataclass(frozen=True)
class RateRow:
    minute: datetime.datetime  # start of the minute
    counts: list[int]  # one per type, in the order of RateTable.types
    total: int


@dataclass(frozen=True)
class RateTable:
    """Messages received per minute and message type, newest minute first, minutes without any included."""

    since: datetime.datetime
    types: list[str]
    rows: list[RateRow]
    totals: list[int]
    total: int
    peak: int  # the largest total of one minute

    @property
    def per_minute(self) -> float:
        return self.total / len(self.rows) if self.rows else 0.0


def message_rates(*, minutes: int = 60, now: datetime.datetime | None = None) -> RateTable:
    """Messages per minute by type over the last ``minutes`` minutes (the current one included, so far).

    One GROUP BY over a range of index message_time. Minutes are truncated in UTC, which is the same
    minute as in JST and needs no time zone support from the database.
    """
    now = now or timezone.now()
    current = now.astimezone(datetime.UTC).replace(second=0, microsecond=0)
    since = current - datetime.timedelta(minutes=minutes - 1)
    counts: dict[tuple[datetime.datetime, str], int] = {}
    for row in (
        Message.objects.filter(
            received_at__gte=since, received_at__lt=current + datetime.timedelta(minutes=1)
        )
        .annotate(minute=TruncMinute("received_at", tzinfo=datetime.UTC))
        .values("minute", "message_type")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[(row["minute"].astimezone(datetime.UTC), row["message_type"])] = row["n"]
    types = sorted({t for _m, t in counts})
    rows = []
    for i in range(minutes):
        minute = current - datetime.timedelta(minutes=i)
        per_type = [counts.get((minute, t), 0) for t in types]
        rows.append(RateRow(minute=minute, counts=per_type, total=sum(per_type)))
    totals = [sum(r.counts[i] for r in rows) for i in range(len(types))]
    return RateTable(
        since=since,
        types=types,
        rows=rows,
        totals=totals,
        total=sum(totals),
        peak=max((r.total for r in rows), default=0),
    )


@dataclass(frozen=True)
class ActivityMinute:
    """One minute of the line's payments: how many arrived, how many were applied and how long after
    they were acknowledged, and how many notices were waiting when it ended."""

    minute: datetime.datetime  # start of the minute (UTC)
    payments: int  # new payments acknowledged on the line (1200/1700 answered 0000 and stored)
    amount: int  # their yen
    applied: int  # line payments whose ledger entry was written in this minute
    lag_total: float  # seconds from acknowledgment to ledger entry, summed over ``applied``
    lag_max: float | None  # the longest of them (None: none applied)
    waiting: int  # notices of any kind and source not yet applied at the end of the minute (now, so far)

    @property
    def lag_average(self) -> float | None:
        return self.lag_total / self.applied if self.applied else None


@dataclass(frozen=True)
class LineActivity:
    """The last minutes of the line, oldest first; the last one is the current minute so far."""

    since: datetime.datetime
    now: datetime.datetime
    minutes: list[ActivityMinute]
    waiting_now: int


def line_activity(*, minutes: int = 60, now: datetime.datetime | None = None) -> LineActivity:
    """Per minute over the last ``minutes`` minutes (the current one included, so far): the line's new
    payments, the apply lag (a notice's ``received_at`` — stored, so acknowledged — to its ledger
    entry's ``created_at``, written in the same transaction as billing's payment) and the notices waiting.

    Three GROUP BY queries, each on an index: the payment frames on message_time; the ledger entries
    written in the window on ledger_biller_time (every biller as a list of ids, as in
    :func:`notice_status_by_biller`), joined to their notices by primary key and grouped by the minute
    each notice arrived and the minute it was applied; and the notices waiting now on notice_waiting.
    Waiting at the end of minute m = waiting now and arrived by m + applied after m and arrived by m.
    """
    if minutes < 1:
        raise ValueError("minutes must be at least 1")
    now = now or timezone.now()
    current = now.astimezone(datetime.UTC).replace(second=0, microsecond=0)
    since = current - datetime.timedelta(minutes=minutes - 1)
    end = current + datetime.timedelta(minutes=1)
    starts = [since + datetime.timedelta(minutes=i) for i in range(minutes)]
    index = {m: i for i, m in enumerate(starts)}

    def slot(moment: datetime.datetime) -> int:
        """The minute's index; -1 before the window."""
        moment = moment.astimezone(datetime.UTC)
        return index.get(moment, -1 if moment < since else minutes - 1)

    payments, amounts = [0] * minutes, [0] * minutes
    for row in (
        Message.objects.filter(
            received_at__gte=since,
            received_at__lt=end,
            message_type__in=sorted(PAYMENT_MESSAGE_TYPES),
            outcome=Message.Outcome.PROCESSED,
        )
        .annotate(minute=TruncMinute("received_at", tzinfo=datetime.UTC))
        .values("minute")
        .annotate(n=Count("id"), amount=Sum("amount"))
        .order_by()
    ):
        payments[slot(row["minute"])] += row["n"]
        amounts[slot(row["minute"])] += row["amount"] or 0
    applied, lag_total = [0] * minutes, [0.0] * minutes
    lag_max: list[float | None] = [None] * minutes
    # +1 where a notice starts waiting, -1 where it stops; a running sum gives the waiting at each end
    change = [0] * (minutes + 1)
    line_payment = Q(notice__kind=Notice.Kind.PAYMENT, notice__source=Notice.Source.LINE)
    lag = ExpressionWrapper(F("created_at") - F("notice__received_at"), output_field=DurationField())
    for entry in (
        LedgerEntry.objects.filter(
            biller_id__in=biller_ids(),
            created_at__gte=since,
            created_at__lt=end,
        )
        .annotate(
            applied_minute=TruncMinute("created_at", tzinfo=datetime.UTC),
            received_minute=TruncMinute("notice__received_at", tzinfo=datetime.UTC),
        )
        .values("applied_minute", "received_minute")
        .annotate(
            n=Count("id"),
            paid=Count("id", filter=line_payment),
            lag_sum=Sum(lag, filter=line_payment),
            lag_max=Max(lag, filter=line_payment),
        )
        .order_by()
    ):
        a, r = slot(entry["applied_minute"]), slot(entry["received_minute"])
        if a < 0:
            continue
        if r < a:  # waited at the end of minutes max(r, 0) .. a - 1
            change[max(r, 0)] += entry["n"]
            change[a] -= entry["n"]
        if entry["paid"]:
            applied[a] += entry["paid"]
            lag_total[a] += max(duration_seconds(entry["lag_sum"]), 0.0)
            longest = max(duration_seconds(entry["lag_max"]), 0.0)
            lag_max[a] = longest if lag_max[a] is None else max(lag_max[a] or 0.0, longest)
    waiting_now = 0
    for w in (
        Notice.objects.filter(applied_at__isnull=True)
        .annotate(minute=TruncMinute("received_at", tzinfo=datetime.UTC))
        .values("minute")
        .annotate(n=Count("id"))
        .order_by()
    ):
        change[max(slot(w["minute"]), 0)] += w["n"]
        waiting_now += w["n"]
    rows, running = [], 0
    for i, start in enumerate(starts):
        running += change[i]
        rows.append(
            ActivityMinute(
                minute=start,
                payments=payments[i],
                amount=amounts[i],
                applied=applied[i],
                lag_total=lag_total[i],
                lag_max=lag_max[i],
                waiting=running,
            )
        )
    return LineActivity(since=since, now=now, minutes=rows, waiting_now=waiting_now)


def biller_ids() -> list[int]:
    """Every biller's id, for queries on an index that leads with the biller (ledger_biller_time): named as
    a list (``biller_id = ANY(…)``, one index range per biller) — as a subquery PostgreSQL would hash-join
    and read the whole ledger."""
    return list(Biller.objects.values_list("pk", flat=True))


def duration_seconds(value: datetime.timedelta | int | float | None) -> float:
    """A duration aggregate in seconds (a timedelta; SQLite may answer microseconds)."""
    if value is None:
        return 0.0
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000


@dataclass
class Tally:
    count: int = 0
    amount: int = 0

    def add(self, count: int, amount: int) -> None:
        self.count += count
        self.amount += amount


@dataclass
class BillerNotices:
    """One tenant's notices: waiting now (any date), and what was applied to its ledger today (JST)."""

    biller_id: int | None
    biller_code: str = ""
    name: str = ""
    waiting: Tally = field(default_factory=Tally)
    failing: int = 0  # waiting notices whose last attempt failed (last_error set)
    oldest_waiting_at: datetime.datetime | None = None
    paid: Tally = field(default_factory=Tally)
    double_payment: Tally = field(default_factory=Tally)
    provisional: Tally = field(default_factory=Tally)
    reversal: Tally = field(default_factory=Tally)

    @property
    def applied(self) -> Tally:
        out = Tally()
        for t in (self.paid, self.double_payment, self.provisional, self.reversal):
            out.add(t.count, t.amount)
        return out

    def oldest_waiting_age(self, now: datetime.datetime) -> int | None:
        """Seconds the oldest waiting notice has waited (None when nothing waits)."""
        if self.oldest_waiting_at is None:
            return None
        return max(0, int((now - self.oldest_waiting_at).total_seconds()))


@dataclass(frozen=True)
class NoticeStatus:
    day: datetime.date  # the JST day whose applied entries are counted
    now: datetime.datetime
    billers: list[BillerNotices]  # tenants with a waiting notice or an entry today, by biller code
    total: BillerNotices

    @property
    def oldest_waiting_age(self) -> int | None:
        return self.total.oldest_waiting_age(self.now)


def waiting_notices_total() -> BillerNotices:
    """The notices not yet applied, every tenant together: count, amount, failing, oldest (one aggregate
    on the partial index notice_waiting) — what the readiness check and the metrics report."""
    total = BillerNotices(biller_id=None)
    row = Notice.objects.filter(applied_at__isnull=True).aggregate(
        n=Count("id"),
        amount=Sum("amount"),
        oldest=Min("received_at"),
        failing=Count("id", filter=~Q(last_error="")),
    )
    total.waiting.add(row["n"], row["amount"] or 0)
    total.failing, total.oldest_waiting_at = row["failing"], row["oldest"]
    return total


_ENTRY_TALLY: dict[str, str] = {
    LedgerEntry.Outcome.PAID: "paid",
    LedgerEntry.Outcome.DOUBLE_PAYMENT: "double_payment",
    LedgerEntry.Outcome.PROVISIONAL: "provisional",
    LedgerEntry.Outcome.REVERSAL: "reversal",
}


def notice_status_by_biller(
    *, day: datetime.date | None = None, now: datetime.datetime | None = None
) -> NoticeStatus:
    """Per tenant: notices waiting to be applied (count, amount, failing, oldest) and the ledger entries
    made on ``day`` (JST, default today) by outcome — paid, double payment, provisional, reversal.

    Two aggregate queries, and two small ones for the billers. Waiting notices are read through the
    partial index notice_waiting (a healthy system has a handful). The day's entries are read through
    ledger_biller_time: the biller column leads that index, so the query names every biller as a list
    of ids (``biller_id = ANY(…)``: one index range per biller; as a subquery PostgreSQL would hash-join
    and read the whole ledger).
    """
    now = now or timezone.now()
    day = day or jst_today()
    rows: dict[int, BillerNotices] = {}
    total = BillerNotices(biller_id=None)
    for w in (
        Notice.objects.filter(applied_at__isnull=True)
        .values("biller_id")
        .annotate(
            n=Count("id"),
            amount=Sum("amount"),
            oldest=Min("received_at"),
            failing=Count("id", filter=~Q(last_error="")),
        )
        .order_by()
    ):
        row = rows.setdefault(w["biller_id"], BillerNotices(biller_id=w["biller_id"]))
        row.waiting.add(w["n"], w["amount"] or 0)
        row.failing, row.oldest_waiting_at = w["failing"], w["oldest"]
    start = jst_day_start(day)
    for e in (
        LedgerEntry.objects.filter(
            biller_id__in=biller_ids(),
            created_at__gte=start,
            created_at__lt=start + datetime.timedelta(days=1),
        )
        .values("biller_id", "outcome")
        .annotate(n=Count("id"), amount=Sum("amount"))
        .order_by()
    ):
        row = rows.setdefault(e["biller_id"], BillerNotices(biller_id=e["biller_id"]))
        getattr(row, _ENTRY_TALLY[e["outcome"]]).add(e["n"], abs(e["amount"] or 0))
    for b in Biller.objects.filter(pk__in=list(rows)).values("pk", "biller_code", "legal_name"):
        rows[b["pk"]].biller_code, rows[b["pk"]].name = b["biller_code"], b["legal_name"]
    for row in rows.values():
        for name in ("waiting", "paid", "double_payment", "provisional", "reversal"):
            mine = getattr(row, name)
            getattr(total, name).add(mine.count, mine.amount)
        total.failing += row.failing
        if row.oldest_waiting_at is not None and (
            total.oldest_waiting_at is None or row.oldest_waiting_at < total.oldest_waiting_at
        ):
            total.oldest_waiting_at = row.oldest_waiting_at
    return NoticeStatus(
        day=day, now=now, billers=sorted(rows.values(), key=lambda r: r.biller_code), total=total
    )


def waiting_notices(*, limit: int = 10) -> QuerySet[Notice]:
    """The oldest notices still waiting to be applied (index notice_waiting, in id order)."""
    return Notice.objects.filter(applied_at__isnull=True).select_related("biller").order_by("id")[:limit]


def message_search_days(
    *, key: str = "", date_from: datetime.date | None = None, date_to: datetime.date | None = None
) -> tuple[datetime.date, datetime.date] | None:
    """The JST days a message search covers: the dates given (one missing: up to today, or just the
    end date), today without either — or None (every day) for a whole transaction key without dates."""
    if date_from is None and date_to is None and len(key.strip()) == KEY_LENGTH:
        return None
    today = jst_today()
    return date_from or date_to or today, date_to or today


def message_search(
    *,
    key: str = "",
    customer_number: str = "",
    biller: Biller | None = None,
    biller_code: str = "",
    message_type: str = "",
    outcome: str = "",
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
) -> QuerySet[Message]:
    """The message history (電文履歴), newest first (``-received_at, -id``: page with a keyset).

    Always bounded by the JST dates ``date_from``–``date_to`` (inclusive; without either, today), except
    for a whole 26-character transaction key without dates, which index message_key finds on any day.
    A shorter key matches as a prefix. ``biller`` runs on index message_biller_time, and so does
    ``biller_code`` (a code no biller has: frames answered 9001, stored without a biller); a customer
    number on message_customer_number; type and outcome alone scan the date range on message_time.
    """
    key = key.strip()
    qs = Message.objects.all()
    if len(key) == KEY_LENGTH:
        qs = qs.filter(transaction_key=key)
    elif key:
        qs = qs.filter(transaction_key__startswith=key)
    days = message_search_days(key=key, date_from=date_from, date_to=date_to)
    if days is not None:
        qs = qs.filter(
            received_at__gte=jst_day_start(days[0]),
            received_at__lt=jst_day_start(days[1] + datetime.timedelta(days=1)),
        )
    if customer_number.strip():
        qs = qs.filter(customer_number=customer_number.strip())
    if biller is not None:
        qs = qs.filter(biller=biller)
    elif biller_code.strip():
        qs = qs.filter(biller__isnull=True, biller_code=biller_code.strip())
    if message_type:
        qs = qs.filter(message_type=message_type)
    if outcome:
        qs = qs.filter(outcome=outcome)
    return qs.select_related("biller").order_by("-received_at", "-id")


def message_notice(*, message: Message) -> Notice | None:
    """The notice a payment, reversal or resend message is about (by its transaction key, unique)."""
    if message.message_type not in NOTICE_TYPES or not message.transaction_key:
        return None
    return (
        Notice.objects.filter(transaction_key=message.transaction_key)
        .select_related("biller", "entry", "entry__invoice")
        .first()
    )
