"""The daily report of one biller and processing date: every figure the screen, the CSV and the PDF
show, read once by ``daily_report`` (a fixed number of aggregate queries, whatever the day's volume).

- payments of the processing date (``Notice.key_date``) by channel, by bank and by route (line or teller
  file), each split by what the ledger made of them: confirmed (paid), provisional (仮消込, with the
  reasons), double payment, and not yet applied; reversals of the date; the teller-file records that are
  the second report of a line payment (``ReportPair``); the total received and the net;
- refunds requested that day (created, JST) and due for transfer that day (filed in a 全銀 file or not),
  and the actions staff took on findings that day (write-offs first of all);
- open findings by age (days since found, as of now) and the findings of this processing date by type;
- the line's counters: the centre's 1600 figures for the date beside our own line payments;
- the last reconciliation run of the date.

``report_tables`` turns a report into titled tables with Japanese headers: the CSV and the PDF are the
same tables, so they cannot disagree.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Aggregate, Count, Max, Q, Sum
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from billing.models import Biller
from payeasy.banks import bank_get
from payeasy.models import Channel, LedgerEntry, Notice
from reconciliation.comparisons import centre_counts
from reconciliation.models import Action, Finding, Refund, ReportPair, Run

JST = ZoneInfo("Asia/Tokyo")
StrOrPromise = str | Promise

# open findings by age in days since found: (label, lowest age, highest age or None)
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-2", 0, 2),
    ("3-7", 3, 7),
    ("8-30", 8, 30),
    (">30", 31, None),
)

SOURCE_LABELS: dict[str, StrOrPromise] = {
    Notice.Source.LINE: _("MPN line"),
    Notice.Source.TELLER_FILE: _("Teller file"),
}


def jst_today() -> datetime.date:
    return timezone.now().astimezone(JST).date()


def day_start(day: datetime.date) -> datetime.datetime:
    """Midnight JST at the start of ``day``."""
    return datetime.datetime.combine(day, datetime.time(), tzinfo=JST)


# --- the report ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A count and its yen."""

    count: int = 0
    amount: int = 0

    def __add__(self, other: Figure) -> Figure:
        return Figure(self.count + other.count, self.amount + other.amount)


@dataclass
class PaymentRow:
    """The payments of one channel, bank or route (or all of them), by what the ledger made of them."""

    key: str
    label: str
    confirmed: Figure = Figure()
    provisional: Figure = Figure()
    double: Figure = Figure()
    unapplied: Figure = Figure()  # received, not yet applied to the ledger

    @property
    def total(self) -> Figure:
        return self.confirmed + self.provisional + self.double + self.unapplied

    def add(self, outcome: str | None, figure: Figure) -> None:
        if outcome == LedgerEntry.Outcome.PAID:
            self.confirmed += figure
        elif outcome == LedgerEntry.Outcome.PROVISIONAL:
            self.provisional += figure
        elif outcome == LedgerEntry.Outcome.DOUBLE_PAYMENT:
            self.double += figure
        else:
            self.unapplied += figure


@dataclass
class ReasonRow:
    reason: str
    label: str
    figure: Figure


@dataclass
class PaymentSummary:
    total: PaymentRow
    by_channel: list[PaymentRow]
    by_bank: list[PaymentRow]
    by_source: list[PaymentRow]
    provisional_reasons: list[ReasonRow]
    reversals: Figure
    reversals_by_source: list[tuple[str, Figure]]
    second_reports: Figure  # teller-file records of a payment the line reported (one payment, two reports)

    @property
    def received(self) -> Figure:
        return self.total.total

    @property
    def net(self) -> int:
        """Yen received less reversals and less the second reports of the same payment."""
        return self.received.amount - self.reversals.amount - self.second_reports.amount


