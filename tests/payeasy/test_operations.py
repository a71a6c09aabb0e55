"""The operations view of the iDC staff: line state, message rates, notices per tenant, message history."""

from __future__ import annotations

import datetime
import re

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import Biller, Invoice
from payeasy import codec, selectors
from payeasy.line import LineProcessor, Received
from payeasy.models import LineState, Message, Notice
from payeasy.services.payments import notices_apply
from tests.factories import make_member
from tests.payeasy import line_helpers as h

pytestmark = pytest.mark.django_db

URLS = ("/staff/operations/", "/staff/operations/messages/")


def send(*messages: codec.Message | bytes, at: datetime.datetime | None = None, peer: str = "mpn:1") -> None:
    """One batch through the line, as the communication server would store it."""
    LineProcessor().process(
        [
            Received(
                body=m if isinstance(m, bytes) else h.body(m),
                peer=peer,
                received_at=at or timezone.now(),
            )
            for m in messages
        ]
    )


def today_at(hour: int, minute: int = 0) -> datetime.datetime:
    """A moment of today in JST (the day the message search shows by default)."""
    return selectors.jst_day_start(selectors.jst_today()) + datetime.timedelta(hours=hour, minutes=minute)


def html(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def biller() -> Biller:
    return h.line_biller(legal_name="運用テスト電力株式会社")


@pytest.fixture
def other_biller() -> Biller:
    return h.line_biller(legal_name="運用テストガス株式会社")


@pytest.fixture
def invoice(biller: Biller) -> Invoice:
    return h.published_invoice(biller, price=1000)  # 1,100 yen with tax


# --- who may look -------------------------------------------------------------------------------------


def test_tenant_users_and_anonymous_visitors_cannot_see_operations(
    client: Client, biller: Biller, invoice: Invoice
) -> None:
    send(h.open_day(biller))
    message = Message.objects.get()
    urls = [*URLS, f"/staff/operations/messages/{message.pk}/"]
    for url in urls:
        assert client.get(url).status_code == 302  # to the login
    client.force_login(make_member(biller))  # a tenant admin of this very biller
    for url in urls:
        assert client.get(url).status_code == 403


def test_unknown_message_is_404(staff_client: Client) -> None:
    assert staff_client.get("/staff/operations/messages/999999/").status_code == 404


# --- the dashboard --------------------------------------------------------------------------------------


def test_line_state_and_notices_per_tenant(
    staff_client: Client, biller: Biller, other_biller: Biller, invoice: Invoice
) -> None:
    response = staff_client.get("/staff/operations/")
    assert response.status_code == 200
    page = html(response)
    assert 'line-closed">Closed<' in page and "The line has not been opened yet." in page
    assert "since" not in page.split("The line has not been opened yet.")[0].split("line-closed")[1]

    send(h.open_day(biller))
    first = h.payment(biller, invoice)
    send(first)
    notices_apply()  # paid
    send(h.payment(biller, invoice))
    notices_apply()  # a second payment of a paid bill: double payment
    send(h.payment(biller, h.published_invoice(biller, price=2000), amount=5))
    notices_apply()  # provisional: the amount differs
    send(h.reversal(biller, first))
    notices_apply()  # reversal of the first payment
    late = h.published_invoice(biller, price=3000)
    send(h.payment(biller, late))  # waiting: no worker ran
    Notice.objects.filter(customer_number=late.customer_number).update(
        received_at=timezone.now() - datetime.timedelta(seconds=45)
    )
    other_invoice = h.published_invoice(other_biller, price=500)
    send(h.payment(other_biller, other_invoice))
    Notice.objects.filter(biller=other_biller).update(attempts=2, last_error="OperationalError: gone")

    status = selectors.notice_status_by_biller()
    rows = {r.biller_code: r for r in status.billers}
    mine, other = rows[biller.biller_code], rows[other_biller.biller_code]
    assert (mine.waiting.count, mine.waiting.amount, mine.failing) == (1, 3300, 0)
    assert (mine.paid.count, mine.paid.amount) == (1, 1100)
    assert (mine.double_payment.count, mine.double_payment.amount) == (1, 1100)
    assert (mine.provisional.count, mine.provisional.amount) == (1, 5)
    assert (mine.reversal.count, mine.reversal.amount) == (1, 1100)  # shown as a positive amount
    assert mine.applied.count == 4
    assert 45 <= mine.oldest_waiting_age(timezone.now()) < 60
    assert (other.waiting.count, other.waiting.amount, other.failing) == (1, 550, 1)
    assert other.paid.count == other.applied.count == 0
    assert other.oldest_waiting_age(timezone.now()) < 30
    assert (status.total.waiting.count, status.total.waiting.amount, status.total.applied.count) == (
        2,
        3850,
        4,
    )
    assert status.oldest_waiting_age is not None and status.oldest_waiting_age >= 45

    page = html(staff_client.get("/staff/operations/"))
    assert 'data-auto-refresh="10"' in page
    line = LineState.objects.get()
    assert 'line-open">Open<' in page and "2026-11-26" in page  # state and processing date
    assert f"since {timezone.localtime(line.since):%Y-%m-%d %H:%M:%S}" in page
    assert biller.legal_name in page and other_biller.legal_name in page
    assert "3,300円" in page and "550円" in page and "1 failing" in page
    assert "over 30 s" in page  # the 45 s old notice is highlighted
    assert "OperationalError: gone" in page  # the oldest waiting notices, with their last error
    # nothing waiting any more: no alert
    notices_apply()
    Notice.objects.update(last_error="")
    page = html(staff_client.get("/staff/operations/", {"refresh": "0"}))
    assert "over 30 s" not in page and "none — every notice is applied" in page
    assert "data-auto-refresh" not in page  # reloading can be turned off


def test_messages_per_minute_by_type(staff_client: Client, biller: Biller, invoice: Invoice) -> None:
    now = timezone.now()
    send(h.open_day(biller), at=now - datetime.timedelta(minutes=61))  # outside the hour
    send(h.payment(biller, invoice), h.payment(biller, invoice), h.inquiry(biller, invoice), at=now)
    send(h.payment(biller, invoice), at=now - datetime.timedelta(minutes=5))
    send(b"garbage", at=now - datetime.timedelta(minutes=59))  # unreadable: no type

    rates = selectors.message_rates(minutes=60, now=now)
    assert rates.types == ["", "1100", "1200"]
    assert len(rates.rows) == 60
    assert rates.rows[0].minute == now.astimezone(datetime.UTC).replace(second=0, microsecond=0)
    assert rates.rows[0].counts == [0, 1, 2] and rates.rows[0].total == 3
    assert rates.rows[5].counts == [0, 0, 1]
    assert rates.rows[59].counts == [1, 0, 0]
    assert sum(r.total for r in rates.rows[1:5]) == 0
    assert rates.totals == [1, 1, 3] and rates.total == 5 and rates.peak == 3

    page = html(staff_client.get("/staff/operations/"))
    assert "1200 Payment (消込依頼)" in page and "1100 Inquiry (照会依頼)" in page
    assert "5 messages in the last 60 minutes" in page


# --- the message history -----------------------------------------------------------------------------


@pytest.fixture
def history(biller: Biller, other_biller: Biller, invoice: Invoice) -> dict[str, codec.Message]:
    """Messages over three days: two of this biller today, one of the other biller, one two days ago."""
    today = today_at(10)
    send(h.open_day(biller), at=today - datetime.timedelta(days=2, hours=1))
    old = h.payment(biller, invoice, serial=1)
    send(old, at=today - datetime.timedelta(days=2))
    pay = h.payment(biller, invoice, serial=2)
    ask = h.inquiry(biller, invoice, serial=3)
    send(pay, ask, at=today)
    other = h.payment(other_biller, h.published_invoice(other_biller), serial=4)
    send(other, at=today + datetime.timedelta(minutes=1))
    unknown = h.request("1100", "99999001", serial=5, e1="123", e2="456", e5="0001", e6="001", e7="02")
    send(unknown, at=today + datetime.timedelta(minutes=2))
    return {"old": old, "pay": pay, "ask": ask, "other": other, "unknown": unknown}


def keys(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, html(response)[:3000]
    return [m.transaction_key for m in response.context["page"].rows]


def test_search_defaults_to_today_newest_first(
    staff_client: Client, history: dict[str, codec.Message]
) -> None:
    found = keys(staff_client.get("/staff/operations/messages/"))
    # the processed 1100 of today: both inquiries share no key with the payments
    assert found == [
        history["unknown"].transaction_key,
        history["other"].transaction_key,
        history["ask"].transaction_key,
        history["pay"].transaction_key,
    ]


def test_search_by_key_customer_number_biller_type_outcome_and_dates(
    staff_client: Client, biller: Biller, other_biller: Biller, invoice: Invoice, history: dict
) -> None:
    url = "/staff/operations/messages/"
    old_key = history["old"].transaction_key
    # a whole key finds its message on any day; with dates, only within them
    assert keys(staff_client.get(url, {"key": old_key})) == [old_key]
    assert keys(staff_client.get(url, {"key": old_key, "date_from": selectors.jst_today().isoformat()})) == []
    # a shorter key is a prefix (within today)
    prefix = history["pay"].transaction_key[:-1]  # serials 2, 3 and 4, 5 share …0000000
    assert set(keys(staff_client.get(url, {"key": prefix}))) == {
        history[k].transaction_key for k in ("pay", "ask", "other", "unknown")
    }
    # customer number: this invoice's, today → the payment and the inquiry, not the other biller's
    assert keys(staff_client.get(url, {"customer_number": invoice.customer_number})) == [
        history["ask"].transaction_key,
        history["pay"].transaction_key,
    ]
    # biller code, also picked from the list with its name
    assert keys(staff_client.get(url, {"biller": other_biller.biller_code})) == [
        history["other"].transaction_key
    ]
    assert keys(staff_client.get(url, {"biller": f"{biller.biller_code} {biller.legal_name}"})) == [
        history["ask"].transaction_key,
        history["pay"].transaction_key,
    ]
    # a code no biller has: the frames answered 9001 are kept under it
    assert keys(staff_client.get(url, {"biller": "99999001", "outcome": "unknown_biller"})) == [
        history["unknown"].transaction_key
    ]
    assert keys(staff_client.get(url, {"type": "1100"})) == [
        history["unknown"].transaction_key,
        history["ask"].transaction_key,
    ]
    # dates: two days ago holds the 0800 and the old payment
    day = (selectors.jst_today() - datetime.timedelta(days=2)).isoformat()
    found = keys(staff_client.get(url, {"date_from": day, "date_to": day}))
    assert found[0] == old_key and len(found) == 2
    found = keys(staff_client.get(url, {"date_from": day, "customer_number": invoice.customer_number}))
    assert found == [history["ask"].transaction_key, history["pay"].transaction_key, old_key]
    page = html(staff_client.get(url, {"date_from": day, "date_to": day}))
    assert f"Messages received on {day} (JST)" in page


def test_search_pages_by_50_with_a_keyset(staff_client: Client, biller: Biller, invoice: Invoice) -> None:
    start = today_at(9)
    for i in range(55):
        send(h.inquiry(biller, invoice, serial=1000 + i), at=start + datetime.timedelta(seconds=i))
    url = "/staff/operations/messages/"
    first = staff_client.get(url, {"type": "1100"})
    assert len(first.context["page"].rows) == 50
    assert first.context["page"].rows[0].transaction_key.endswith("00001054")  # newest first
    older = first.context["older_url"]
    assert older and "type=1100" in older and not first.context["newer_url"]
    second = staff_client.get(older)
    assert [m.transaction_key[-4:] for m in second.context["page"].rows] == [
        "1004",
        "1003",
        "1002",
        "1001",
        "1000",
    ]
    assert not second.context["older_url"]
    back = staff_client.get(second.context["newer_url"])
    assert [m.pk for m in back.context["page"].rows] == [m.pk for m in first.context["page"].rows]
    for cursor in ("not-a-cursor", "1.99999999999999999999", "99999999999999999999999.1"):
        assert staff_client.get(url, {"after": cursor}).status_code == 400


@pytest.mark.parametrize(
    ("params", "field", "text"),
    [
        ({"date_from": "2026-13-45"}, "date_from", "Enter a valid date."),
        ({"date_to": "yesterday"}, "date_to", "Enter a valid date."),
        ({"date_from": "2026-11-20", "date_to": "2026-11-10"}, "date_to", "must not be before"),
        ({"date_from": "2026-01-01", "date_to": "2026-03-01"}, "date_to", "at most 31 days"),
        ({"date_from": "9999-12-31"}, "date_from", "between 2000-01-01 and today"),
        ({"date_to": "1900-01-01"}, "date_to", "between 2000-01-01 and today"),
        ({"customer_number": "12-34"}, "customer_number", "digits only"),
        ({"biller": "abc"}, "biller", "up to 8 digits"),
        ({"type": "9999"}, "type", "Select a valid choice"),
    ],
)
def test_bad_search_input_is_a_form_error(staff_client: Client, params: dict, field: str, text: str) -> None:
    response = staff_client.get("/staff/operations/messages/", params)
    assert response.status_code == 400
    page = html(response)
    assert text in page and f'href="#id_{field}"' in page  # the error summary links to the field
    assert response.context["page"] is None


# --- one message -----------------------------------------------------------------------------------------


def test_detail_shows_the_frame_fields_the_response_and_the_ledger_entry(
    staff_client: Client, biller: Biller, invoice: Invoice
) -> None:
    send(h.open_day(biller))
    payment = h.payment(biller, invoice, e14="ﾔﾏﾀﾞ ﾀﾛｳ")
    send(payment)
    notices_apply()
    message = Message.objects.get(message_type="1200")
    page = html(staff_client.get(f"/staff/operations/messages/{message.pk}/"))
    raw = h.body(payment)
    assert f"Body of {len(raw)} bytes" in page
    assert "31 32 30 30 4D 50 4E 43" in page  # "1200MPNC" in the first row of the hex dump
    assert "1200MPNC000001202" in page  # … and as cp932 text
    assert "ﾔﾏﾀﾞ ﾀﾛｳ" in page  # element 14, decoded
    assert "Fields as decoded" in page and "The codec refuses" not in page
    assert f"<td>{invoice.customer_number}</td>" in page  # element 1's value
    assert "<td>1100</td>" in page  # element 4's value, as a number
    # the response: 1210 with 0000
    response_raw = bytes(message.response_raw)
    assert response_raw.startswith(b"1210") and "31 32 31 30" in page and "<td>0000</td>" in page
    # the notice and its ledger entry
    assert "The notice stored for this key" in page and "Ledger entry" in page
    assert "Paid" in page and invoice.number in page


def test_detail_of_an_unparseable_frame_shows_the_codec_error_and_offset(
    staff_client: Client, biller: Biller, invoice: Invoice
) -> None:
    send(h.open_day(biller))
    raw = bytearray(h.body(h.payment(biller, invoice)))
    raw[72 + 20 + 6 + 3] = ord("X")  # a letter in element 4 (amount, N(11) at offset 98)
    send(bytes(raw))
    message = Message.objects.get(outcome=Message.Outcome.FORMAT_ERROR)
    assert message.response_code == "9001"
    page = html(staff_client.get(f"/staff/operations/messages/{message.pk}/"))
    assert "The codec refuses this frame" in page
    assert "element 4 amount at byte offset 98" in page and "0x58 at offset 101" in page
    assert "<mark>58</mark>" in page  # the bad byte, marked in the hex dump
    assert 'class="in-error"' in page and "(error here)" in page
    assert "Response as sent" in page and "<td>9001</td>" in page  # the 9001 answer, decoded

    send(b"\x00\x01garbage")  # no header at all: the connection was closed, nothing answered
    garbage = Message.objects.get(outcome=Message.Outcome.UNREADABLE)
    page = html(staff_client.get(f"/staff/operations/messages/{garbage.pk}/"))
    assert "The codec refuses this frame" in page and "byte offset 0" in page
    assert "00 01 67 61 72 62 61 67 65" in page.replace("<mark>", "").replace("</mark>", "")
    assert "No response was sent" in page


def test_duplicate_points_to_the_message_that_stored_the_notice(
    staff_client: Client, biller: Biller, invoice: Invoice
) -> None:
    send(h.open_day(biller))
    payment = h.payment(biller, invoice)
    send(payment)
    send(payment)  # the centre resent it
    first, again = Message.objects.filter(message_type="1200").order_by("id")
    assert again.outcome == Message.Outcome.DUPLICATE
    page = html(staff_client.get(f"/staff/operations/messages/{again.pk}/"))
    assert f'href="/staff/operations/messages/{first.pk}/"' in page
    assert "Not yet: waiting for" in page  # no worker ran


def test_pages_are_in_japanese(staff_client: Client, biller: Biller, invoice: Invoice) -> None:
    send(h.open_day(biller))
    page = html(staff_client.get("/staff/operations/", HTTP_ACCEPT_LANGUAGE="ja"))
    assert "運用状況" in page and "電文履歴" in page and "開局" in page
    page = html(
        staff_client.get("/staff/operations/messages/", {"date_from": "x"}, HTTP_ACCEPT_LANGUAGE="ja")
    )
    assert "お客様番号" in page and "日付を正しく入力してください" in page
