"""CSV import of invoices: preview, all-or-nothing, idempotent, every bad row named."""

from __future__ import annotations

import codecs
import io

import pytest

from billing import services
from billing.models import AuditEntry, Biller, ImportJob, Invoice
from billing.numbers import check_digits_valid
from tests.factories import make_customer

pytestmark = pytest.mark.django_db

HEADER = "請求番号,外部ID,顧客コード,請求日,支払期限,料金名,品目,数量,単価,税区分,請求金額\n"
GOOD = (
    "2026-11-0001,cis-1,D-1,2026-11-01,2026-11-30,11月分電気料金,基本料金,1,1200,10,\n"
    "2026-11-0001,cis-1,D-1,2026-11-01,2026-11-30,11月分電気料金,電力量料金,300,31,10,11550\n"
    "2026-11-0002,cis-2,D-2,2026/11/01,2026/11/30,11月分電気料金,新聞,1,4400,8%,4752\n"
)


@pytest.fixture
def customers(biller: Biller) -> None:
    make_customer(biller, code="D-1", email="d1@example.jp")
    make_customer(biller, code="D-2")


def run(
    biller: Biller,
    text: str | bytes,
    *,
    encoding: str = "",
    preview: bool = False,
    publish: bool = True,
    **kw,
) -> ImportJob:  # type: ignore[no-untyped-def]
    raw = text.encode() if isinstance(text, str) else text
    job = services.import_job_create(
        actor=None,
        biller=biller,
        upload=io.BytesIO(raw),
        file_name="x.csv",
        encoding=encoding,
        publish=publish,
        run_now=True,
    )
    if preview or job.status != ImportJob.Status.SUCCEEDED:
        return job
    return services.import_job_confirm(actor=None, biller=biller, preview_id=job.pk, run_now=True)


def test_preview_writes_nothing_then_import_publishes(biller: Biller, customers: None) -> None:
    preview = run(biller, HEADER + GOOD, preview=True)
    assert preview.status == "succeeded" and preview.invoices_new == 2 and preview.total_amount == 16302
    assert not Invoice.objects.exists()
    job = services.import_job_confirm(actor=None, biller=biller, preview_id=preview.pk, run_now=True)
    assert job.status == "succeeded" and job.rows == 3
    first = Invoice.objects.get(number="2026-11-0001")
    assert first.status == "published" and first.total == 11550 and len(first.lines) == 2
    assert check_digits_valid(first.customer_number) and len(first.confirmation_number) == 6
    second = Invoice.objects.get(number="2026-11-0002")
    assert (second.subtotal_8, second.tax_8) == (4400, 352)
    assert AuditEntry.objects.filter(action="invoice.import", biller=biller).count() == 1


def test_the_same_file_twice_changes_nothing_and_says_so(biller: Biller, customers: None) -> None:
    assert run(biller, HEADER + GOOD).status == "succeeded"
    numbers = {i.number: i.customer_number for i in Invoice.objects.select_related("biller")}
    again = run(biller, HEADER + GOOD)
    assert again.status == "nothing" and again.invoices_new == 0 and again.invoices_unchanged == 2
    assert "nothing to import" in again.message
    assert {i.number: i.customer_number for i in Invoice.objects.select_related("biller")} == numbers


def test_cp932_file_with_one_bad_row_names_exactly_that_row(biller: Biller, customers: None) -> None:
    bad = GOOD.replace("新聞,1,4400,8%", "新聞,1,4400,5%")
    job = run(biller, (HEADER + bad).encode("cp932"))
    assert job.encoding == "cp932" and job.status == "failed"
    assert job.errors == [
        {"row": 4, "column": "tax_category", "message": "unknown tax category '5%': use 10, 8 or exempt"}
    ]
    assert not Invoice.objects.exists()


def test_utf8_with_bom_and_explicit_encoding(biller: Biller, customers: None) -> None:
    job = run(biller, codecs.BOM_UTF8 + (HEADER + GOOD).encode())
    assert job.status == "succeeded" and job.encoding == "utf-8-sig"
    assert Invoice.objects.count() == 2


def test_wrong_encoding_names_the_byte_offset(biller: Biller, customers: None) -> None:
    data = (HEADER + GOOD).encode("cp932")
    job = run(biller, data, encoding="utf-8")
    assert job.status == "failed" and "byte offset" in job.message


