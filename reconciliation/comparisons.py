"""What is compared, per biller and processing date: each function reads the books and returns the
disagreements it finds as ``Found`` values (nothing is written here; ``services.reconcile`` stores them).

- ledger entries that need a person: provisional payments (仮消込) by reason, late payments, double
  payments (二重支払) while they stand;
- the line against the centre: our line payments (1200/1700) of the date against the counters (1600) the
  centre sent for it, as the date itself or as the day before;
- teller files against the line: a teller payment the line reported (速報) paired with its record in the
  bank's file (確報); reported by both, or by only one;
- reversals (1300) of a payment nobody knows (answered B006);
- the ledger against the bills: a bill paid without a standing payment, a payment on no bill, billing's
  payment facts differing from the ledger;
- expected funds against deposits, per bank and value date (``funds_compare``).

Every query is an aggregate or an anti-join over indexed columns, so a day of a million payments costs a
handful of statements, not a million.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, Q, Sum

from billing.models import Biller, Invoice, InvoicePayment
from payeasy import codec
from payeasy.models import Channel, LedgerEntry, Message, Notice, TellerFile
from payeasy.selectors import line_payment_counts
from reconciliation.models import Finding, ReportPair

STANDING = (LedgerEntry.Outcome.PAID, LedgerEntry.Outcome.DOUBLE_PAYMENT)


@dataclass
class Found:
    """One disagreement as a run found it; ``key`` is its identity (one finding per biller and key)."""

    key: str
    kind: str
    processing_date: datetime.date
    amount: int
    detail: str = ""
    bank_code: str = ""
    invoice_id: int | None = None
    entry_id: int | None = None
    links: dict[str, list[int]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


def _links(**ids: Iterable[int | None]) -> dict[str, list[int]]:
    return {name: sorted({i for i in values if i is not None}) for name, values in ids.items() if values}


# --- ledger entries that need a person ---------------------------------------------------------------


def entries_needing_action(*, biller: Biller, day: datetime.date) -> list[Found]:
    """Provisional, late and double payments of ``day`` that stand (not reversed). The file side of a
    report pair is not a double payment: it is the second report of one payment (``report_pairs``)."""
    paired_files = ReportPair.objects.for_biller(biller).values("file_notice_id")
    query = (
        LedgerEntry.objects.for_biller(biller)
        .filter(
            notice__key_date=day,
            outcome__in=[LedgerEntry.Outcome.PROVISIONAL, LedgerEntry.Outcome.DOUBLE_PAYMENT],
            reversed_by__isnull=True,
        )
        .exclude(notice_id__in=paired_files)
        .values_list(
            "pk",
            "outcome",
            "reason",
            "amount",
            "invoice_id",
            "notice_id",
            "notice__message_id",
            "notice__bank_code",
        )
    )
    rows = list(query)
    # a double payment is due for refund while its bill has another standing payment before it (reversing
    # one of two leaves the other as the bill's payment: nothing due, as payeasy's refund_due says)
    doubled = {r[4] for r in rows if r[1] == LedgerEntry.Outcome.DOUBLE_PAYMENT}
    first: dict[int, int] = {}
    for invoice_id, pk in (
        LedgerEntry.objects.for_biller(biller)
        .filter(invoice_id__in=doubled, outcome__in=STANDING, reversed_by__isnull=True)
        .order_by("invoice_id", "pk")
        .values_list("invoice_id", "pk")
    ):
        first.setdefault(invoice_id, pk)
    found = []
    for pk, outcome, reason, amount, invoice_id, notice_id, message_id, bank in rows:
        if outcome == LedgerEntry.Outcome.DOUBLE_PAYMENT:
            if first.get(invoice_id) == pk:
                continue  # the bill's one standing payment now
            kind = Finding.Kind.DOUBLE_PAYMENT
        elif reason == LedgerEntry.Reason.PAST_DUE:
            kind = Finding.Kind.LATE_PAYMENT
        else:
            kind = Finding.Kind.PROVISIONAL
        found.append(
            Found(
                key=f"entry:{pk}",
                kind=kind,
                detail=reason,
                processing_date=day,
                amount=amount,
                bank_code=bank,
                invoice_id=invoice_id,
                entry_id=pk,
                links=_links(entries=[pk], notices=[notice_id], messages=[message_id], invoices=[invoice_id]),
            )
        )
    return found


# --- the line against the centre -----------------------------------------------------------------------


def centre_counts(*, biller: Biller, day: datetime.date) -> tuple[int, int, int] | None:
    """The centre's latest figures for ``day`` — from a 1600 of that date (elements 16/17) or of the next
    (18/19, the day before) — and the message id; None when the centre sent none."""
    next_day = day + datetime.timedelta(days=1)
    stamps = {f"{day:%Y%m%d}", f"{next_day:%Y%m%d}"}  # H3 of the 1600: the counter date or the next day
    candidates = [
        (pk, raw)
        for pk, key, raw in Message.objects.for_biller(biller)
        .filter(message_type="1600", response_code="0000")
        .filter(Q(transaction_key__contains=min(stamps)) | Q(transaction_key__contains=max(stamps)))
        .order_by("-received_at", "-id")
        .values_list("pk", "transaction_key", "raw")
        if key[10:18] in stamps
    ]
    for pk, raw in candidates:
        try:
            message = codec.parse_body(bytes(raw))
        except codec.CodecError:  # stored as received; a frame we answered 0000 parses
            continue
        counter_day = datetime.datetime.strptime(str(message.elements[15]), "%Y%m%d").date()
        if counter_day == day:
            return int(message.elements[16]), int(message.elements[17]), pk
        if counter_day == day + datetime.timedelta(days=1):
            return int(message.elements[18]), int(message.elements[19]), pk
    return None


def counters_compare(*, biller: Biller, day: datetime.date) -> tuple[list[Found], dict[str, Any]]:
    ours = line_payment_counts(biller=biller, days=[day]).get(day, (0, 0))
    centre = centre_counts(biller=biller, day=day)
    facts: dict[str, Any] = {"line_count": ours[0], "line_amount": ours[1]}
    if centre is None:
        return [], facts
    facts.update(centre_count=centre[0], centre_amount=centre[1], counter_message=centre[2])
    if (centre[0], centre[1]) == ours:
        return [], facts
    found = Found(
        key=f"counter:{day:%Y%m%d}",
        kind=Finding.Kind.COUNTER_MISMATCH,
        processing_date=day,
        amount=abs(centre[1] - ours[1]),
        links=_links(messages=[centre[2]]),
        facts=dict(facts),
    )
    return [found], facts


# --- teller files against the line ------------------------------------------------------------------


def report_pairs(*, biller: Biller, day: datetime.date) -> tuple[list[ReportPair], list[Found]]:
    """Pair the teller payments the line reported on ``day`` with the bank's teller-file records of the
    same numbers and amount (new pairs returned for storing), and find what is reported by one route
    where the other was expected. A file record paired with a line payment is the same money reported
    twice (its ledger entry counted it again): a finding until someone writes it off."""
    line = list(
        Notice.objects.for_biller(biller)
        .filter(kind=Notice.Kind.PAYMENT, source=Notice.Source.LINE, channel=Channel.TELLER, key_date=day)
        .values_list(
            "pk",
            "bank_code",
            "customer_number",
            "confirmation_number",
            "amount",
            "message_id",
            "transaction_key",
        )
        .order_by("paid_at", "pk")
    )
    files = list(
        Notice.objects.for_biller(biller)
        .filter(kind=Notice.Kind.PAYMENT, source=Notice.Source.TELLER_FILE, key_date=day)
        .values_list("pk", "bank_code", "customer_number", "confirmation_number", "amount", "teller_file_id")
        .order_by("paid_at", "pk")
    )
    if not line and not files:
        return [], []
    existing = ReportPair.objects.for_biller(biller).filter(
        Q(line_notice_id__in=[r[0] for r in line]) | Q(file_notice_id__in=[r[0] for r in files])
    )
    pairs = {p.file_notice_id: p.line_notice_id for p in existing}
    paired_line = set(pairs.values())
    waiting: dict[tuple, list[int]] = defaultdict(list)
    for pk, bank, customer, confirmation, amount, _message, _key in line:
        if pk not in paired_line:
            waiting[(bank, customer, confirmation, amount)].append(pk)
    new: list[ReportPair] = []
    for pk, bank, customer, confirmation, amount, _file in files:
        if pk in pairs:
            continue
        candidates = waiting.get((bank, customer, confirmation, amount))
        if candidates:
            line_pk = candidates.pop(0)
            pairs[pk] = line_pk
            paired_line.add(line_pk)
            new.append(ReportPair(biller=biller, line_notice_id=line_pk, file_notice_id=pk))
    entries = dict(
        LedgerEntry.objects.for_biller(biller)
        .filter(notice_id__in=[r[0] for r in line] + [r[0] for r in files])
        .values_list("notice_id", "pk")
    )
    line_by_pk: dict[int, Any] = {r[0]: r for r in line}
    found: list[Found] = []
    file_banks = set(
        TellerFile.objects.for_biller(biller)
        .filter(status=TellerFile.Status.ACCEPTED, handling_date=day)
        .values_list("bank_code", flat=True)
    )
    line_banks = {r[1] for r in line}
    for pk, bank, _customer, _confirmation, amount, teller_file in files:
        partner = pairs.get(pk)
        if partner is not None:
            line_row = line_by_pk.get(partner)
            found.append(
                Found(
                    key=f"pair:{pk}",
                    kind=Finding.Kind.BATCH_LINE_MISMATCH,
                    detail=Finding.Detail.BOTH_ROUTES,
                    processing_date=day,
                    amount=amount,
                    bank_code=bank,
                    entry_id=entries.get(pk),
                    links=_links(
                        notices=[pk, partner],
                        entries=[entries.get(pk), entries.get(partner)],
                        messages=[line_row[5] if line_row else None],
                        teller_files=[teller_file],
                    ),
                )
            )
        elif bank in line_banks:  # the bank reports teller payments on the line too: this one it did not
            found.append(
                Found(
                    key=f"fileonly:{pk}",
                    kind=Finding.Kind.BATCH_LINE_MISMATCH,
                    detail=Finding.Detail.FILE_ONLY,
                    processing_date=day,
                    amount=amount,
                    bank_code=bank,
                    entry_id=entries.get(pk),
                    links=_links(notices=[pk], entries=[entries.get(pk)], teller_files=[teller_file]),
                )
            )
    # a teller payment reversed at the counter the same day may be in the file with its reversal or not at all
    reversed_line = set(
        Notice.objects.for_biller(biller)
        .filter(kind=Notice.Kind.REVERSAL, original_key__in=[r[6] for r in line])
        .values_list("original_key", flat=True)
    )
    for pk, bank, _customer, _confirmation, amount, message, key in line:
        if pk not in paired_line and bank in file_banks and key not in reversed_line:
            found.append(
                Found(
                    key=f"lineonly:{pk}",
                    kind=Finding.Kind.BATCH_LINE_MISMATCH,
                    detail=Finding.Detail.LINE_ONLY,
                    processing_date=day,
                    amount=amount,
                    bank_code=bank,
                    entry_id=entries.get(pk),
                    links=_links(notices=[pk], entries=[entries.get(pk)], messages=[message]),
                )
            )
    return new, found


# --- reversals of unknown payments -----------------------------------------------------------------


def unknown_reversals(*, biller: Biller, day: datetime.date) -> list[Found]:
    """1300s of ``day`` (H3 in the transaction key) answered B006: the centre reversed a payment we do
    not have (or have reversed already)."""
    stamp = f"{day:%Y%m%d}"
    rows = (
        Message.objects.for_biller(biller)
        .filter(message_type="1300", response_code="B006", transaction_key__contains=stamp)
        .values_list("pk", "transaction_key", "amount", "customer_number")
    )
    return [
        Found(
            key=f"reversal:{pk}",
            kind=Finding.Kind.UNKNOWN_REVERSAL,
            processing_date=day,
            amount=amount or 0,
            links=_links(messages=[pk]),
            facts={"transaction_key": key, "customer_number": number},
        )
        for pk, key, amount, number in rows
        if key[10:18] == stamp
    ]


# --- the ledger against the bills --------------------------------------------------------------------


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _col(model: Any, name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)


def _bills_sql() -> str:
    """Per bill of the biller with ledger entries or payment facts: its status and total, its standing
    payments, whether one was reversed, the ledger's sum, billing's sum of the network's facts, and
    whether staff matched a payment to it. Aggregates joined by hash: one pass over each table (a
    correlated NOT EXISTS here was planned as a nested loop, 17 s at 20,000 bills)."""
    e, i, p = LedgerEntry, Invoice, InvoicePayment
    le, inv, ip = _table(e), _table(i), _table(p)
    return f"""
        WITH ledger AS (
            SELECT e.{_col(e, "invoice")} AS invoice_id,
                   count(*) FILTER (WHERE e.{_col(e, "outcome")} IN ('paid', 'double_payment')
                                    AND r.{_col(e, "id")} IS NULL) AS standing,
                   max(CASE WHEN r.{_col(e, "id")} IS NOT NULL THEN 1 ELSE 0 END) AS reversed,
                   sum(e.{_col(e, "amount")}) AS total
            FROM {le} e LEFT JOIN {le} r ON r.{_col(e, "reverses")} = e.{_col(e, "id")}
            WHERE e.{_col(e, "biller")} = %(biller)s AND e.{_col(e, "invoice")} IS NOT NULL
            GROUP BY 1
        ), facts AS (
            SELECT {_col(p, "invoice")} AS invoice_id,
                   sum({_col(p, "amount")}) FILTER (WHERE {_col(p, "entry_ref")} > 0) AS total,
                   max(CASE WHEN {_col(p, "entry_ref")} < 0 AND {_col(p, "outcome")} = 'paid'
                       THEN 1 ELSE 0 END) AS matched
            FROM {ip} WHERE {_col(p, "biller")} = %(biller)s GROUP BY 1
        )
        SELECT b.{_col(i, "id")}, b.{_col(i, "status")}, b.{_col(i, "total")},
               coalesce(l.standing, 0), coalesce(l.reversed, 0), coalesce(l.total, 0),
               coalesce(f.total, 0), coalesce(f.matched, 0)
        FROM {inv} b
        LEFT JOIN ledger l ON l.invoice_id = b.{_col(i, "id")}
        LEFT JOIN facts f ON f.invoice_id = b.{_col(i, "id")}
        WHERE b.{_col(i, "biller")} = %(biller)s
          AND ((b.{_col(i, "status")} = 'paid' AND coalesce(l.standing, 0) = 0
                AND coalesce(f.matched, 0) = 0)
               OR coalesce(l.total, 0) <> coalesce(f.total, 0))
    """  # noqa: S608 (identifiers from the models' _meta, quoted; the values are parameters)


def ledger_against_invoices(*, biller: Biller, day: datetime.date) -> list[Found]:
    """Bills paid without a standing payment (and why: reversed, or never paid), payments on no bill,
    and bills whose payment facts in billing differ from the ledger."""
    found: list[Found] = []
    with connection.cursor() as cursor:
        cursor.execute(_bills_sql(), {"biller": biller.pk})
        rows = cursor.fetchall()
    for pk, status, total, standing, was_reversed, ledger, facts, matched in rows:
        if status == Invoice.Status.PAID and not standing and not matched:
            detail = (
                Finding.Detail.REVERSED_STILL_COUNTED if was_reversed else Finding.Detail.PAID_WITHOUT_PAYMENT
            )
            found.append(
                Found(
                    key=f"ledger:paid:{pk}",
                    kind=Finding.Kind.LEDGER_INCONSISTENCY,
                    detail=detail,
                    processing_date=day,
                    amount=total,
                    invoice_id=pk,
                    links=_links(invoices=[pk]),
                )
            )
        if ledger != facts:
            found.append(
                Found(
                    key=f"ledger:facts:{pk}",
                    kind=Finding.Kind.LEDGER_INCONSISTENCY,
                    detail=Finding.Detail.FACTS_DIFFER,
                    processing_date=day,
                    amount=abs(ledger - facts),
                    invoice_id=pk,
                    links=_links(invoices=[pk]),
                    facts={"ledger": ledger, "billing": facts},
                )
            )
    for pk, amount, notice_id in (
        LedgerEntry.objects.for_biller(biller)
        .filter(outcome__in=STANDING, invoice__isnull=True)
        .values_list("pk", "amount", "notice_id")
    ):
        found.append(
            Found(
                key=f"ledger:nobill:{pk}",
                kind=Finding.Kind.LEDGER_INCONSISTENCY,
                detail=Finding.Detail.PAYMENT_WITHOUT_BILL,
                processing_date=day,
                amount=amount,
                entry_id=pk,
                links=_links(entries=[pk], notices=[notice_id]),
            )
        )
    return found


# --- expected funds against deposits -----------------------------------------------------------------


@dataclass
class Funds:
    """What one bank owes for one processing date: payments less reversals it reported."""

    bank_code: str
    count: int
    amount: int


def funds_of_day(*, biller: Biller, day: datetime.date) -> list[Funds]:
    """Per bank, the payments of ``day`` (every payment the bank collected: paid, provisional or double —
    the bank remits what the payer paid) less its reversals; a teller-file record paired with a line
    payment is the same money, counted once."""
    paired_files = ReportPair.objects.for_biller(biller).values("file_notice_id")
    rows = (
        Notice.objects.for_biller(biller)
        .filter(key_date=day)
        .exclude(pk__in=paired_files)
        .values("bank_code", "kind")
        .annotate(n=Count("id"), total=Sum("amount"))
        .values_list("bank_code", "kind", "n", "total")
    )
    by_bank: dict[str, Funds] = {}
    for bank, kind, n, total in rows:
        funds = by_bank.setdefault(bank, Funds(bank, 0, 0))
        if kind == Notice.Kind.PAYMENT:
            funds.count += n
            funds.amount += total
        else:
            funds.amount -= total
    return sorted(by_bank.values(), key=lambda f: f.bank_code)
