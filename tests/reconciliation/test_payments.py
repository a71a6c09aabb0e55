"""The console's payments pages: every ledger entry of the tenant (line and teller file), the filters,
keyset pages, 速報/確報, one payment with its message history shown safely, the bill's payments on the
invoice page; never another tenant's. Payments go through the real line code and applier."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.models import Biller, Invoice, InvoicePayment
from billing.tenancy import tenant_reverse
from payeasy import codec
from payeasy.models import LedgerEntry, Message, Notice
from payeasy.services.payments import notices_apply
from payeasy.services.teller import teller_file_import
from reconciliation.models import ExpectedFunds, Finding, ReportPair
from reconciliation.selectors import payments as selectors
from reconciliation.views import payments as views
from tests.factories import make_member
from tests.payeasy import line_helpers as h
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db
DAY = datetime.date(2026, 11, 26)


@pytest.fixture
def biller() -> Biller:
    return h.open_line_biller()


@pytest.fixture
def console(client: Client, biller: Biller) -> Client:
    client.force_login(make_member(biller))
    return client


def url(biller: Biller, name: str, *args: object) -> str:
    return tenant_reverse(biller, f"console:{name}", args=args)


def pay(biller: Biller, invoice: Invoice, **kw: Any) -> codec.Message:
    message = h.payment(biller, invoice, **kw)
    h.send(message)
    notices_apply()
    return message


def entry_of(message: codec.Message) -> LedgerEntry:
    return LedgerEntry.objects.select_related("notice").get(notice__transaction_key=message.transaction_key)


def teller_pay(biller: Biller, invoice: Invoice, *, serial: int = 1) -> str:
    header = codec.BatchHeader(biller.biller_code, "ﾃｽﾄ", "20261126", "0001", "ﾃｽﾄｷﾞﾝｺｳ")
    record = codec.BatchData(
        customer_number=str(invoice.customer_number),
        confirmation_number=str(invoice.confirmation_number),
        amount=invoice.total,
        branch_code="101",
        paid_date="20261126",
        paid_time="110000",
        serial=f"{serial:08d}",
        payer_name_kana="ﾔﾏﾀﾞ ﾀﾛｳ",
        cancel=0,
    )
    batch = codec.make_batch_file(header, [record], serial=serial)
    result = teller_file_import(batch.name, codec.build_batch_file(batch))
    assert result.accepted, result.report()
    notices_apply()
    return batch.transaction_keys()[0]


def listed_keys(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content[:2000]
    return re.findall(r"<td[^>]*><code>([^<]+)</code></td>", response.content.decode())


# --- the list --------------------------------------------------------------------------------------------


def test_every_kind_of_entry_is_listed_with_its_facts(console: Client, biller: Biller) -> None:
    bill = h.published_invoice(biller, price=3000, number="INV-PAY-1")
    first = pay(biller, bill, channel="01")
    second = pay(biller, bill, channel="01")  # a double payment
    short = pay(biller, h.published_invoice(biller, price=5000), amount=10)  # provisional, amount differs
    reversal = h.reversal(biller, second)
    h.send(reversal)
    notices_apply()
    teller_key = teller_pay(biller, h.published_invoice(biller, price=700), serial=7)
    response = console.get(url(biller, "payment_list"))
    keys = listed_keys(response)
    assert keys == [
        teller_key,
        reversal.transaction_key,
        short.transaction_key,
        second.transaction_key,
        first.transaction_key,
    ]  # newest first
    page = response.content.decode()
    for text in (
        "3,300円",
        "-3,300円",
        "10円",
        "The amount differs from the bill",
        "0001 みずほ",  # bank code and name from the 全銀 master
        "INV-PAY-1",
        str(bill.customer_number),
        "2026-11-26 10:30:00",  # paid at, JST
        "確報",  # the teller file's
        "速報",  # the line's
    ):
        assert text in page, text
    assert url(biller, "invoice_detail", bill.pk) in page
    assert url(biller, "payment_detail", entry_of(first).pk) in page


def test_another_tenants_entries_are_never_listed(console: Client, biller: Biller) -> None:
    other = h.line_biller()
    h.send(h.open_day(other))
    theirs = pay(other, h.published_invoice(other, price=3000))
    mine = pay(biller, h.published_invoice(biller, price=3000))
    assert listed_keys(console.get(url(biller, "payment_list"))) == [mine.transaction_key]
    assert theirs.transaction_key not in console.get(url(biller, "payment_list")).content.decode()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"channel": "01"}, ["teller"]),
        ({"channel": "03"}, ["net"]),
        ({"outcome": "provisional"}, ["other_bank", "short"]),  # bank 0005 is not contracted
        ({"bank": "0005"}, ["other_bank"]),
        ({"amount_min": "4,000"}, ["short"]),
        ({"amount_max": "1000"}, ["teller"]),
        ({"amount_min": "1000", "amount_max": "3000", "channel": "02"}, ["other_bank"]),
        ({"amount_min": "3000", "amount_max": "3300", "channel": "02"}, ["atm"]),
        ({"processing_date": "2026-11-26"}, ["teller", "other_bank", "short", "net", "atm"]),
        ({"processing_date": "2026-11-27"}, []),
        ({"paid_from": "2026-11-25", "paid_to": "2026-11-25"}, ["net"]),
        ({"paid_from": "2026-11-26"}, ["teller", "other_bank", "short", "atm"]),
        ({"paid_to": "2026-11-25", "channel": "02"}, []),
    ],
)
def test_filters_combine(
    console: Client, biller: Biller, params: dict[str, str], expected: list[str]
) -> None:
    sent = {
        "atm": pay(biller, h.published_invoice(biller, price=3000)),
        # paid at 2026-11-25 23:59 JST: the day before in JST, although 14:59 UTC on the 25th too
        "net": pay(biller, h.published_invoice(biller, price=2000), channel="03", paid_at="20261125235900"),
        "short": pay(biller, h.published_invoice(biller, price=5000), amount=5400),
        "other_bank": pay(biller, h.published_invoice(biller, price=2500), bank="0005"),
    }
    keys = {name: m.transaction_key for name, m in sent.items()}
    keys["teller"] = teller_pay(biller, h.published_invoice(biller, price=700))
    response = console.get(url(biller, "payment_list"), params)
    assert listed_keys(response) == [keys[name] for name in expected]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"channel": "09"}, "channel"),
        ({"bank": "12"}, "bank"),
        ({"outcome": "stolen"}, "outcome"),
        ({"amount_min": "1e3"}, "amount_min"),
        ({"paid_from": "2026-13-01"}, "paid_from"),
        ({"paid_from": "2026-11-27", "paid_to": "2026-11-26"}, "paid_to"),
        ({"processing_date": "yesterday"}, "processing_date"),
        ({"after": "not-a-cursor"}, None),
    ],
)
def test_bad_filter_values_are_errors_on_their_field(
    console: Client, biller: Biller, params: dict[str, str], field: str | None
) -> None:
    pay(biller, h.published_invoice(biller))
    response = console.get(url(biller, "payment_list"), params)
    assert response.status_code == 400
    page = response.content.decode()
    assert 'class="error-summary"' in page
    if field:
        assert f'href="#id_{field}"' in page


def test_pages_follow_each_other_newest_first(
    console: Client, biller: Biller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views.PaymentListView, "page_size", 2)
    bill = h.published_invoice(biller)
    keys = [pay(biller, bill).transaction_key for _ in range(5)][::-1]
    seen: list[str] = []
    response = console.get(url(biller, "payment_list"), {"outcome": "double_payment"})
    while True:
        seen += listed_keys(response)
        found = re.search(r'href="([^"]+)" rel="next"', response.content.decode())
        if not found:
            break
        response = console.get(found.group(1).replace("&amp;", "&"))
    assert seen == keys[:4]  # the first payment paid the bill; the filter stays on every page
    back = re.search(r'href="([^"]+)" rel="prev"', response.content.decode())
    assert back is not None
    assert listed_keys(console.get(back.group(1).replace("&amp;", "&"))) == keys[:2]


def test_a_line_payment_is_preliminary_until_paired_or_deposited(console: Client, biller: Biller) -> None:
    a = pay(biller, h.published_invoice(biller, price=1000))
    b = pay(biller, h.published_invoice(biller, price=2000), bank="0005")

    def states() -> dict[str, str]:
        qs = selectors.payment_list(biller=biller)
        return {e.notice.transaction_key: e.confirmation for e in qs}  # type: ignore[attr-defined]

    assert states() == {a.transaction_key: "preliminary", b.transaction_key: "preliminary"}
    page = console.get(url(biller, "payment_list")).content.decode()
    assert (
        page.count('class="confirmation-preliminary"') == 2 and 'class="confirmation-confirmed"' not in page
    )
    # the teller file reported a's money again: paired, 確報
    ReportPair.objects.create(biller=biller, line_notice_id=entry_of(a).notice_id, file_notice_id=999_999)
    assert states() == {a.transaction_key: "confirmed", b.transaction_key: "preliminary"}
    # the bank 0005's funds of the day arrived, but not yet matched: still 速報
    funds = ExpectedFunds.objects.create(
        biller=biller, bank_code="0005", processing_date=DAY, value_date=DAY, count=1, amount=2200
    )
    assert states()[b.transaction_key] == "preliminary"
    ExpectedFunds.objects.filter(pk=funds.pk).update(state=ExpectedFunds.State.MATCHED)
    assert states() == {a.transaction_key: "confirmed", b.transaction_key: "confirmed"}
    # another tenant's matched funds of the same bank and day confirm nothing here
    other = h.line_biller()
    ExpectedFunds.objects.create(
        biller=other,
        bank_code="0001",
        processing_date=DAY,
        value_date=DAY,
        count=1,
        amount=1,
        state="matched",
    )
    ReportPair.objects.filter(biller=biller).delete()
    assert states()[a.transaction_key] == "preliminary"
    page = console.get(url(biller, "payment_detail", entry_of(b).pk)).content.decode()
    assert '<span class="confirmation-confirmed">Confirmed (確報)</span>' in page


@pytest.mark.parametrize("count", [1, 50])
def test_the_list_takes_a_fixed_number_of_queries(
    console: Client,
    biller: Biller,
    count: int,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    bill = h.published_invoice(biller)
    h.send(*(h.payment(biller, bill) for _ in range(count)))
    notices_apply()
    assert LedgerEntry.objects.for_biller(biller).count() == count
    path = url(biller, "payment_list")
    console.get(path)  # the session and the language are warm
    with django_assert_num_queries(QUERIES_LIST[connection.vendor]):
        response = console.get(path)
    assert len(listed_keys(response)) == count


# the session, the user, its two-factor row, the membership (the tenant is kept by the process after the
# first request), the page itself (one query: entries joined to their notices and bills, the 速報/確報
# state as EXISTS), the memberships the header lists; on PostgreSQL also the tenant scope's savepoints,
# set_config and releases (billing.tenancy)
QUERIES_LIST = {"sqlite": 6, "postgresql": 12}


def test_the_first_page_is_one_query_ordered_by_id_with_a_limit(console: Client, biller: Biller) -> None:
    pay(biller, h.published_invoice(biller))
    with CaptureQueriesContext(connection) as captured:
        console.get(url(biller, "payment_list"))
    pages = [q["sql"] for q in captured.captured_queries if "payeasy_ledgerentry" in q["sql"]]
    assert len(pages) == 1
    sql = pages[0]
    assert "payeasy_notice" in sql and "ORDER BY" in sql and "LIMIT 51" in sql
    assert re.search(r'ORDER BY "payeasy_ledgerentry"\."id" DESC', sql)


# --- one payment -----------------------------------------------------------------------------------------


def test_detail_shows_the_messages_of_the_payment_and_its_reversal(console: Client, biller: Biller) -> None:
    bill = h.published_invoice(biller, price=3000, number="INV-REV-1")
    payment = pay(biller, bill, channel="01")
    reversal = h.reversal(biller, payment)
    h.send(reversal)
    notices_apply()
    paid, undone = entry_of(payment), entry_of(reversal)
    page = console.get(url(biller, "payment_detail", paid.pk)).content.decode()
    assert page.count("Message 1200") == 1 and page.count("Message 1300") == 1
    assert url(biller, "payment_detail", undone.pk) in page and url(biller, "invoice_detail", bill.pk) in page
    assert "3,300円" in page and "0001 みずほ" in page and "1210" not in page.split("Message 1200")[0]
    assert payment.transaction_key in page and reversal.transaction_key in page
    assert "31 32 30 30" in page  # the frame in hex: "1200"
    page = console.get(url(biller, "payment_detail", undone.pk)).content.decode()
    assert "-3,300円" in page and url(biller, "payment_detail", paid.pk) in page
    assert page.count("Message 1200") == 1 and page.count("Message 1300") == 1


def test_detail_of_a_teller_file_payment_shows_its_record(console: Client, biller: Biller) -> None:
    key = teller_pay(biller, h.published_invoice(biller, price=700), serial=3)
    entry = LedgerEntry.objects.get(notice__transaction_key=key)
    page = console.get(url(biller, "payment_detail", entry.pk)).content.decode()
    notice = entry.notice
    assert notice.teller_file is not None and notice.teller_file.name in page
    assert "2026-11-26" in page and "record 2 of the file" in page
    assert "ﾔﾏﾀﾞ ﾀﾛｳ" in page and "確報" in page


def test_hostile_frame_bytes_are_shown_escaped(console: Client, biller: Biller) -> None:
    message = pay(biller, h.published_invoice(biller))
    entry = entry_of(message)
    hostile = b'<script>alert("x")</script>\x00\x1b[2J\x81\xff&amp;<img src=x onerror=alert(1)>'
    Message.objects.create(
        biller=biller,
        message_type="1200",
        transaction_key=message.transaction_key,
        outcome=Message.Outcome.DUPLICATE,
        response_code="0000",
        raw=hostile,
        response_raw=b"</pre><b>bold</b>",
    )
    other = h.line_biller()
    Message.objects.create(  # another tenant's message under the same key is not this tenant's history
        biller=other, message_type="1200", transaction_key=message.transaction_key, outcome="processed",
        raw=b"THEIRS-SECRET",
    )  # fmt: skip
    response = console.get(url(biller, "payment_detail", entry.pk))
    page = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&amp;amp;" in page and "&lt;/pre&gt;&lt;b&gt;bold&lt;/b&gt;" in page
    assert "\x00" not in page and "\x1b" not in page and "\ufffd" in page  # 0x81 0xFF is no cp932
    assert "3C 73 63 72 69 70 74 3E" in page  # the hex of "<script>"
    assert "THEIRS-SECRET" not in page and "54 48 45 49" not in page


def test_detail_links_the_findings_about_the_entry(console: Client, biller: Biller) -> None:
    message = pay(biller, h.published_invoice(biller))
    entry = entry_of(message)
    finding = Finding.objects.create(
        biller=biller, key=f"double:{entry.pk}", kind="double_payment", processing_date=DAY, amount=1100,
        entry_id=entry.pk,
    )  # fmt: skip
    Finding.objects.create(
        biller=h.line_biller(), key="x", kind="late_payment", processing_date=DAY, amount=1, entry_id=entry.pk
    )
    page = console.get(url(biller, "payment_detail", entry.pk)).content.decode()
    assert "Double payment (二重支払)" in page and "Late payment" not in page
    href = views.finding_url(finding.pk)
    if href:  # the findings pages are there: linked
        assert href.replace(f"/b/{biller.slug}", "") in page or href in page


def test_another_tenants_payment_is_404_like_a_missing_one(console: Client, biller: Biller) -> None:
    other = h.line_biller()
    h.send(h.open_day(other))
    theirs = entry_of(pay(other, h.published_invoice(other)))
    pay(biller, h.published_invoice(biller))
    assert_cross_tenant_hidden(console, lambda pk: url(biller, "payment_detail", pk), theirs.pk)


def test_the_payment_pages_need_a_membership(client: Client, biller: Biller) -> None:
    entry = entry_of(pay(biller, h.published_invoice(biller)))
    client.force_login(make_member(h.line_biller()))
    assert client.get(url(biller, "payment_list")).status_code == 404
    assert client.get(url(biller, "payment_detail", entry.pk)).status_code == 404


# --- the invoice page: how the bill was paid -------------------------------------------------------------


def test_the_invoice_page_shows_how_the_bill_was_paid(console: Client, biller: Biller) -> None:
    bill = h.published_invoice(biller, price=3000)
    first = pay(biller, bill, channel="01")
    second = pay(biller, bill, channel="01")
    h.send(h.reversal(biller, second))
    notices_apply()
    page = console.get(url(biller, "invoice_detail", bill.pk)).content.decode()
    assert "How this bill was paid" in page or "お支払いの状況" in page
    payments = list(InvoicePayment.objects.filter(invoice=bill).order_by("id"))
    assert [p.outcome for p in payments] == ["paid", "double_payment", "reversal"]
    for p in payments:
        assert url(biller, "payment_detail", p.entry_ref) in page
        assert p.payment_key in page
    assert "-3,300円" in page and "Teller (窓口)" in page
    assert Notice.objects.get(transaction_key=first.transaction_key).bank_code in page


def test_the_invoice_page_without_payments_says_so(console: Client, biller: Biller) -> None:
    bill = h.published_invoice(biller)
    page = console.get(url(biller, "invoice_detail", bill.pk)).content.decode()
    assert "No payment has been reported for this bill." in page
    assert not re.search(r"/console/payments/\d", page)  # no payment to link (the navigation links the list)
