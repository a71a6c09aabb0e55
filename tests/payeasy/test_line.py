"""The line's rules (spec §5) through LineProcessor: every request type and response code, what is stored."""

from __future__ import annotations

import datetime

import pytest

from billing import services
from billing.models import Biller, Invoice
from payeasy import codec
from payeasy.line import LineProcessor, Received
from payeasy.models import LineState, Message, Notice
from tests.payeasy import line_helpers as h

pytestmark = pytest.mark.django_db


def send(*messages: codec.Message | bytes) -> list[codec.Message | None]:
    """One batch through a fresh processor; the parsed responses (None where the connection closes)."""
    answers = LineProcessor().process(
        [Received(body=m if isinstance(m, bytes) else h.body(m), peer="test") for m in messages]
    )
    return [codec.parse_body(a.body) if a.body is not None else None for a in answers]


def code(*messages: codec.Message | bytes) -> list[str]:
    return [r.response_code if r is not None else "closed" for r in send(*messages)]


@pytest.fixture
def biller() -> Biller:
    return h.line_biller()


@pytest.fixture
def invoice(biller: Biller) -> Invoice:
    return h.published_invoice(biller, price=2000)


def test_closed_line_answers_a001_and_records_nothing(biller: Biller, invoice: Invoice) -> None:
    assert code(h.payment(biller, invoice), h.inquiry(biller, invoice)) == ["A001", "A001"]
    assert not Notice.objects.exists()
    assert list(Message.objects.values_list("outcome", flat=True)) == ["discarded", "discarded"]


def test_open_inquire_pay_preclose_close(biller: Biller, invoice: Invoice) -> None:
    (opened,) = send(h.open_day(biller))
    assert opened.message_type == "0810" and opened.response_code == "0000"
    state = LineState.objects.get()
    assert state.state == "open" and state.processing_date.isoformat() == "2026-11-26"
    (answer,) = send(h.inquiry(biller, invoice))
    assert answer.message_type == "1110" and answer.response_code == "0000"
    assert answer.elements[4] == invoice.total == 2200
    assert answer.elements[1] == invoice.customer_number and answer.elements[2] == invoice.confirmation_number
    assert answer.elements[10] == "20261231" and answer.elements[13] == "１１月分電気料金"  # J: double-byte
    assert answer.elements[12] == biller.short_name
    assert code(h.close(biller, 1)) == ["0000"]
    assert LineState.objects.get().state == "pre_closed"
    # pre-closed: inquiries refused, payments still land
    assert code(h.inquiry(biller, invoice), h.payment(biller, invoice)) == ["A001", "0000"]
    assert Notice.objects.count() == 1
    assert code(h.close(biller, 2)) == ["0000"]
    assert LineState.objects.get().state == "closed"
    assert code(h.payment(biller, invoice)) == ["A001"]
    assert Notice.objects.count() == 1


def test_inquiry_codes(biller: Biller, invoice: Invoice) -> None:
    send(h.open_day(biller))
    other = h.published_invoice(biller)
    assert code(
        h.inquiry(biller, invoice, bank="0005"),  # not contracted
        h.inquiry(biller, invoice, channel="06"),  # contracted, channel not allowed
        h.inquiry(biller, invoice, confirmation_number="000000"),
        h.inquiry(biller, invoice, customer_number="12345"),
    ) == ["A002", "A010", "B001", "B001"]
    services.invoice_cancel(actor=None, biller=biller, invoice=other)
    assert code(h.inquiry(biller, other)) == ["B004"]
    late = h.published_invoice(biller, due_date=datetime.date(2026, 11, 2))
    assert code(h.inquiry(biller, late)) == ["0000"]  # the biller accepts late payment
    Biller.objects.filter(pk=biller.pk).update(late_payment_policy="refuse")
    assert code(h.inquiry(Biller.objects.get(pk=biller.pk), late)) == ["B003"]
    Invoice.objects.filter(pk=invoice.pk).update(status="paid")
    assert code(h.inquiry(biller, invoice)) == ["B002"]


def test_bank_and_channel_are_checked_before_the_bill(biller: Biller) -> None:
    send(h.open_day(biller))
    missing = h.request("1100", biller.biller_code, e1="999", e2="1", e5="0005", e6="001", e7="02")
    assert code(missing) == ["A002"]


def test_another_tenants_numbers_are_unknown(biller: Biller, invoice: Invoice) -> None:
    other = h.line_biller()
    send(h.open_day(biller))
    assert code(h.inquiry(other, invoice)) == ["B001"]


