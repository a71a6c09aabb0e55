"""The documented sample (docs/samples/invoices-sample.csv, docs/csv-import.md "Sample") imports cleanly on a
fresh demo: `manage.py seed_demo`, then the console's CSV import (preview, then import) as 東都電力."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from django.core.management import call_command

from billing import services
from billing.models import Biller, Customer, ImportJob, Invoice, User, console_login
from payeasy.demo import DEMO_BILLERS, DEMO_CANCELLED, DEMO_INVOICES

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "samples" / "invoices-sample.csv"
TOTO = "58191001"


def _sample_rows() -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_sample_names_demo_customers_and_numbers_the_demo_does_not_use() -> None:
    rows = _sample_rows()
    toto = next(d for d in DEMO_BILLERS if d.data["biller_code"] == TOTO)
    demo_customers = {c["code"] for c in toto.customers}
    demo_numbers = {spec["number"] for spec in DEMO_INVOICES[TOTO]} | {DEMO_CANCELLED[TOTO]["number"]}
    assert {r["顧客コード"] for r in rows} == {"D-000101", "D-000102", "C-900001"} <= demo_customers
    assert not {r["請求番号"] for r in rows} & demo_numbers
    assert len({r["請求番号"] for r in rows}) == 3  # three invoices, as docs/csv-import.md says


def test_sample_imports_cleanly_after_seed_demo() -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115 - the command's banner
    biller = Biller.objects.get(biller_code=TOTO)
    admin = User.objects.get(login=console_login("admin@toto-denryoku.example"))
    numbers = sorted({r["請求番号"] for r in _sample_rows()})
    assert not Invoice.objects.filter(biller=biller, number__in=numbers).exists()
    before = Invoice.objects.filter(biller=biller).count()

    with SAMPLE.open("rb") as upload:  # Console → CSV import: upload (preview) …
        preview = services.import_job_create(
            actor=admin, biller=biller, upload=upload, file_name=SAMPLE.name, run_now=True
        )
    assert preview.errors == [] and preview.error_count == 0, preview.errors
    assert (preview.status, preview.rows, preview.invoices_new) == (ImportJob.Status.SUCCEEDED, 8, 3)
    # … then import
    job = services.import_job_confirm(actor=admin, biller=biller, preview_id=preview.pk, run_now=True)
    assert job.errors == [] and job.status == ImportJob.Status.SUCCEEDED, job.errors
    assert (job.rows, job.invoices_new, job.invoices_unchanged) == (8, 3, 0)

    imported = {i.number: i for i in Invoice.objects.filter(biller=biller, number__in=numbers)}
    assert sorted(imported) == numbers
    assert Invoice.objects.filter(biller=biller).count() == before + 3
    for invoice in imported.values():
        assert invoice.status == Invoice.Status.PUBLISHED and invoice.confirmation_number
        assert Customer.objects.filter(biller=biller, pk=invoice.customer_id).exists()
    assert preview.total_amount == job.total_amount == sum(i.total for i in imported.values())

    # importing the same file again changes nothing
    with SAMPLE.open("rb") as upload:
        again = services.import_job_create(
            actor=admin, biller=biller, upload=upload, file_name=SAMPLE.name, run_now=True
        )
    assert (again.status, again.invoices_new, again.invoices_unchanged) == (ImportJob.Status.NOTHING, 0, 3)