@dataclass
class RefundSummary:
    requested: Figure  # refunds created that day (JST)
    due: Figure  # refunds with that transfer date
    filed: Figure  # … of which written into a 全銀 transfer file
    actions: list[KindRow]  # staff's actions on findings that day, by kind

    @property
    def unfiled(self) -> Figure:
        return Figure(self.due.count - self.filed.count, self.due.amount - self.filed.amount)

    @property
    def write_offs(self) -> Figure:
        return next((r.figure for r in self.actions if r.kind == Action.Kind.WRITE_OFF), Figure())


@dataclass
class KindRow:
    kind: str
    label: str
    figure: Figure
    open: int = 0


@dataclass
class AgeRow:
    label: str
    figure: Figure


@dataclass
class CounterComparison:
    line: Figure  # our distinct line payments of the date (what the 1610 answers)
    centre: Figure | None  # the centre's 1600 figures for the date; None when it sent none
    message_id: int | None = None

    @property
    def matches(self) -> bool | None:
        return None if self.centre is None else self.centre == self.line


@dataclass
class LastRun:
    started_at: datetime.datetime
    finished_at: datetime.datetime | None
    trigger: str
    trigger_label: str
    started_by: str
    found: int
    cleared: int
    open_total: int
    summary: dict[str, object]


@dataclass
class DailyReport:
    biller: Biller
    processing_date: datetime.date
    generated_at: datetime.datetime
    payments: PaymentSummary
    refunds: RefundSummary
    open_by_age: list[AgeRow]
    found: list[KindRow]
    counters: CounterComparison
    last_run: LastRun | None

    @property
    def open_total(self) -> Figure:
        total = Figure()
        for row in self.open_by_age:
            total += row.figure
        return total

    @property
    def found_total(self) -> Figure:
        total = Figure()
        for row in self.found:
            total += row.figure
        return total


# --- reading it ----------------------------------------------------------------------------------------


def latest_processing_date(*, biller: Biller) -> datetime.date | None:
    """The latest processing date on which the biller received a payment (None: never)."""
    row = Notice.objects.for_biller(biller).filter(kind=Notice.Kind.PAYMENT).aggregate(day=Max("key_date"))
    return row["day"]


def channel_label(code: str) -> str:
    try:
        return f"{code} {Channel(code).label}"
    except ValueError:
        return code


def bank_label(code: str) -> str:
    bank = bank_get(code)
    return bank.label if bank is not None else code


def _payments(*, biller: Biller, day: datetime.date) -> tuple[PaymentSummary, Figure]:
    """Two queries: the notices of the date grouped by kind, route, channel, bank and ledger outcome; the
    second reports among them. Also returns our line payments of the date (the counters' side)."""
    rows = (
        Notice.objects.for_biller(biller)
        .filter(key_date=day)
        .values_list("kind", "source", "channel", "bank_code", "entry__outcome", "entry__reason")
        .annotate(n=Count("id"), total=Sum("amount"))
        .order_by()
    )
    total = PaymentRow("", str(_("Total")))
    channels: dict[str, PaymentRow] = {}
    banks: dict[str, PaymentRow] = {}
    sources: dict[str, PaymentRow] = {}
    reasons: dict[str, Figure] = {}
    reversals: dict[str, Figure] = {}
    line = Figure()
    for kind, source, channel, bank, outcome, reason, n, amount in rows:
        figure = Figure(n, amount or 0)
        if kind == Notice.Kind.REVERSAL:
            reversals[source] = reversals.get(source, Figure()) + figure
            continue
        if source == Notice.Source.LINE:
            line += figure
        total.add(outcome, figure)
        channels.setdefault(channel, PaymentRow(channel, channel_label(channel))).add(outcome, figure)
        banks.setdefault(bank, PaymentRow(bank, bank_label(bank))).add(outcome, figure)
        sources.setdefault(source, PaymentRow(source, str(SOURCE_LABELS.get(source, source)))).add(
            outcome, figure
        )
        if outcome == LedgerEntry.Outcome.PROVISIONAL:
            reasons[reason or ""] = reasons.get(reason or "", Figure()) + figure
    paired = (
        Notice.objects.for_biller(biller)
        .filter(
            key_date=day,
            kind=Notice.Kind.PAYMENT,
            pk__in=ReportPair.objects.for_biller(biller).values("file_notice_id"),
        )
        .aggregate(n=Count("id"), total=Sum("amount"))
    )
    summary = PaymentSummary(
        total=total,
        by_channel=[channels[k] for k in sorted(channels)],
        by_bank=[banks[k] for k in sorted(banks)],
        by_source=[sources[k] for k in sorted(sources, key=_source_order)],
        provisional_reasons=[
            ReasonRow(r, str(LedgerEntry.Reason(r).label) if r in LedgerEntry.Reason.values else r, f)
            for r, f in sorted(reasons.items(), key=lambda item: (-item[1].count, item[0]))
        ],
        reversals=sum(reversals.values(), Figure()),
        reversals_by_source=[
            (str(SOURCE_LABELS.get(s, s)), reversals[s]) for s in sorted(reversals, key=_source_order)
        ],
        second_reports=Figure(paired["n"], paired["total"] or 0),
    )
    return summary, line


