"""Customer portal pages: invoice list and filters, the qualified invoice, numbers, downloads,
corporate approval, payments and receipts, and the tenant/customer guard (money and tenant leaks)."""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone

from billing import services
from billing.models import Biller, Customer, CustomerAccount, Invoice, InvoiceApproval
from billing.portal.services import can_pay
from tests.factories import (
    MIXED_RATE_LINES,
    make_biller,
    make_contract,
    make_customer,
    make_invoice,
    make_payment,
    make_portal_account,
)
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db
D = datetime.date
TODAY = timezone.localdate()
LINES = MIXED_RATE_LINES


def my(biller: Biller, path: str = "") -> str:
    return f"/b/{biller.slug}/my/{path}"


def invoice(biller: Biller, customer: Customer, number: str, *, publish: bool = True, **data: Any) -> Invoice:
    """An invoice of both tax rates (tests.factories.make_invoice), due in 30 days unless ``due_date``."""
    defaults = {"due_date": TODAY + datetime.timedelta(days=30), "lines": LINES}
    return make_invoice(biller=biller, customer=customer, number=number, published=publish, **defaults | data)


@pytest.fixture
def consumer(biller: Biller) -> CustomerAccount:
    return make_portal_account(biller, make_customer(biller, name="山田 太郎"), email="taro@example.jp")


@pytest.fixture
def portal(client: Client, consumer: CustomerAccount) -> Client:
    client.force_login(consumer.user)
    return client


def numbers_on(page: str) -> list[str]:
    return re.findall(r"INV-[\w-]+", page)


# --- list ----------------------------------------------------------------------------------------------


def test_list_tabs_search_period_and_pages(portal: Client, biller: Biller, consumer: CustomerAccount) -> None:
    c = consumer.customer
    invoice(biller, c, "INV-OPEN", description="ガス料金")
    invoice(
        biller,
        c,
        "INV-LATE",
        due_date=TODAY - datetime.timedelta(days=1),
        issue_date=TODAY - datetime.timedelta(days=40),
    )
    paid = invoice(biller, c, "INV-PAID", issue_date=D(2026, 9, 1))
    Invoice.objects.filter(pk=paid.pk).update(status=Invoice.Status.PAID, paid_at=timezone.now())
    services.invoice_cancel(actor=None, biller=biller, invoice=invoice(biller, c, "INV-GONE"))
    invoice(biller, c, "INV-DRAFT", publish=False)

    def listed(query: str) -> list[str]:
        response = portal.get(my(biller, f"invoices/?{query}"))
        assert response.status_code == 200
        return sorted(set(numbers_on(response.content.decode())))

    assert listed("") == ["INV-LATE", "INV-OPEN"]  # open (unpaid) is the first tab
    assert listed("tab=overdue") == ["INV-LATE"]
    assert listed("tab=paid") == ["INV-PAID"]
    assert listed("tab=cancelled") == ["INV-GONE"]
    assert listed("tab=all") == ["INV-GONE", "INV-LATE", "INV-OPEN", "INV-PAID"]  # never a draft
    assert listed("tab=all&q=ガス") == ["INV-OPEN"]
    assert listed("tab=all&q=paid") == ["INV-PAID"]
    assert listed("tab=all&issued_from=2026-09-01&issued_to=2026-09-30") == ["INV-PAID"]
    bad = portal.get(my(biller, "invoices/?issued_from=yesterday"))
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.content.decode()
    overdue_page = portal.get(my(biller, "invoices/")).content.decode()
    assert 'aria-current="page"' in overdue_page and "<caption>" in overdue_page


def test_list_is_paginated(portal: Client, biller: Biller, consumer: CustomerAccount) -> None:
    for i in range(23):
        invoice(
            biller, consumer.customer, f"INV-{i:03d}", issue_date=D(2026, 1, 1) + datetime.timedelta(days=i)
        )
    first = portal.get(my(biller, "invoices/")).content.decode()
    second = portal.get(my(biller, "invoices/?page=2")).content.decode()
    assert len(set(numbers_on(first))) == 20 and len(set(numbers_on(second))) == 3
    assert "INV-022" in first and "INV-000" in second  # newest first


def test_login_required(client: Client, biller: Biller) -> None:
    response = client.get(my(biller, "invoices/"))
    assert response.status_code == 302
    assert response["Location"].startswith(f"/b/{biller.slug}/my/login/?next=")


# --- tenant and customer guard -------------------------------------------------------------------------


