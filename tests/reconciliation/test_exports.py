"""The exports page: payments CSV, invoices CSV and the 弥生会計 journal import, streamed, per tenant."""

from __future__ import annotations

import csv
import datetime
import io
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.models import Biller, Invoice, Membership
from payeasy.codec import JST
from payeasy.models import LedgerEntry, Notice
from reconciliation import exports
from tests.factories import MIXED_RATE_LINES, make_customer, make_invoice, make_member, make_payment

pytestmark = pytest.mark.django_db

NOV = {"date_from": "2026-11-01", "date_to": "2026-11-30"}


def jst(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, minute, second, tzinfo=JST)


def ledger_entry(
    biller: Biller,
    invoice: Invoice | None = None,
    *,
    paid_at: datetime.datetime,
    amount: int | None = None,
    outcome: str = "paid",
    reason: str = "",
    kana: str = "ﾃｽﾄ ﾀﾛｳ",
    bank: str = "0001",
    branch: str = "001",
    channel: str = "02",
    reverses: LedgerEntry | None = None,
) -> LedgerEntry:
    """A notice and its ledger entry as the applier leaves them (a reversal when ``reverses``)."""
    if amount is not None:
        value = amount
    elif reverses is not None:
        value = reverses.amount
    else:
        value = invoice.total if invoice else 1000
    notice = Notice.objects.create(
        transaction_key=f"K{uuid.uuid4().int % 10**25:025d}",
        kind="reversal" if reverses else "payment",
        biller=biller,
        key_date=paid_at.astimezone(JST).date(),
        customer_number=(invoice.customer_number or "") if invoice else "12345678901234567890",
        confirmation_number=(invoice.confirmation_number or "") if invoice else "999999",
        amount=abs(value),
        bank_code=bank,
        branch_code=branch,
        channel=channel,
        paid_at=paid_at,
        payer_name_kana=kana,
        original_key=reverses.notice.transaction_key if reverses else "",
        applied_at=paid_at,
    )
    return LedgerEntry.objects.create(
        biller=biller,
        notice=notice,
        invoice=invoice if not reverses else reverses.invoice,
        outcome="reversal" if reverses else outcome,
        reason=reason,
        amount=-abs(value) if reverses else value,
        reverses=reverses,
    )


def download(client: Client, biller: Biller, **params: str) -> Any:
    return client.get(f"/b/{biller.slug}/console/exports/download/", params)


def body_of(response: Any) -> bytes:
    assert response.status_code == 200, response.content[:500]
    assert response.streaming
    return b"".join(response.streaming_content)


def rows_of(body: bytes, encoding: str) -> list[list[str]]:
    text = body.decode("utf-8-sig" if encoding == "utf-8" else "cp932")
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")  # every line ends in CRLF, no bare LF
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.fixture
def customer(biller: Biller) -> Any:
    return make_customer(biller, code="C-100", name="株式会社テスト商事")


@pytest.fixture
def invoice(biller: Biller, customer: Any) -> Invoice:
    return make_invoice(biller=biller, customer=customer, number="INV-2026-001", amount=1000)


