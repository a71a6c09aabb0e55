"""Staff actions on findings (reconciliation.services.actions): match, refund, write off, reopen.

The payments are real: made through the line (tests.payeasy.line_helpers) and applied by payeasy's
applier; the findings are created directly, as a run would store them.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.errors import NotFound, ValidationFailed
from billing.models import AuditEntry, Biller, Invoice, InvoicePayment, User
from billing.portal.selectors import payment_list
from payeasy.models import LedgerEntry
from payeasy.services.payments import notices_apply
from reconciliation.calendar import business_day_add, is_business_day
from reconciliation.errors import ActionRefused
from reconciliation.models import Action, Finding, Refund
from reconciliation.services import actions
from reconciliation.services.actions import Payee
from tests import factories
from tests.payeasy import line_helpers as h

pytestmark = pytest.mark.django_db

PAYEE = Payee(
    bank_code="0001", branch_code="001", account_type="1", account_number="1234", holder_kana="ヤマダ タロウ"
)


@pytest.fixture
def biller() -> Biller:
    return h.open_line_biller()


@pytest.fixture
def actor(biller: Biller) -> User:
    return factories.make_member(biller)


@pytest.fixture
def invoice(biller: Biller) -> Invoice:
    return h.published_invoice(biller, price=3000)  # 3,300 yen with tax


def transfer_day() -> datetime.date:
    return business_day_add(timezone.localdate(), 1)


def finding_of(entry: LedgerEntry, kind: str, **extra: Any) -> Finding:
    return Finding.objects.create(
        biller_id=entry.biller_id,
        key=f"{kind}:{entry.pk}",
        kind=kind,
        detail=extra.pop("detail", entry.reason),
        processing_date=datetime.date(2026, 11, 26),
        amount=entry.amount,
        bank_code="0001",
        invoice_id=entry.invoice_id,
        entry_id=entry.pk,
        links={"entries": [entry.pk]},
        **extra,
    )


def double_payment(biller: Biller, invoice: Invoice) -> Finding:
    """Pay ``invoice`` twice through the line: the finding of the second payment."""
    h.send(h.payment(biller, invoice, channel="01"), h.payment(biller, invoice, channel="01"))
    notices_apply()
    return finding_of(LedgerEntry.objects.get(outcome="double_payment"), Finding.Kind.DOUBLE_PAYMENT)


def lost_payment(biller: Biller, invoice: Invoice, **change: Any) -> Finding:
    """A payment with numbers of no bill (or ``change``): provisional, and its finding."""
    h.send(h.payment(biller, invoice, **(change or {"customer_number": "77"})))
    notices_apply()
    return finding_of(LedgerEntry.objects.get(outcome="provisional"), Finding.Kind.PROVISIONAL)


@contextmanager
def one_action_written() -> Iterator[None]:
    """Exactly one Action and one AuditEntry appended, and no UPDATE or DELETE of an action."""
    actions_before, audit_before = Action.objects.count(), AuditEntry.objects.count()
    table = Action._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        yield
    assert Action.objects.count() == actions_before + 1
    assert AuditEntry.objects.count() == audit_before + 1
    for q in queries.captured_queries:
        sql = q["sql"].upper()
        assert not ((sql.startswith("UPDATE") or sql.startswith("DELETE")) and table.upper() in sql), sql


def snapshot(finding: Finding) -> tuple[Any, ...]:
    finding.refresh_from_db()
    return (
        finding.state,
        finding.state_at,
        Action.objects.count(),
        AuditEntry.objects.count(),
        InvoicePayment.objects.count(),
        Refund.objects.count(),
        list(Invoice.objects.order_by("id").values_list("status", "paid_at")),
    )


# --- match ---------------------------------------------------------------------------------------------


def test_match_puts_a_lost_payment_on_the_bill_and_billing_shows_it(
    biller: Biller, actor: User, invoice: Invoice
) -> None:
    finding = lost_payment(biller, invoice)
    assert InvoicePayment.objects.count() == 0  # no bill had its numbers
    with one_action_written():
        action = actions.finding_match(
            actor=actor, biller=biller, finding_id=finding.pk, invoice_id=invoice.pk
        )
    invoice.refresh_from_db()
    finding.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_at is not None
    assert finding.state == Finding.State.MATCHED
    assert (action.kind, action.amount, action.invoice_id, action.actor) == ("match", 3300, invoice.pk, actor)
    payment = InvoicePayment.objects.get()
    assert (payment.invoice_id, payment.outcome, payment.amount, payment.entry_ref) == (
        invoice.pk,
        "paid",
        3300,
        -action.pk,
    )
    entry = LedgerEntry.objects.get()
    assert payment.payment_key == entry.notice.transaction_key and payment.paid_at == entry.notice.paid_at
    assert invoice.customer is not None
    assert list(payment_list(biller=biller, customer=invoice.customer)) == [payment]  # the customer sees it
    audit = AuditEntry.objects.get(action="finding.match")
    assert audit.actor == actor and audit.biller_id == biller.pk


def test_match_of_the_same_finding_twice_is_refused(biller: Biller, actor: User, invoice: Invoice) -> None:
    finding = lost_payment(biller, invoice)
    other = h.published_invoice(biller, price=3000)
    actions.finding_match(actor=actor, biller=biller, finding_id=finding.pk, invoice_id=invoice.pk)
    before = snapshot(finding)
    with pytest.raises(ActionRefused):
        actions.finding_match(actor=actor, biller=biller, finding_id=finding.pk, invoice_id=other.pk)
    assert snapshot(finding) == before


def test_one_payment_is_matched_once_whatever_finding_names_it(
    biller: Biller, actor: User, invoice: Invoice
) -> None:
    finding = lost_payment(biller, invoice)
    second = Finding.objects.create(
        biller=biller,
        key="late:again",
        kind=Finding.Kind.LATE_PAYMENT,
        processing_date=finding.processing_date,
        amount=finding.amount,
        entry_id=finding.entry_id,
    )
    other = h.published_invoice(biller, price=3000)
    actions.finding_match(actor=actor, biller=biller, finding_id=finding.pk, invoice_id=invoice.pk)
    before = snapshot(second)
    with pytest.raises(ActionRefused, match="already"):
        actions.finding_match(actor=actor, biller=biller, finding_id=second.pk, invoice_id=other.pk)
    with pytest.raises(ActionRefused, match="already"):
        actions.finding_refund(
            actor=actor, biller=biller, finding_id=second.pk, payee=PAYEE, transfer_date=transfer_day()
        )
    assert snapshot(second) == before


def test_matching_to_a_paid_bill_is_refused_money_never_doubled(
    biller: Biller, actor: User, invoice: Invoice
) -> None:
    finding = double_payment(biller, invoice)
    paid_elsewhere = h.published_invoice(biller, price=3000)
    factories.make_payment(paid_elsewhere)
    before = snapshot(finding)
    for target in (invoice, paid_elsewhere):
        with pytest.raises(ValidationFailed) as exc:
            actions.finding_match(actor=actor, biller=biller, finding_id=finding.pk, invoice_id=target.pk)
        assert "already paid" in exc.value.errors["invoice"][0]
    assert snapshot(finding) == before
    assert InvoicePayment.objects.filter(invoice=invoice, outcome="paid").count() == 1


def test_a_double_payment_can_pay_the_bill_it_was_meant_for(
    biller: Biller, actor: User, invoice: Invoice
) -> None:
    finding = double_payment(biller, invoice)
    meant = h.published_invoice(biller, price=3000)
    actions.finding_match(actor=actor, biller=biller, finding_id=finding.pk, invoice_id=meant.pk)
    meant.refresh_from_db()
    assert meant.status == Invoice.Status.PAID
    # and the money is not also refunded
    with pytest.raises(ActionRefused):
        actions.finding_refund(
            actor=actor, biller=biller, finding_id=finding.pk, payee=PAYEE, transfer_date=transfer_day()
        )


@pytest.mark.parametrize("problem", ["amount", "draft", "cancelled", "missing", "other_tenant"])
def test_match_refused_for_a_bill_it_cannot_pay_and_nothing_changes(
    biller: Biller, actor: User, invoice: Invoice, problem: str
) -> None:
    from billing import services

    finding = lost_payment(biller, invoice)
    if problem == "amount":
        target_id = h.published_invoice(biller, price=2999).pk
    elif problem == "draft":
        target_id = factories.make_invoice(biller=biller, amount=3000, published=False).pk
    elif problem == "cancelled":
        target = h.published_invoice(biller, price=3000)
        services.invoice_cancel(actor=None, biller=biller, invoice=target)
        target_id = target.pk
    elif problem == "missing":
        target_id = 987654
    else:
        target_id = h.published_invoice(factories.make_biller(), price=3000).pk
    before = snapshot(finding)
    with pytest.raises(ValidationFailed) as exc:
        actions.finding_match(actor=actor, biller=biller, finding_id=finding.pk, invoice_id=target_id)
    assert list(exc.value.errors) == ["invoice"]
    assert snapshot(finding) == before


def test_another_tenants_finding_is_not_found(biller: Biller, actor: User, invoice: Invoice) -> None:
    finding = lost_payment(biller, invoice)
    other = factories.make_biller()
    other_actor = factories.make_member(other)
    other_invoice = h.published_invoice(other, price=3000)
    before = snapshot(finding)
    calls = [
        lambda: actions.finding_match(
            actor=other_actor, biller=other, finding_id=finding.pk, invoice_id=other_invoice.pk
        ),
        lambda: actions.finding_refund(
            actor=other_actor, biller=other, finding_id=finding.pk, payee=PAYEE, transfer_date=transfer_day()
        ),
        lambda: actions.finding_write_off(actor=other_actor, biller=other, finding_id=finding.pk, reason="x"),
        lambda: actions.finding_reopen(actor=other_actor, biller=other, finding_id=finding.pk, reason="x"),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()
    assert snapshot(finding) == before


def test_a_reversed_payment_cannot_be_matched(biller: Biller, actor: User, invoice: Invoice) -> None:
    message = h.payment(biller, invoice, customer_number="77", channel="01")
    h.send(message)
    notices_apply()
    h.send(h.reversal(biller, message))
    notices_apply()
    finding = finding_of(LedgerEntry.objects.get(outcome="provisional"), Finding.Kind.PROVISIONAL)
    with pytest.raises(ActionRefused, match="reversed"):
        actions.finding_match(actor=actor, biller=biller, finding_id=finding.pk, invoice_id=invoice.pk)
    assert Action.objects.count() == 0


def test_a_finding_without_a_payment_cannot_be_matched_or_refunded(biller: Biller, actor: User) -> None:
    finding = Finding.objects.create(
        biller=biller,
        key="counter:2026-11-26",
        kind=Finding.Kind.COUNTER_MISMATCH,
        processing_date=datetime.date(2026, 11, 26),
        amount=500,
    )
    invoice = h.published_invoice(biller, price=3000)
    assert actions.actions_available(finding) == {"write_off"}
    with pytest.raises(ActionRefused):
        actions.finding_match(actor=actor, biller=biller, finding_id=finding.pk, invoice_id=invoice.pk)
    with pytest.raises(ActionRefused):
        actions.finding_refund(
            actor=actor, biller=biller, finding_id=finding.pk, payee=PAYEE, transfer_date=transfer_day()
        )
    assert Action.objects.count() == 0


# --- refund --------------------------------------------------------------------------------------------


def test_refund_of_a_double_payment(biller: Biller, actor: User, invoice: Invoice) -> None:
    finding = double_payment(biller, invoice)
    day = transfer_day()
    payee = Payee(
        bank_code="0001",
        branch_code="001",
        account_type="1",
        account_number="42",
        holder_kana="やまだ たろう",
    )
    with one_action_written():
        refund = actions.finding_refund(
            actor=actor, biller=biller, finding_id=finding.pk, payee=payee, transfer_date=day
        )
    finding.refresh_from_db()
    assert finding.state == Finding.State.REFUNDED
    assert (refund.amount, refund.account_number, refund.holder_kana, refund.transfer_date) == (
        3300,
        "0000042",
        "ﾔﾏﾀﾞ ﾀﾛｳ",
        day,
    )
    assert (refund.action.kind, refund.action.amount, refund.finding) == ("refund", 3300, finding)
    assert refund.transfer_file is None
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID  # the first payment still pays it


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"bank_code": "9998"}, "bank_code", "9998"),
        ({"bank_code": "01"}, "bank_code", "4 digits"),
        ({"branch_code": "998"}, "branch_code", "998"),
        ({"account_type": "3"}, "account_type", "account type"),
        ({"account_number": "12345678"}, "account_number", "1 to 7"),
        ({"account_number": "12a"}, "account_number", "1 to 7"),
        ({"holder_kana": "山田 タロウ"}, "holder_kana", "“山” at position 1, “田” at position 2"),
        ({"holder_kana": "  "}, "holder_kana", "kana"),
        ({"holder_kana": "ｱ" * 31}, "holder_kana", "30"),
    ],
)
def test_refund_refuses_a_bad_payee_and_changes_nothing(
    biller: Biller, actor: User, invoice: Invoice, change: dict, field: str, words: str
) -> None:
    finding = double_payment(biller, invoice)
    payee = dataclasses.replace(PAYEE, **change)
    before = snapshot(finding)
    with pytest.raises(ValidationFailed) as exc:
        actions.finding_refund(
            actor=actor, biller=biller, finding_id=finding.pk, payee=payee, transfer_date=transfer_day()
        )
    assert list(exc.value.errors) == [field]
    assert words in exc.value.errors[field][0]
    assert snapshot(finding) == before


def test_refund_needs_a_business_day_today_or_later(biller: Biller, actor: User, invoice: Invoice) -> None:
    finding = double_payment(biller, invoice)
    today = timezone.localdate()
    holiday = today + datetime.timedelta(days=1)
    while is_business_day(holiday):
        holiday += datetime.timedelta(days=1)
    before = snapshot(finding)
    for day in (today - datetime.timedelta(days=1), holiday):
        with pytest.raises(ValidationFailed) as exc:
            actions.finding_refund(
                actor=actor, biller=biller, finding_id=finding.pk, payee=PAYEE, transfer_date=day
            )
        assert list(exc.value.errors) == ["transfer_date"]
    assert snapshot(finding) == before


# --- write off, reopen ---------------------------------------------------------------------------------


def test_write_off_and_reopen(biller: Biller, actor: User, invoice: Invoice) -> None:
    finding = lost_payment(biller, invoice)
    with one_action_written():
        action = actions.finding_write_off(
            actor=actor, biller=biller, finding_id=finding.pk, reason="  customer  confirmed by phone "
        )
    finding.refresh_from_db()
    assert finding.state == Finding.State.WRITTEN_OFF
    assert (action.kind, action.reason, action.amount) == ("write_off", "customer confirmed by phone", 3300)
    with one_action_written():
        actions.finding_reopen(actor=actor, biller=biller, finding_id=finding.pk, reason="wrong call")
    finding.refresh_from_db()
    assert finding.state == Finding.State.OPEN
    assert list(Action.objects.filter(finding=finding).values_list("kind", flat=True)) == [
        "write_off",
        "reopen",
    ]
    # open again: it can be matched now
    actions.finding_match(actor=actor, biller=biller, finding_id=finding.pk, invoice_id=invoice.pk)


@pytest.mark.parametrize("reason", ["", "   ", "x" * 301])
def test_write_off_and_reopen_need_a_reason(
    biller: Biller, actor: User, invoice: Invoice, reason: str
) -> None:
    finding = lost_payment(biller, invoice)
    before = snapshot(finding)
    with pytest.raises(ValidationFailed) as exc:
        actions.finding_write_off(actor=actor, biller=biller, finding_id=finding.pk, reason=reason)
    assert list(exc.value.errors) == ["reason"]
    actions.finding_write_off(actor=actor, biller=biller, finding_id=finding.pk, reason="ok")
    middle = snapshot(finding)
    with pytest.raises(ValidationFailed):
        actions.finding_reopen(actor=actor, biller=biller, finding_id=finding.pk, reason=reason)
    assert snapshot(finding) == middle and before[0] == "open"


def test_reopen_refused_when_open_or_when_money_moved(biller: Biller, actor: User, invoice: Invoice) -> None:
    finding = double_payment(biller, invoice)
    with pytest.raises(ActionRefused, match="already open"):
        actions.finding_reopen(actor=actor, biller=biller, finding_id=finding.pk, reason="why not")
    actions.finding_refund(
        actor=actor, biller=biller, finding_id=finding.pk, payee=PAYEE, transfer_date=transfer_day()
    )
    before = snapshot(finding)
    with pytest.raises(ActionRefused, match="cannot be reopened"):
        actions.finding_reopen(actor=actor, biller=biller, finding_id=finding.pk, reason="refund again")
    assert snapshot(finding) == before
    with pytest.raises(ActionRefused):  # and a refunded finding takes no second refund
        actions.finding_refund(
            actor=actor, biller=biller, finding_id=finding.pk, payee=PAYEE, transfer_date=transfer_day()
        )
    assert snapshot(finding) == before


def test_billing_refuses_a_non_negative_ref(biller: Biller, invoice: Invoice) -> None:
    from billing.services.payments import invoice_payment_assign

    with pytest.raises(ValueError, match="negative"):
        invoice_payment_assign(
            biller=biller,
            invoice=invoice,
            amount=invoice.total,
            paid_at=timezone.now(),
            bank_code="0001",
            channel="atm",
            payment_key="K",
            ref=5,
        )
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PUBLISHED
