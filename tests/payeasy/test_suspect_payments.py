"""Payments that look wrong are flagged, not silently paid (issue 11): a processing date (H3) that is
neither the online day nor the previous one, or a paid-at (element 8) in the future or long before the
processing date, is stored and answered 0000 as spec §5 rule 3 requires, but its ledger entry is
provisional (仮消込) with its own reason, the bill stays unpaid, and the operations view shows why."""

from __future__ import annotations

import datetime
import re

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import Biller, Invoice
from payeasy import codec
from payeasy.line import LineProcessor, Received
from payeasy.models import LedgerEntry, Message, Notice
from payeasy.services.payments import Applied, notices_apply
from payeasy.services.teller import teller_file_import
from tests.payeasy import line_helpers as h

pytestmark = pytest.mark.django_db

DAY = h.DAY  # the open online day D: 2026-11-26
BEFORE = "20261125"  # the previous processing date, D-1


def send(*messages: codec.Message) -> list[str]:
    """One batch through the line, as the communication server would store it: the response codes."""
    answers = LineProcessor().process([Received(body=h.body(m)) for m in messages])
    return [a.code for a in answers]


def jst(moment: datetime.datetime) -> str:
    return moment.astimezone(codec.JST).strftime("%Y%m%d%H%M%S")


def apply() -> Applied:
    result = notices_apply()
    assert not result.failed
    return result


def entry_of(message: codec.Message) -> LedgerEntry:
    return LedgerEntry.objects.select_related("notice").get(notice__transaction_key=message.transaction_key)


def html(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def biller() -> Biller:
    b = h.line_biller()
    send(h.open_day(b, BEFORE))
    send(h.open_day(b, DAY))  # open on D, with D-1 as the previous processing date
    return b


@pytest.fixture
def invoice(biller: Biller) -> Invoice:
    return h.published_invoice(biller, price=3000)  # 3,300 yen with tax


# --- the processing date (H3) ----------------------------------------------------------------------------


@pytest.mark.parametrize("day", [DAY, BEFORE], ids=["online day", "previous processing date"])
@pytest.mark.parametrize("kind", ["1200", "1700"])
def test_a_payment_of_the_online_day_or_the_previous_one_pays(
    biller: Biller, invoice: Invoice, day: str, kind: str
) -> None:
    message = h.payment(biller, invoice, day=day, kind=kind, paid_at=day + "103000")
    assert send(message) == ["0000"]
    assert Notice.objects.get().suspect == ""
    apply()
    entry = entry_of(message)
    assert (entry.outcome, entry.reason, entry.invoice_id) == ("paid", "", invoice.pk)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


@pytest.mark.parametrize("day", ["20261124", "20261127", "20251126"], ids=["D-2", "D+1", "a year before"])
@pytest.mark.parametrize("kind", ["1200", "1700"])
def test_a_payment_of_another_processing_date_is_stored_answered_and_provisional(
    biller: Biller, invoice: Invoice, day: str, kind: str
) -> None:
    message = h.payment(biller, invoice, day=day, kind=kind)
    assert send(message) == ["0000"]  # never refused (spec §5 rule 3)
    stored = Message.objects.get(transaction_key=message.transaction_key)
    assert (stored.outcome, stored.response_code) == (Message.Outcome.PROCESSED, "0000")
    notice = Notice.objects.get(transaction_key=message.transaction_key)
    assert (notice.key_date.strftime("%Y%m%d"), notice.suspect) == (day, "processing_date_mismatch")
    result = apply()
    entry = entry_of(message)
    assert (entry.outcome, entry.reason, entry.amount) == ("provisional", "processing_date_mismatch", 3300)
    assert entry.invoice_id == invoice.pk  # the numbers match this bill: the money is shown against it
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_at) == (Invoice.Status.PUBLISHED, None)  # not silently paid
    assert [(e.type, e.data["reason"]) for e in result.events] == [
        ("payment.received", "processing_date_mismatch"),
        ("payment.provisional", "processing_date_mismatch"),
    ]
    # the same key again is a duplicate: answered 0000, nothing changes
    assert send(h.payment(biller, invoice, day=day, kind="1700", serial=int(message.serial))) == ["0000"]
    assert Notice.objects.count() == 1 and apply().applied == 0


def test_the_previous_processing_date_is_the_last_online_day_not_the_calendar_day_before(
    invoice: Invoice, biller: Biller
) -> None:
    send(h.open_day(biller, "20261130"))  # Monday, after a weekend without an online day
    friday = h.payment(biller, invoice, day=DAY)  # the last online day: still the previous one
    sunday = h.payment(biller, h.published_invoice(biller, price=3000), day="20261129")
    assert send(friday, sunday) == ["0000", "0000"]
    apply()
    assert (entry_of(friday).outcome, entry_of(friday).reason) == ("paid", "")
    assert (entry_of(sunday).outcome, entry_of(sunday).reason) == ("provisional", "processing_date_mismatch")