def test_same_payment_twice_is_one_notice(biller: Biller, invoice: Invoice) -> None:
    send(h.open_day(biller))
    payment = h.payment(biller, invoice)
    assert code(payment, payment) == ["0000", "0000"]
    assert code(payment) == ["0000"]
    assert Notice.objects.count() == 1
    assert sorted(Message.objects.filter(message_type="1200").values_list("outcome", flat=True)) == [
        "duplicate",
        "duplicate",
        "processed",
    ]


def test_resend_of_unknown_payment_is_recorded_once(biller: Biller, invoice: Invoice) -> None:
    send(h.open_day(biller))
    resend = h.payment(biller, invoice, kind="1700")
    (answer,) = send(resend)
    assert answer.message_type == "1710" and answer.response_code == "0000"
    assert code(resend) == ["0000"]
    notice = Notice.objects.get()
    assert notice.transaction_key == resend.transaction_key and notice.amount == 2200
    original = h.payment(biller, invoice)
    assert code(original, h.payment(biller, invoice, kind="1700", serial=int(original.serial))) == [
        "0000",
        "0000",
    ]
    assert Notice.objects.count() == 2


def test_reversal_rules(biller: Biller, invoice: Invoice) -> None:
    send(h.open_day(biller))
    payment = h.payment(biller, invoice, channel="01")
    send(payment)
    assert code(h.reversal(biller, payment, channel="02")) == ["A301"]
    assert code(h.reversal(biller, payment, original_key=h.CENTRE + "2026112699999999")) == ["B006"]
    assert code(h.reversal(biller, payment, amount=1)) == ["B006"]
    first = h.reversal(biller, payment)
    assert code(first, h.reversal(biller, payment)) == ["0000", "B006"]
    assert code(first) == ["0000"]  # the same reversal again: stored once
    assert Notice.objects.filter(kind="reversal").count() == 1
    # another biller cannot reverse this biller's payment
    other = h.line_biller()
    assert code(h.reversal(other, payment, original_key=payment.transaction_key)) == ["B006"]


def test_payment_and_its_reversal_in_one_batch(biller: Biller, invoice: Invoice) -> None:
    send(h.open_day(biller))
    payment = h.payment(biller, invoice, channel="01")
    assert code(payment, h.reversal(biller, payment)) == ["0000", "0000"]


def test_counters(biller: Biller, invoice: Invoice) -> None:
    send(h.open_day(biller, "20261125"), h.payment(biller, invoice, day="20261125"))
    send(h.open_day(biller, "20261126"))
    second = h.published_invoice(biller, price=500)
    pay = h.payment(biller, second)
    send(pay, pay, h.payment(biller, second, kind="1700"))
    (answer,) = send(h.counters(biller, "20261126"))
    assert answer.message_type == "1610" and answer.response_code == "0000"
    assert (answer.elements[16], answer.elements[17]) == (2, 1100)  # duplicates excluded
    assert (answer.elements[18], answer.elements[19]) == (1, 2200)
    assert code(h.counters(biller, "20261120")) == ["A601"]
    assert code(h.counters(biller, "20261125")) == ["0000"]


def test_unknown_biller_is_9001_and_kept(biller: Biller, invoice: Invoice) -> None:
    send(h.open_day(biller))
    stranger = h.request("1100", "99999001", e1="1", e2="1", e5="0001", e6="001", e7="02")
    (answer,) = send(stranger)
    assert answer.response_code == "9001" and answer.message_type == "1110"
    row = Message.objects.get(biller_code="99999001")
    assert row.outcome == "unknown_biller" and bytes(row.raw) == h.body(stranger)


def test_format_error_is_9001_and_unreadable_closes(biller: Biller, invoice: Invoice) -> None:
    send(h.open_day(biller))
    good = bytearray(h.body(h.payment(biller, invoice)))
    good[72] = ord("X")  # element 1 must be digits
    assert code(bytes(good)) == ["9001"]
    row = Message.objects.get(outcome="format_error")
    assert "element 1" in row.error and "offset 72" in row.error
    assert code(b"garbage that is no header") == ["closed"]
    assert bytes(Message.objects.get(outcome="unreadable").raw) == b"garbage that is no header"
    assert not Notice.objects.exists()


def test_every_frame_and_response_is_in_the_history(biller: Biller, invoice: Invoice) -> None:
    messages = [h.open_day(biller), h.inquiry(biller, invoice), h.payment(biller, invoice)]
    responses = send(*messages)
    rows = list(Message.objects.order_by("id"))
    assert [bytes(r.raw) for r in rows] == [h.body(m) for m in messages]
    assert [codec.parse_body(bytes(r.response_raw)) for r in rows] == responses
    assert rows[2].customer_number == invoice.customer_number and rows[2].amount == 2200
    assert all(r.biller_id == biller.pk for r in rows)