# --- payments CSV -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "cp932"])
def test_payments_csv_round_trips_with_exact_values(
    admin_client: Client, biller: Biller, invoice: Invoice, encoding: str
) -> None:
    paid = ledger_entry(biller, invoice, paid_at=jst(2026, 11, 26, 10, 30))
    stray = ledger_entry(
        biller,
        paid_at=jst(2026, 11, 30, 23, 59, 59),
        amount=4321,
        outcome="provisional",
        reason="unknown_number",
        kana="ﾀﾅｶ ｲﾁﾛｳ",
    )
    reversal = ledger_entry(biller, paid_at=jst(2026, 11, 27, 15), reverses=paid, channel="01")
    ledger_entry(biller, invoice, paid_at=jst(2026, 10, 31, 23, 59, 59))  # the day before the period
    ledger_entry(biller, invoice, paid_at=jst(2026, 12, 1, 0, 0))  # the day after it

    response = download(admin_client, biller, what="payments", encoding=encoding, **NOV)
    assert response["Content-Type"].endswith("utf-8" if encoding == "utf-8" else "Windows-31J")
    filename = f"payments_20261101-20261130_{encoding.replace('-', '')}.csv"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    body = body_of(response)
    assert body.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8")  # the BOM: UTF-8 only
    rows = rows_of(body, encoding)
    assert rows[0][:7] == ["台帳番号", "入金日", "入金時刻", "処理日", "区分", "理由", "金額"]
    assert len(rows) == 4 and all(len(r) == len(rows[0]) == 19 for r in rows)
    assert rows[1] == [
        str(paid.pk),
        "2026/11/26",
        "10:30:00",
        "2026/11/26",
        "入金済み",
        "",
        "1100",
        "0001",
        "みずほ",
        "001",
        "東京営業部",
        "ATM",
        "MPN回線",
        paid.notice.transaction_key,
        "ﾃｽﾄ ﾀﾛｳ",
        "INV-2026-001",
        "C-100",
        "株式会社テスト商事",
        "",
    ]
    assert rows[2][:7] == [str(reversal.pk), "2026/11/27", "15:00:00", "2026/11/27", "取消", "", "-1100"]
    assert rows[2][-1] == str(paid.pk) and rows[2][15] == "INV-2026-001"  # what it reverses
    assert rows[3][:7] == [
        str(stray.pk),
        "2026/11/30",
        "23:59:59",
        "2026/11/30",
        "仮消込",
        rows[3][5],
        "4321",
    ]
    assert rows[3][5] == "お客様番号または確認番号が不明"
    assert rows[3][14:18] == ["ﾀﾅｶ ｲﾁﾛｳ", "", "", ""]  # a payment to no bill: the payer kana only


def test_outcome_filter(admin_client: Client, biller: Biller, invoice: Invoice) -> None:
    ledger_entry(biller, invoice, paid_at=jst(2026, 11, 2, 9))
    stray = ledger_entry(biller, paid_at=jst(2026, 11, 3, 9), outcome="provisional", reason="unknown_number")
    rows = rows_of(
        body_of(download(admin_client, biller, what="payments", outcome="provisional", **NOV)), "utf-8"
    )
    assert [r[0] for r in rows[1:]] == [str(stray.pk)]


def test_a_name_cp932_lacks_is_written_as_geta_not_an_error(admin_client: Client, biller: Biller) -> None:
    customer = make_customer(biller, name="𠮷野家 髙橋〜商店")
    invoice = make_invoice(biller=biller, customer=customer, issue_date=datetime.date(2026, 11, 5))
    ledger_entry(biller, invoice, paid_at=jst(2026, 11, 6, 12))
    for what in ("payments", "invoices"):
        cp932 = rows_of(body_of(download(admin_client, biller, what=what, encoding="cp932", **NOV)), "cp932")
        utf8 = rows_of(body_of(download(admin_client, biller, what=what, encoding="utf-8", **NOV)), "utf-8")
        column = cp932[0].index("顧客名")
        # 𠮷 is not in cp932: 〓; 髙 is (an IBM extension); 〜 (WAVE DASH) is written as cp932's ～
        assert cp932[1][column] == "〓野家 髙橋～商店"
        assert utf8[1][column] == "𠮷野家 髙橋〜商店"  # UTF-8 keeps every character
    journal = body_of(download(admin_client, biller, what="yayoi", **NOV)).decode("cp932")
    assert "〓野家" in journal


def test_a_formula_in_a_name_is_neutralised(admin_client: Client, biller: Biller) -> None:
    customer = make_customer(biller, name="=cmd|'/c calc'!A1")
    invoice = make_invoice(biller=biller, customer=customer, issue_date=datetime.date(2026, 11, 5))
    ledger_entry(biller, invoice, paid_at=jst(2026, 11, 6, 12), kana="-ｶﾅ")
    payments = rows_of(body_of(download(admin_client, biller, what="payments", **NOV)), "utf-8")
    invoices = rows_of(body_of(download(admin_client, biller, what="invoices", **NOV)), "utf-8")
    assert payments[1][17] == "'=cmd|'/c calc'!A1" and payments[1][14] == "'-ｶﾅ"
    assert invoices[1][5] == "'=cmd|'/c calc'!A1"
    assert payments[1][6] == "1100"  # a number stays a number


