"""One reconciliation run: compare everything for one biller and processing date, store the findings.

``reconcile`` is run by beat after the line's 閉局 (``reconciliation.tasks``), on demand from the daily
report, and by ``manage.py reconcile``. It runs in one transaction under a per-biller lock, so two runs of
the same biller queue up instead of racing, and any number of runs give the same findings:

- a disagreement found for the first time becomes an open finding (one per biller and key);
- one found again stays as it is (its figures refreshed); if it had cleared, it opens again (an action);
- an open one no longer found is cleared (an action): the missing resend arrived, the deposit came;
- one a person closed (matched, refunded, written off) stays closed.
"""

from __future__ import annotations

import datetime
import hashlib
from collections import defaultdict

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing.models import Biller, User
from reconciliation import comparisons
from reconciliation.comparisons import Found
from reconciliation.models import Action, Deposit, DepositStatement, ExpectedFunds, Finding, ReportPair, Run
from reconciliation.services.deposits import lag_for, lags_of, value_date_for
from reconciliation.services.findings import action_record

# deposits are compared for value dates this far around the run's processing date (a lag is at most a
# few business days; a month back catches a statement imported late)
FUNDS_WINDOW_BEFORE = datetime.timedelta(days=45)
FUNDS_WINDOW_AFTER = datetime.timedelta(days=15)
PER_DAY_PREFIXES = ("entry:", "counter:", "pair:", "fileonly:", "lineonly:", "reversal:")


def reconcile(
    *,
    biller: Biller,
    processing_date: datetime.date,
    trigger: str = Run.Trigger.USER,
    actor: User | None = None,
) -> Run:
    """Reconcile ``biller``'s ``processing_date``: store what disagrees as findings and return the run."""
    day = processing_date
    with transaction.atomic():
        _lock(biller)
        run = Run.objects.create(
            biller=biller, processing_date=day, trigger=trigger, started_by=actor, started_at=timezone.now()
        )
        new_pairs, pair_found = comparisons.report_pairs(biller=biller, day=day)
        ReportPair.objects.bulk_create(new_pairs)
        found = pair_found + comparisons.entries_needing_action(biller=biller, day=day)
        counter_found, counters = comparisons.counters_compare(biller=biller, day=day)
        found += counter_found
        found += comparisons.unknown_reversals(biller=biller, day=day)
        found += comparisons.ledger_against_invoices(biller=biller, day=day)
        funds_found, window = _funds(biller=biller, day=day)
        found += funds_found
        per_day = Q()
        for prefix in PER_DAY_PREFIXES:
            per_day |= Q(key__startswith=prefix)
        scope = (
            Q(per_day, processing_date=day)
            | Q(key__startswith="ledger:")
            | Q(key__startswith="deposit:", processing_date__range=window)
        )
        new, cleared = findings_sync(biller=biller, found=found, scope=scope)
        run.found, run.cleared = new, cleared
        run.open_total = Finding.objects.for_biller(biller).filter(state=Finding.State.OPEN).count()
        run.summary = {
            "counters": counters,
            "pairs_new": len(new_pairs),
            "found_by_kind": _by_kind(found),
        }
        run.finished_at = timezone.now()
        run.save(update_fields=["found", "cleared", "open_total", "summary", "finished_at"])
    return run


def _lock(biller: Biller) -> None:
    """Serialise runs of one biller (PostgreSQL: a transaction-level advisory lock; SQLite serialises
    writers itself)."""
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(b"reconcile").digest()[:4], "big") & 0x7FFFFFFF
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [key, biller.pk])
            # the comparisons hash a million rows per table: room for it, for this transaction only
            cursor.execute("SET LOCAL work_mem = '64MB'")


