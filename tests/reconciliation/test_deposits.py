"""Deposit statements (all rows or none, UTF-8 or cp932, every problem by row and column), the lags per
bank, and the deposit pages of the console: roles and tenants kept apart."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import example, given
from hypothesis import strategies as st

from billing.errors import Conflict, NotFound, ValidationFailed
from billing.models import AuditEntry, Biller, Membership, User
from reconciliation.models import Deposit, DepositLag, DepositStatement, ExpectedFunds
from reconciliation.services import deposits
from reconciliation.services.deposits import (
    StatementInvalid,
    deposit_lag_delete,
    deposit_lag_save,
    deposit_statement_import,
    lags_of,
)
from tests.factories import make_biller, make_member
from tests.payeasy.fuzzing import database_fuzz_settings, mutated
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "samples" / "deposits-sample.csv"
CSV = (
    "入金日,金融機関コード,金額,摘要\r\n"
    '2026-11-04,0005,"1,234,500",ﾍﾟｲｼﾞｰ ｼｭｳﾉｳｷﾝ\r\n'
    "2026/11/05,0009,486200,三井住友 収納金\r\n"
    "20261106,0001,77000,\r\n"
)
D = datetime.date


def counts() -> tuple[int, int, int]:
    return DepositStatement.objects.count(), Deposit.objects.count(), AuditEntry.objects.count()


def run(
    biller: Biller, data: bytes, *, name: str = "statement.csv", actor: User | None = None
) -> DepositStatement:
    return deposit_statement_import(actor=actor, biller=biller, name=name, data=data)


# --- the importer -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_import_in_each_encoding(biller: Biller, encoding: str) -> None:
    admin = make_member(biller)
    statement = run(biller, CSV.encode(encoding), actor=admin)
    assert statement.encoding == encoding
    assert (statement.first_date, statement.last_date) == (D(2026, 11, 4), D(2026, 11, 6))
    assert (statement.row_count, statement.total, statement.imported_by) == (
        3,
        1_234_500 + 486_200 + 77_000,
        admin,
    )
    rows = list(
        Deposit.objects.for_biller(biller)
        .order_by("row")
        .values_list("row", "value_date", "bank_code", "amount", "description")
    )
    assert rows == [
        (2, D(2026, 11, 4), "0005", 1_234_500, "ﾍﾟｲｼﾞｰ ｼｭｳﾉｳｷﾝ"),
        (3, D(2026, 11, 5), "0009", 486_200, "三井住友 収納金"),
        (4, D(2026, 11, 6), "0001", 77_000, ""),
    ]
    entry = AuditEntry.objects.get(action="deposit_statement.import")
    assert entry.biller == biller and entry.actor == admin and (entry.after or {}).get("row_count") == 3


def test_english_headers_extra_columns_and_lenient_cells(biller: Biller) -> None:
    data = (
        "Memo,VALUE_DATE,Bank_Code,Amount,Balance\n"
        'x,２０２６/１/５,5,"12,000",999\n'  # full-width digits, a short month, Excel's dropped zeros
        "\n"
        ",,,,\n"
        "y, 2026-01-06 ,0009, 3000 ,\n"
    ).encode()
    statement = run(biller, data)
    assert (statement.row_count, statement.total) == (2, 15_000)
    assert list(Deposit.objects.for_biller(biller).values_list("row", "bank_code", "description")) == [
        (2, "0005", ""),
        (5, "0009", ""),
    ]


def test_sample_file_imports_cleanly(biller: Biller) -> None:
    data = SAMPLE.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # the documented encoding: UTF-8 with BOM
    statement = run(biller, data, name=SAMPLE.name)
    assert statement.encoding == "utf-8-sig" and statement.row_count == 10
    assert (statement.first_date, statement.last_date) == (D(2026, 12, 28), D(2027, 1, 5))
    assert statement.total == sum(Deposit.objects.for_biller(biller).values_list("amount", flat=True))


def test_bad_row_reports_every_problem_and_stores_nothing(biller: Biller) -> None:
    bad = CSV.replace("20261106,0001,77000", "2026-02-30,0001,77OOO").encode("cp932")
    before = counts()
    with pytest.raises(StatementInvalid) as caught:
        run(biller, bad)
    problems = {(p.row, p.column) for p in caught.value.problems}
    assert problems == {(4, "入金日"), (4, "金額")}
    assert caught.value.error_count == 2
    offset = len(CSV.encode("cp932").split(b"\r\n20261106")[0]) + 2
    assert {p.offset for p in caught.value.problems} == {offset}
    assert all(p.message for p in caught.value.problems)
    assert counts() == before


def test_many_problems_are_counted_and_the_first_kept(
    biller: Biller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deposits, "MAX_ERRORS", 5)
    data = ("入金日,金融機関コード,金額\n" + "yesterday,9999,-1\n" * 4).encode()
    with pytest.raises(StatementInvalid) as caught:
        run(biller, data)
    assert caught.value.error_count == 12 and len(caught.value.problems) == 5
    assert "12" in caught.value.message


@pytest.mark.parametrize(
    ("data", "row", "column", "needle"),
    [
        (b"", None, "", "empty"),
        ("入金日,金融機関コード,金額\n".encode(), None, "", "no deposits"),
        ("入金日,金額\n2026-11-04,100\n".encode(), 1, "", "金融機関コード"),
        ("入金日,入金日,金融機関コード,金額\n".encode(), 1, "入金日", "twice"),
        ("入金日,金融機関コード,金額\n2026-11-04,9999,100\n".encode(), 2, "金融機関コード", "9999"),
        ("入金日,金融機関コード,金額\n2026-11-04,00005,100\n".encode(), 2, "金融機関コード", "00005"),
        ("入金日,金融機関コード,金額\n2026-11-04,0005,1000.5\n".encode(), 2, "金額", "1000.5"),
        ('入金日,金融機関コード,金額\n2026-11-04,0005,"1,00"\n'.encode(), 2, "金額", "1,00"),
        ("入金日,金融機関コード,金額\n2026-11-04,0005,0\n".encode(), 2, "金額", "more than 0"),
        ("入金日,金融機関コード,金額\n2026-11-04,0005\n".encode(), 2, "金額", "missing"),
        ("入金日,金融機関コード,金額\n1999-12-31,0005,1\n".encode(), 2, "入金日", "2000"),
        ('入金日,金融機関コード,金額,摘要\n2026-11-04,0005,1,"a\x00b"\n'.encode(), 2, "摘要", "control"),
        (
            ("入金日,金融機関コード,金額,摘要\n2026-11-04,0005,1," + "ア" * 101 + "\n").encode(),
            2,
            "摘要",
            "101",
        ),
        (b"\x81\x20\x81\x20", None, "", "byte offset 0"),
        (b"\xef\xbb\xbf\xff", None, "", "byte offset"),
    ],
)
def test_problems_are_named(biller: Biller, data: bytes, row: int | None, column: str, needle: str) -> None:
    with pytest.raises(StatementInvalid) as caught:
        run(biller, data)
    first = caught.value.problems[0]
    assert (first.row, first.column) == (row, column)
    assert needle in first.message, first.message
    assert counts() == (0, 0, 0)


def test_size_and_row_limits(biller: Biller, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deposits, "MAX_BYTES", len(CSV.encode()) - 1)
    with pytest.raises(StatementInvalid, match="larger than"):
        run(biller, CSV.encode())
    monkeypatch.setattr(deposits, "MAX_BYTES", 10 * 1024 * 1024)
    monkeypatch.setattr(deposits, "MAX_ROWS", 2)
    with pytest.raises(StatementInvalid) as caught:
        run(biller, CSV.encode())
    assert caught.value.problems[-1].row == 4 and "more than 2" in caught.value.problems[-1].message
    assert counts() == (0, 0, 0)


def test_the_same_file_twice_is_refused(biller: Biller, other_biller: Biller) -> None:
    run(biller, CSV.encode())
    before = counts()
    with pytest.raises(Conflict) as caught:
        run(biller, CSV.encode(), name="again.csv")
    assert caught.value.code == "duplicate"
    assert counts() == before
    run(other_biller, CSV.encode())  # another tenant's own copy is its own business
    assert DepositStatement.objects.for_biller(other_biller).count() == 1


def test_a_day_and_bank_already_imported_is_refused(biller: Biller) -> None:
    run(biller, CSV.encode())
    overlap = "入金日,金融機関コード,金額\n2026-11-03,0005,10\n2026-11-05,0009,486200\n2026-11-05,0005,10\n"
    with pytest.raises(StatementInvalid) as caught:
        run(biller, overlap.encode())
    assert [(p.row, "count twice" in p.message) for p in caught.value.problems] == [(3, True)]
    assert DepositStatement.objects.count() == 1


# --- fuzzing: only the product's own answers ---------------------------------------------------------------

FUZZ = database_fuzz_settings("DEPOSIT_FUZZ_EXAMPLES", default=50)
HEADERS = ["入金日", "金融機関コード", "金額", "摘要", "value_date", "amount", "謎", ""]
CELL = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        ["", '"', "\x00", "\r\n", ",", "１２", "²", "-0", "9" * 30, "\ufeff", "0005", "2026-11-04"]
    ),
    st.sampled_from(["2026/02/29", "20261301", "1,000", "1,0000", "¥100", "0009", "5", "ｱｲｳ", "=1+1"]),
)


@st.composite
def statement_files(draw: st.DrawFn) -> bytes:
    header = draw(st.lists(st.sampled_from(HEADERS), min_size=0, max_size=6))
    if draw(st.booleans()):
        header = ["入金日", "金融機関コード", "金額", "摘要"]
    rows = [header] + [
        draw(st.lists(CELL, min_size=0, max_size=len(header) + 1)) for _ in range(draw(st.integers(0, 5)))
    ]
    text = "\n".join(",".join(row) for row in rows)
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "cp932"])), errors="replace")


def check(biller: Biller, data: bytes) -> None:
    before = counts()
    try:
        statement = run(biller, data)
    except StatementInvalid as exc:
        assert exc.problems and exc.error_count >= len(exc.problems)
        assert all(p.message and (p.row is None or p.row >= 1) for p in exc.problems)
        assert counts() == before
        return
    except Conflict:
        assert counts() == before
        return
    assert statement.row_count == Deposit.objects.filter(statement=statement).count() >= 1


@FUZZ
@given(data=st.binary(max_size=300) | mutated([CSV.encode("cp932"), CSV.encode("utf-8-sig")]))
@example(data=b"\xef\xbb\xbf")
@example(data=b'"')
def test_fuzz_bytes(biller: Biller, data: bytes) -> None:
    check(biller, data)


@FUZZ
@given(data=statement_files())
def test_fuzz_cells(biller: Biller, data: bytes) -> None:
    check(biller, data)


# --- lags ---------------------------------------------------------------------------------------


def test_lags_saved_changed_deleted_and_audited(biller: Biller, other_biller: Biller) -> None:
    admin = make_member(biller)
    assert lags_of(biller) == {}
    deposit_lag_save(actor=admin, biller=biller, bank_code="", business_days=3)
    deposit_lag_save(actor=admin, biller=biller, bank_code="0005", business_days=1)
    deposit_lag_save(actor=admin, biller=biller, bank_code="0005", business_days=4)
    deposit_lag_save(actor=admin, biller=biller, bank_code="0005", business_days=4)  # unchanged: no entry
    deposit_lag_save(actor=None, biller=other_biller, bank_code="0005", business_days=7)
    assert lags_of(biller) == {"": 3, "0005": 4} and lags_of(other_biller) == {"0005": 7}
    changes = list(AuditEntry.objects.filter(biller=biller, action="deposit_lag.save").order_by("id"))
    assert (
        len(changes) == 3
        and changes[-1].before == {"business_days": 1}
        and changes[-1].after == {"business_days": 4}
    )
    deposit_lag_delete(actor=admin, biller=biller, bank_code="0005")
    assert lags_of(biller) == {"": 3} and lags_of(other_biller) == {"0005": 7}
    assert AuditEntry.objects.filter(biller=biller, action="deposit_lag.delete").count() == 1
    with pytest.raises(NotFound):
        deposit_lag_delete(actor=admin, biller=biller, bank_code="0005")


@pytest.mark.parametrize(
    ("bank_code", "days", "field"),
    [
        ("9999", 2, "bank_code"),
        ("5", 2, "bank_code"),
        ("abcd", 2, "bank_code"),
        ("0005", 31, "business_days"),
        ("0005", -1, "business_days"),
        ("", True, "business_days"),
    ],
)
def test_lag_validation(biller: Biller, bank_code: str, days: int, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        deposit_lag_save(actor=None, biller=biller, bank_code=bank_code, business_days=days)
    assert field in caught.value.errors
    assert not DepositLag.objects.exists()


# --- pages --------------------------------------------------------------------------------------


def url(biller: Biller, tail: str = "") -> str:
    return f"/b/{biller.slug}/console/deposits/{tail}"


def upload(client: Client, biller: Biller, data: bytes, name: str = "statement.csv"):  # type: ignore[no-untyped-def]
    return client.post(
        url(biller, "import/"), {"file": SimpleUploadedFile(name, data, content_type="text/csv")}
    )


def test_import_page_success_and_errors(admin_client: Client, biller: Biller) -> None:
    response = upload(admin_client, biller, CSV.encode("cp932"), name="11月.csv")
    assert response.status_code == 302 and response["Location"].endswith("/console/deposits/")
    page = admin_client.get(response["Location"]).content.decode()
    assert "11月.csv" in page and "1,797,700" in page
    bad = CSV.replace("20261106,0001,77000", "2026-02-30,0001,77OOO").replace("2026-11-04", "2026-10-04")
    response = upload(admin_client, biller, bad.encode("cp932"))
    body = response.content.decode()
    assert response.status_code == 400
    assert body.count('<td role="cell" data-label="Row">4</td>') == 2 and "入金日" in body and "金額" in body
    assert DepositStatement.objects.count() == 1
    empty = upload(admin_client, biller, "入金日,金融機関コード,金額\n".encode())
    assert empty.status_code == 400 and "no deposits" in empty.content.decode()
    assert "file:" not in empty.content.decode()
    again = upload(admin_client, biller, CSV.encode("cp932"))
    assert again.status_code == 409 and DepositStatement.objects.count() == 1


def test_operator_cannot_import_or_set_lags(client: Client, biller: Biller) -> None:
    client.force_login(make_member(biller, role=Membership.Role.OPERATOR))
    assert client.get(url(biller)).status_code == 200
    assert upload(client, biller, CSV.encode()).status_code == 403
    assert client.post(url(biller, "lags/"), {"bank_code": "0005", "business_days": 1}).status_code == 403
    assert counts() == (0, 0, 0) and not DepositLag.objects.exists()
    page = client.get(url(biller, "lags/")).content.decode()
    assert (
        url(biller, "import/") not in client.get(url(biller)).content.decode() and 'name="delete"' not in page
    )


def test_lists_never_show_another_tenants_rows(admin_client: Client, biller: Biller) -> None:
    other = make_biller()
    run(other, CSV.replace("0001", "0010").encode(), name="theirs.csv")
    ExpectedFunds.objects.create(
        biller=other,
        bank_code="0017",
        processing_date=D(2026, 11, 2),
        value_date=D(2026, 11, 4),
        count=1,
        amount=5,
    )
    run(biller, "入金日,金融機関コード,金額\n2026-11-04,0005,1000\n".encode(), name="ours.csv")
    page = admin_client.get(url(biller)).content.decode()
    assert "ours.csv" in page and "theirs.csv" not in page
    assert "0010 りそな</td>" not in page and "0017 埼玉りそな</td>" not in page
    assert "1,234,500" not in page and 'data-label="Bank">0005 三菱ＵＦＪ</td>' in page
    theirs = DepositStatement.objects.get(biller=other)
    assert_cross_tenant_hidden(admin_client, lambda pk: url(biller, f"statements/{pk}/"), theirs.pk)
    ours = DepositStatement.objects.get(biller=biller)
    assert "ours.csv" in admin_client.get(url(biller, f"statements/{ours.pk}/")).content.decode()


def test_funds_beside_deposits(admin_client: Client, biller: Biller) -> None:
    run(
        biller,
        "入金日,金融機関コード,金額\n2026-11-04,0005,1000\n2026-11-04,0005,500\n2026-11-05,0009,70\n".encode(),
    )
    for processing, amount, state in ((D(2026, 10, 30), 1200, "short"), (D(2026, 11, 2), 400, "short")):
        ExpectedFunds.objects.create(
            biller=biller,
            bank_code="0005",
            processing_date=processing,
            value_date=D(2026, 11, 4),
            count=2,
            amount=amount,
            state=state,
        )
    page = admin_client.get(url(biller)).content.decode()
    assert "1,600円" in page and "1,500円" in page and "-100円" in page and "Shortfall" in page
    assert "Deposit without funds expected" in page  # 11/5, bank 0009
    first = admin_client.get(url(biller) + "?bank=0009").content.decode()
    assert "70円" in first and "1,500円" not in first


def test_funds_pages(admin_client: Client, biller: Biller, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciliation.selectors import deposits as selectors

    monkeypatch.setattr(selectors, "DAYS_PER_PAGE", 2)
    rows = "".join(f"2026-11-{d:02d},0005,{d}\n" for d in (2, 3, 4, 5, 6))
    run(biller, ("入金日,金融機関コード,金額\n" + rows).encode())
    seen: list[str] = []
    link = url(biller)
    for _ in range(3):
        response = admin_client.get(link)
        body = response.content.decode()
        seen += [
            f"2026-11-{d:02d}"
            for d in (6, 5, 4, 3, 2)
            if f'datetime="2026-11-{d:02d}"' in body.split("Statements imported")[0]
        ]
        if 'rel="next">' not in body.split("Statements imported")[0]:
            break
        link = url(biller) + body.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace(
            "&amp;", "&"
        )
    assert seen == ["2026-11-06", "2026-11-05", "2026-11-04", "2026-11-03", "2026-11-02"]
    assert admin_client.get(url(biller) + "?after=garbage").status_code == 200


def test_lag_page_set_and_delete_per_tenant(
    admin_client: Client, biller: Biller, other_biller: Biller
) -> None:
    theirs = deposit_lag_save(actor=None, biller=other_biller, bank_code="0005", business_days=9)
    response = admin_client.post(url(biller, "lags/"), {"bank_code": "0005", "business_days": 1})
    assert response.status_code == 302
    admin_client.post(url(biller, "lags/"), {"bank_code": "", "business_days": 3})
    page = admin_client.get(url(biller, "lags/")).content.decode()
    assert "三菱ＵＦＪ" in page and "Default: 3 business days" in page
    assert lags_of(biller) == {"0005": 1, "": 3} and lags_of(other_biller) == {"0005": 9}
    bad = admin_client.post(url(biller, "lags/"), {"bank_code": "9999", "business_days": 1})
    assert bad.status_code == 400 and "全銀" in bad.content.decode()
    other = admin_client.post(url(biller, "lags/"), {"delete": theirs.pk})
    missing = admin_client.post(url(biller, "lags/"), {"delete": 987654321})
    assert other.status_code == missing.status_code == 404
    assert lags_of(other_biller) == {"0005": 9}
    ours = DepositLag.objects.for_biller(biller).get(bank_code="0005")
    assert admin_client.post(url(biller, "lags/"), {"delete": ours.pk}).status_code == 302
    assert lags_of(biller) == {"": 3}
