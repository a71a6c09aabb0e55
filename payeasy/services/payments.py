"""Applying what the network reported to the books: notices → ledger entries → invoice status.

Workers claim waiting notices in batches (``SELECT … FOR UPDATE SKIP LOCKED``) and apply a batch in
one transaction: one commit for many payments. Each notice is applied at most once — the ledger
entry's one-to-one link to its notice is a unique constraint — and one bad notice cannot roll back
the others: a batch that fails is applied again notice by notice, each in a savepoint, and the
notice that still fails stays waiting with its error (the sweeper retries it).

Spec §5 rules 3, 4 and 6: a payment that fails a business check — or that looked wrong when it was
received (``Notice.suspect``: a processing date off the online days, a paid-at in the future or long
before the processing date) — is provisional (仮消込) with its reason and the bill is not marked paid;
a second payment of a paid bill is a double payment (二重支払), counted and due for refund while it
stands; a reversal is a new entry that undoes one payment, and the bill becomes payable again unless
another standing payment covers it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.models import Biller, Invoice
from billing.numbers import issuer_for
from billing.services.balances import balance_payment_allocate, balance_payment_unallocate
from config.logs import exception_summary
from payeasy import codec
from payeasy.events import Event, dispatch
from payeasy.models import ContractedBank, LedgerEntry, Notice
from payeasy.selectors import contract_code
from payeasy.services.invoice_payments import invoice_payments_tell
from payeasy.services.webhooks import events_record

log = logging.getLogger("payeasy.payments")

APPLY_BATCH = 200
STANDING = (LedgerEntry.Outcome.PAID, LedgerEntry.Outcome.DOUBLE_PAYMENT)


@dataclass
class Applied:
    """The result of one claim: how many notices were applied, which failed, and the events."""

    applied: int = 0
    failed: list[int] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


class _NotYet(Exception):
    """A reversal whose original payment is being applied by another worker right now."""


def notices_apply(*, limit: int = APPLY_BATCH, notice_ids: Sequence[int] | None = None) -> Applied:
    """Claim up to ``limit`` waiting notices (oldest first; only ``notice_ids`` if given) and apply them.

    Safe to run in any number of workers at once and any number of times.
    """
    try:
        with transaction.atomic():
            result = _claim_and_apply(limit, notice_ids, isolate=False)
    except Exception as exc:  # whatever one notice did, the others go on without it
        log.warning("batch failed (%s); applying its notices one by one", exception_summary(exc))
        with transaction.atomic():
            result = _claim_and_apply(limit, notice_ids, isolate=True)
        if result.failed:
            Notice.objects.filter(pk__in=result.failed).update(attempts=F("attempts") + 1)
    if result.events:
        announced = result.events
        transaction.on_commit(lambda: dispatch(announced))
    return result


def _claim_and_apply(limit: int, notice_ids: Sequence[int] | None, *, isolate: bool) -> Applied:
    waiting = Notice.objects.select_for_update(skip_locked=True).filter(applied_at__isnull=True)
    if notice_ids is not None:
        waiting = waiting.filter(pk__in=list(notice_ids))
    notices = list(waiting.order_by("id")[:limit])
    result = Applied()
    if not notices:
        return result
    context = _Context.load(notices)
    now = timezone.now()
    errors: dict[int, str] = {}
    for notice in notices:
        if not isolate:
            _apply_one(notice, context, result)
        else:
            try:
                with transaction.atomic():
                    _apply_one(notice, context, result, flush=True)
            except Exception as exc:  # recorded on the notice; the sweeper retries it
                log.warning("notice %s not applied: %s", notice.transaction_key, exception_summary(exc))
                errors[notice.pk] = f"{type(exc).__name__}: {exc}"[:300]
                result.failed.append(notice.pk)
                context.reload_invoices()
                continue
        result.applied += 1
    context.flush()
    applied_ids = [n.pk for n in notices if n.pk not in errors]
    Notice.objects.filter(pk__in=applied_ids).update(applied_at=now, last_error="")
    for pk, error in errors.items():
        Notice.objects.filter(pk=pk).update(last_error=error)
    events_record(result.events)  # the webhook outbox commits with the ledger, in either path
    return result


@dataclass
class _Context:
    """What a batch needs, loaded once: billers, their contracts, the invoices (locked, in id order)."""

    billers: dict[int, Biller]
    contracts: dict[int, list[ContractedBank]]
    invoices: dict[int, Invoice]
    invoice_of: dict[int, int | None]  # notice id → invoice id (None: the numbers match no bill)
    # written together by flush(): one INSERT for the entries, one UPDATE for the bills, per batch
    new_entries: list[tuple[LedgerEntry, list[Event]]] = field(default_factory=list)
    dirty: dict[int, Invoice] = field(default_factory=dict)

    def defer(self, entry: LedgerEntry, events: list[Event], invoice: Invoice | None = None) -> None:
        self.new_entries.append((entry, events))
        if invoice is not None:
            self.dirty[invoice.pk] = invoice

    def flush(self) -> None:
        """Write the deferred entries, put their ids into their events, and tell billing (the payments
        on its bills and the bills now paid: one INSERT and one UPDATE, in this transaction)."""
        entries = [entry for entry, _events in self.new_entries]
        if entries:
            LedgerEntry.objects.bulk_create(entries)
            for entry, events in self.new_entries:
                for event in events:
                    event.data["ledger_entry"] = entry.pk
        if entries or self.dirty:
            invoice_payments_tell(entries=entries, invoices=list(self.dirty.values()))
        self.new_entries, self.dirty = [], {}

    @classmethod
    def load(cls, notices: list[Notice]) -> _Context:
        billers = {b.pk: b for b in Biller.objects.filter(pk__in={n.biller_id for n in notices})}
        contracts: dict[int, list[ContractedBank]] = defaultdict(list)
        for contract in ContractedBank.objects.filter(biller__in=billers):
            contracts[contract.biller_id].append(contract)
        originals = [n.original_key for n in notices if n.kind == Notice.Kind.REVERSAL]
        original_entries = (
            LedgerEntry.objects.filter(notice__transaction_key__in=originals) if originals else []
        )
        invoice_of: dict[int, int | None] = {}
        for n in notices:
            if n.kind == Notice.Kind.PAYMENT:
                counter = issuer_for(billers[n.biller_id].number_key).counter_of(n.customer_number)
                invoice_of[n.pk] = counter
        wanted = {pk for pk in invoice_of.values() if pk is not None}
        wanted |= {e.invoice_id for e in original_entries if e.invoice_id is not None}
        # lock every invoice the batch touches, in id order: two workers never wait on each other in a cycle
        invoices = {
            inv.pk: inv
            for inv in Invoice.objects.select_for_update().filter(pk__in=sorted(wanted)).order_by("pk")
        }
        for notice_pk, invoice_pk in invoice_of.items():
            if invoice_pk is not None and invoice_pk not in invoices:
                invoice_of[notice_pk] = None
        return cls(billers, contracts, invoices, invoice_of)

    def reload_invoices(self) -> None:
        """After a savepoint rollback the invoice objects may hold unsaved changes: reload them."""
        self.new_entries, self.dirty = [], {}
        for invoice in self.invoices.values():
            invoice.refresh_from_db()

    def add(self, notices: list[Notice]) -> None:
        """Load (and lock) what ``notices`` need too, for a payment applied on behalf of its reversal."""
        extra = _Context.load(notices)
        self.billers.update(extra.billers)
        self.invoices.update(extra.invoices)
        self.invoice_of.update(extra.invoice_of)
        for pk, rows in extra.contracts.items():
            self.contracts.setdefault(pk, rows)


def _apply_one(notice: Notice, context: _Context, result: Applied, *, flush: bool = False) -> None:
    apply = _apply_payment if notice.kind == Notice.Kind.PAYMENT else _apply_reversal
    _entry, events = apply(notice, context)
    if flush:  # one notice in its savepoint: written before its events count
        context.flush()
    result.events.extend(events)


_CONTRACT_REASONS = {
    "A002": LedgerEntry.Reason.BANK_NOT_CONTRACTED,
    "A010": LedgerEntry.Reason.CHANNEL_NOT_ALLOWED,
}


def _contract_problem(notice: Notice, contracts: Iterable[ContractedBank]) -> str:
    """The 仮消込 reason of the line's contract checks (the inquiry's A002/A010), or ""."""
    day = notice.paid_at.astimezone(codec.JST).date()
    code = contract_code(contracts, bank_code=notice.bank_code, channel=notice.channel, day=day)
    return _CONTRACT_REASONS.get(code, "")


def _payment_reason(notice: Notice, invoice: Invoice | None, context: _Context) -> str:
    """The 仮消込 reason, or "" when the payment pays (or double-pays) the bill."""
    biller = context.billers[notice.biller_id]
    if (
        invoice is None
        or invoice.biller_id != notice.biller_id
        or invoice.confirmation_number != notice.confirmation_number
        or invoice.kind == Invoice.Kind.CREDIT_NOTE
    ):
        return LedgerEntry.Reason.UNKNOWN_NUMBER
    if notice.suspect:
        # flagged on receipt (processing date off the online days, paid at in the future or long ago):
        # before the checks below, which read the paid-at it puts in doubt (contract period, due date)
        return notice.suspect
    problem = _contract_problem(notice, context.contracts.get(notice.biller_id, ()))
    if problem:
        return problem
    if invoice.status == Invoice.Status.CANCELLED:
        return LedgerEntry.Reason.CANCELLED
    if invoice.status not in (Invoice.Status.PUBLISHED, Invoice.Status.PAID):
        return LedgerEntry.Reason.NOT_PAYABLE
    if notice.amount != invoice.total:
        return LedgerEntry.Reason.AMOUNT_DIFFERS
    paid_day = notice.paid_at.astimezone(codec.JST).date()
    if (
        invoice.status == Invoice.Status.PUBLISHED
        and paid_day > invoice.due_date
        and biller.late_payment_policy == Biller.LatePaymentPolicy.REFUSE
    ):
        return LedgerEntry.Reason.PAST_DUE
    return ""


def _event_data(notice: Notice, entry: LedgerEntry, invoice: Invoice | None) -> dict[str, Any]:
    return {
        "transaction_key": notice.transaction_key,
        "amount": notice.amount,
        "paid_at": notice.paid_at.isoformat(),
        "channel": notice.channel,
        "bank_code": notice.bank_code,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "invoice": invoice.number if invoice is not None else None,
        "ledger_entry": entry.pk,
    }


def _apply_payment(notice: Notice, context: _Context) -> tuple[LedgerEntry, list[Event]]:
    invoice_pk = context.invoice_of.get(notice.pk)
    invoice = context.invoices.get(invoice_pk) if invoice_pk is not None else None
    reason = _payment_reason(notice, invoice, context)
    if reason:
        outcome = LedgerEntry.Outcome.PROVISIONAL
        if reason == LedgerEntry.Reason.UNKNOWN_NUMBER:
            invoice = None  # another biller's bill, or a wrong confirmation number: not this invoice's money
    elif invoice is not None and invoice.status == Invoice.Status.PAID:
        outcome = LedgerEntry.Outcome.DOUBLE_PAYMENT
    else:
        outcome = LedgerEntry.Outcome.PAID
    entry = LedgerEntry(
        biller_id=notice.biller_id,
        notice=notice,
        invoice=invoice,
        outcome=outcome,
        reason=reason,
        amount=notice.amount,
        created_at=timezone.now(),
    )
    data = _event_data(notice, entry, invoice)
    invoice_id = invoice.pk if invoice is not None else None
    events = [Event("payment.received", notice.biller_id, invoice_id, data)]
    if outcome == LedgerEntry.Outcome.PROVISIONAL:
        events.append(Event("payment.provisional", notice.biller_id, invoice_id, data))
    elif outcome == LedgerEntry.Outcome.DOUBLE_PAYMENT:
        events.append(Event("payment.double", notice.biller_id, invoice_id, data))
    elif invoice is not None:
        invoice.status, invoice.paid_at = Invoice.Status.PAID, notice.paid_at
        invoice.updated_at = timezone.now()
        events.append(Event("invoice.paid", notice.biller_id, invoice.pk, data))
        if invoice.kind == Invoice.Kind.PAYMENT_REQUEST:  # a chosen amount goes to its balance (任意金額)
            balance_payment_allocate(
                invoice=invoice,
                amount=notice.amount,
                paid_at=notice.paid_at,
                payment_key=notice.transaction_key,
            )
    context.defer(entry, events, invoice if outcome == LedgerEntry.Outcome.PAID else None)
    return entry, events


def _apply_reversal(notice: Notice, context: _Context) -> tuple[LedgerEntry, list[Event]]:
    context.flush()  # the payment it undoes may be among the batch's deferred entries
    original_notice = Notice.objects.get(transaction_key=notice.original_key, kind=Notice.Kind.PAYMENT)
    original = LedgerEntry.objects.filter(notice=original_notice).first()
    events: list[Event] = []
    if original is None:
        # the payment is still waiting: apply it first, here, if no other worker holds it
        locked = Notice.objects.select_for_update(skip_locked=True).filter(
            pk=original_notice.pk, applied_at__isnull=True
        )
        claimed = locked.first()
        if claimed is None:
            raise _NotYet(f"the original payment {notice.original_key} is being applied")
        context.add([claimed])
        original, events = _apply_payment(claimed, context)  # its events go out too
        context.flush()
        Notice.objects.filter(pk=claimed.pk).update(applied_at=timezone.now())
    entry = LedgerEntry.objects.create(
        biller_id=notice.biller_id,
        notice=notice,
        invoice_id=original.invoice_id,
        outcome=LedgerEntry.Outcome.REVERSAL,
        amount=-original.amount,
        reverses=original,
    )
    invoice = context.invoices.get(original.invoice_id) if original.invoice_id is not None else None
    if invoice is None and original.invoice_id is not None:
        invoice = Invoice.objects.select_for_update().get(pk=original.invoice_id)
        context.invoices[invoice.pk] = invoice
    data = _event_data(notice, entry, invoice) | {"reverses": original_notice.transaction_key}
    events.append(Event("payment.reversed", notice.biller_id, original.invoice_id, data))
    if invoice is not None and original.outcome in STANDING:
        still = (
            LedgerEntry.objects.filter(invoice=invoice, outcome__in=STANDING, reversed_by__isnull=True)
            .select_related("notice")
            .order_by("id")
            .first()
        )
        if still is not None:
            invoice.paid_at = still.notice.paid_at  # paid by the other payment; no double payment left
        elif invoice.status == Invoice.Status.PAID:
            invoice.status, invoice.paid_at = Invoice.Status.PUBLISHED, None
            events.append(Event("invoice.payable_again", notice.biller_id, invoice.pk, data))
            if invoice.kind == Invoice.Kind.PAYMENT_REQUEST:  # the balance is owed again
                balance_payment_unallocate(invoice=invoice, payment_key=notice.transaction_key)
        invoice.updated_at = timezone.now()
    changed = [invoice] if invoice is not None and original.outcome in STANDING else []
    invoice_payments_tell(entries=[entry], invoices=changed)  # billing's record, in this transaction
    return entry, events


def refund_due(*, biller: Biller) -> list[LedgerEntry]:
    """The payments of a biller due for refund: on every bill with more than one standing payment, all
    but the first (reversing one of two leaves the other as the bill's payment, nothing due)."""
    doubled = LedgerEntry.objects.filter(
        biller=biller, outcome=LedgerEntry.Outcome.DOUBLE_PAYMENT, reversed_by__isnull=True
    ).values("invoice_id")
    standing = (
        LedgerEntry.objects.filter(
            biller=biller, invoice_id__in=doubled, outcome__in=STANDING, reversed_by__isnull=True
        )
        .select_related("notice", "invoice")
        .order_by("invoice_id", "id")
    )
    due: list[LedgerEntry] = []
    seen: set[int | None] = set()
    for entry in standing:
        if entry.invoice_id in seen:
            due.append(entry)
        seen.add(entry.invoice_id)
    return due


__all__ = ["APPLY_BATCH", "Applied", "notices_apply", "refund_due"]
