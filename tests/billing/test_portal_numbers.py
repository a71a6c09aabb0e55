"""Who sees an invoice's payment numbers in the customer portal's outputs.

One rule (billing.portal.services.numbers_visibility) decides: the お客様番号, the 確認番号 and the
registration code printed beside them reach a portal user only when that user is a payer of the
invoice's customer and, for a corporate customer's invoice, an approver has approved it. Every output a
portal user can take away obeys it: the invoice page, its PDF, the ZIP of PDFs, the CSV (UTF-8 and
cp932) and the publication and reminder e-mails. The tenant console's PDF still prints them.

PDFs are read back with poppler's pdftotext (tests/billing/test_pdf.py).
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from billing import notifications, services
from billing.models import Biller, Customer, CustomerAccount, Invoice, Membership
from billing.pdf import pdf_filename
from billing.portal import services as portal
from tests.billing.test_pdf import pdf_text
from tests.conftest import need
from tests.factories import make_customer, make_invoice, make_member, make_portal_account

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
CSV_NUMBER = "Customer number (お客様番号)"
LINES = [{"description": "保守料金", "quantity": 1, "unit_price": 50_000, "tax_category": "10"}]


def my(biller: Biller, path: str = "") -> str:
    return f"/b/{biller.slug}/my/{path}"


@pytest.fixture(autouse=True)
def _postgres(postgres: None) -> None:
    """These tests guard a money leak: they run on the real PostgreSQL."""


@pytest.fixture
def company(biller: Biller) -> Customer:
    return make_customer(
        biller, kind=Customer.Kind.CORPORATE, name="株式会社青葉商事", email="ap@aoba.example"
    )


def accounts(biller: Biller, company: Customer) -> dict[str, CustomerAccount]:
    return {
        role: make_portal_account(biller, company, role=role, email=f"{role}@aoba.example")
        for role in ("viewer", "approver", "payer")
    }


def bill(biller: Biller, customer: Customer, number: str, **extra: Any) -> Invoice:
    """A published 保守契約 invoice issued today, due in 3 days (tests.factories.make_invoice)."""
    defaults = {
        "issue_date": TODAY,
        "due_date": TODAY + datetime.timedelta(days=3),
        "description": "保守契約 11月分",
    }
    return make_invoice(biller=biller, customer=customer, number=number, lines=LINES, **defaults | extra)


def twin(biller: Biller, customer: Customer, number: str) -> Invoice:
    """An invoice and its twin ``<number>-2``, so the ZIP is a real one of several documents."""
    bill(biller, customer, f"{number}-2")
    return bill(biller, customer, number)


def decide(approver: CustomerAccount, invoice: Invoice, decision: str, comment: str = "") -> None:
    """The same decision on the invoice and its twin."""
    for inv in (invoice, Invoice.objects.get(biller_id=invoice.biller_id, number=f"{invoice.number}-2")):
        portal.invoice_decide(
            actor=approver.user, biller=inv.biller, invoice=inv, decision=decision, comment=comment
        )


def secrets_of(invoice: Invoice) -> dict[str, str]:
    customer = invoice.customer
    assert customer is not None and invoice.customer_number and invoice.confirmation_number
    return {
        "customer number": invoice.customer_number,
        "confirmation number": invoice.confirmation_number,
        "registration code": customer.registration_code,
        "registration code (printed)": customer.registration_code_display,
    }


def leaked(text: str, invoice: Invoice, *, registration: bool = True) -> list[str]:
    """The names of the secrets of ``invoice`` that occur in ``text`` (digits: as a whole number)."""
    found = []
    for name, value in secrets_of(invoice).items():
        if name.startswith("registration") and not registration:
            continue
        pattern = rf"(?<!\d){re.escape(value)}(?!\d)" if value.isdigit() else re.escape(value)
        if re.search(pattern, text):
            found.append(name)
    return found


def outputs(client: Client, biller: Biller, invoice: Invoice, tmp_path: Path) -> dict[str, str]:
    """Everything a portal user can take away of ``invoice``, as text.

    The ZIP holds ``invoice`` and its twin (same customer, same approval decisions; see ``twin``)."""
    got: dict[str, str] = {}
    page = client.get(my(biller, f"invoices/{invoice.pk}/"))
    assert page.status_code == 200
    got["page"] = page.content.decode()
    pdf = client.get(my(biller, f"invoices/{invoice.pk}/pdf/"))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    got["pdf"] = pdf_text(pdf.content, tmp_path)
    other = Invoice.objects.get(biller=biller, number=f"{invoice.number}-2")
    archive = client.get(my(biller, f"invoices/download/?format=zip&ids={invoice.pk}&ids={other.pk}"))
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        assert sorted(zf.namelist()) == sorted([pdf_filename(invoice), pdf_filename(other)])
        got["zip"] = pdf_text(zf.read(pdf_filename(invoice)), tmp_path)
        # the other document of the ZIP follows the same rule for its own numbers
        other_text = pdf_text(zf.read(pdf_filename(other)), tmp_path)
        for where, text in got.items():
            if where == "pdf":
                assert bool(leaked(other_text, other)) == bool(leaked(text, invoice))
    for fmt, encoding in (("csv-utf8", "utf-8"), ("csv-cp932", "cp932")):
        response = client.get(my(biller, f"invoices/download/?format={fmt}&ids={invoice.pk}"))
        assert response.status_code == 200
        got[fmt] = response.content.decode(encoding)
    return got


def emails_to(account: CustomerAccount, invoice: Invoice) -> dict[str, str]:
    """The publication and the reminder e-mail of ``invoice``, sent to ``account``'s address."""
    Invoice.objects.filter(pk=invoice.pk).update(
        recipient_email=account.user.email, notified_at=None, reminded_at=None
    )
    Invoice.objects.exclude(pk=invoice.pk).update(reminded_at=timezone.now())  # only this one is due
    Biller.objects.filter(pk=invoice.biller_id).update(reminder_days=7)
    mail.outbox.clear()
    assert notifications.invoices_published_email_send(invoice_ids=[invoice.pk]) == 1
    assert notifications.due_reminders_send(today=TODAY) == 1
    assert [m.to for m in mail.outbox] == [[account.user.email]] * 2
    return {"published e-mail": mail.outbox[0].body, "reminder e-mail": mail.outbox[1].body}