def _by_kind(found: list[Found]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for f in found:
        counts[f.kind] += 1
    return dict(counts)


def findings_sync(*, biller: Biller, found: list[Found], scope: Q) -> tuple[int, int]:
    """Store ``found`` as findings and clear the open ones in ``scope`` that were not found; returns
    (new, cleared). Inside the run's transaction."""
    by_key = {f.key: f for f in found}
    existing = {
        f.key: f
        for f in Finding.objects.for_biller(biller)
        .filter(Q(key__in=list(by_key)) | scope)
        .select_for_update()
        .order_by("pk")
    }
    now = timezone.now()
    Finding.objects.bulk_create(
        [
            Finding(
                biller=biller,
                key=f.key,
                kind=f.kind,
                detail=f.detail,
                processing_date=f.processing_date,
                amount=f.amount,
                bank_code=f.bank_code,
                invoice_id=f.invoice_id,
                entry_id=f.entry_id,
                links=f.links,
                facts=f.facts,
                found_at=now,
                state=Finding.State.OPEN,
                state_at=now,
            )
            for key, f in by_key.items()
            if key not in existing
        ],
        batch_size=1000,
    )
    new = sum(1 for key in by_key if key not in existing)
    cleared = 0
    for key, finding in existing.items():
        again = by_key.get(key)
        if again is None:
            if finding.state == Finding.State.OPEN:
                action_record(finding=finding, kind=Action.Kind.CLEARED, actor=None)
                cleared += 1
            continue
        changed = [
            name
            for name, value in (("amount", again.amount), ("facts", again.facts), ("links", again.links))
            if getattr(finding, name) != value
        ]
        for name in changed:
            setattr(finding, name, getattr(again, name))
        if changed:
            finding.save(update_fields=changed)
        if finding.state == Finding.State.CLEARED:
            action_record(finding=finding, kind=Action.Kind.FOUND_AGAIN, actor=None)
    return new, cleared


def _funds(*, biller: Biller, day: datetime.date) -> tuple[list[Found], tuple[datetime.date, datetime.date]]:
    """Store what each bank owes for ``day`` and compare, per bank and value date around it, what is due
    with what the imported statements show deposited. A value date no statement covers is pending."""
    lags = lags_of(biller)
    stored = {
        row.bank_code: row
        for row in ExpectedFunds.objects.for_biller(biller).filter(processing_date=day).select_for_update()
    }
    now = timezone.now()
    for funds in comparisons.funds_of_day(biller=biller, day=day):
        value_date = value_date_for(processing_date=day, business_days=lag_for(lags, funds.bank_code))
        row = stored.pop(funds.bank_code, None)
        if row is None:
            ExpectedFunds.objects.create(
                biller=biller,
                bank_code=funds.bank_code,
                processing_date=day,
                value_date=value_date,
                count=funds.count,
                amount=funds.amount,
                checked_at=now,
            )
        else:
            row.value_date, row.count, row.amount, row.checked_at = value_date, funds.count, funds.amount, now
            row.save(update_fields=["value_date", "count", "amount", "checked_at"])
    for row in stored.values():  # a bank whose payments of the day were all reversed or moved
        row.count, row.amount, row.checked_at = 0, 0, now
        row.save(update_fields=["count", "amount", "checked_at"])
    window = (day - FUNDS_WINDOW_BEFORE, day + FUNDS_WINDOW_AFTER)
    expected = {
        (r["bank_code"], r["value_date"]): r["total"]
        for r in ExpectedFunds.objects.for_biller(biller)
        .filter(value_date__range=window)
        .values("bank_code", "value_date")
        .annotate(total=Sum("amount"))
    }
    deposited: dict[tuple[str, datetime.date], int] = {}
    deposit_ids: dict[tuple[str, datetime.date], list[int]] = defaultdict(list)
    for pk, bank, value_date, amount in (
        Deposit.objects.for_biller(biller)
        .filter(value_date__range=window)
        .values_list("pk", "bank_code", "value_date", "amount")
    ):
        deposited[(bank, value_date)] = deposited.get((bank, value_date), 0) + amount
        deposit_ids[(bank, value_date)].append(pk)
    periods = list(
        DepositStatement.objects.for_biller(biller)
        .filter(first_date__lte=window[1], last_date__gte=window[0])
        .values_list("first_date", "last_date")
    )
    found: list[Found] = []
    states: dict[str, list[tuple[str, datetime.date]]] = defaultdict(list)
    for bank, value_date in sorted(set(expected) | set(deposited)):
        if not any(first <= value_date <= last for first, last in periods):
            states[ExpectedFunds.State.PENDING].append((bank, value_date))
            continue
        due, got = expected.get((bank, value_date), 0), deposited.get((bank, value_date), 0)
        if due == got:
            states[ExpectedFunds.State.MATCHED].append((bank, value_date))
            continue
        short = got < due
        states[ExpectedFunds.State.SHORT if short else ExpectedFunds.State.EXCESS].append((bank, value_date))
        difference = abs(due - got)
        found.append(
            Found(
                key=f"deposit:{bank}:{value_date:%Y%m%d}:{'short' if short else 'excess'}:{difference}",
                kind=Finding.Kind.DEPOSIT_SHORTFALL if short else Finding.Kind.DEPOSIT_EXCESS,
                processing_date=value_date,
                amount=difference,
                bank_code=bank,
                links={"deposits": sorted(deposit_ids.get((bank, value_date), []))},
                facts={"expected": due, "deposited": got, "value_date": value_date.isoformat()},
            )
        )
    for state, pairs in states.items():
        condition = Q()
        for bank, value_date in pairs:
            condition |= Q(bank_code=bank, value_date=value_date)
        if pairs:
            ExpectedFunds.objects.for_biller(biller).filter(condition).exclude(state=state).update(
                state=state
            )
    return found, window
