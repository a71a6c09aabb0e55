"""CSV import check: every problem of a row named at once, columns named as people read them (the Japanese
header in Japanese, a readable name in English) on the page and in the downloaded list, and badges that
say what a job's state really is (a clean preview has imported nothing: never 完了)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext, pgettext

from billing import imports
from billing.console_imports import job_badge
from billing.models import Biller, ImportJob, Invoice
from tests.factories import make_customer

pytestmark = pytest.mark.django_db

HEADER = "請求番号,外部ID,顧客コード,請求日,支払期限,料金名,品目,数量,単価,税区分,請求金額\n"
GOOD = (
    "2026-11-0001,cis-1,D-1,2026-11-01,2026-11-30,11月分電気料金,基本料金,1,1200,10,\n"
    "2026-11-0001,cis-1,D-1,2026-11-01,2026-11-30,11月分電気料金,電力量料金,300,31,10,11550\n"
    "2026-11-0002,cis-2,D-1,2026-11-01,2026-11-30,11月分電気料金,基本料金,1,1200,10,1320\n"
)
# row 5: a bad date, a bad quantity and a total that is no amount, all in the same row
ROW_5 = "2026-11-0003,cis-3,D-1,2026-11-31,2026-12-10,11月分電気料金,基本料金,x2,1200,10,13２O\n"


@pytest.fixture(autouse=True)
def _run_queued_jobs(django_capture_on_commit_callbacks, monkeypatch):  # type: ignore[no-untyped-def]
    """Import jobs are queued after commit; run them as each request finishes."""
    original = Client.request

    def request(self, **kwargs):  # type: ignore[no-untyped-def]
        with django_capture_on_commit_callbacks(execute=True):
            return original(self, **kwargs)

    monkeypatch.setattr(Client, "request", request)


@pytest.fixture
def customer(biller: Biller) -> None:
    make_customer(biller, code="D-1")


def check(biller: Biller, text: str) -> imports.ImportResult:
    return imports.run(io.BytesIO(text.encode()), biller=biller, write=False)


def upload(client: Client, biller: Biller, text: str, language: str = "ja"):  # type: ignore[no-untyped-def]
    file = SimpleUploadedFile("invoices.csv", text.encode("cp932"), content_type="text/csv")
    return client.post(
        f"/b/{biller.slug}/console/imports/",
        {"file": file, "publish": "on"},
        HTTP_ACCEPT_LANGUAGE=language,
    )


def problem_cells(page: str) -> list[tuple[str, str]]:
    """(row, column) of every line of the problems table."""
    return re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>", page)


# --- every problem of a row --------------------------------------------------------------------------


def test_a_row_with_three_problems_names_all_three(biller: Biller, customer: None) -> None:
    result = check(biller, HEADER + GOOD + ROW_5)
    assert [(e.row, e.column) for e in result.errors] == [
        (5, "issue_date"),
        (5, "quantity"),
        (5, "total"),
    ], result.errors
    assert "2026-11-31" in result.errors[0].message and "x2" in result.errors[1].message
    assert "13２O" in result.errors[2].message
    assert result.invoices_new == 2  # the good invoices are still counted, not lost


def test_the_invoice_columns_are_checked_even_when_a_line_is_wrong(biller: Biller, customer: None) -> None:
    row = "N-1,e1,D-9,2026/02/30,2026-03-31,料金🙂,x,1,1a0,10,\n"
    result = check(biller, HEADER + row)
    assert [(e.row, e.column) for e in result.errors] == [
        (2, "customer_code"),
        (2, "issue_date"),
        (2, "description"),
        (2, "unit_price"),
    ], result.errors


def test_a_total_mismatch_is_named_beside_a_bad_date(biller: Biller, customer: None) -> None:
    row = "N-1,e1,D-9,2026-13-01,2026-11-30,料金,x,1,100,10,999\n"
    result = check(biller, HEADER + row)
    assert [(e.row, e.column) for e in result.errors] == [
        (2, "customer_code"),
        (2, "issue_date"),
        (2, "total"),
    ], result.errors
    assert "total mismatch" in result.errors[2].message and "110" in result.errors[2].message


def test_a_later_line_of_an_invoice_names_all_its_problems(biller: Biller, customer: None) -> None:
    rows = (
        "N-1,e1,D-1,2026-11-01,2026-11-30,料金,x,1,100,10,110\n"
        "N-1,e1,D-1,2026-11-01,2026-12-31,料金,y,1,1e5,10,120\n"
    )
    result = check(biller, HEADER + rows)
    assert [(e.row, e.column) for e in result.errors] == [
        (3, "due_date"),
        (3, "unit_price"),
        (3, "total"),
    ], result.errors
    assert "differs from row 2" in result.errors[0].message
    assert "earlier line" in result.errors[2].message


def test_a_row_without_a_number_has_its_other_cells_checked(biller: Biller, customer: None) -> None:
    row = ",e1,D-1,2026-11-01,yesterday,料金,x,0,100,10,\n"
    result = check(biller, HEADER + row)
    assert [(e.row, e.column) for e in result.errors] == [
        (2, "invoice_number"),
        (2, "due_date"),
        (2, "quantity"),
    ], result.errors


def test_a_clean_file_still_imports(biller: Biller, customer: None) -> None:
    result = imports.run(io.BytesIO((HEADER + GOOD).encode()), biller=biller, write=True)
    assert result.ok and result.invoices_new == 2 and result.total_amount == 11550 + 1320
    assert Invoice.objects.filter(biller=biller).count() == 2


# --- columns as people read them -----------------------------------------------------------------------


def test_the_page_names_the_columns_by_their_japanese_headers(
    admin_client: Client, biller: Biller, customer: None
) -> None:
    response = upload(admin_client, biller, HEADER + GOOD + ROW_5)
    page = admin_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert problem_cells(page) == [("5", "請求日"), ("5", "数量"), ("5", "請求金額")]
    for canonical in ("issue_date", "quantity", "<code>total"):
        assert canonical not in page
    job = ImportJob.objects.get(biller=biller)
    assert [e["column"] for e in job.errors] == ["issue_date", "quantity", "total"]  # stored canonical
    download = admin_client.get(
        f"/b/{biller.slug}/console/imports/{job.pk}/errors.csv", HTTP_ACCEPT_LANGUAGE="ja"
    )
    lines = download.content.decode("utf-8-sig").splitlines()
    assert [line.split(",")[:2] for line in lines[1:]] == [["5", "請求日"], ["5", "数量"], ["5", "請求金額"]]


def test_the_page_names_the_columns_in_english_under_english(
    admin_client: Client, biller: Biller, customer: None
) -> None:
    client = admin_client
    response = upload(client, biller, HEADER + GOOD + ROW_5, language="en")
    page = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert problem_cells(page) == [("5", "Issue date"), ("5", "Quantity"), ("5", "Invoice total")]
    assert "請求日" not in page and "issue_date" not in page
    job = ImportJob.objects.get(biller=biller)
    download = client.get(f"/b/{biller.slug}/console/imports/{job.pk}/errors.csv", HTTP_ACCEPT_LANGUAGE="en")
    text = download.content.decode("utf-8-sig")
    assert text.splitlines()[0] == "Row,Column,Problem"
    assert "5,Issue date," in text and "5,Quantity," in text and "5,Invoice total," in text


def test_one_mapping_for_every_column() -> None:
    for name, spellings in imports.COLUMNS.items():
        with translation.override("ja"):
            assert imports.column_label(name) == spellings[0]
        with translation.override("en"):
            english = imports.column_label(name)
        assert english and english != name and "_" not in english and english.isascii()
    assert imports.column_label("") == "" and imports.column_label("謎の列") == "謎の列"


def test_a_header_problem_keeps_the_header_as_the_file_spelled_it(
    admin_client: Client, biller: Biller
) -> None:
    response = upload(admin_client, biller, "請求番号,謎の列\nA,B\n")
    page = admin_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert problem_cells(page) == [("1", "謎の列")]


# --- badges ------------------------------------------------------------------------------------------------


def test_a_clean_preview_is_not_done(admin_client: Client, biller: Biller, customer: None) -> None:
    response = upload(admin_client, biller, HEADER + GOOD)
    preview = ImportJob.objects.get(biller=biller)
    assert preview.status == ImportJob.Status.SUCCEEDED and preview.mode == ImportJob.Mode.PREVIEW
    base = f"/b/{biller.slug}/console/imports/"
    with translation.override("ja"):
        ready, done = pgettext("import status", "Checked: ready to import"), gettext("Succeeded")
    assert done == "完了"
    for url in (response["Location"], base):
        page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="ja")
        html = page.content.decode()
        assert '<html lang="ja">' in html and "事前チェック" in html  # the page speaks Japanese
        assert "完了" not in html
        assert f'<span class="status status-published import-ready">{ready}</span>' in html
    english = admin_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Checked: ready to import" in english and "Succeeded" not in english


def test_after_the_import_the_list_says_imported(
    admin_client: Client, biller: Biller, customer: None
) -> None:
    upload(admin_client, biller, HEADER + GOOD)
    preview = ImportJob.objects.get(biller=biller)
    admin_client.post(f"/b/{biller.slug}/console/imports/{preview.pk}/import/")
    assert ImportJob.objects.get(preview_of=preview).status == ImportJob.Status.SUCCEEDED
    html = admin_client.get(f"/b/{biller.slug}/console/imports/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    badges = re.findall(r'<span class="status status-([a-z]+) import-([a-z-]+)">([^<]+)</span>', html)
    assert badges == [
        ("succeeded", "imported", "Imported"),
        ("nothing", "checked-imported", "Checked: import started"),
    ]
    assert "Succeeded" not in html


def test_an_erroneous_preview_says_errors(admin_client: Client, biller: Biller, customer: None) -> None:
    response = upload(admin_client, biller, HEADER + ROW_5, language="en")
    html = admin_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<span class="status status-failed import-errors">Errors found</span>' in html
    assert "Failed" not in html


@pytest.mark.parametrize("mode", list(ImportJob.Mode))
@pytest.mark.parametrize("status", list(ImportJob.Status))
@pytest.mark.parametrize("imported", [False, True])
def test_no_badge_calls_a_preview_done_or_imported(mode: str, status: str, imported: bool) -> None:
    job = ImportJob(mode=mode, status=status)
    with translation.override("en"):
        badge = job_badge(job, imported=imported)
        assert badge.label not in {"Succeeded", "Failed", "Waiting", "Running"}
        if mode == ImportJob.Mode.PREVIEW:
            assert badge.state != "imported" and "Imported" not in badge.label
        if status == ImportJob.Status.SUCCEEDED and mode == ImportJob.Mode.PREVIEW and not imported:
            assert badge.state == "ready"
    with translation.override("ja"):
        assert "完了" not in job_badge(job, imported=imported).label


# --- narrow screens -------------------------------------------------------------------------------------


def test_the_problems_table_scrolls_in_a_labelled_region(
    admin_client: Client, biller: Biller, customer: None
) -> None:
    response = upload(admin_client, biller, HEADER + ROW_5)
    html = admin_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    region = re.search(
        r'<div class="table-scroll" role="region" aria-labelledby="([^"]+)" tabindex="0">\s*<table', html
    )
    assert region and f'id="{region[1]}"' in html
    assert " style=" not in html and "<script>" not in html


def test_the_import_list_becomes_cards_at_phone_width(
    admin_client: Client, biller: Biller, customer: None
) -> None:
    """lists.css turns a table.list into cards at narrow widths: each cell names its column."""
    upload(admin_client, biller, HEADER + GOOD)
    html = admin_client.get(f"/b/{biller.slug}/console/imports/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert re.search(r'<table class="imports list" role="table" aria-labelledby="recent-imports">', html)
    assert 'id="recent-imports"' in html
    labels = re.findall(r'<td role="cell"[^>]* data-label="([^"]+)"', html)
    assert labels == ["File", "Step", "Status", "Invoices", "Errors", "When"]
    assert " style=" not in html