# --- invoices CSV -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "cp932"])
def test_invoices_csv_has_per_rate_totals_and_exact_values(
    admin_client: Client, biller: Biller, customer: Any, encoding: str
) -> None:
    mixed = make_invoice(
        biller=biller,
        customer=customer,
        number="INV-MIX",
        lines=MIXED_RATE_LINES,
        due_date=datetime.date(2026, 12, 20),
    )
    paid = make_invoice(
        biller=biller, customer=customer, number="INV-PAID", issue_date=datetime.date(2026, 11, 30)
    )
    make_payment(paid, paid_at=jst(2026, 12, 2, 0, 30))
    make_invoice(biller=biller, customer=customer, number="INV-DRAFT", published=False)  # not issued
    make_invoice(biller=biller, customer=customer, number="INV-OCT", issue_date=datetime.date(2026, 10, 31))
    rows = rows_of(
        body_of(download(admin_client, biller, what="invoices", encoding=encoding, **NOV)), encoding
    )
    assert rows[0] == list(exports.INVOICE_HEADER)
    assert rows[0][:4] == ["請求書番号", "種別", "発行日", "支払期日"]
    assert rows[1:] == [
        [
            "INV-MIX",
            "請求書",
            "2026/11/01",
            "2026/12/20",
            "C-100",
            "株式会社テスト商事",
            "10500",
            "1050",
            "4400",
            "352",
            "0",
            "1402",
            "16302",
            "発行済み",
            "",
        ],
        [
            "INV-PAID",
            "請求書",
            "2026/11/30",
            "2026/12/31",
            "C-100",
            "株式会社テスト商事",
            "1000",
            "100",
            "0",
            "0",
            "0",
            "100",
            "1100",
            "入金済み",
            "2026/12/02",
        ],
    ]
    assert mixed.total == 16302


# --- 弥生会計 ---------------------------------------------------------------------------------------


def test_yayoi_journal_has_25_documented_columns(
    admin_client: Client, biller: Biller, invoice: Invoice
) -> None:
    paid = ledger_entry(biller, invoice, paid_at=jst(2026, 11, 26, 10, 30))
    stray = ledger_entry(
        biller, paid_at=jst(2026, 11, 27, 9), amount=500, outcome="provisional", kana="ﾀﾅｶ ｲﾁﾛｳ"
    )
    reversal = ledger_entry(biller, paid_at=jst(2026, 11, 28, 15), reverses=paid)
    response = download(admin_client, biller, what="yayoi", encoding="utf-8", **NOV)  # always cp932
    assert response["Content-Type"] == "text/csv; charset=Windows-31J"
    assert response["Content-Disposition"] == 'attachment; filename="yayoi_shiwake_20261101-20261130.csv"'
    body = body_of(response)
    assert not body.startswith(b"\xef\xbb\xbf")
    rows = rows_of(body, "cp932")
    assert len(rows) == 3  # no header line: 弥生 reads every line as a journal
    assert all(len(r) == 25 for r in rows)
    assert rows[0] == [
        "2000",
        "",
        "",
        "2026/11/26",
        "普通預金",
        "",
        "",
        "対象外",
        "1100",
        "",
        "売掛金",
        "",
        "",
        "対象外",
        "1100",
        "",
        "ペイジー入金 INV-2026-001 株式会社テスト商事",
        "",
        "",
        "0",
        "",
        f"取引キー {paid.notice.transaction_key} 台帳番号 {paid.pk}",
        "0",
        "0",
        "no",
    ]
    assert (rows[1][3], rows[1][4], rows[1][8], rows[1][10], rows[1][14]) == (
        "2026/11/27",
        "普通預金",
        "500",
        "仮受金",
        "500",
    )
    assert rows[1][16] == "ペイジー入金(仮消込) 請求書なし ﾀﾅｶ ｲﾁﾛｳ"
    # the reversal: the opposite journal of the payment, for a positive amount
    assert (rows[2][3], rows[2][4], rows[2][8], rows[2][10], rows[2][14]) == (
        "2026/11/28",
        "売掛金",
        "1100",
        "普通預金",
        "1100",
    )
    assert rows[2][16].startswith("ペイジー入金取消 INV-2026-001") and str(reversal.pk) in rows[2][21]
    assert stray.pk != reversal.pk


