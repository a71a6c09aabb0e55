"""A Hypothesis state machine over the books: random sequences of payments, resends, double payments,
reversals, teller files (some repeating the line), deposits and applying, in random order — with the
invariants of ``reconcile_check`` and the money rules checked after every step.

Everything goes through the real code: frames through the line processor, files through the teller
import, notices through the applier, then a reconciliation run."""

from __future__ import annotations

import datetime
import hashlib
import itertools

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from billing.models import Invoice
from payeasy import codec
from payeasy.models import LedgerEntry, Notice
from payeasy.services.payments import notices_apply
from payeasy.services.teller import teller_file_import
from reconciliation.models import Deposit, DepositStatement, Finding
from reconciliation.services.checks import reconcile_check
from reconciliation.services.reconcile import reconcile
from tests.payeasy import line_helpers as h

DAY = datetime.date(2026, 11, 26)
VALUE_DATE = datetime.date(2026, 11, 30)  # DAY + 2 business days, the default lag


class Books(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.biller = h.open_line_biller()
        self.other = h.line_biller(biller_code="58199001", payee_number="58199")
        self.invoices = [h.published_invoice(self.biller, price=1000 * (n + 1)) for n in range(4)]
        self.other_invoice = h.published_invoice(self.other, price=5000)
        self.line_payments: list[codec.Message] = []  # sent and answered 0000
        self.teller_serial = itertools.count(1)
        self.files = itertools.count(1)

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    # --- what the network does ----------------------------------------------------------------------

    @rule(n=st.integers(0, 3), channel=st.sampled_from(["01", "02", "03"]), wrong_amount=st.booleans())
    def pay(self, n: int, channel: str, wrong_amount: bool) -> None:
        invoice = self.invoices[n]
        message = h.payment(
            self.biller, invoice, channel=channel, amount=invoice.total - 1 if wrong_amount else None
        )
        h.send(message)
        self.line_payments.append(message)

    @precondition(lambda self: self.line_payments)
    @rule(data=st.data())
    def resend(self, data: st.DataObject) -> None:
        original = data.draw(st.sampled_from(self.line_payments))
        h.send(h.payment(self.biller, self.invoices[0], kind="1700", serial=int(original.serial)))

    @rule(n=st.integers(0, 3))
    def resend_never_received(self, n: int) -> None:
        message = h.payment(self.biller, self.invoices[n], kind="1700")
        h.send(message)
        self.line_payments.append(message)

    @precondition(lambda self: self.line_payments)
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        original = data.draw(st.sampled_from(self.line_payments))
        h.send(h.reversal(self.biller, original))  # B006 when unknown or reversed already: a finding

    @rule()
    def reverse_unknown(self) -> None:
        ghost = h.payment(self.biller, self.invoices[0], channel="01")
        h.send(h.reversal(self.biller, ghost))

    @rule(ns=st.lists(st.integers(0, 3), min_size=1, max_size=3), repeat_line=st.booleans())
    def teller_file(self, ns: list[int], repeat_line: bool) -> None:
        header = codec.BatchHeader(self.biller.biller_code, "ﾃｽﾄ", "20261126", "0001", "ﾃｽﾄｷﾞﾝｺｳ")
        records = []
        chosen = [self.invoices[n] for n in ns]
        if repeat_line:  # the bank's file repeats a teller payment the line reported
            teller = [m for m in self.line_payments if m.elements[7] == "01"]
            chosen += [i for i in self.invoices if teller and i.customer_number == teller[0].elements[1]][:1]
        for invoice in chosen:
            records.append(
                codec.BatchData(
                    customer_number=invoice.customer_number,
                    confirmation_number=invoice.confirmation_number,
                    amount=invoice.total,
                    branch_code="101",
                    paid_date="20261126",
                    paid_time="110000",
                    serial=f"{next(self.teller_serial):08d}",
                    payer_name_kana="ﾔﾏﾀﾞ ﾀﾛｳ",
                    cancel=0,
                )
            )
        batch = codec.make_batch_file(header, records, serial=next(self.files), crlf=True)
        assert teller_file_import(batch.name, codec.build_batch_file(batch)).accepted

    @rule(amount=st.integers(1, 20_000), bank=st.sampled_from(["0001", "0005"]))
    def deposit(self, amount: int, bank: str) -> None:
        rows = [(VALUE_DATE, bank, amount)]
        statement = DepositStatement.objects.create(
            biller=self.biller,
            name="bank.csv",
            sha256=hashlib.sha256(f"{DepositStatement.objects.count()}{rows}".encode()).hexdigest(),
            encoding="utf-8",
            first_date=VALUE_DATE,
            last_date=VALUE_DATE,
            row_count=1,
            total=amount,
        )
        Deposit.objects.create(
            biller=self.biller,
            statement=statement,
            row=2,
            value_date=VALUE_DATE,
            bank_code=bank,
            amount=amount,
        )

    @rule()
    def other_tenant_pays_twice(self) -> None:
        h.send(h.payment(self.other, self.other_invoice), h.payment(self.other, self.other_invoice))

    @rule()
    def apply(self) -> None:
        notices_apply(limit=1000)

    # --- what must hold after every step ----------------------------------------------------------

    @invariant()
    def books_hold(self) -> None:
        """After every step: reconcile, then every invariant (in this order: the checks read the run)."""
        self.every_yen_is_accounted_for()
        self.a_bill_is_paid_once_and_only_by_a_standing_payment()
        self.double_payments_are_refundable_findings()
        self.findings_stay_with_their_tenant()

    def every_yen_is_accounted_for(self) -> None:
        reconcile(biller=self.biller, processing_date=DAY)
        reconcile(biller=self.other, processing_date=DAY)
        assert reconcile_check(billers=[self.biller, self.other]) == []
        assert reconcile_check(billers=[self.biller], day=DAY) == []

    def a_bill_is_paid_once_and_only_by_a_standing_payment(self) -> None:
        for invoice in Invoice.objects.filter(pk__in=[i.pk for i in self.invoices]):
            unreversed = LedgerEntry.objects.filter(invoice=invoice, reversed_by__isnull=True)
            assert unreversed.filter(outcome="paid").count() <= 1
            # a double payment stands for the bill once the payment before it is reversed (its ledger
            # entry keeps its outcome: the ledger is append-only), so the bill is paid while any stands
            standing = unreversed.filter(outcome__in=["paid", "double_payment"]).count()
            assert (invoice.status == Invoice.Status.PAID) == (standing >= 1)

    def double_payments_are_refundable_findings(self) -> None:
        from payeasy.services.payments import refund_due

        keys = set(Finding.objects.for_biller(self.biller).values_list("key", flat=True))
        for entry in refund_due(biller=self.biller):  # payeasy's own view of what is due for refund
            assert f"entry:{entry.pk}" in keys or f"pair:{entry.notice_id}" in keys

    def findings_stay_with_their_tenant(self) -> None:
        mine = set(Notice.objects.filter(biller=self.biller).values_list("pk", flat=True))
        for links in Finding.objects.for_biller(self.biller).values_list("links", flat=True):
            assert set(links.get("notices", [])) <= mine
        total = LedgerEntry.objects.filter(biller=self.other).aggregate(t=Sum("amount"))["t"] or 0
        applied = Notice.objects.filter(biller=self.other, applied_at__isnull=False).aggregate(
            t=Sum("amount")
        )
        assert total == (applied["t"] or 0)  # the other tenant pays no reversals here


@pytest.mark.django_db
def test_books_state_machine() -> None:
    run_state_machine_as_test(
        Books,
        settings=settings(
            max_examples=12,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
