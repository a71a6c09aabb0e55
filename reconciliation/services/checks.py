"""The invariants every yen must satisfy, checked over the books as they stand (``manage.py
reconcile_check``, and after every step of the state-machine test):

1. sums match: the ledger holds exactly what the applied notices reported (payments in, reversals out,
   one entry per notice), and billing's payment facts on each bill equal the ledger's entries on it;
2. every payment has its frame: a line notice its stored message with the same transaction key, a teller
   notice its accepted file; every payment the line acknowledged (1200/1700 answered 0000) is a notice;
3. no bill is paid twice without a finding: on a bill with several standing payments, every one but the
   first has a double-payment finding (or the report-pair finding of a file repeating the line);
4. every reversal points to a payment: of the same biller, for the same amount, not itself a reversal.

Each check is one or two aggregate queries; a failure names the biller and the rows.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Sum

from billing.models import Biller, InvoicePayment
from payeasy.models import LedgerEntry, Message, Notice, TellerFile
from reconciliation.models import Finding

STANDING = (LedgerEntry.Outcome.PAID, LedgerEntry.Outcome.DOUBLE_PAYMENT)
SHOWN = 20  # rows named per failure


@dataclass(frozen=True)
class Failure:
    check: str
    biller: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.biller}: {self.detail}"


def reconcile_check(*, billers: list[Biller], day: datetime.date | None = None) -> list[Failure]:
    """Every failed invariant for ``billers`` (notices of ``day`` only, when given)."""
    failures: list[Failure] = []
    with transaction.atomic():
        if connection.vendor == "postgresql":  # the checks hash a million rows per table: room for it
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '64MB'")
        for biller in billers:
            for check in (_sums, _frames, _doubles, _reversals):
                found = check(biller, day)
                failures += [Failure(check.__name__.strip("_"), biller.biller_code, d) for d in found]
    return failures


def _ids(values: list[int]) -> str:
    more = f" and {len(values) - SHOWN} more" if len(values) > SHOWN else ""
    return ", ".join(str(v) for v in values[:SHOWN]) + more


def _notices(biller: Biller, day: datetime.date | None):  # type: ignore[no-untyped-def]
    rows = Notice.objects.for_biller(biller)
    return rows.filter(key_date=day) if day else rows


def _sums(biller: Biller, day: datetime.date | None) -> list[str]:
    out: list[str] = []
    applied = _notices(biller, day).filter(applied_at__isnull=False)
    signed = applied.aggregate(
        n=Count("id"),
        paid=Sum("amount", filter=Q(kind=Notice.Kind.PAYMENT)),
        reversed=Sum("amount", filter=Q(kind=Notice.Kind.REVERSAL)),
    )
    expected = (signed["paid"] or 0) - (signed["reversed"] or 0)
    entries = LedgerEntry.objects.for_biller(biller)
    if day:
        entries = entries.filter(notice__key_date=day)
    ledger = entries.aggregate(n=Count("id"), total=Sum("amount"))
    if (ledger["n"], ledger["total"] or 0) != (signed["n"], expected):
        out.append(
            f"ledger holds {ledger['n']} entries for ¥{ledger['total'] or 0:,}, the applied notices "
            f"{signed['n']} for ¥{expected:,}"
        )
    missing = list(applied.filter(entry__isnull=True).values_list("pk", flat=True)[: SHOWN + 1])
    if missing:
        out.append(f"applied notices without a ledger entry: {_ids(missing)}")
    by_invoice = dict(
        entries.filter(invoice__isnull=False)
        .values("invoice_id")
        .annotate(total=Sum("amount"))
        .values_list("invoice_id", "total")
    )
    facts = InvoicePayment.objects.for_biller(biller).filter(entry_ref__gt=0)
    if day:
        facts = facts.filter(entry_ref__in=entries.values("pk"))
    billed = dict(facts.values("invoice_id").annotate(total=Sum("amount")).values_list("invoice_id", "total"))
    differ = sorted(i for i in set(by_invoice) | set(billed) if by_invoice.get(i, 0) != billed.get(i, 0))
    if differ:
        out.append(f"bills whose payments in billing differ from the ledger: {_ids(differ)}")
    return out


def _frames(biller: Biller, day: datetime.date | None) -> list[str]:
    out: list[str] = []
    notices = _notices(biller, day)
    line = notices.filter(source=Notice.Source.LINE)
    unframed = list(
        line.filter(Q(message__isnull=True) | ~Q(message__transaction_key=F("transaction_key"))).values_list(
            "pk", flat=True
        )[: SHOWN + 1]
    )
    if unframed:
        out.append(f"line notices without their frame: {_ids(unframed)}")
    unfiled = list(
        notices.filter(source=Notice.Source.TELLER_FILE)
        .filter(Q(teller_file__isnull=True) | ~Q(teller_file__status=TellerFile.Status.ACCEPTED))
        .values_list("pk", flat=True)[: SHOWN + 1]
    )
    if unfiled:
        out.append(f"teller notices without their accepted file: {_ids(unfiled)}")
    acknowledged = Message.objects.for_biller(biller).filter(
        message_type__in=["1200", "1700"], response_code="0000"
    )
    if day:
        acknowledged = acknowledged.filter(transaction_key__contains=f"{day:%Y%m%d}")
    lost = list(
        acknowledged.exclude(
            transaction_key__in=Notice.objects.for_biller(biller).values("transaction_key")
        ).values_list("transaction_key", flat=True)[: SHOWN + 1]
    )
    if lost:
        out.append(f"payments acknowledged on the line but not stored: {', '.join(lost[:SHOWN])}")
    return out


def _doubles(biller: Biller, day: datetime.date | None) -> list[str]:
    standing = LedgerEntry.objects.for_biller(biller).filter(
        outcome__in=STANDING, reversed_by__isnull=True, invoice__isnull=False
    )
    doubled = standing.values("invoice_id").annotate(n=Count("id")).filter(n__gt=1).values("invoice_id")
    rows = list(
        standing.filter(invoice_id__in=doubled)
        .order_by("invoice_id", "pk")
        .values_list("invoice_id", "pk", "notice_id", "notice__key_date")
    )
    wanted = {f"entry:{pk}" for _i, pk, _n, _d in rows} | {f"pair:{n}" for _i, _pk, n, _d in rows}
    keys = set(Finding.objects.for_biller(biller).filter(key__in=wanted).values_list("key", flat=True))
    seen: set[int] = set()
    unflagged: list[int] = []
    for invoice_id, pk, notice_id, key_date in rows:
        if invoice_id not in seen:
            seen.add(invoice_id)
            continue
        if day and key_date != day:
            continue
        if f"entry:{pk}" not in keys and f"pair:{notice_id}" not in keys:
            unflagged.append(pk)
    if unflagged:
        return [
            f"second payments of a bill without a double-payment finding (ledger entries): {_ids(unflagged)}"
        ]
    return []


def _reversals(biller: Biller, day: datetime.date | None) -> list[str]:
    out: list[str] = []
    reversals = LedgerEntry.objects.for_biller(biller).filter(outcome=LedgerEntry.Outcome.REVERSAL)
    if day:
        reversals = reversals.filter(notice__key_date=day)
    wrong = list(
        reversals.filter(
            Q(reverses__isnull=True)
            | Q(reverses__outcome=LedgerEntry.Outcome.REVERSAL)
            | ~Q(reverses__biller_id=F("biller_id"))
            | ~Q(reverses__amount=-F("amount"))
        ).values_list("pk", flat=True)[: SHOWN + 1]
    )
    if wrong:
        out.append(f"reversals that point to no payment of theirs: {_ids(wrong)}")
    payment = Notice.objects.filter(kind=Notice.Kind.PAYMENT, transaction_key=OuterRef("original_key"))
    orphans = list(
        _notices(biller, day)
        .filter(kind=Notice.Kind.REVERSAL)
        .filter(~Exists(payment))
        .values_list("pk", flat=True)[: SHOWN + 1]
    )
    if orphans:
        out.append(f"reversal notices naming no payment: {_ids(orphans)}")
    return out