def test_yayoi_summary_is_clipped_to_64_bytes_without_splitting_a_character(biller: Biller) -> None:
    customer = make_customer(biller, name="あ" * 60)
    invoice = make_invoice(biller=biller, customer=customer)
    from reconciliation.selectors.exports import payment_export_rows

    ledger_entry(biller, invoice, paid_at=jst(2026, 11, 26, 10))
    (row,) = payment_export_rows(
        biller=biller, date_from=datetime.date(2026, 11, 1), date_to=datetime.date(2026, 11, 30)
    )
    summary = exports.yayoi_summary(row)
    assert len(summary.encode("cp932")) <= 64 and len(summary.encode("cp932")) >= 63
    assert summary.startswith("ペイジー入金 ") and summary.endswith("あ")
    assert exports.cp932_clip("ああ", 3) == "あ" and exports.cp932_clip("aあ", 3) == "aあ"


def test_yayoi_accounts_for_each_outcome() -> None:
    assert exports.yayoi_accounts("paid") == ("普通預金", "売掛金")
    assert exports.yayoi_accounts("double_payment") == ("普通預金", "仮受金")
    assert exports.yayoi_accounts("provisional") == ("普通預金", "仮受金")
    assert exports.yayoi_accounts("reversal", "paid") == ("売掛金", "普通預金")
    assert exports.yayoi_accounts("reversal", "double_payment") == ("仮受金", "普通預金")


# --- streaming, queries, input, tenants -------------------------------------------------------------


def test_a_long_file_streams_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "FLUSH_AT", 100)
    rows = ([i, f"名前{i}", i * 100] for i in range(500))
    chunks = list(exports.csv_stream(rows, header=("番号", "名前", "金額"), encoding="cp932"))
    assert len(chunks) > 10
    parsed = list(csv.reader(io.StringIO(b"".join(chunks).decode("cp932"), newline="")))
    assert parsed[0] == ["番号", "名前", "金額"] and parsed[500] == ["499", "名前499", "49900"]


@pytest.mark.parametrize("what", ["payments", "invoices", "yayoi"])
def test_query_count_does_not_grow_with_rows(
    admin_client: Client, biller: Biller, customer: Any, what: str
) -> None:
    def add(n: int) -> None:
        for _ in range(n):
            invoice = make_invoice(biller=biller, customer=customer, issue_date=datetime.date(2026, 11, 3))
            ledger_entry(biller, invoice, paid_at=jst(2026, 11, 4, 12))

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            rows = rows_of(
                body_of(download(admin_client, biller, what=what, **NOV)),
                "cp932" if what == "yayoi" else "utf-8",
            )
        return len(queries), len(rows)

    add(2)
    count()  # the first request reads what a process keeps afterwards (the biller): not a per-row read
    few, rows_few = count()
    add(20)
    many, rows_many = count()
    assert rows_many == rows_few + 20
    assert many == few


def test_bad_input_answers_400_naming_the_field(admin_client: Client, biller: Biller) -> None:
    response = download(admin_client, biller, what="payments", date_from="2026-11-30", date_to="2026-11-01")
    assert response.status_code == 400 and not response.streaming
    assert b'href="#id_date_to"' in response.content
    response = download(admin_client, biller, what="payments", date_from="not a date", date_to="2026-11-01")
    assert response.status_code == 400 and b'href="#id_date_from"' in response.content
    assert download(admin_client, biller, what="everything", **NOV).status_code == 400
    assert download(admin_client, biller, **NOV).status_code == 400


