"""Receipt numbers per biller (R-2026-000001), the receipt PDF (領収書) and who may download it."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import threading
from typing import Any

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone

from billing.models import Biller, CustomerAccount, Invoice, Receipt
from billing.models.payments import ReceiptCounter
from billing.services.receipts import receipts_send
from tests.factories import (
    make_biller,
    make_customer,
    make_invoice,
    make_member,
    make_payment,
    make_portal_account,
)
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db

YEAR = timezone.localdate().year


def my(biller: Biller, path: str = "") -> str:
    return f"/b/{biller.slug}/my/{path}"


def console(biller: Biller, path: str = "") -> str:
    return f"/b/{biller.slug}/console/{path}"


def paid_bill(biller: Biller, customer: Any = None, *, amount: int = 12000) -> tuple[Invoice, Receipt]:
    customer = customer or make_customer(biller)
    bill = make_invoice(biller=biller, customer=customer, amount=amount)
    payment = make_payment(bill, bank_code="0005", channel="atm")
    assert receipts_send(payment_ids=[payment.pk]) == 1
    return bill, Receipt.objects.get(payment=payment)


def pdf_text(content: bytes, tmp_path: Any) -> str:
    assert content.startswith(b"%PDF")
    path = tmp_path / "receipt.pdf"
    path.write_bytes(content)
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "poppler-utils (pdftotext) is needed to read the PDF back"
    return subprocess.run(
        [pdftotext, "-layout", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout


# --- numbers -------------------------------------------------------------------------------------------


def test_receipts_are_numbered_in_sequence_per_biller(biller: Biller, other_biller: Biller) -> None:
    numbers = [paid_bill(biller)[1].number for _ in range(3)]
    assert numbers == [f"R-{YEAR}-000001", f"R-{YEAR}-000002", f"R-{YEAR}-000003"]
    assert paid_bill(other_biller)[1].number == f"R-{YEAR}-000001"  # each biller counts its own
    assert paid_bill(biller)[1].number == f"R-{YEAR}-000004"
    assert ReceiptCounter.objects.get(biller=biller, year=YEAR).last == 4


def test_one_batch_numbers_each_biller_in_order(biller: Biller, other_biller: Biller) -> None:
    payments = [
        make_payment(make_invoice(biller=b, customer=make_customer(b)))
        for b in (biller, other_biller, biller, other_biller, biller)
    ]
    assert receipts_send(payment_ids=[p.pk for p in payments]) == 5
    got = {p.pk: Receipt.objects.get(payment=p).number for p in payments}
    assert [got[p.pk] for p in payments] == [
        f"R-{YEAR}-000001",
        f"R-{YEAR}-000001",
        f"R-{YEAR}-000002",
        f"R-{YEAR}-000002",
        f"R-{YEAR}-000003",
    ]
    assert receipts_send(payment_ids=[p.pk for p in payments]) == 0  # issued once


def test_a_receipt_made_without_a_number_gets_the_next(biller: Biller) -> None:
    paid_bill(biller)
    payment = make_payment(make_invoice(biller=biller, customer=make_customer(biller)))
    receipt = Receipt.objects.create(biller=biller, payment=payment)
    assert receipt.number == f"R-{YEAR}-000002"


def test_the_database_refuses_a_number_twice_for_one_biller(biller: Biller, other_biller: Biller) -> None:
    _bill, first = paid_bill(biller)
    payment = make_payment(make_invoice(biller=biller, customer=make_customer(biller)))
    with pytest.raises(IntegrityError), transaction.atomic():
        Receipt.objects.create(biller=biller, payment=payment, number=first.number)
    foreign = make_payment(make_invoice(biller=other_biller, customer=make_customer(other_biller)))
    assert Receipt.objects.create(biller=other_biller, payment=foreign, number=first.number).pk


def test_receipts_are_issued_for_bills_without_an_e_mail_address_too(
    biller: Biller, mailoutbox: list
) -> None:
    bill = make_invoice(biller=biller, customer=make_customer(biller, email=""))
    assert bill.recipient_email == ""
    payment = make_payment(bill)
    assert receipts_send(payment_ids=[payment.pk]) == 1
    assert Receipt.objects.get(payment=payment).number == f"R-{YEAR}-000001"
    mailed = make_payment(make_invoice(biller=biller, customer=make_customer(biller)))
    receipts_send(payment_ids=[mailed.pk])
    assert [m for m in mailoutbox if f"R-{YEAR}-000002" in m.body]


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_give_one_number_twice(postgres: None) -> None:
    """Eight threads, each its own connection and transaction, number receipts of one biller at once."""
    from billing.tenancy import cross_tenant

    with cross_tenant("tests"):
        biller = make_biller()
        payments = [
            make_payment(make_invoice(biller=biller, customer=make_customer(biller))) for _ in range(16)
        ]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(ids: list[int]) -> None:
        try:
            with cross_tenant("tests"):
                start.wait()
                receipts_send(payment_ids=ids)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=([p.pk for p in payments[i::8]],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with cross_tenant("tests"):
        numbers = sorted(Receipt.objects.for_biller(biller).values_list("number", flat=True))
    assert numbers == [f"R-{YEAR}-{n:06d}" for n in range(1, 17)]


# --- the PDF and who may have it -----------------------------------------------------------------------


def test_the_customer_downloads_the_receipt_pdf(client: Client, biller: Biller, tmp_path: Any) -> None:
    account = make_portal_account(biller, make_customer(biller, name="山田 太郎"))
    bill, receipt = paid_bill(biller, account.customer, amount=12000)
    client.force_login(account.user)
    page = client.get(my(biller, f"invoices/{bill.pk}/")).content.decode()
    assert my(biller, f"receipts/{receipt.pk}/pdf/") in page and receipt.number in page
    response = client.get(my(biller, f"receipts/{receipt.pk}/pdf/"))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert receipt.number in response["Content-Disposition"]
    text = pdf_text(response.content, tmp_path)
    for expected in (
        "領収書",
        receipt.number,
        "13,200円",  # 12,000 + 10 % tax
        biller.legal_name,
        biller.registration_number,
        bill.number,
        "山田 太郎 様",
        "ペイジー",
    ):
        assert expected in text, expected
    assert receipt.number in client.get(my(biller, "receipts/")).content.decode()
    assert receipt.number in client.get(my(biller, f"receipts/{receipt.pk}/")).content.decode()


def test_another_customers_or_billers_receipt_pdf_is_404(
    client: Client, biller: Biller, other_biller: Biller
) -> None:
    account: CustomerAccount = make_portal_account(biller, make_customer(biller))
    _mine, my_receipt = paid_bill(biller, account.customer)
    _neighbour, neighbours = paid_bill(biller)  # another customer of the same biller
    _foreign, foreign = paid_bill(other_biller)
    client.force_login(account.user)
    assert client.get(my(biller, f"receipts/{my_receipt.pk}/pdf/")).status_code == 200
    assert_cross_tenant_hidden(client, lambda pk: my(biller, f"receipts/{pk}/pdf/"), neighbours.pk)
    assert_cross_tenant_hidden(client, lambda pk: my(biller, f"receipts/{pk}/pdf/"), foreign.pk)
    client.logout()
    assert client.get(my(biller, f"receipts/{my_receipt.pk}/pdf/")).status_code == 302  # to the login


def test_the_console_links_and_serves_the_receipt_of_its_own_bills_only(
    client: Client, biller: Biller, other_biller: Biller, tmp_path: Any
) -> None:
    bill, receipt = paid_bill(biller, amount=5000)
    other_bill, foreign = paid_bill(other_biller)
    client.force_login(make_member(biller, role="operator"))
    url = console(biller, f"invoices/{bill.pk}/receipts/{receipt.pk}/pdf/")
    assert url in client.get(console(biller, f"invoices/{bill.pk}/")).content.decode()
    response = client.get(url)
    assert response.status_code == 200
    text = pdf_text(response.content, tmp_path)
    assert receipt.number in text and "5,500円" in text
    # another biller's bill or receipt, or a receipt of another bill: 404 like a missing one
    assert_cross_tenant_hidden(
        client, lambda pk: console(biller, f"invoices/{pk}/receipts/{foreign.pk}/pdf/"), other_bill.pk
    )
    assert_cross_tenant_hidden(
        client, lambda pk: console(biller, f"invoices/{bill.pk}/receipts/{pk}/pdf/"), foreign.pk
    )
    other_own, _r = paid_bill(biller)
    assert (
        client.get(console(biller, f"invoices/{other_own.pk}/receipts/{receipt.pk}/pdf/")).status_code == 404
    )


def test_receipt_dates_are_the_days_of_issue_and_payment(biller: Biller, tmp_path: Any) -> None:
    from billing.receipt_pdf import receipt_pdf

    bill = make_invoice(biller=biller, customer=make_customer(biller))
    paid_at = datetime.datetime(2026, 3, 31, 15, 30, tzinfo=datetime.UTC)  # 4月1日 00:30 JST
    payment = make_payment(bill, paid_at=paid_at)
    receipts_send(payment_ids=[payment.pk])
    text = pdf_text(receipt_pdf(Receipt.objects.get(payment=payment)), tmp_path)
    assert "2026年4月1日 00:30" in text


def test_the_migration_numbers_the_receipts_issued_before_it(transactional_db: None) -> None:
    """Receipts issued before the migration (here: issued, then the migration undone, which drops their
    numbers and the counters) get numbers per biller in the order of issue; the counters follow them."""
    from django.db.migrations.executor import MigrationExecutor

    from billing.dbsecurity import as_owner

    mine, theirs = make_biller(), make_biller()
    payments = [
        make_payment(make_invoice(biller=b, customer=make_customer(b))) for b in (mine, theirs, mine, mine)
    ]  # autocommit: each receipt is issued on commit
    assert Receipt.objects.count() == 4
    before = [
        ("billing", "0015_invoice_number_pattern"),
        ("payeasy", "0011_payments_and_receipts_to_billing"),
    ]
    with as_owner(connection):
        MigrationExecutor(connection).migrate(before)
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    numbers = {r.payment_id: r.number for r in Receipt.objects.all()}
    assert [numbers[p.pk] for p in payments] == [
        f"R-{YEAR}-000001",
        f"R-{YEAR}-000001",
        f"R-{YEAR}-000002",
        f"R-{YEAR}-000003",
    ]
    assert ReceiptCounter.objects.get(biller=mine, year=YEAR).last == 3
    later = make_payment(make_invoice(biller=mine, customer=make_customer(mine)))
    assert Receipt.objects.get(payment=later).number == f"R-{YEAR}-000004"
    with (
        pytest.raises(DatabaseError),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):  # append-only again
        cursor.execute("UPDATE billing_receipt SET number = 'X'")