def _source_order(source: str) -> tuple[int, str]:
    return (0 if source == Notice.Source.LINE else 1, source)


def _refunds(*, biller: Biller, day: datetime.date) -> RefundSummary:
    """Two queries: the refunds requested or due that day; the actions on findings that day by kind."""
    start, end = day_start(day), day_start(day + datetime.timedelta(days=1))
    created = Q(created_at__gte=start, created_at__lt=end)
    due = Q(transfer_date=day)
    filed = due & Q(transfer_file__isnull=False)
    row = (
        Refund.objects.for_biller(biller)
        .filter(created | due)
        .aggregate(
            requested_n=Count("id", filter=created),
            requested=Sum("amount", filter=created),
            due_n=Count("id", filter=due),
            due=Sum("amount", filter=due),
            filed_n=Count("id", filter=filed),
            filed=Sum("amount", filter=filed),
        )
    )
    actions = (
        Action.objects.for_biller(biller)
        .filter(created_at__gte=start, created_at__lt=end)
        .values_list("kind")
        .annotate(n=Count("id"), total=Sum("amount"))
        .order_by()
    )
    by_kind = {kind: Figure(n, total or 0) for kind, n, total in actions}
    return RefundSummary(
        requested=Figure(row["requested_n"], row["requested"] or 0),
        due=Figure(row["due_n"], row["due"] or 0),
        filed=Figure(row["filed_n"], row["filed"] or 0),
        actions=[KindRow(k.value, str(k.label), by_kind[k]) for k in Action.Kind if k in by_kind],
    )


def _open_by_age(*, biller: Biller, now: datetime.datetime) -> list[AgeRow]:
    """One query: open findings by days since found (JST days, as of ``now``)."""
    today = now.astimezone(JST).date()
    aggregates: dict[str, Aggregate] = {}
    for i, (_label, low, high) in enumerate(AGE_BUCKETS):
        q = Q()
        if low > 0:  # found before the start of the day ``low`` days ago + 1 (the future counts as 0)
            q &= Q(found_at__lt=day_start(today - datetime.timedelta(days=low - 1)))
        if high is not None:
            q &= Q(found_at__gte=day_start(today - datetime.timedelta(days=high)))
        aggregates[f"n{i}"] = Count("id", filter=q)
        aggregates[f"a{i}"] = Sum("amount", filter=q)
    row = Finding.objects.for_biller(biller).filter(state=Finding.State.OPEN).aggregate(**aggregates)
    return [
        AgeRow(label, Figure(row[f"n{i}"], row[f"a{i}"] or 0))
        for i, (label, _l, _h) in enumerate(AGE_BUCKETS)
    ]


