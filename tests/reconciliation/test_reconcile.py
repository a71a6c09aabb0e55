"""A reconciliation run: what it compares, the findings it stores once, clears and finds again; the
invariants ``reconcile_check`` enforces. Payments go through the real line code and applier."""

from __future__ import annotations

import datetime
import hashlib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from billing.models import Biller, Invoice
from payeasy import codec
from payeasy.models import LedgerEntry, Notice
from payeasy.services.payments import notices_apply
from payeasy.services.teller import teller_file_import
from reconciliation.models import Action, Deposit, DepositStatement, ExpectedFunds, Finding, ReportPair, Run
from reconciliation.services.checks import reconcile_check
from reconciliation.services.reconcile import reconcile
from tests.factories import make_user
from tests.payeasy import line_helpers as h

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 11, 26)  # a Thursday


@pytest.fixture
def biller() -> Biller:
    return h.open_line_biller()


def pay(biller: Biller, invoice: Invoice, **kw: object) -> codec.Message:
    message = h.payment(biller, invoice, **kw)
    h.send(message)
    notices_apply()
    return message


def findings(biller: Biller, **filters: object) -> list[tuple[str, str, int, str]]:
    return sorted(
        Finding.objects.for_biller(biller).filter(**filters).values_list("kind", "detail", "amount", "state")
    )


def teller_file(biller: Biller, invoices: list[Invoice], *, bank: str = "0001", serial: int = 1) -> None:
    header = codec.BatchHeader(biller.biller_code, "ﾃｽﾄ", "20261126", bank, "ﾃｽﾄｷﾞﾝｺｳ")
    records = [
        codec.BatchData(
            customer_number=i.customer_number,
            confirmation_number=i.confirmation_number,
            amount=i.total,
            branch_code="101",
            paid_date="20261126",
            paid_time="110000",
            serial=f"{n + 50:08d}",
            payer_name_kana="ﾔﾏﾀﾞ ﾀﾛｳ",
            cancel=0,
        )
        for n, i in enumerate(invoices)
    ]
    batch = codec.make_batch_file(header, records, serial=serial, crlf=True)
    assert teller_file_import(batch.name, codec.build_batch_file(batch)).accepted
    notices_apply()


def test_a_clean_day_has_no_findings_and_the_invariants_hold(biller: Biller) -> None:
    for price in (1000, 2000, 3000):
        pay(biller, h.published_invoice(biller, price=price))
    run = reconcile(biller=biller, processing_date=DAY)
    assert (run.found, run.cleared, run.open_total) == (0, 0, 0)
    assert findings(biller) == []
    assert reconcile_check(billers=[biller]) == []
    assert reconcile_check(billers=[biller], day=DAY) == []
    funds = ExpectedFunds.objects.for_biller(biller).get()
    # bank 0001, default lag 2 business days: Thu 26 → Mon 30 November
    assert (funds.bank_code, funds.count, funds.amount, funds.value_date) == (
        "0001",
        3,
        6600,
        datetime.date(2026, 11, 30),
    )
    assert funds.state == ExpectedFunds.State.PENDING  # no statement covers the value date yet


def test_double_provisional_late_and_cancelled_payments_are_findings_once(biller: Biller) -> None:
    doubled = h.published_invoice(biller, price=1000)
    pay(biller, doubled)
    pay(biller, doubled)  # another transaction key: 二重支払
    pay(biller, h.published_invoice(biller, price=2000), amount=1)  # amount differs
    cancelled = h.published_invoice(biller, price=3000)
    Invoice.objects.filter(pk=cancelled.pk).update(status=Invoice.Status.CANCELLED)
    pay(biller, cancelled)
    run = reconcile(biller=biller, processing_date=DAY)
    assert run.found == 3
    assert findings(biller) == [
        ("double_payment", "", 1100, "open"),
        ("provisional", "amount_differs", 1, "open"),
        ("provisional", "cancelled", 3300, "open"),
    ]
    again = reconcile(biller=biller, processing_date=DAY)  # the same findings, not new ones
    assert (again.found, again.cleared, Finding.objects.count()) == (0, 0, 3)
    double = Finding.objects.get(kind="double_payment")
    entry = LedgerEntry.objects.get(pk=double.entry_id)
    assert entry.outcome == "double_payment" and double.invoice_id == doubled.pk
    assert double.links["entries"] == [entry.pk] and double.links["messages"] == [entry.notice.message_id]
    assert reconcile_check(billers=[biller]) == []