def test_the_online_day_is_the_one_when_the_frame_arrived_not_when_it_is_applied(
    biller: Biller, invoice: Invoice
) -> None:
    message = h.payment(biller, invoice, day=BEFORE)
    assert send(message) == ["0000"]  # D-1 while D is open: fine
    send(h.open_day(biller, "20261127"))  # the day moves on before a worker applies it
    send(h.open_day(biller, "20261128"))
    apply()
    assert (entry_of(message).outcome, entry_of(message).reason) == ("paid", "")


def test_a_suspect_second_payment_of_a_paid_bill_is_provisional_not_a_double_payment(
    biller: Biller, invoice: Invoice
) -> None:
    first = h.payment(biller, invoice)
    send(first)
    apply()
    second = h.payment(biller, invoice, day="20261120")
    send(second)
    apply()
    assert (entry_of(second).outcome, entry_of(second).reason) == ("provisional", "processing_date_mismatch")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID  # paid once, by the first


def test_unknown_numbers_stay_the_reason_before_a_suspect_date(biller: Biller, invoice: Invoice) -> None:
    message = h.payment(biller, invoice, day="20261120", confirmation_number="999999")
    send(message)
    apply()
    entry = entry_of(message)
    assert (entry.outcome, entry.reason, entry.invoice_id) == ("provisional", "unknown_number", None)


# --- the paid-at time (element 8) -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["1200", "1700"])
def test_a_payment_paid_in_the_future_is_provisional(biller: Biller, invoice: Invoice, kind: str) -> None:
    message = h.payment(biller, invoice, kind=kind, paid_at=jst(timezone.now() + datetime.timedelta(hours=1)))
    assert send(message) == ["0000"]
    assert Notice.objects.get().suspect == "paid_at_future"
    apply()
    assert (entry_of(message).outcome, entry_of(message).reason) == ("provisional", "paid_at_future")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PUBLISHED


def test_a_few_minutes_of_clock_skew_are_not_the_future(biller: Biller, invoice: Invoice) -> None:
    message = h.payment(biller, invoice, paid_at=jst(timezone.now() + datetime.timedelta(minutes=5)))
    send(message)
    apply()
    assert (entry_of(message).outcome, entry_of(message).reason) == ("paid", "")


@pytest.mark.parametrize("kind", ["1200", "1700"])
def test_a_payment_paid_years_ago_is_provisional(biller: Biller, invoice: Invoice, kind: str) -> None:
    message = h.payment(biller, invoice, kind=kind, paid_at="20231126103000")  # three years before D
    assert send(message) == ["0000"]
    apply()
    # not "bank not contracted" (the contract starts 2026-04-01): the paid-at itself is in doubt
    assert (entry_of(message).outcome, entry_of(message).reason) == ("provisional", "paid_at_too_old")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PUBLISHED


@pytest.mark.parametrize(
    ("paid_at", "outcome", "reason"),
    [
        ("20261106093000", "paid", ""),  # paid before a long holiday, processed after it: 20 days
        ("20261026103000", "paid", ""),  # 31 days before D
        ("20261025235959", "provisional", "paid_at_too_old"),  # 32 days before D
        ("20251126103000", "provisional", "paid_at_too_old"),  # a wrong year
    ],
)
def test_too_old_is_more_than_31_days_before_the_processing_date(
    biller: Biller, invoice: Invoice, paid_at: str, outcome: str, reason: str
) -> None:
    message = h.payment(biller, invoice, paid_at=paid_at)
    send(message)
    apply()
    assert (entry_of(message).outcome, entry_of(message).reason) == (outcome, reason)


def test_reversals_are_not_flagged(biller: Biller, invoice: Invoice) -> None:
    payment = h.payment(biller, invoice, channel="01")
    send(payment)
    apply()
    reversal = h.reversal(biller, payment)
    assert send(reversal) == ["0000"]
    assert Notice.objects.get(transaction_key=reversal.transaction_key).suspect == ""
    apply()
    assert entry_of(reversal).outcome == "reversal"
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PUBLISHED  # payable again


# --- teller batch files -----------------------------------------------------------------------------------