def _found(*, biller: Biller, day: datetime.date) -> list[KindRow]:
    """One query: the findings of this processing date by type, with how many are still open."""
    rows = (
        Finding.objects.for_biller(biller)
        .filter(processing_date=day)
        .values_list("kind")
        .annotate(n=Count("id"), total=Sum("amount"), open=Count("id", filter=Q(state=Finding.State.OPEN)))
        .order_by()
    )
    by_kind = {kind: (Figure(n, total or 0), open_n) for kind, n, total, open_n in rows}
    return [
        KindRow(k.value, str(k.label), by_kind[k][0], by_kind[k][1]) for k in Finding.Kind if k in by_kind
    ]


def _last_run(*, biller: Biller, day: datetime.date) -> LastRun | None:
    """One query: the latest run of the date."""
    run = (
        Run.objects.for_biller(biller)
        .filter(processing_date=day)
        .select_related("started_by")
        .order_by("-started_at", "-id")
        .first()
    )
    if run is None:
        return None
    return LastRun(
        started_at=run.started_at,
        finished_at=run.finished_at,
        trigger=run.trigger,
        trigger_label=str(run.get_trigger_display()),
        started_by=run.started_by.email if run.started_by is not None else "",
        found=run.found,
        cleared=run.cleared,
        open_total=run.open_total,
        summary=run.summary if isinstance(run.summary, dict) else {},
    )


def daily_report(
    *, biller: Biller, processing_date: datetime.date, now: datetime.datetime | None = None
) -> DailyReport:
    """Everything of ``biller``'s ``processing_date``, in eight queries whatever the volume."""
    now = now or timezone.now()
    payments, line = _payments(biller=biller, day=processing_date)
    centre = centre_counts(biller=biller, day=processing_date)
    counters = CounterComparison(
        line=line,
        centre=None if centre is None else Figure(centre[0], centre[1]),
        message_id=None if centre is None else centre[2],
    )
    return DailyReport(
        biller=biller,
        processing_date=processing_date,
        generated_at=now,
        payments=payments,
        refunds=_refunds(biller=biller, day=processing_date),
        open_by_age=_open_by_age(biller=biller, now=now),
        found=_found(biller=biller, day=processing_date),
        counters=counters,
        last_run=_last_run(biller=biller, day=processing_date),
    )


# --- the report as tables (CSV and PDF) ----------------------------------------------------------------

Cell = str | int


@dataclass
class ReportTable:
    """A titled table with its header row; the CSV writes it as a section, the PDF draws it."""

    title: str
    header: list[str]
    rows: list[list[Cell]]
    note: str = ""
    pairs_from: int | None = None  # from this column on, the cells are (count, amount) pairs


SPLIT_HEADER = [
    "確定件数",
    "確定金額",
    "仮消込件数",
    "仮消込金額",
    "二重支払件数",
    "二重支払金額",
    "未処理件数",
    "未処理金額",
    "合計件数",
    "合計金額",
]


def _split(row: PaymentRow) -> list[Cell]:
    cells: list[Cell] = []
    for figure in (row.confirmed, row.provisional, row.double, row.unapplied, row.total):
        cells += [figure.count, figure.amount]
    return cells


def _figure_rows(rows: Iterable[tuple[str, Figure]]) -> list[list[Cell]]:
    return [[label, f.count, f.amount] for label, f in rows]


def _jst(moment: datetime.datetime | None) -> str:
    return "" if moment is None else moment.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


def report_heading(report: DailyReport) -> list[tuple[str, str]]:
    """The lines above the tables: who, which day, when made."""
    return [
        ("収納企業", report.biller.legal_name),
        ("処理日", report.processing_date.isoformat()),
        ("作成日時", _jst(report.generated_at)),
    ]