def test_export_page_explains_the_encodings(admin_client: Client, biller: Biller) -> None:
    page = admin_client.get(f"/b/{biller.slug}/console/exports/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "〓" in html and 'name="what" value="yayoi"' in html and 'type="date"' in html
    assert f'action="/b/{biller.slug}/console/exports/download/"' in html


def test_an_operator_may_download(client: Client, biller: Biller, invoice: Invoice) -> None:
    client.force_login(make_member(biller, role=Membership.Role.OPERATOR))
    ledger_entry(biller, invoice, paid_at=jst(2026, 11, 26, 10, 30))
    assert len(rows_of(body_of(download(client, biller, what="payments", **NOV)), "utf-8")) == 2


def test_never_another_tenants_rows(
    admin_client: Client, biller: Biller, other_biller: Biller, invoice: Invoice
) -> None:
    mine = ledger_entry(biller, invoice, paid_at=jst(2026, 11, 26, 10, 30))
    theirs_invoice = make_invoice(
        biller=other_biller, number="THEIRS-1", issue_date=datetime.date(2026, 11, 2)
    )
    theirs = ledger_entry(other_biller, theirs_invoice, paid_at=jst(2026, 11, 26, 10, 30))
    ledger_entry(other_biller, paid_at=jst(2026, 11, 26, 11), outcome="provisional", kana="ﾖｿ")
    payments = rows_of(body_of(download(admin_client, biller, what="payments", **NOV)), "utf-8")
    assert [r[0] for r in payments[1:]] == [str(mine.pk)]
    invoices = rows_of(body_of(download(admin_client, biller, what="invoices", **NOV)), "utf-8")
    assert [r[0] for r in invoices[1:]] == ["INV-2026-001"]
    journal = body_of(download(admin_client, biller, what="yayoi", **NOV)).decode("cp932")
    assert theirs.notice.transaction_key not in journal and "ﾖｿ" not in journal
    # the other tenant's console is not this member's: 404, as for a biller that does not exist
    assert download(admin_client, other_biller, what="payments", **NOV).status_code == 404
    assert admin_client.get(f"/b/{other_biller.slug}/console/exports/").status_code == 404


def test_a_payment_from_the_line_is_exported(client: Client) -> None:
    from payeasy.services.payments import notices_apply
    from tests.payeasy import line_helpers as h

    biller = h.open_line_biller()
    invoice = h.published_invoice(biller, price=3000)
    message = h.payment(biller, invoice)
    h.send(message)
    notices_apply()
    client.force_login(make_member(biller))
    rows = rows_of(
        body_of(download(client, biller, what="payments", date_from="2026-11-26", date_to="2026-11-26")),
        "utf-8",
    )
    assert len(rows) == 2
    assert rows[1][1:3] == ["2026/11/26", "10:30:00"] and rows[1][6] == "3300"
    assert rows[1][13] == message.transaction_key and rows[1][15] == invoice.number


@pytest.mark.django_db(transaction=True)
def test_streaming_outside_the_request_transaction_stays_in_the_tenant(client: Client) -> None:
    """The body is produced after the view returned, outside its transaction (on PostgreSQL: a cursor
    WITH HOLD, each chunk in the tenant's session scope): still this tenant's rows only."""
    from tests.factories import make_biller

    mine, theirs = make_biller(), make_biller()
    entry = ledger_entry(mine, make_invoice(biller=mine), paid_at=jst(2026, 11, 26, 10, 30))
    ledger_entry(theirs, make_invoice(biller=theirs), paid_at=jst(2026, 11, 26, 10, 30))
    client.force_login(make_member(mine))
    rows = rows_of(body_of(download(client, mine, what="payments", **NOV)), "utf-8")
    assert [r[0] for r in rows[1:]] == [str(entry.pk)]