def test_another_billers_and_another_customers_invoices_are_404(
    portal: Client, biller: Biller, consumer: CustomerAccount
) -> None:
    mine = invoice(biller, consumer.customer, "INV-MINE")
    neighbour = invoice(biller, make_customer(biller), "INV-NEIGHBOUR")
    other_biller = make_biller()
    foreign = invoice(other_biller, make_customer(other_biller), "INV-FOREIGN")
    draft = invoice(biller, consumer.customer, "INV-DRAFT", publish=False)
    assert portal.get(my(biller, f"invoices/{mine.pk}/")).status_code == 200

    for target in (neighbour.pk, foreign.pk, draft.pk):
        for suffix in ("", "pdf/"):
            assert_cross_tenant_hidden(portal, lambda pk, s=suffix: my(biller, f"invoices/{pk}/{s}"), target)
        assert_cross_tenant_hidden(
            portal,
            lambda pk: my(biller, f"invoices/{pk}/decision/"),
            target,
            method="post",
            data={"decision": "approved"},
        )
        assert_cross_tenant_hidden(
            portal, lambda pk: my(biller, f"invoices/download/?ids={mine.pk}&ids={pk}"), target
        )
    # the other biller's portal does not know this customer's login at all
    assert portal.get(my(other_biller, f"invoices/{foreign.pk}/")).status_code == 302
    listing = portal.get(my(biller, "invoices/?tab=all")).content.decode()
    assert "INV-NEIGHBOUR" not in listing and "INV-FOREIGN" not in listing


def test_receipts_and_payments_of_others_are_hidden(
    portal: Client, biller: Biller, consumer: CustomerAccount
) -> None:
    mine = invoice(biller, consumer.customer, "INV-MINE", lines=[LINES[0]])
    other_invoice = invoice(biller, make_customer(biller), "INV-OTHER", lines=[LINES[0]])
    my_receipt = pay(biller, mine, "K1")
    other_receipt = pay(biller, other_invoice, "K2")
    payments = portal.get(my(biller, "payments/")).content.decode()
    assert "INV-MINE" in payments and "INV-OTHER" not in payments
    assert "1,320円" in payments
    receipts = portal.get(my(biller, "receipts/")).content.decode()
    assert "INV-MINE" in receipts and "INV-OTHER" not in receipts
    detail = portal.get(my(biller, f"receipts/{my_receipt.pk}/")).content.decode()
    assert "1,320円" in detail and biller.registration_number in detail
    assert_cross_tenant_hidden(portal, lambda pk: my(biller, f"receipts/{pk}/"), other_receipt.pk)


def pay(biller: Biller, inv: Invoice, key: str) -> Any:
    """A payment as billing records it (the service payeasy's applier calls), and its receipt."""
    from billing.models import Receipt

    payment = make_payment(inv, bank_code="0001", channel="atm")
    assert payment.biller_id == biller.pk
    return Receipt.objects.create(biller=biller, payment=payment)


def test_payments_and_receipts_of_another_biller_are_404(
    portal: Client, biller: Biller, consumer: CustomerAccount, other_biller: Biller
) -> None:
    foreign = invoice(other_biller, make_customer(other_biller), "INV-FOREIGN", lines=[LINES[0]])
    foreign_receipt = pay(other_biller, foreign, "K3")
    assert "INV-FOREIGN" not in portal.get(my(biller, "payments/")).content.decode()
    assert "INV-FOREIGN" not in portal.get(my(biller, "receipts/")).content.decode()
    assert_cross_tenant_hidden(portal, lambda pk: my(biller, f"receipts/{pk}/"), foreign_receipt.pk)


def test_payment_history_shows_billings_record_in_the_customers_terms(
    portal: Client, biller: Biller, consumer: CustomerAccount
) -> None:
    """Channel, outcome and a provisional payment's reason as billing stores them (the network's own
    仮消込 reasons, e.g. a bank without a contract, are not shown: "being checked by the biller")."""
    mine = invoice(biller, consumer.customer, "INV-HELD", lines=[LINES[0]])
    make_payment(mine, outcome="provisional", reason="checking", channel="info_link")
    page = portal.get(my(biller, "payments/")).content.decode()
    assert "INV-HELD" in page and "1,320円" in page
    assert "Information link (情報リンク)" in page or "情報リンク" in page
    assert "Being checked by the biller" in page or "確認中" in page
    assert "contract" not in page.lower()


# --- detail: the qualified invoice and the numbers -----------------------------------------------------


def test_detail_is_a_qualified_invoice_with_per_rate_totals(
    portal: Client, biller: Biller, consumer: CustomerAccount
) -> None:
    inv = invoice(biller, consumer.customer, "INV-Q")
    page = portal.get(my(biller, f"invoices/{inv.pk}/")).content.decode()
    assert "Qualified invoice" in page and biller.registration_number in page and biller.legal_name in page
    # 10%: 1,200 + 9,300 = 10,500, tax 1,050; 8%: 4,400, tax 352; total 16,302 (tax rounded once per rate)
    assert re.search(r"10%</th><td class=\"num\">10,500円</td><td class=\"num\">1,050円", page)
    assert re.search(r"8%※</th><td class=\"num\">4,400円</td><td class=\"num\">352円", page)
    assert "16,302円" in page
    assert "定期購読 新聞※" in page
    pdf = portal.get(my(biller, f"invoices/{inv.pk}/pdf/"))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert pdf["Content-Type"] == "application/pdf"