def csv_number(text: str) -> str:
    rows = list(csv.DictReader(io.StringIO(text)))
    return rows[0][CSV_NUMBER]


@pytest.mark.parametrize("role", ["viewer", "approver", "payer"])
def test_before_approval_no_output_carries_the_numbers(
    biller: Biller, company: Customer, role: str, tmp_path: Path
) -> None:
    people = accounts(biller, company)
    invoice = twin(biller, company, "INV-CORP-1")
    assert portal.approval_state(invoice) == "pending"
    client = Client()
    client.force_login(people[role].user)
    got = outputs(client, biller, invoice, tmp_path)
    got.update(emails_to(people[role], invoice))

    leaks = {where: leaked(text, invoice) for where, text in got.items() if leaked(text, invoice)}
    assert leaks == {}
    # withheld plainly, not left blank
    expected = "社内承認後に表示されます" if role == "payer" else "承認後、お支払い担当者に表示されます"
    assert re.search(rf"お客様番号\s+{expected}", got["pdf"])
    assert re.search(rf"確認番号\s+{expected}", got["pdf"])
    assert re.search(rf"お客様番号\s+{expected}", got["zip"])
    english = (
        "Shown after your company's approval"
        if role == "payer"
        else "Shown to your company's payers after approval"
    )
    assert csv_number(got["csv-utf8"]) == english
    assert csv_number(got["csv-cp932"]) == english
    assert "社内承認後" in got["published e-mail"] and "社内承認後" in got["reminder e-mail"]


def test_a_rejected_invoice_withholds_them_again(biller: Biller, company: Customer, tmp_path: Path) -> None:
    people = accounts(biller, company)
    invoice = twin(biller, company, "INV-CORP-R")
    decide(people["approver"], invoice, "approved")
    assert portal.may_see_numbers(people["payer"].user, invoice)
    decide(people["approver"], invoice, "rejected", "金額誤り")
    assert not portal.may_see_numbers(people["payer"].user, invoice)
    client = Client()
    client.force_login(people["payer"].user)
    got = outputs(client, biller, invoice, tmp_path)
    assert {where: leaked(text, invoice) for where, text in got.items() if leaked(text, invoice)} == {}


def test_after_approval_the_payer_sees_them_in_every_output(
    biller: Biller, company: Customer, tmp_path: Path
) -> None:
    people = accounts(biller, company)
    invoice = twin(biller, company, "INV-CORP-2")
    decide(people["approver"], invoice, "approved")
    client = Client()
    client.force_login(people["payer"].user)
    got = outputs(client, biller, invoice, tmp_path)
    got.update(emails_to(people["payer"], invoice))

    assert re.search(rf"お客様番号\s+{invoice.customer_number}", got["pdf"])
    assert re.search(rf"確認番号\s+{invoice.confirmation_number}", got["pdf"])
    for where, text in got.items():
        missing = {"customer number", "confirmation number"} - set(leaked(text, invoice))
        if where.startswith("csv"):
            missing.discard("confirmation number")  # the CSV has no confirmation number column
        assert not missing, f"{where} lacks the {missing}"
    # the paper-bill block (registration code and link) is in the payer's PDFs
    for where in ("pdf", "zip"):
        assert "registration code (printed)" in leaked(got[where], invoice), where
    assert csv_number(got["csv-utf8"]) == invoice.customer_number == csv_number(got["csv-cp932"])

    # the viewer and the approver still see none of it
    for role in ("viewer", "approver"):
        other = Client()
        other.force_login(people[role].user)
        theirs = outputs(other, biller, invoice, tmp_path)
        theirs.update(emails_to(people[role], invoice))
        assert {w: leaked(t, invoice) for w, t in theirs.items() if leaked(t, invoice)} == {}, role