@pytest.mark.parametrize(
    ("rows", "row", "column", "fragment"),
    [
        (
            "2026-11-0003,c3,D-9,2026-11-01,2026-11-30,料金,x,1,100,10,\n",
            2,
            "customer_code",
            "unknown customer",
        ),
        ("2026-11-0003,c3,D-1,2026-13-01,2026-11-30,料金,x,1,100,10,\n", 2, "issue_date", "bad date"),
        (
            "2026-11-0003,c3,D-1,2026-11-01,2026-10-30,料金,x,1,100,10,\n",
            2,
            "due_date",
            "before the issue date",
        ),
        ("2026-11-0003,c3,D-1,2026-11-01,2026-11-30,料金,x,1,100,10,999\n", 2, "total", "total mismatch"),
        ("2026-11-0003,c3,D-1,2026-11-01,2026-11-30,料金,x,1,1a0,10,\n", 2, "unit_price", "whole number"),
        ("2026-11-0003,c3,D-1,2026-11-01,2026-11-30,料金,x,0,100,10,\n", 2, "quantity", "whole number"),
        ("2026-11-0003,c3,D-1,2026-11-01,2026-11-30,料金🙂,x,1,100,10,\n", 2, "description", "cp932"),
        ("2026-11-0003,c3,D-1,2026-11-01,2026-11-30," + "あ" * 21 + ",x,1,100,10,\n", 2, "description", "20"),
        ("2026-11-0003,c3,D-1,2026-11-01,2026-11-30,料金,x,1,100\n", 2, "", "fields"),
        (
            "2026-11-0003,c3,D-1,2026-11-01,2026-11-30,料金,x,1,100,10,\n"
            "2026-11-0003,c3,D-2,2026-11-01,2026-11-30,料金,y,1,100,10,\n",
            3,
            "customer_code",
            "same invoice",
        ),
        (
            "2026-11-0003,c3,D-1,2026-11-01,2026-11-30,料金,x,1,100,10,\n"
            "2026-11-0004,c4,D-1,2026-11-01,2026-11-30,料金,x,1,100,10,\n"
            "2026-11-0003,c3,D-1,2026-11-01,2026-11-30,料金,y,1,100,10,\n",
            4,
            "invoice_number",
            "appears again",
        ),
    ],
)
def test_bad_rows_are_named_and_nothing_is_written(
    biller: Biller, customers: None, rows: str, row: int, column: str, fragment: str
) -> None:
    job = run(biller, HEADER + rows)
    assert job.status == "failed"
    assert job.errors[0]["row"] == row and job.errors[0]["column"] == column, job.errors
    assert fragment in job.errors[0]["message"]
    assert not Invoice.objects.exists()


def test_every_error_is_reported_not_just_the_first(biller: Biller, customers: None) -> None:
    rows = "".join(f"N-{i},e{i},D-9,2026-11-01,2026-11-30,料金,x,1,100,10,\n" for i in range(1500))
    job = run(biller, HEADER + rows)
    assert job.error_count == 1500 and len(job.errors) == 1000  # all counted, the first 1,000 kept


def test_duplicate_number_and_changed_external_content(biller: Biller, customers: None) -> None:
    assert run(biller, HEADER + GOOD).status == "succeeded"
    changed = GOOD.replace("電力量料金,300,31,10,11550", "電力量料金,301,31,10,11584")
    job = run(biller, HEADER + changed)
    assert job.status == "failed"
    assert job.errors[0]["column"] == "external_id" and "other content" in job.errors[0]["message"]
    renumbered = GOOD.replace("cis-1", "cis-9")
    job = run(biller, HEADER + renumbered)
    assert (
        job.errors[0]["column"] == "invoice_number" and "duplicate invoice number" in job.errors[0]["message"]
    )
    assert Invoice.objects.count() == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        (HEADER, "no invoice rows"),
        ("請求番号,顧客コード\nA,B\n", "Required columns missing"),
        ("請求番号,謎の列\n", "Unknown column"),
    ],
)
def test_unreadable_files_say_why(biller: Biller, text: str, fragment: str) -> None:
    from billing.errors import ValidationFailed

    if not text:
        with pytest.raises(ValidationFailed, match="empty"):
            run(biller, text)
        return
    job = run(biller, text)
    assert job.status == "failed" and fragment in job.message
    assert not Invoice.objects.exists()


def test_draft_import_assigns_no_numbers(biller: Biller, customers: None) -> None:
    job = run(biller, HEADER + GOOD, publish=False)
    assert job.status == "succeeded"
    assert {(i.status, i.customer_number) for i in Invoice.objects.select_related("biller")} == {
        ("draft", None)
    }


