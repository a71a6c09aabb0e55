"""The invoice CSV import, fuzzed on PostgreSQL: arbitrary bytes and well-formed files with mutated rows
(UTF-8, UTF-8 with BOM, cp932; quotes, NUL, newlines in cells, huge fields, wrong column counts)
produce only the import's own answers — ImportFailed (unreadable file: row, column, byte offset in the
message) or a result whose every error names a row and a column — never another exception, and a file
with any error writes nothing (rows of every table the import touches are counted before and after)."""

from __future__ import annotations

import io

import pytest
from django.db import connection
from hypothesis import example, given
from hypothesis import strategies as st

from billing import imports, services
from billing.errors import ValidationFailed
from billing.models import Biller, ImportJob
from tests.factories import make_customer
from tests.payeasy.fuzzing import database_fuzz_settings

pytestmark = pytest.mark.django_db

FUZZ = database_fuzz_settings("IMPORT_FUZZ_EXAMPLES")
HEADER = [
    "請求番号",
    "外部ID",
    "顧客コード",
    "請求日",
    "支払期限",
    "料金名",
    "品目",
    "数量",
    "単価",
    "税区分",
    "請求金額",
]
COLUMNS = {"", *imports.COLUMNS, *(a for aliases in imports.COLUMNS.values() for a in aliases)}
TABLES = ["billing_invoice", "billing_customer", "billing_auditentry", "billing_importjob", "payeasy_notice"]


def good_rows(n: int) -> list[list[str]]:
    return [
        [
            f"F-{i}",
            f"f{i}",
            "D-1",
            "2026-11-01",
            "2026-11-30",
            "11月分電気料金",
            "基本料金",
            "1",
            "1200",
            "10",
            "",
        ]
        for i in range(n)
    ]


CELL = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", '"', '""', "\x00", "a\x00b", "\r\n", "\n", ",", "１２", "²", "-0", "9" * 30, "\ufeff"]
    ),
    st.sampled_from(["10", "8%", "exempt", "2026-02-30", "2026/11/01", "税込", "1,000", "¥100", "円"]),
    st.builds(lambda ch, n: ch * n, st.sampled_from(["x", "あ", "\\"]), st.integers(100, 200_000)),
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A header and rows as a spreadsheet writes them, then mutated cell by cell, row by row, byte by byte."""
    rows = [list(HEADER), *good_rows(draw(st.integers(0, 6)))]
    for _ in range(draw(st.integers(0, 6))):
        if len(rows) < 2:
            break
        i = draw(st.integers(0, len(rows) - 1))
        op = draw(st.sampled_from(["cell", "cell", "cell", "drop", "extra", "repeat", "header"]))
        if op == "cell":
            rows[i][draw(st.integers(0, len(rows[i]) - 1))] = draw(CELL)
        elif op == "drop" and rows[i]:
            rows[i].pop()
        elif op == "extra":
            rows[i].append(draw(CELL))
        elif op == "repeat":
            rows.append(list(rows[i]))
        else:
            rows[0][draw(st.integers(0, len(rows[0]) - 1))] = draw(
                st.sampled_from(["", "請求番号", "謎", "total"])
            )
    quote = draw(st.sampled_from(["minimal", "all", "broken"]))

    def cell(text: str) -> str:
        if quote == "all" or (quote == "minimal" and any(c in text for c in ',"\r\n')):
            return '"' + text.replace('"', '""') + '"'
        return text  # broken: quotes and commas as they come

    newline = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    text = newline.join(",".join(cell(c) for c in row) for row in rows) + newline
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp932"]))
    data = bytearray(text.encode(encoding, errors="replace"))
    for _ in range(draw(st.integers(0, 2))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(
                st.sampled_from([0x00, 0x22, 0x0A, 0x81, 0xEF, 0xFF])
            )
    return bytes(data)


def table_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        out = {}
        for table in TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            out[table] = cursor.fetchone()[0]
        return out


@pytest.fixture
def tenant(biller: Biller) -> Biller:
    make_customer(biller, code="D-1")
    return biller


def check_run(biller: Biller, data: bytes, *, write: bool, encoding: str = "") -> None:
    before = table_counts()
    try:
        result = imports.run(io.BytesIO(data), biller=biller, write=write, encoding=encoding)
    except imports.ImportFailed as exc:
        assert exc.message and (exc.row is None or exc.row >= 1) and isinstance(exc.column, str)
        assert table_counts() == before
        return
    assert result.error_count >= len(result.errors) and result.ok == (result.error_count == 0)
    for error in result.errors:
        assert error.row >= 1 and error.column in COLUMNS and error.message, error
    after = table_counts()
    if not (write and result.ok):
        assert after == before, (result.errors[:3], before, after)
    else:
        assert after == {**before, "billing_invoice": before["billing_invoice"] + result.invoices_new}


def example_file(*cells: tuple[int, str]) -> bytes:
    row = good_rows(1)[0]
    for i, text in cells:
        row[i] = text
    return (",".join(HEADER) + "\n" + ",".join(row) + "\n").encode()


@FUZZ
@given(data=csv_files(), write=st.booleans(), encoding=st.sampled_from(["", "", "utf-8", "cp932"]))
@example(data=example_file((5, "料\x00金")), write=True, encoding="")  # NUL in a stored text: a row error
@example(data=example_file((1, "e\x001")), write=True, encoding="")
@example(data=example_file((6, "x" * 200_000)), write=True, encoding="")
def test_mutated_csv_files_get_only_the_imports_answers(
    postgres: None, tenant: Biller, data: bytes, write: bool, encoding: str
) -> None:
    check_run(tenant, data, write=write, encoding=encoding)


@FUZZ
@given(data=st.binary(max_size=2000) | st.builds(lambda b: "請求番号,".encode() + b, st.binary(max_size=500)))
def test_arbitrary_bytes_get_only_the_imports_answers(postgres: None, tenant: Biller, data: bytes) -> None:
    check_run(tenant, data, write=True)


@FUZZ
@given(data=csv_files())
def test_the_import_job_fails_cleanly_and_writes_nothing_on_error(
    postgres: None, tenant: Biller, data: bytes
) -> None:
    """The path of the console's upload and the API: a job that records what was wrong."""
    before = table_counts()
    try:
        job = services.import_job_create(
            actor=None,
            biller=tenant,
            upload=io.BytesIO(data),
            file_name="fuzz.csv",
            run_now=True,
            mode=ImportJob.Mode.IMPORT,
        )
    except ValidationFailed:  # an empty upload: refused before any job
        assert not data
        return
    after = table_counts()
    assert job.status in {ImportJob.Status.SUCCEEDED, ImportJob.Status.FAILED, ImportJob.Status.NOTHING}
    if job.status == ImportJob.Status.FAILED:
        assert job.message and job.errors and job.error_count >= 1
        assert all(set(e) == {"row", "column", "message"} for e in job.errors)
        assert after["billing_invoice"] == before["billing_invoice"], job.errors[:3]
    assert after["payeasy_notice"] == before["payeasy_notice"]