def test_an_email_to_an_address_without_an_account_of_a_portal_company_carries_no_numbers(
    biller: Biller, company: Customer
) -> None:
    people = accounts(biller, company)
    invoice = bill(biller, company, "INV-CORP-3")
    portal.invoice_decide(actor=people["approver"].user, biller=biller, invoice=invoice, decision="approved")
    Invoice.objects.filter(pk=invoice.pk).update(recipient_email="ap@aoba.example")  # no account
    assert notifications.invoices_published_email_send(invoice_ids=[invoice.pk]) == 1
    assert leaked(mail.outbox[-1].body, invoice) == []


def test_consumers_and_the_console_are_unchanged(biller: Biller, company: Customer, tmp_path: Path) -> None:
    person = make_portal_account(biller, make_customer(biller, name="山田 太郎"), email="taro@example.jp")
    invoice = twin(biller, person.customer, "INV-CONS")
    client = Client()
    client.force_login(person.user)
    got = outputs(client, biller, invoice, tmp_path)
    got.update(emails_to(person, invoice))
    for where, text in got.items():
        assert "customer number" in leaked(text, invoice), where

    accounts(biller, company)
    corporate = bill(biller, company, "INV-CORP-4")  # not approved
    console_client = Client()
    console_client.force_login(make_member(biller, role=Membership.Role.OPERATOR))  # read-only member
    console = console_client.get(f"/b/{biller.slug}/console/invoices/{corporate.pk}/pdf/")
    assert console.status_code == 200
    text = pdf_text(console.content, tmp_path)
    assert set(secrets_of(corporate)) - {"registration code"} <= set(leaked(text, corporate))


def test_paid_and_cancelled_invoices_say_why_there_are_no_numbers(biller: Biller, company: Customer) -> None:
    person = make_portal_account(biller, make_customer(biller), email="hanako@example.jp")
    cancelled = services.invoice_cancel(
        actor=None, biller=biller, invoice=bill(biller, person.customer, "INV-X"), reason="誤請求"
    )
    assert portal.numbers_visibility(person.user, cancelled).reason == "cancelled"
    client = Client()
    client.force_login(person.user)
    for fmt, encoding in (("csv-utf8", "utf-8"), ("csv-cp932", "cp932")):
        response = client.get(my(biller, f"invoices/download/?format={fmt}&ids={cancelled.pk}"))
        assert csv_number(response.content.decode(encoding)) == "Not shown: cancelled"


def test_can_pay_implies_may_see_numbers(biller: Biller, company: Customer) -> None:
    people = accounts(biller, company)
    consumer = make_portal_account(biller, make_customer(biller))
    invoices = [
        bill(biller, company, "INV-R1"),
        bill(biller, consumer.customer, "INV-R2"),
    ]
    portal.invoice_decide(
        actor=people["approver"].user, biller=biller, invoice=invoices[0], decision="approved"
    )
    late = bill(
        biller,
        consumer.customer,
        "INV-R3",
        issue_date=TODAY - datetime.timedelta(days=30),
        due_date=TODAY - datetime.timedelta(days=1),
    )
    biller.late_payment_policy = Biller.LatePaymentPolicy.REFUSE
    biller.save()
    late.biller = biller
    users = [*(a.user for a in people.values()), consumer.user, None]
    for invoice in [*invoices, late]:
        for user in users:
            if portal.can_pay(user, invoice):
                assert portal.may_see_numbers(user, invoice)
    # a due date the biller enforces is not about who may see the numbers: the payer still sees them
    assert not portal.can_pay(consumer.user, late) and portal.may_see_numbers(consumer.user, late)
    assert portal.may_see_numbers(people["payer"].user, invoices[0])
    assert not portal.may_see_numbers(people["viewer"].user, invoices[0])
    assert not portal.may_see_numbers(consumer.user, invoices[0])  # another customer's


def test_portal_users_have_no_api(biller: Biller, company: Customer) -> None:
    people = accounts(biller, company)
    invoice = bill(biller, company, "INV-API")
    for account in people.values():
        client = Client()
        client.force_login(account.user)
        for path in ("invoices/", f"invoices/{invoice.pk}/"):
            response = client.get(f"/b/{biller.slug}/api/v1/{path}")
            assert response.status_code in (401, 403), (account.role, path)
            assert leaked(response.content.decode(), invoice) == []


def test_every_portal_pdf_call_states_who_reads_it() -> None:
    """A new portal output that renders a PDF without the rule would print the numbers: refuse it."""
    root = Path(__file__).resolve().parents[2] / "billing" / "portal"
    need(root.is_dir(), "source tree not found")
    for path in root.rglob("*.py"):
        source = path.read_text()
        for match in re.finditer(r"invoice_pdf\(([^()]*(?:\([^()]*\)[^()]*)*)\)", source):
            assert "numbers=" in match.group(1), f"{path}: invoice_pdf({match.group(1)}) without numbers="