def report_tables(report: DailyReport) -> list[ReportTable]:
    """The report as tables with Japanese headers. Labels from the models' choices are in the language
    active when the report was read (the CSV and PDF views read it in Japanese)."""
    p = report.payments
    amount_header = ["項目", "件数", "金額"]
    tables = [
        ReportTable(
            "入金の概要",
            amount_header,
            [
                *_figure_rows(
                    [
                        ("入金合計", p.received),
                        ("確定消込", p.total.confirmed),
                        ("仮消込", p.total.provisional),
                        ("二重支払", p.total.double),
                        ("未処理", p.total.unapplied),
                        ("取消", p.reversals),
                        ("窓口ファイルとの重複報告", p.second_reports),
                    ]
                ),
                ["差引入金額", "", p.net],
            ],
            note="差引入金額 ＝ 入金合計 － 取消 － 窓口ファイルとの重複報告",
        ),
        ReportTable(
            "チャネル別",
            ["チャネル", *SPLIT_HEADER],
            [[r.label, *_split(r)] for r in p.by_channel],
            pairs_from=1,
        ),
        ReportTable(
            "金融機関別",
            ["金融機関コード", "金融機関名", *SPLIT_HEADER],
            [[r.key, _bank_name(r.key), *_split(r)] for r in p.by_bank],
            pairs_from=2,
        ),
        ReportTable(
            "経路別（回線・窓口ファイル）",
            ["経路", *SPLIT_HEADER],
            [[r.label, *_split(r)] for r in p.by_source],
            pairs_from=1,
        ),
        ReportTable(
            "仮消込の理由",
            ["理由", "件数", "金額"],
            _figure_rows((r.label, r.figure) for r in p.provisional_reasons),
        ),
        ReportTable("取消（経路別）", ["経路", "件数", "金額"], _figure_rows(p.reversals_by_source)),
        ReportTable(
            "返金と差異の処理",
            amount_header,
            _figure_rows(
                [
                    ("返金依頼（当日）", report.refunds.requested),
                    ("振込指定日が当日の返金", report.refunds.due),
                    ("うち振込ファイル作成済み", report.refunds.filed),
                    ("うち振込ファイル未作成", report.refunds.unfiled),
                ]
                + [(f"当日の処理：{r.label}", r.figure) for r in report.refunds.actions]
            ),
        ),
        ReportTable(
            "未解決の差異（発見からの経過日数）",
            ["経過日数", "件数", "金額"],
            _figure_rows((f"{r.label}日", r.figure) for r in report.open_by_age),
        ),
        ReportTable(
            "この処理日の差異（種類別）",
            ["種類", "件数", "金額", "うち未解決"],
            [[r.label, r.figure.count, r.figure.amount, r.open] for r in report.found],
        ),
        _counters_table(report.counters),
        _run_table(report.last_run),
    ]
    return tables


def _bank_name(code: str) -> str:
    bank = bank_get(code)
    return bank.name if bank is not None else ""


def _counters_table(c: CounterComparison) -> ReportTable:
    header = ["項目", "件数", "金額"]
    if c.centre is None:
        rows: list[list[Cell]] = [["当社（回線の入金）", c.line.count, c.line.amount]]
        return ReportTable(
            "件数照合（1600）", header, rows, note="この処理日の件数照合（1600）は受信していません。"
        )
    rows = [
        ["センター（1600）", c.centre.count, c.centre.amount],
        ["当社（回線の入金）", c.line.count, c.line.amount],
        ["差", c.centre.count - c.line.count, c.centre.amount - c.line.amount],
    ]
    return ReportTable("件数照合（1600）", header, rows, note="一致" if c.matches else "不一致")


def _run_table(run: LastRun | None) -> ReportTable:
    if run is None:
        return ReportTable(
            "最終照合実行", ["項目", "内容"], [], note="この処理日の照合はまだ実行されていません。"
        )
    rows: list[list[Cell]] = [
        ["開始", _jst(run.started_at)],
        ["終了", _jst(run.finished_at) or "実行中"],
        ["起動", run.trigger_label],
        ["実行者", run.started_by or "システム"],
        ["新規差異", run.found],
        ["解消", run.cleared],
        ["未解決（実行時）", run.open_total],
    ]
    return ReportTable("最終照合実行", ["項目", "内容"], rows)