def test_numbers_and_the_atm_cash_limit(portal: Client, biller: Biller, consumer: CustomerAccount) -> None:
    small = invoice(biller, consumer.customer, "INV-SMALL")
    page = portal.get(my(biller, f"invoices/{small.pk}/")).content.decode()
    for value in (biller.payee_number, small.customer_number, small.confirmation_number):
        assert value and value in page
    assert small.due_date.isoformat() in page
    assert "At an ATM" in page and "internet banking" in page
    assert "Cash payments at ATMs are limited" not in page
    assert (
        'id="invoice-status"' in page
        and f'data-invoice-id="{small.pk}"' in page
        and 'aria-live="polite"' in page
    )

    big = invoice(
        biller,
        consumer.customer,
        "INV-BIG",
        lines=[{"description": "高圧電力", "quantity": 1, "unit_price": 100_000, "tax_category": "10"}],
    )
    page = portal.get(my(biller, f"invoices/{big.pk}/")).content.decode()
    assert "110,000円" in page
    assert "Cash payments at ATMs are limited to 100,000円" in page


def test_returning_from_the_bank_says_processing_until_paid(
    portal: Client, biller: Biller, consumer: CustomerAccount
) -> None:
    inv = invoice(biller, consumer.customer, "INV-R")
    assert "Processing" in portal.get(my(biller, f"invoices/{inv.pk}/?returned=1")).content.decode()
    assert "Processing" not in portal.get(my(biller, f"invoices/{inv.pk}/")).content.decode()
    Invoice.objects.filter(pk=inv.pk).update(status=Invoice.Status.PAID, paid_at=timezone.now())
    page = portal.get(my(biller, f"invoices/{inv.pk}/?returned=1")).content.decode()
    assert "Processing" not in page and "Paid" in page and 'data-status="paid"' in page
    assert inv.customer_number not in page  # nothing to pay: no numbers


def test_cancelled_and_credit_notes_are_not_payable(
    portal: Client, biller: Biller, consumer: CustomerAccount
) -> None:
    inv = invoice(biller, consumer.customer, "INV-C")
    services.invoice_cancel(actor=None, biller=biller, invoice=inv)
    inv.refresh_from_db()
    assert not can_pay(consumer.user, inv)
    page = portal.get(my(biller, f"invoices/{inv.pk}/")).content.decode()
    assert "cannot be paid" in page and inv.confirmation_number not in page


# --- downloads -----------------------------------------------------------------------------------------


def test_zip_of_pdfs(portal: Client, biller: Biller, consumer: CustomerAccount) -> None:
    a = invoice(biller, consumer.customer, "INV-A/1")
    b = invoice(biller, consumer.customer, "INV-B")
    response = portal.get(my(biller, f"invoices/download/?format=zip&ids={a.pk}&ids={b.pk}"))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["invoice-INV-A-1.pdf", "invoice-INV-B.pdf"]
    for name in archive.namelist():
        assert archive.read(name).startswith(b"%PDF-")


def test_csv_in_utf8_and_cp932(portal: Client, biller: Biller, consumer: CustomerAccount) -> None:
    inv = invoice(biller, consumer.customer, "INV-CSV")
    utf8 = portal.get(my(biller, f"invoices/download/?format=csv-utf8&ids={inv.pk}"))
    assert utf8.status_code == 200 and "utf-8" in utf8["Content-Type"]
    rows = list(csv.reader(io.StringIO(utf8.content.decode("utf-8"))))
    assert rows[0][0] == "Invoice number" and len(rows) == 2
    header = rows[0]
    row = dict(zip(header, rows[1], strict=True))
    assert row["Invoice number"] == "INV-CSV" and row["Description"] == "11月分電気料金"
    assert (row["Subtotal 10%"], row["Tax 10%"], row["Subtotal 8% (reduced)"], row["Tax 8% (reduced)"]) == (
        "10500",
        "1050",
        "4400",
        "352",
    )
    assert row["Total (tax included)"] == "16302" and row["Registration number"] == biller.registration_number
    assert row["Customer number (お客様番号)"] == inv.customer_number

    sjis = portal.get(my(biller, f"invoices/download/?format=csv-cp932&ids={inv.pk}"))
    assert "Shift_JIS" in sjis["Content-Type"]
    with pytest.raises(UnicodeDecodeError):
        sjis.content.decode("utf-8")
    text = sjis.content.decode("cp932")
    assert "11月分電気料金" in text and biller.legal_name in text
    assert list(csv.reader(io.StringIO(text))) == rows

    nothing = portal.get(my(biller, "invoices/download/?format=csv-utf8"))
    assert nothing.status_code == 302