def test_a_second_payment_without_its_finding_fails_the_check(biller: Biller) -> None:
    invoice = h.published_invoice(biller)
    pay(biller, invoice)
    pay(biller, invoice)
    failures = reconcile_check(billers=[biller])
    assert [f.check for f in failures] == ["doubles"]
    assert str(LedgerEntry.objects.get(outcome="double_payment").pk) in failures[0].detail
    reconcile(biller=biller, processing_date=DAY)
    assert reconcile_check(billers=[biller]) == []


def test_a_reversed_double_payment_clears_and_the_clearing_is_an_action(biller: Biller) -> None:
    invoice = h.published_invoice(biller)
    pay(biller, invoice)
    second = h.payment(biller, invoice, channel="01")
    h.send(second)
    notices_apply()
    reconcile(biller=biller, processing_date=DAY)
    finding = Finding.objects.get()
    h.send(h.reversal(biller, second))
    notices_apply()
    run = reconcile(biller=biller, processing_date=DAY)
    finding.refresh_from_db()
    assert (run.cleared, finding.state) == (1, "cleared")
    assert list(finding.actions.values_list("kind", "actor")) == [("cleared", None)]
    invoice.refresh_from_db()
    assert invoice.status == "paid"  # the first payment still stands
    assert reconcile_check(billers=[biller]) == []


def test_counters_are_compared_not_only_answered(biller: Biller) -> None:
    pay(biller, h.published_invoice(biller, price=1000))
    h.send(h.counters(biller, n=2, total=3300))  # the centre counts a payment we never received
    reconcile(biller=biller, processing_date=DAY)
    finding = Finding.objects.get(kind="counter_mismatch")
    assert finding.amount == 2200
    assert (finding.facts["centre_count"], finding.facts["line_count"]) == (2, 1)
    # the centre resends the missing payment (1700): the figures agree and the finding clears
    pay(biller, h.published_invoice(biller, price=2000), kind="1700")
    h.send(h.counters(biller, n=2, total=3300))
    run = reconcile(biller=biller, processing_date=DAY)
    finding.refresh_from_db()
    assert finding.state == "cleared" and run.summary["counters"]["line_count"] == 2


def test_a_teller_file_repeating_a_line_payment_is_paired_not_a_double_payment(biller: Biller) -> None:
    repeated = h.published_invoice(biller, price=1000)
    only_line = h.published_invoice(biller, price=2000)
    pay(biller, repeated, channel="01")
    pay(biller, only_line, channel="01")
    undone = pay(biller, h.published_invoice(biller, price=3000), channel="01")
    h.send(h.reversal(biller, undone))  # reversed at the counter the same day: not expected in the file
    notices_apply()
    teller_file(biller, [repeated])
    reconcile(biller=biller, processing_date=DAY)
    pair = ReportPair.objects.get()
    assert Notice.objects.get(pk=pair.file_notice_id).source == "teller_file"
    assert findings(biller) == [
        ("batch_line_mismatch", "both_routes", 1100, "open"),
        ("batch_line_mismatch", "line_only", 2200, "open"),
    ]  # and no double_payment finding for the file's repeat
    funds = ExpectedFunds.objects.for_biller(biller).get()
    assert funds.amount == 3300  # the repeated money counted once
    assert reconcile_check(billers=[biller]) == []


def test_a_reversal_of_an_unknown_payment_is_a_finding(biller: Biller) -> None:
    invoice = h.published_invoice(biller)
    ghost = h.payment(biller, invoice, channel="01")  # never sent
    h.send(h.reversal(biller, ghost))
    reconcile(biller=biller, processing_date=DAY)
    assert findings(biller) == [("unknown_reversal", "", 1100, "open")]


def test_a_bill_paid_without_a_payment_is_a_ledger_inconsistency(biller: Biller) -> None:
    invoice = h.published_invoice(biller)
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.PAID)
    reconcile(biller=biller, processing_date=DAY)
    assert findings(biller) == [("ledger_inconsistency", "paid_without_payment", 1100, "open")]


