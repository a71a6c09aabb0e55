"""Formula injection in the CSV files the product writes for spreadsheets (billing.csvsafe).

Every writer goes through ``billing.csvsafe``: a text cell that begins with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return gets a leading ``'``; amounts stay numbers. The exports are read back on the
real PostgreSQL, in UTF-8 and in cp932 where the export offers it. A source scan refuses a new
``csv.writer`` outside the one module.
"""

from __future__ import annotations

import ast
import csv
import datetime
import decimal
import io
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import Biller, ImportJob, Invoice, Membership
from tests.factories import make_customer, make_invoice, make_member, make_portal_account

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ["=cmd|'/c calc'!A1", "@SUM(A1)", "+1+1", "-2+3", "\t=1+1", "\r=1+1", '=HYPERLINK("x")']


def test_safe_cell_quotes_formulas_and_keeps_numbers() -> None:
    from billing.csvsafe import safe_cell, writer

    for payload in PAYLOADS:
        assert safe_cell(payload) == "'" + payload
    assert safe_cell(-1200) == -1200 and safe_cell(0) == 0 and safe_cell(3.5) == 3.5
    assert safe_cell(decimal.Decimal("-7")) == decimal.Decimal("-7")
    for number in ("-1200", "+5", "12", "-0.5"):
        assert safe_cell(number) == number  # a plain number is a number to a spreadsheet, nothing more
    for text in ("11月分電気料金", "", "a=b", "T1234567890123", "2026-11-01", " =x"):
        assert safe_cell(text) == text
    assert safe_cell(None) == ""
    out = io.StringIO()
    writer(out, lineterminator="\n").writerows([["=1+1", -5, "ok"]])
    assert out.getvalue() == "'=1+1,-5,ok\n"


# --- every export, read back ------------------------------------------------------------------------


@pytest.fixture
def _pg(postgres: None, db: None) -> None:
    """The exports read the real PostgreSQL."""


@pytest.mark.usefixtures("_pg")
def test_the_portal_invoice_csv_neutralises_formulas_in_utf8_and_cp932(biller: Biller) -> None:
    person = make_portal_account(biller, make_customer(biller), email="csv@example.jp")
    invoices = []
    for n, payload in enumerate(PAYLOADS):
        invoice = make_invoice(
            biller=biller,
            customer=person.customer,
            number=f"INV-F{n}",
            amount=1000,
            issue_date=timezone.localdate(),
            due_date=timezone.localdate() + datetime.timedelta(days=10),
            description="料金",
        )
        # stored as it came (an API client, an import, an older version): the export must cope
        Invoice.objects.filter(pk=invoice.pk).update(description=payload)
        invoices.append(invoice)
    Biller.objects.filter(pk=biller.pk).update(legal_name="=1+1 株式会社")
    client = Client()
    client.force_login(person.user)
    ids = "&".join(f"ids={inv.pk}" for inv in invoices)
    for fmt, encoding in (("csv-utf8", "utf-8"), ("csv-cp932", "cp932")):
        response = client.get(f"/b/{biller.slug}/my/invoices/download/?format={fmt}&{ids}")
        assert response.status_code == 200
        rows = list(csv.DictReader(io.StringIO(response.content.decode(encoding), newline="")))
        assert [row["Description"] for row in rows] == ["'" + p for p in PAYLOADS], fmt
        for row in rows:
            assert row["Issuer"] == "'=1+1 株式会社"
            assert row["Total (tax included)"] == "1100" and row["Subtotal 10%"] == "1000"
            assert row["Customer number (お客様番号)"].isdigit()
            for cell in row.values():
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (fmt, cell)


@pytest.mark.usefixtures("_pg")
def test_the_import_error_report_neutralises_the_input_it_echoes(biller: Biller) -> None:
    job = ImportJob.objects.create(
        biller=biller,
        status=ImportJob.Status.FAILED,
        file_path="/nonexistent",
        file_name="x.csv",
        file_sha256="0" * 64,
        error_count=len(PAYLOADS),
        errors=[{"row": n + 2, "column": payload, "message": payload} for n, payload in enumerate(PAYLOADS)],
    )
    client = Client()
    client.force_login(make_member(biller, role=Membership.Role.OPERATOR))
    response = client.get(f"/b/{biller.slug}/console/imports/{job.pk}/errors.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert rows[1:] == [[str(n + 2), "'" + p, "'" + p] for n, p in enumerate(PAYLOADS)]


# --- no writer around the one function ----------------------------------------------------------------


def test_no_csv_writer_outside_billing_csvsafe() -> None:
    """``csv.writer``/``csv.DictWriter`` (or ``from csv import writer``) anywhere but billing/csvsafe.py
    would write cells without safe_cell: a new export must use ``billing.csvsafe.writer``."""
    offenders = []
    for app in ("billing", "payeasy", "reconciliation", "config"):
        for path in (ROOT / app).rglob("*.py"):
            if path == ROOT / "billing" / "csvsafe.py" or "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr in {"writer", "DictWriter"}
                    and isinstance(node.value, ast.Name)
                    and node.value.id in {"csv", "_csv"}
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if (
                    isinstance(node, ast.ImportFrom)
                    and node.module in {"csv", "_csv"}
                    and any(alias.name in {"writer", "DictWriter"} for alias in node.names)
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "use billing.csvsafe.writer: " + ", ".join(offenders)
    assert (ROOT / "billing" / "csvsafe.py").is_file()