# --- corporate approval --------------------------------------------------------------------------------


def test_corporate_approval_flow_and_can_pay(client: Client, biller: Biller) -> None:
    company = make_customer(biller, kind=Customer.Kind.CORPORATE, name="株式会社青葉商事")
    viewer = make_portal_account(biller, company, role="viewer")
    approver = make_portal_account(biller, company, role="approver", name="承認 花子")
    payer = make_portal_account(biller, company, role="payer")
    inv = invoice(biller, company, "INV-CORP")
    decide = my(biller, f"invoices/{inv.pk}/decision/")

    assert not can_pay(payer.user, inv)  # not approved yet
    client.force_login(payer.user)
    page = client.get(my(biller, f"invoices/{inv.pk}/")).content.decode()
    assert "needs your company&#x27;s approval" in page
    assert inv.confirmation_number not in page  # no numbers to pay with before approval
    assert client.post(decide, {"decision": "approved"}).status_code == 403  # a payer cannot approve

    client.force_login(viewer.user)
    assert client.post(decide, {"decision": "approved"}).status_code == 403
    approvals = client.get(my(biller, "approvals/")).content.decode()
    assert "INV-CORP" in approvals

    client.force_login(approver.user)
    assert (
        client.post(decide, {"decision": "rejected", "comment": ""}).status_code == 400
    )  # a reason is needed
    assert client.post(decide, {"decision": "rejected", "comment": "金額を確認中"}).status_code == 302
    assert not can_pay(payer.user, inv)
    assert client.post(decide, {"decision": "approved", "comment": "確認済み"}).status_code == 302
    assert can_pay(payer.user, inv)
    assert not can_pay(approver.user, inv) and not can_pay(viewer.user, inv)  # only payers pay
    assert f'invoices/{inv.pk}/"' not in client.get(my(biller, "approvals/")).content.decode()
    again = client.post(decide, {"decision": "approved"}, follow=True)
    assert "approved already" in again.content.decode()

    history = list(
        InvoiceApproval.objects.filter(invoice=inv).values_list("decision", "decided_by", "comment")
    )
    assert history == [
        ("rejected", approver.user_id, "金額を確認中"),
        ("approved", approver.user_id, "確認済み"),
    ]
    page = client.get(my(biller, f"invoices/{inv.pk}/")).content.decode()
    assert "承認 花子" in page and "金額を確認中" in page
    with pytest.raises(TypeError):
        InvoiceApproval.objects.filter(invoice=inv).update(comment="changed")
    with pytest.raises(TypeError):
        InvoiceApproval.objects.first().delete()  # type: ignore[union-attr]
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoiceapproval SET comment = 'changed'")  # the database refuses too

    client.force_login(payer.user)
    page = client.get(my(biller, f"invoices/{inv.pk}/")).content.decode()
    assert inv.confirmation_number in page and inv.customer_number in page
    # a rejection after approval withdraws it
    client.force_login(approver.user)
    client.post(decide, {"decision": "rejected", "comment": "取り下げ"})
    assert not can_pay(payer.user, inv)


def test_can_pay_rules(biller: Biller, consumer: CustomerAccount) -> None:
    inv = invoice(biller, consumer.customer, "INV-P")
    assert can_pay(consumer.user, inv)
    other = make_biller()
    stranger = make_portal_account(other, make_customer(other))
    assert not can_pay(stranger.user, inv)  # another biller's customer
    neighbour = make_portal_account(biller, make_customer(biller))
    assert not can_pay(neighbour.user, inv)  # another customer of the same biller
    assert not can_pay(None, inv)
    biller.late_payment_policy = Biller.LatePaymentPolicy.REFUSE
    biller.save()
    late = invoice(
        biller,
        consumer.customer,
        "INV-LATE",
        due_date=TODAY - datetime.timedelta(days=1),
        issue_date=TODAY - datetime.timedelta(days=30),
    )
    assert not can_pay(consumer.user, late)
    consumer.user.is_active = False
    consumer.user.save()
    assert not can_pay(consumer.user, inv)


def test_pay_link_points_at_the_chooser_when_paying_is_installed(
    portal: Client, biller: Biller, consumer: CustomerAccount
) -> None:
    from django.urls import NoReverseMatch

    from billing.tenancy import tenant_reverse

    inv = invoice(biller, consumer.customer, "INV-L")
    make_contract(biller)
    page = portal.get(my(biller, f"invoices/{inv.pk}/")).content.decode()
    try:
        chooser = tenant_reverse(biller, "portal:pay", args=[inv.pk])
    except NoReverseMatch:
        pytest.skip("payeasy/paying_urls.py is not installed yet: no 情報リンク chooser to link to")
    assert "Pay by 情報リンク" in page
    assert f'href="{chooser}"' in page