def test_import_of_another_tenants_customer_code_is_unknown(biller: Biller, customers: None) -> None:
    from tests.factories import make_biller

    other = make_biller()
    make_customer(other, code="X-1")
    job = run(biller, HEADER + "A-1,a1,X-1,2026-11-01,2026-11-30,料金,x,1,100,10,\n")
    assert job.errors[0]["column"] == "customer_code"
    assert not Invoice.objects.exists()


def test_publication_emails_go_out_after_the_import(  # type: ignore[no-untyped-def]
    biller: Biller, customers: None, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        run(biller, HEADER + GOOD)
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        Invoice.objects.values_list("recipient_email", flat=True)
    )
    assert "d1@example.jp" in {m.to[0] for m in mailoutbox}
    assert Invoice.objects.filter(notified_at__isnull=True).count() == 0


def test_many_copy_chunks_and_confirmation_blocks(biller: Biller, customers: None, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Rows go out in COPY chunks and confirmation numbers come in blocks: boundaries lose nothing."""
    from billing import imports
    from billing.numbers import NumberIssuer

    monkeypatch.setattr(imports.limits, "CONFIRMATION_BLOCK", 3)
    monkeypatch.setattr(imports.limits, "COPY_CHUNK", 200)
    rows = "".join(f"M-{i},m{i},D-1,2026-11-01,2026-11-30,料金,x,1,{100 + i},10,\n" for i in range(11))
    job = run(biller, HEADER + rows)
    assert job.status == "succeeded" and job.invoices_new == 11
    issuer = NumberIssuer(biller.number_key)
    invoices = list(Invoice.objects.filter(biller=biller).select_related("biller"))
    assert len(invoices) == 11 and all(len(inv.confirmation_number) == 6 for inv in invoices)
    assert all(inv.customer_number == issuer.customer_number(inv.pk) for inv in invoices)
    assert sorted(inv.total for inv in invoices) == [(100 + i) * 110 // 100 for i in range(11)]


def test_overlapping_file_is_decided_in_batches_against_what_is_stored(
    biller: Biller,
    customers: None,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """Stored invoices are looked up in batches: across batch edges, new ones go in once, unchanged
    ones are counted, conflicts are named by row, and one conflict stores nothing of the file."""
    from billing import imports

    monkeypatch.setattr(imports.limits, "LOOKUP_BATCH", 2)

    def line(i: int, price: int = 100) -> str:
        return f"O-{i},o{i},D-1,2026-11-01,2026-11-30,料金,x,1,{price},10,\n"

    assert run(biller, HEADER + "".join(line(i) for i in range(5))).invoices_new == 5
    grown = HEADER + "".join(line(i) for i in range(9))
    job = run(biller, grown)
    assert (job.status, job.invoices_new, job.invoices_unchanged) == ("succeeded", 4, 5)
    assert job.total_amount == 4 * 110
    assert Invoice.objects.filter(biller=biller).count() == 9

    conflicting = HEADER + "".join(line(i, 101 if i in (2, 6) else 100) for i in range(12))
    job = run(biller, conflicting)
    assert job.status == "failed"
    assert [(e["row"], e["column"]) for e in job.errors] == [(4, "external_id"), (8, "external_id")]
    assert Invoice.objects.filter(biller=biller).count() == 9  # O-9..O-11 were not stored either


def test_new_invoices_after_stored_ones_with_the_copy_open(
    biller: Biller, customers: None, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A file that adds invoices to a biller that has some: the rows of one lookup batch go out through
    COPY before the next batch is looked up. On PostgreSQL the COPY is ended before each lookup — a
    lookup on the connection of an open COPY waited for ever (the import hung)."""
    from billing import imports

    monkeypatch.setattr(imports.limits, "LOOKUP_BATCH", 3)
    monkeypatch.setattr(imports.limits, "COPY_CHUNK", 200)  # a COPY is open after a row or two

    def line(i: int) -> str:
        return f"P-{i},p{i},D-1,2026-11-01,2026-11-30,料金,x,1,{100 + i},10,\n"

    assert run(biller, HEADER + line(0)).invoices_new == 1
    job = run(biller, HEADER + "".join(line(i) for i in range(20)))
    assert (job.status, job.invoices_new, job.invoices_unchanged) == ("succeeded", 19, 1)
    assert Invoice.objects.filter(biller=biller).count() == 20