def statement(biller: Biller, rows: list[tuple[datetime.date, str, int]]) -> DepositStatement:
    with transaction.atomic():
        st = DepositStatement.objects.create(
            biller=biller,
            name="bank.csv",
            sha256=hashlib.sha256(repr(rows).encode()).hexdigest(),
            encoding="utf-8",
            first_date=min(r[0] for r in rows),
            last_date=max(r[0] for r in rows),
            row_count=len(rows),
            total=sum(r[2] for r in rows),
        )
        Deposit.objects.bulk_create(
            Deposit(biller=biller, statement=st, row=n, value_date=d, bank_code=b, amount=a)
            for n, (d, b, a) in enumerate(rows, start=2)
        )
    return st


def test_deposits_are_matched_per_bank_and_value_date(biller: Biller) -> None:
    pay(biller, h.published_invoice(biller, price=1000))
    pay(biller, h.published_invoice(biller, price=2000))
    value_date = datetime.date(2026, 11, 30)
    statement(biller, [(value_date, "0001", 2200)])  # short by ¥1,100
    reconcile(biller=biller, processing_date=DAY)
    assert findings(biller) == [("deposit_shortfall", "", 1100, "open")]
    assert ExpectedFunds.objects.for_biller(biller).get().state == "short"
    statement(biller, [(value_date, "0001", 1100)])  # the rest arrives
    run = reconcile(biller=biller, processing_date=DAY)
    assert run.cleared == 1 and ExpectedFunds.objects.for_biller(biller).get().state == "matched"
    statement(biller, [(value_date, "0001", 500), (value_date, "0005", 700)])  # now too much
    reconcile(biller=biller, processing_date=DAY)
    assert findings(biller, state="open") == [
        ("deposit_excess", "", 500, "open"),
        ("deposit_excess", "", 700, "open"),
    ]


def test_a_closed_finding_stays_closed_and_a_cleared_one_is_found_again(biller: Biller) -> None:
    other = h.published_invoice(biller)
    Invoice.objects.filter(pk=other.pk).update(status=Invoice.Status.PAID)
    reconcile(biller=biller, processing_date=DAY)
    finding = Finding.objects.get()
    Invoice.objects.filter(pk=other.pk).update(status=Invoice.Status.PUBLISHED)
    reconcile(biller=biller, processing_date=DAY)
    finding.refresh_from_db()
    assert finding.state == "cleared"
    Invoice.objects.filter(pk=other.pk).update(status=Invoice.Status.PAID)
    reconcile(biller=biller, processing_date=DAY)
    finding.refresh_from_db()
    assert finding.state == "open"
    assert list(finding.actions.values_list("kind", flat=True)) == ["cleared", "found_again"]
    from reconciliation.services.findings import action_record

    with transaction.atomic():
        action_record(
            finding=finding, kind=Action.Kind.WRITE_OFF, actor=make_user(), reason="checked by phone"
        )
    Invoice.objects.filter(pk=other.pk).update(status=Invoice.Status.PUBLISHED)
    reconcile(biller=biller, processing_date=DAY)
    finding.refresh_from_db()
    assert finding.state == "written_off"  # a person's decision is not undone by a run


def test_another_tenants_payments_never_become_this_tenants_findings(biller: Biller) -> None:
    other = h.line_biller(biller_code="58199001", payee_number="58199")
    invoice = h.published_invoice(other)
    pay(other, invoice)
    pay(other, invoice)
    reconcile(biller=biller, processing_date=DAY)
    assert Finding.objects.for_biller(biller).count() == 0
    reconcile(biller=other, processing_date=DAY)
    assert Finding.objects.for_biller(other).count() == 1
    assert ExpectedFunds.objects.for_biller(biller).count() == 0


def test_the_commands(biller: Biller, capsys: pytest.CaptureFixture[str]) -> None:
    invoice = h.published_invoice(biller)
    pay(biller, invoice)
    pay(biller, invoice)
    with pytest.raises(CommandError) as failed:
        call_command("reconcile_check", "--biller", biller.biller_code, "--date", "2026-11-26")
    assert failed.value.returncode == 1
    assert "[doubles]" in capsys.readouterr().err
    call_command("reconcile", "--biller", biller.biller_code, "--date", "2026-11-26")
    assert "1 new finding" in capsys.readouterr().out
    call_command("reconcile_check", "--biller", biller.biller_code)
    assert "all invariants hold" in capsys.readouterr().out
    assert Run.objects.for_biller(biller).get().trigger == "command"
    with pytest.raises(CommandError, match="no such biller"):
        call_command("reconcile_check", "--biller", "00000000")
    with pytest.raises(CommandError, match="not a date"):
        call_command("reconcile_check", "--date", "2026-13-01")
