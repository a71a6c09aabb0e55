"""The daily report: one processing date's figures (by channel, bank and route, split confirmed /
provisional / double), refunds, findings by age, the line's counters and the last run — one selector for
the screen, the CSV and the PDF, a fixed number of queries, per tenant, read-only for operators."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Biller, Invoice, Membership
from payeasy import codec
from payeasy.models import Notice
from payeasy.services.payments import notices_apply
from payeasy.services.teller import teller_file_import
from reconciliation.models import Action, Finding, Refund, Run, TransferFile
from reconciliation.selectors.reports import Figure, daily_report, report_tables
from tests.factories import make_member
from tests.payeasy import line_helpers as h

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 11, 26)
JST = datetime.timezone(datetime.timedelta(hours=9))


# --- building a day ----------------------------------------------------------------------------------


def teller_file(biller: Biller, invoices: list[Invoice], *, serial: int = 1) -> tuple[str, bytes]:
    header = codec.BatchHeader(biller.biller_code, "ﾃｽﾄ", "20261126", "0001", "ﾃｽﾄｷﾞﾝｺｳ")
    records = [
        codec.BatchData(
            customer_number=str(inv.customer_number),
            confirmation_number=str(inv.confirmation_number),
            amount=inv.total,
            branch_code="101",
            paid_date="20261126",
            paid_time=f"10{i:02d}00",
            serial=f"{serial * 100 + i:08d}",
            payer_name_kana="ﾔﾏﾀﾞ ﾀﾛｳ",
        )
        for i, inv in enumerate(invoices, start=1)
    ]
    batch = codec.make_batch_file(header, records, serial=serial, crlf=True)
    return batch.name, codec.build_batch_file(batch)


def build_day(biller: Biller) -> dict[str, Invoice]:
    """On the line: paid (ch 03), amount differs (provisional), paid twice (ch 01: paid + double), an
    unknown number (provisional), paid then reversed (ch 01), a bank without contract (provisional),
    one also in the teller file (paid + double); in the teller file: one more paid."""
    inv = {name: h.published_invoice(biller, price=price) for name, price in [
        ("paid", 1000), ("differs", 2000), ("twice", 3000), ("reversed", 4000), ("file", 5000),
        ("bank", 600), ("both", 700),
    ]}  # fmt: skip
    reversed_payment = h.payment(biller, inv["reversed"], channel="01")
    h.send(
        h.payment(biller, inv["paid"], channel="03"),
        h.payment(biller, inv["differs"], amount=2199),
        h.payment(biller, inv["twice"], channel="01"),
        h.payment(biller, inv["twice"], channel="01"),
        h.payment(biller, inv["paid"], customer_number="77", amount=500),
        reversed_payment,
        h.payment(biller, inv["bank"], bank="0005"),
        h.payment(biller, inv["both"], channel="01"),
    )
    notices_apply()
    h.send(h.reversal(biller, reversed_payment))
    result = teller_file_import(*teller_file(biller, [inv["file"], inv["both"]]))
    assert result.accepted, result.report()
    notices_apply()
    return inv


@pytest.fixture
def biller() -> Biller:
    return h.open_line_biller()


@pytest.fixture
def other() -> Biller:
    """Another tenant on the same line and day, with money of its own (98,765 yen: easy to spot)."""
    other = h.line_biller()
    inv = h.published_invoice(other, price=89787)  # 98,765 yen with tax
    assert inv.total == 98765
    h.send(h.payment(other, inv, channel="01"), h.counters(other, n=1, total=98765))
    notices_apply()
    finding = Finding.objects.create(
        biller=other, key="x:1", kind=Finding.Kind.DOUBLE_PAYMENT, processing_date=DAY, amount=98765
    )
    Run.objects.create(biller=other, processing_date=DAY, trigger=Run.Trigger.SCHEDULE, found=9)
    action = Action.objects.create(biller=other, finding=finding, kind=Action.Kind.WRITE_OFF, amount=98765)
    assert action.pk
    return other


def admin_of(biller: Biller, client: Client, role: str = Membership.Role.ADMIN) -> Client:
    client.force_login(make_member(biller, role=role))
    return client


def url(biller: Biller, tail: str = "") -> str:
    return f"/b/{biller.slug}/console/reports/{tail}"


# --- the figures ---------------------------------------------------------------------------------------


def test_payments_of_a_day_through_the_line_and_a_teller_file(biller: Biller, other: Biller) -> None:
    build_day(biller)
    p = daily_report(biller=biller, processing_date=DAY).payments
    t = p.total
    assert (t.confirmed, t.provisional, t.double, t.unapplied) == (
        Figure(5, 1100 + 3300 + 4400 + 770 + 5500),
        Figure(3, 2199 + 500 + 660),
        Figure(2, 3300 + 770),
        Figure(0, 0),
    )
    assert p.received == Figure(10, 22499)
    assert p.reversals == Figure(1, 4400)
    assert [(label, f) for label, f in p.reversals_by_source] == [("MPN line", Figure(1, 4400))]
    assert {r.reason: r.figure for r in p.provisional_reasons} == {
        "amount_differs": Figure(1, 2199),
        "unknown_number": Figure(1, 500),
        "bank_not_contracted": Figure(1, 660),
    }
    by_channel = {r.key: (r.confirmed, r.provisional, r.double, r.total) for r in p.by_channel}
    assert by_channel == {
        "01": (Figure(4, 13970), Figure(), Figure(2, 4070), Figure(6, 18040)),
        "02": (Figure(), Figure(3, 3359), Figure(), Figure(3, 3359)),
        "03": (Figure(1, 1100), Figure(), Figure(), Figure(1, 1100)),
    }
    assert [(r.key, r.label, r.total) for r in p.by_bank] == [
        ("0001", "0001 みずほ", Figure(9, 21839)),
        ("0005", "0005 三菱ＵＦＪ", Figure(1, 660)),
    ]
    assert [(r.key, r.total) for r in p.by_source] == [
        ("line", Figure(8, 16229)),
        ("teller_file", Figure(2, 6270)),
    ]
    assert p.second_reports == Figure()  # no run yet: nothing paired
    assert p.net == 22499 - 4400


def test_counters_show_the_centres_figures_beside_ours(biller: Biller, other: Biller) -> None:
    build_day(biller)
    assert daily_report(biller=biller, processing_date=DAY).counters.centre is None
    h.send(h.counters(biller, n=8, total=16000))  # the centre counts less than we do
    counters = daily_report(biller=biller, processing_date=DAY).counters
    assert counters.centre == Figure(8, 16000)
    assert counters.line == Figure(8, 16229)  # our distinct line payments of the day
    assert counters.matches is False
    h.send(h.counters(biller, n=8, total=16229))  # the latest 1600 counts
    assert daily_report(biller=biller, processing_date=DAY).counters.matches is True


def test_refunds_actions_findings_and_the_last_run(biller: Biller, other: Biller) -> None:
    now = datetime.datetime(2026, 12, 3, 12, 0, tzinfo=JST)

    def finding(key: str, amount: int, days_ago: int, **kw: Any) -> Finding:
        found_at = datetime.datetime(2026, 12, 3, 0, 30, tzinfo=JST) - datetime.timedelta(days=days_ago)
        data = {"kind": Finding.Kind.PROVISIONAL, "processing_date": DAY, "found_at": found_at}
        return Finding.objects.create(biller=biller, key=key, amount=amount, **(data | kw))

    for key, amount, days in [("a", 1, 0), ("b", 2, 2), ("c", 30, 3), ("d", 70, 7), ("e", 800, 8)]:
        finding(key, amount, days)
    finding("f", 3000, 30, kind=Finding.Kind.DOUBLE_PAYMENT)
    finding("g", 40000, 31, processing_date=DAY - datetime.timedelta(days=1))
    closed = finding("h", 500000, 1, kind=Finding.Kind.DOUBLE_PAYMENT, state=Finding.State.REFUNDED)
    on_day = datetime.datetime(2026, 11, 26, 23, 59, tzinfo=JST)  # still the 26th in Japan
    refund_action = Action.objects.create(
        biller=biller, finding=closed, kind=Action.Kind.REFUND, amount=5000, created_at=on_day
    )
    Action.objects.create(
        biller=biller, finding=closed, kind=Action.Kind.WRITE_OFF, amount=120, created_at=on_day
    )
    Action.objects.create(  # the 27th in Japan (the 26th in UTC): not that day
        biller=biller,
        finding=closed,
        kind=Action.Kind.WRITE_OFF,
        amount=7,
        created_at=on_day + datetime.timedelta(minutes=2),
    )
    file = TransferFile.objects.create(
        biller=biller,
        transfer_date=DAY,
        serial=1,
        count=1,
        total=5000,
        content=b"x",
        sha256=hashlib.sha256(b"x").hexdigest(),
    )
    account = {
        "bank_code": "0001",
        "branch_code": "001",
        "account_type": "1",
        "account_number": "1234567",
        "holder_kana": "ﾔﾏﾀﾞ",
    }
    Refund.objects.create(
        biller=biller,
        finding=closed,
        action=refund_action,
        amount=5000,
        transfer_date=DAY,
        transfer_file=file,
        created_at=on_day,
        **account,
    )
    second = Action.objects.create(biller=biller, finding=closed, kind=Action.Kind.REFUND, amount=300)
    Refund.objects.create(
        biller=biller, finding=closed, action=second, amount=300, transfer_date=DAY, created_at=now, **account
    )
    user = make_member(biller)
    Run.objects.create(
        biller=biller,
        processing_date=DAY,
        trigger="schedule",
        found=1,
        started_at=now - datetime.timedelta(hours=1),
    )
    Run.objects.create(
        biller=biller,
        processing_date=DAY,
        trigger="user",
        started_by=user,
        started_at=now,
        finished_at=now,
        found=4,
        cleared=2,
        open_total=6,
    )

    report = daily_report(biller=biller, processing_date=DAY, now=now)
    assert [(r.label, r.figure) for r in report.open_by_age] == [
        ("0-2", Figure(2, 3)),
        ("3-7", Figure(2, 100)),
        ("8-30", Figure(2, 3800)),
        (">30", Figure(1, 40000)),
    ]
    assert report.open_total == Figure(7, 43903)
    assert [(r.kind, r.figure, r.open) for r in report.found] == [
        ("provisional", Figure(5, 903), 5),
        ("double_payment", Figure(2, 503000), 1),
    ]
    refunds = report.refunds
    assert (refunds.requested, refunds.due, refunds.filed, refunds.unfiled) == (
        Figure(1, 5000),
        Figure(2, 5300),
        Figure(1, 5000),
        Figure(1, 300),
    )
    assert refunds.write_offs == Figure(1, 120)
    assert [(r.kind, r.figure) for r in refunds.actions] == [
        ("refund", Figure(1, 5000)),
        ("write_off", Figure(1, 120)),
    ]
    run = report.last_run
    assert run is not None
    assert (run.trigger, run.started_by, run.found, run.cleared, run.open_total) == (
        "user",
        user.email,
        4,
        2,
        6,
    )
    assert daily_report(biller=biller, processing_date=DAY - datetime.timedelta(days=2)).last_run is None


def test_another_tenants_rows_are_never_in_the_report(biller: Biller, other: Biller) -> None:
    report = daily_report(biller=biller, processing_date=DAY)
    assert report.payments.received == Figure() and report.counters.line == Figure()
    assert report.counters.centre is None  # the other tenant's 1600 is not ours
    assert report.found == [] and report.open_total == Figure() and report.last_run is None
    assert report.refunds.actions == []
    theirs = daily_report(biller=other, processing_date=DAY)
    assert theirs.payments.received == Figure(1, 98765) and theirs.counters.centre == Figure(1, 98765)


# --- a fixed number of queries ------------------------------------------------------------------------


def queries(fn: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def test_the_report_costs_the_same_queries_whatever_the_volume(
    biller: Biller, other: Biller, client: Client
) -> None:
    h.send(h.payment(biller, h.published_invoice(biller), channel="01"))
    notices_apply()
    admin_of(biller, client)
    small = queries(lambda: daily_report(biller=biller, processing_date=DAY))
    client.get(url(biller), {"date": "2026-11-26"})  # warm the session and the bank master
    small_page = queries(lambda: client.get(url(biller), {"date": "2026-11-26"}))
    small_csv = queries(lambda: client.get(url(biller, "2026-11-26.csv")))
    build_day(biller)
    h.send(h.counters(biller, n=1, total=1))
    for i in range(5):
        Finding.objects.create(
            biller=biller, key=f"k{i}", kind=Finding.Kind.PROVISIONAL, processing_date=DAY, amount=i
        )
    Run.objects.create(biller=biller, processing_date=DAY, trigger="user", started_by=make_member(biller))
    large = queries(lambda: daily_report(biller=biller, processing_date=DAY))
    assert small == large == 8
    assert queries(lambda: client.get(url(biller), {"date": "2026-11-26"})) == small_page
    assert queries(lambda: client.get(url(biller, "2026-11-26.csv"))) == small_csv


# --- the pages -----------------------------------------------------------------------------------------


def test_page_shows_the_latest_processing_date_and_links_the_days(biller: Biller, client: Client) -> None:
    build_day(biller)
    admin_of(biller, client)
    page = client.get(url(biller))
    assert page.status_code == 200
    assert page.context["day"] == DAY and page.context["report"].payments.received == Figure(10, 22499)
    html = page.content.decode()
    assert "?date=2026-11-25" in html and "?date=2026-11-27" in html
    assert "22,499円" in html and "0005 三菱ＵＦＪ" in html
    assert f'action="/b/{biller.slug}/console/reports/2026-11-26/run/"' in html
    other_day = client.get(url(biller), {"date": "2026-11-25"})
    assert other_day.context["report"].payments.received == Figure()


def test_without_payments_the_page_shows_today_in_japan(client: Client) -> None:
    quiet = h.line_biller()
    admin_of(quiet, client)
    page = client.get(url(quiet))
    assert page.status_code == 200
    assert page.context["day"] == timezone.now().astimezone(JST).date()


@pytest.mark.parametrize(
    "value", ["2026-13-01", "2026-02-30", "26-11-2026", "yesterday", "2026-1-1", "9999-12-31", "0001-01-01"]
)
def test_a_bad_date_is_a_400_on_the_page_and_a_404_in_a_url(
    biller: Biller, client: Client, value: str
) -> None:
    admin_of(biller, client)
    page = client.get(url(biller), {"date": value})
    assert page.status_code == 400 and page.context["report"] is None
    assert 'aria-invalid="true"' in page.content.decode()
    assert client.get(url(biller, f"{value}.csv")).status_code == 404
    assert client.get(url(biller, f"{value}.pdf")).status_code == 404
    assert client.post(url(biller, f"{value}/run/")).status_code == 404
    assert not Run.objects.exists()


def read_csv(response: Any, encoding: str = "utf-8-sig") -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode(encoding))))


def test_csv_in_utf8_with_bom_and_in_cp932(biller: Biller, other: Biller, client: Client) -> None:
    build_day(biller)
    admin_of(biller, client)
    response = client.get(url(biller, "2026-11-26.csv"))
    assert response.status_code == 200 and response.content.startswith(b"\xef\xbb\xbf")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "daily-report-" in response["Content-Disposition"]
    rows = read_csv(response)
    assert rows[0] == ["日次照合レポート"]
    assert ["処理日", "2026-11-26"] in rows
    summary = rows.index(["■入金の概要"])
    assert rows[summary + 1] == ["項目", "件数", "金額"]
    assert rows[summary + 2] == ["入金合計", "10", "22499"]
    assert ["取消", "1", "4400"] in rows
    banks = rows.index(["■金融機関別"])
    assert rows[banks + 2][:2] == ["0001", "みずほ"] and rows[banks + 2][-2:] == ["9", "21839"]
    assert ["仮消込の理由"] != [] and any(r[:1] == ["請求金額と異なる"] for r in rows)  # labels in Japanese
    assert not any("98765" in cell for row in rows for cell in row)  # the other tenant's money
    sjis = client.get(url(biller, "2026-11-26.csv"), {"encoding": "cp932"})
    assert sjis.status_code == 200 and sjis["Content-Type"] == "text/csv; charset=shift_jis"
    made = [i for i, row in enumerate(rows) if row[:1] == ["作成日時"]]  # when each was made: may differ
    assert made and [r for i, r in enumerate(read_csv(sjis, "cp932")) if i not in made] == [
        r for i, r in enumerate(rows) if i not in made
    ]
    assert client.get(url(biller, "2026-11-26.csv"), {"encoding": "latin-1"}).status_code == 400


def pdf_info_string(pdf: bytes, key: bytes) -> str:
    """A text string of the document information (``/Title (…)``): a PDF literal, UTF-16 with its BOM."""
    match = re.search(rb"/" + key + rb" \((.*?)(?<!\\)\)", pdf, re.S)
    assert match, key
    raw, out, i = match.group(1), bytearray(), 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\":
            octal = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4])
            if octal:
                out.append(int(octal.group(), 8))
                i += 1 + len(octal.group())
                continue
            out += {b"n": b"\n", b"r": b"\r", b"t": b"\t"}.get(raw[i + 1 : i + 2], raw[i + 1 : i + 2])
            i += 2
            continue
        out += raw[i : i + 1]
        i += 1
    return bytes(out).decode("utf-16")


def test_pdf_is_an_a4_document_in_the_japanese_font(biller: Biller, other: Biller, client: Client) -> None:
    from reconciliation.pdf import TITLE, daily_report_pdf

    build_day(biller)
    admin_of(biller, client)
    response = client.get(url(biller, "2026-11-26.pdf"))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    pdf = response.content
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/MediaBox [ 0 0 595.2756 841.8898 ]" in pdf  # A4 portrait
    assert b"/BaseFont /AAAAAA+IPAexGothic" in pdf and b"/FontFile2" in pdf  # the Japanese font, embedded
    assert pdf_info_string(pdf, b"Title") == f"{TITLE} 2026-11-26"
    assert pdf_info_string(pdf, b"Author") == biller.legal_name
    report = daily_report(biller=biller, processing_date=DAY, now=timezone.now())
    assert daily_report_pdf(report) == daily_report_pdf(report)  # deterministic
    tables = report_tables(report)  # what the PDF draws: the same tables as the CSV
    assert tables[0].title == "入金の概要" and tables[0].rows[0][1:] == [10, 22499]


# --- roles and tenants ----------------------------------------------------------------------------------


def test_operator_reads_but_cannot_run(biller: Biller, client: Client) -> None:
    build_day(biller)
    admin_of(biller, client, role=Membership.Role.OPERATOR)
    page = client.get(url(biller))
    assert page.status_code == 200 and "/run/" not in page.content.decode()
    assert client.get(url(biller, "2026-11-26.csv")).status_code == 200
    assert client.get(url(biller, "2026-11-26.pdf")).status_code == 200
    assert client.post(url(biller, "2026-11-26/run/")).status_code == 403
    assert not Run.objects.exists()


def test_admin_runs_the_reconciliation_of_the_date(biller: Biller, client: Client) -> None:
    build_day(biller)
    user = make_member(biller)
    client.force_login(user)
    response = client.post(url(biller, "2026-11-26/run/"))
    assert response.status_code == 302
    assert response["Location"] == f"/b/{biller.slug}/console/reports/?date=2026-11-26"
    run = Run.objects.get()
    assert (run.biller_id, run.processing_date, run.trigger, run.started_by_id) == (
        biller.pk,
        DAY,
        "user",
        user.pk,
    )
    page = client.get(response["Location"])
    report = page.context["report"]
    assert report.last_run is not None and report.last_run.started_by == user.email
    assert report.last_run.found == run.found and report.found_total.count >= 1
    # the teller-file record of the payment the line reported is paired: the same money, reported twice
    assert report.payments.second_reports == Figure(1, 770)
    assert report.payments.net == 22499 - 4400 - 770
    assert client.get(url(biller), {"date": "2026-11-26"}).context["report"].last_run.trigger == "user"


def test_another_tenants_report_urls_are_404(biller: Biller, other: Biller, client: Client) -> None:
    admin_of(biller, client)
    for tail in ["", "2026-11-26.csv", "2026-11-26.pdf"]:
        assert client.get(url(other, tail)).status_code == 404
    assert client.post(url(other, "2026-11-26/run/")).status_code == 404
    assert not Run.objects.filter(biller=other, trigger="user").exists()
    page = client.get(url(biller), {"date": "2026-11-26"})
    assert "98,765" not in page.content.decode()
    assert not Notice.objects.filter(biller=biller).exists()
