"""Invoice numbers and external ids that appear twice in one CSV file: found wherever they are (in the
same COPY chunk, across chunks, beside stored invoices), named by row, nothing written, and left out of
the counts. On PostgreSQL they are found in SQL (a staging table on a connection of its own), not in a
set that grows with the file."""

from __future__ import annotations

import io

import pytest

from billing import services
from billing.models import Biller, ImportJob, Invoice
from tests.factories import make_customer

pytestmark = pytest.mark.django_db

HEADER = "請求番号,外部ID,顧客コード,請求日,支払期限,料金名,品目,数量,単価,税区分\n"


def line(number: str, external: str, price: int = 100) -> str:
    return f"{number},{external},D-1,2026-11-01,2026-11-30,料金,x,1,{price},10\n"


def import_now(biller: Biller, text: str, *, mode: str = ImportJob.Mode.IMPORT) -> ImportJob:
    return services.import_job_create(
        actor=None,
        biller=biller,
        upload=io.BytesIO(text.encode()),
        file_name="r.csv",
        run_now=True,
        mode=mode,
    )


@pytest.fixture
def customer(biller: Biller) -> None:
    make_customer(biller, code="D-1")


@pytest.mark.parametrize("chunk", [200, 1 << 20])  # the repeat in a later COPY chunk, or in the same one
@pytest.mark.parametrize("stored", [False, True])  # a biller with invoices (batched lookups) or none
def test_repeats_in_an_import_are_named_and_nothing_is_written(
    biller: Biller, customer: None, monkeypatch: pytest.MonkeyPatch, chunk: int, stored: bool
) -> None:
    from billing import imports

    monkeypatch.setattr(imports.limits, "COPY_CHUNK", chunk)
    monkeypatch.setattr(imports.limits, "LOOKUP_BATCH", 3)
    if stored:
        assert import_now(biller, HEADER + line("S-1", "s1")).status == "succeeded"
    before = Invoice.objects.count()
    rows = [line(f"R-{i}", f"r{i}", 100 + i) for i in range(30)]
    rows[23] = line("R-5", "r-other")  # row 25: R-5 again, not next to its first row
    rows[26] = line("R-new", "r7")  # row 28: external id r7 again
    job = import_now(biller, HEADER + "".join(rows))
    assert job.status == "failed", job.message
    assert [(e["row"], e["column"]) for e in job.errors] == [(25, "invoice_number"), (28, "external_id")]
    assert "R-5 appears again" in job.errors[0]["message"] and "r7" in job.errors[1]["message"]
    assert Invoice.objects.count() == before


def test_a_preview_counts_a_repeat_once(biller: Biller, customer: None) -> None:
    text = HEADER + line("R-1", "r1", 100) + line("R-2", "r2", 200) + line("R-1", "r1", 100)
    job = import_now(biller, text, mode=ImportJob.Mode.PREVIEW)
    assert job.status == "failed" and job.error_count == 1
    assert (job.invoices_new, job.total_amount) == (2, 330)
    assert not Invoice.objects.exists()


def test_numbers_with_backslashes_and_nul_are_compared_exactly(biller: Biller, customer: None) -> None:
    text = HEADER + line("A\\0", "x1") + line("A\x00", "x2") + line("A\\\\", "x3") + line("A\\0", "x4")
    job = import_now(biller, text, mode=ImportJob.Mode.PREVIEW)
    repeats = [e for e in job.errors if "appears again" in e["message"]]
    assert [(e["row"], e["message"].split()[1]) for e in repeats] == [(5, "A\\0")]


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("N-1,e\x001,D-1,2026-11-01,2026-11-30,料金,x,1,100,10\n", "external_id"),
        ("N-1,e1,D-1,2026-11-01,2026-11-30,料\x00金,x,1,100,10\n", "description"),
        ("N-1,e1,D-1,2026-11-01,2026-11-30,料金,x\x00y,1,100,10\n", "item"),
    ],
)
def test_a_nul_in_a_stored_text_is_the_rows_error_not_a_failed_copy(
    biller: Biller, customer: None, row: str, column: str
) -> None:
    job = import_now(biller, HEADER + row)
    assert job.status == "failed"
    assert [(e["row"], e["column"], e["message"]) for e in job.errors] == [
        (2, column, "must not contain NUL characters")
    ]
    assert not Invoice.objects.exists()