def _teller_record(
    invoice: Invoice, serial: int, paid_date: str, paid_time: str = "103000"
) -> codec.BatchData:
    return codec.BatchData(
        customer_number=invoice.customer_number,
        confirmation_number=invoice.confirmation_number,
        amount=invoice.total,
        branch_code="101",
        paid_date=paid_date,
        paid_time=paid_time,
        serial=f"{serial:08d}",
        payer_name_kana="ﾔﾏﾀﾞ ﾀﾛｳ",
        cancel=0,
    )


def test_a_teller_file_has_no_online_day_but_its_paid_at_is_checked(biller: Biller) -> None:
    handling = "20261118"  # not an online day of the line: a teller file's 取扱日 is not checked against it
    fine, old, future = (h.published_invoice(biller, price=1000) for _ in range(3))
    tomorrow = timezone.now().astimezone(codec.JST) + datetime.timedelta(days=1)
    records = [
        _teller_record(fine, 1, handling),
        _teller_record(old, 2, "20231118"),
        _teller_record(future, 3, tomorrow.strftime("%Y%m%d")),
    ]
    header = codec.BatchHeader(biller.biller_code, "ﾃｽﾄ", handling, "0001", "ﾃｽﾄｷﾞﾝｺｳ")
    batch = codec.make_batch_file(header, records, serial=1, crlf=True)
    assert teller_file_import(batch.name, codec.build_batch_file(batch)).accepted
    apply()
    by_invoice = {e.invoice_id: (e.outcome, e.reason) for e in LedgerEntry.objects.all()}
    assert by_invoice == {
        fine.pk: ("paid", ""),
        old.pk: ("provisional", "paid_at_too_old"),
        future.pk: ("provisional", "paid_at_future"),
    }


# --- where the reasons show -------------------------------------------------------------------------------


def test_the_operations_view_shows_provisional_payments_by_reason(
    staff_client: Client, biller: Biller, invoice: Invoice
) -> None:
    page = html(staff_client.get("/staff/operations/", {"refresh": "0"}))
    assert "No provisional payment on" in page
    wrong_day = h.payment(biller, invoice, day="20261124")
    future = h.payment(
        biller,
        h.published_invoice(biller, price=2000),
        paid_at=jst(timezone.now() + datetime.timedelta(days=2)),
    )
    old = h.payment(biller, h.published_invoice(biller, price=1000), paid_at="20231126103000")
    waiting = h.payment(biller, h.published_invoice(biller, price=4000), day="20261101")
    send(wrong_day, future, old)
    apply()
    send(waiting)  # flagged, not yet applied

    page = html(staff_client.get("/staff/operations/", {"refresh": "0"}))
    section = page.split('id="provisional-heading"')[1].split("</section>")[0]
    assert "Provisional payments (仮消込) by reason" in page
    for text in (
        "The processing date (H3) is neither the online day nor the previous one",
        "The paid-at time (element 8) is in the future",
        "The paid-at time (element 8) is long before the processing date",
    ):
        assert text in section
    assert wrong_day.transaction_key in section and "3,300円" in section and "2,200円" in section
    assert "2026-11-24" in section  # the processing date of the entry
    # the waiting notice shows its flag in the list of waiting notices
    waiting_table = page.split('class="waiting"')[1].split("</table>")[0]
    assert waiting.transaction_key in waiting_table
    assert "The processing date (H3) is neither the online day nor the previous one" in waiting_table

    page = html(staff_client.get("/staff/operations/", {"refresh": "0"}, HTTP_ACCEPT_LANGUAGE="ja"))
    assert "仮消込（理由別）" in page
    assert "処理日（H3）が当日の処理日でも前回の処理日でもない" in page
    assert "収納日時（要素8）が未来の日時" in page
    assert "収納日時（要素8）が処理日よりはるかに前" in page

    message = Message.objects.get(transaction_key=wrong_day.transaction_key)
    detail = html(staff_client.get(f"/staff/operations/messages/{message.pk}/"))
    assert "Flagged on receipt" in detail and "Provisional (仮消込)" in detail
    assert "The processing date (H3) is neither the online day nor the previous one" in detail


def test_operations_view_is_for_staff_only(client: Client, biller: Biller, invoice: Invoice) -> None:
    send(h.payment(biller, invoice, day="20261124"))
    apply()
    from tests.factories import make_member

    client.force_login(make_member(biller))  # a tenant admin of this very biller
    assert client.get("/staff/operations/").status_code == 403


def test_every_flag_is_a_ledger_reason_with_the_same_label() -> None:
    reasons = dict(LedgerEntry.Reason.choices)
    assert {value: str(label) for value, label in Notice.Suspect.choices} == {
        value: str(reasons[value]) for value, _label in Notice.Suspect.choices
    }
    assert all(len(value) <= 24 for value in Notice.Suspect.values)  # LedgerEntry.reason's max_length
