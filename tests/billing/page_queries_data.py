"""The data of tests/billing/test_page_queries.py: two tenants of the same shape, one small, one large.

Each tenant is a biller on the line (contracts, the sandbox bank's 情報リンク) with an administrator, a
consumer customer with a portal account (a payer) and a corporate customer with an approver and a payer.
The small tenant's consumer has ``SMALL`` invoices, the large one's ``LARGE``; everything the pages list
grows with it (payments over the line with their receipts and double payments, findings, payment
requests, balance items, imports, webhook deliveries, deposits, teller records, members, customers), so a
query made per row of a list shows as a count that differs between the two.

Every object a page shows by its id exists in both, under the names of tests/browser/test_axe_pages.py
(``Data.ids``): the pages' paths are the ones of its ``PAGES``. The bulk of the large tenant is
``bulk_create``d; the objects pages open one by one are made by the product's services.
"""

from __future__ import annotations

import datetime
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from billing.models import Biller, Customer, CustomerAccount, ImportJob, Invoice, Membership, User
from tests import factories
from tests.browser.test_axe_pages import Data
from tests.payeasy import line_helpers as h

# The consumer's invoices besides a draft: in the small tenant one open (the pages of a bill), one paid
# over the line (a receipt, a payment, a finding) and one paid at a bank's counter (a teller file); in the
# large one 500, of which 60 paid over the line and 20 at the counter, some overdue, some cancelled.
SMALL = 2  # and the one paid at the counter
LARGE = 500
PAID_NUMBER = "2026-10-000101"  # the paid bill the record search of PAGES looks for
OPEN_NUMBER = "2026-11-000101"


@dataclass
class Tenant:
    """One tenant's data: the ids the pages show (``data``) and a logged-in client per area."""

    name: str
    data: Data
    clients: dict[str, Client] = field(default_factory=dict)


@dataclass(frozen=True)
class Size:
    """How many of each thing a tenant has besides its one of each (the objects the pages open)."""

    invoices: int  # the consumer's, in all
    paid: int  # of them paid over the line (each with a receipt)
    doubles: int  # of the paid, paid twice (each a finding)
    corporate: int  # the corporate customer's invoices besides the one the approver opens
    customers: int  # other customers, with an invoice each
    orders: int  # pay-later payment requests besides the one the pages open
    items: int  # balance items of the consumer
    imports: int
    deliveries: int
    deposits: int  # rows of the deposit statement
    tellers: int  # records of the teller file
    members: int  # operators besides the administrator
    invitations: int  # portal invitations besides the one the page opens
    billers: int  # bare billers made with the tenant (what the staff console lists)
    api_keys: int


SIZES = {
    "small": Size(SMALL, 1, 1, 0, 0, 0, 2, 1, 1, 2, 1, 0, 0, 0, 1),
    "large": Size(LARGE, 60, 5, 40, 30, 20, 40, 15, 30, 40, 20, 5, 5, 4, 5),
}


def _bulk_invoices(biller: Biller, customer: Customer, prefix: str, count: int) -> list[Invoice]:
    """``count`` published invoices of ``customer`` (a few overdue, a few cancelled), in one INSERT."""
    from billing.numbers import confirmation_numbers

    if count <= 0:
        return []
    today = timezone.localdate()
    now = timezone.now()
    lines = '[{"description":"基本料金","quantity":1,"unit_price":1000,"tax_category":"10","amount":1000}]'
    rows = []
    for i, confirmation in enumerate(confirmation_numbers(count)):
        overdue = i % 10 == 1
        cancelled = i % 25 == 2
        rows.append(
            Invoice(
                biller=biller,
                customer=customer,
                kind=Invoice.Kind.INVOICE,
                number=f"{prefix}{i:05d}",
                issue_date=today - datetime.timedelta(days=40 + i % 300),
                due_date=today + datetime.timedelta(days=-5 if overdue else 30),
                description="月額料金",
                lines_json=lines,
                tax_rounding=biller.tax_rounding,
                subtotal_10=1000,
                tax_10=100,
                total=1100,
                status=Invoice.Status.CANCELLED if cancelled else Invoice.Status.PUBLISHED,
                recipient_name=customer.name,
                recipient_email=customer.email,
                confirmation_number=confirmation,
                published_at=now,
                cancelled_at=now if cancelled else None,
            )
        )
    return Invoice.objects.bulk_create(rows)


def _pay_over_the_line(biller: Biller, bills: list[Invoice], doubles: list[Invoice]) -> None:
    """Pay ``bills`` through the line (and ``doubles`` twice), apply the notices, issue the receipts."""
    from billing.models import InvoicePayment
    from billing.services.receipts import receipts_send
    from payeasy.services.payments import notices_apply

    h.send(h.open_day(biller))
    h.send(*[h.payment(biller, bill) for bill in bills], *[h.payment(biller, bill) for bill in doubles])
    for _ in range(10):  # a batch of the applier at a time, until none waits
        if not notices_apply().applied:
            break
    paid = InvoicePayment.objects.filter(biller=biller, outcome=InvoicePayment.Outcome.PAID)
    receipts_send(payment_ids=list(paid.values_list("pk", flat=True)))


def _findings(biller: Biller, doubles: list[Invoice]) -> int:
    """A finding of each double payment (as reconciliation's checks make them); the first one's id."""
    from payeasy.models import LedgerEntry
    from reconciliation.models import Finding

    first = 0
    for bill in doubles:
        double = LedgerEntry.objects.filter(invoice=bill, outcome="double_payment").first()
        assert double is not None, f"{bill.number} was paid twice"
        finding = Finding.objects.create(
            biller=biller,
            key=f"double:{double.pk}",
            kind=Finding.Kind.DOUBLE_PAYMENT,
            processing_date=datetime.date(2026, 11, 26),
            amount=double.amount,
            bank_code="0001",
            invoice=bill,
            entry_id=double.pk,
            links={"entries": [double.pk]},
            facts={"payments": 2},
        )
        first = first or finding.pk
    return first


def _teller_file(biller: Biller, bills: list[Invoice]) -> int:
    """A teller batch file paying ``bills`` at a bank's counter; its id."""
    from payeasy import codec
    from payeasy.models import TellerFile
    from payeasy.services.payments import notices_apply
    from payeasy.services.teller import teller_file_import

    header = codec.BatchHeader(biller.biller_code, "ﾃｽﾄ", "20261126", "0001", "ﾐｽﾞﾎｷﾞﾝｺｳ")
    records = [
        codec.BatchData(
            customer_number=bill.customer_number or "",
            confirmation_number=bill.confirmation_number or "",
            amount=bill.total,
            branch_code="101",
            paid_date="20261126",
            paid_time="110000",
            serial=f"{50 + i:08d}",
            payer_name_kana="ﾃｽﾄ ﾀﾛｳ",
            cancel=0,
        )
        for i, bill in enumerate(bills)
    ]
    batch = codec.make_batch_file(header, records, serial=1, crlf=True)
    assert teller_file_import(batch.name, codec.build_batch_file(batch)).accepted
    notices_apply()
    teller = TellerFile.objects.filter(biller=biller).order_by("pk").first()
    assert teller is not None
    return teller.pk


def _statement(biller: Biller, rows: int) -> int:
    from reconciliation.services.deposits import deposit_statement_import

    lines = "".join(f"2026-11-{1 + i % 28:02d},0001,{1000 + i},ﾍﾟｲｼﾞｰ ｼｭｳﾉｳｷﾝ\r\n" for i in range(rows))
    data = ("入金日,金融機関コード,金額,摘要\r\n" + lines).encode()
    return deposit_statement_import(actor=None, biller=biller, name="入金明細.csv", data=data).pk


def _webhooks(biller: Biller, deliveries: int) -> tuple[int, int]:
    from payeasy.models.webhooks import WebhookDelivery, WebhookEventType
    from payeasy.services.webhook_endpoints import webhook_endpoint_create

    endpoint, _secret = webhook_endpoint_create(
        actor=None,
        biller=biller,
        url="https://hooks.example.com/payeasy",
        description="経理システム",
        event_types=list(WebhookEventType.values),
    )
    rows = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            endpoint=endpoint,
            biller=biller,
            event_id=uuid.uuid4(),
            event_type=WebhookEventType.values[0],
            payload='{"type": "invoice.paid"}',
            status=WebhookDelivery.Status.FAILED,
            attempts=3,
            give_up_at=timezone.now() + datetime.timedelta(days=1),
            last_response_status=500,
            last_response_body="Internal Server Error",
        )
        for _ in range(deliveries)
    )
    return endpoint.pk, rows[0].pk


def _imports(biller: Biller, count: int, by: User) -> int:
    rows = ImportJob.objects.bulk_create(
        ImportJob(
            biller=biller,
            created_by=by,
            status=ImportJob.Status.FAILED,
            file_path="/nonexistent",
            file_name=f"請求データ{i}.csv",
            file_sha256=f"{i:064d}",
            error_count=1,
            errors=[{"row": 2, "column": "due_date", "message": "支払期限が発行日より前です"}],
        )
        for i in range(count)
    )
    return rows[0].pk


def _balance(biller: Biller, customer: Customer, items: int) -> None:
    from billing import services

    today = timezone.localdate()
    services.balance_account_set(
        actor=None,
        biller=biller,
        customer=customer,
        minimum_payment=5000,
        items=[
            {"date": today - datetime.timedelta(days=i + 1), "description": f"ご利用代金{i}", "amount": 3000}
            for i in range(items)
        ],
    )


def build_tenant(name: str, staff: User) -> Tenant:
    """One tenant of ``SIZES[name]``, with its clients: ``console`` (the administrator), ``portal`` (the
    consumer), ``corporate`` (the approver), ``public`` (nobody), ``totp`` (the approver between the
    password and the code)."""
    from django.conf import settings

    from billing import totp
    from billing.models import InvoiceApproval, Receipt
    from billing.paylater import token_for
    from billing.portal.account_views import TOTP_PENDING
    from billing.portal.services.invitations import customer_invitation_create
    from billing.services.api_keys import api_key_create
    from payeasy.demo import seed_sandbox_bank
    from payeasy.models import HandoffEndpoint, LedgerEntry, Message

    size = SIZES[name]
    ids: dict[str, Any] = {}
    biller = h.line_biller()
    for _ in range(size.billers):
        factories.make_biller()
    seed_sandbox_bank(staff, [biller])
    admin = factories.make_member(biller, email=f"admin@{biller.slug}.example")
    for i in range(size.members):
        factories.make_member(biller, role=Membership.Role.OPERATOR, email=f"op{i}@{biller.slug}.example")

    # the consumer: the open bill the pages open, the paid one with its receipt, the rest in bulk
    consumer = factories.make_customer(biller, code="D-000101", name="山田 太郎", email="taro@example.jp")
    payer = factories.make_portal_account(biller, consumer, email="taro@example.jp")
    ids["customer"] = consumer.pk
    opened = factories.make_invoice(biller=biller, customer=consumer, number=OPEN_NUMBER)
    paid = factories.make_invoice(biller=biller, customer=consumer, number=PAID_NUMBER)
    ids["invoice"] = opened.pk
    ids["paid_invoice"] = paid.pk
    bulk = _bulk_invoices(biller, consumer, "B-", size.invoices - 2)
    payable = [bill for bill in bulk if bill.status == Invoice.Status.PUBLISHED]
    line_paid = [paid, *payable[: size.paid - 1]]
    tellers = payable[size.paid - 1 : size.paid - 1 + size.tellers]
    _pay_over_the_line(biller, line_paid, line_paid[: size.doubles])
    ids["entry"] = LedgerEntry.objects.filter(invoice=paid, outcome="paid").get().pk
    receipt = Receipt.objects.filter(payment__invoice=paid).first()
    assert receipt is not None, "a paid bill has a receipt"
    ids["receipt"] = receipt.pk
    ids["finding"] = _findings(biller, line_paid[: size.doubles])
    ids["message"] = Message.objects.filter(biller=biller, message_type="1200").order_by("pk")[0].pk
    if not tellers:  # the small tenant: a bill of its own paid at the counter
        tellers = [factories.make_invoice(biller=biller, customer=consumer, number="2026-11-000102")]
    ids["teller_file"] = _teller_file(biller, tellers)
    shown = (
        Invoice.objects.filter(biller=biller, customer=consumer).order_by("pk").values_list("pk", flat=True)
    )
    ids["download"] = "&".join(f"ids={pk}" for pk in shown[:50])  # the portal's selected invoices
    ids["download_zip"] = "&".join(f"ids={pk}" for pk in shown[:10])
    ids["draft"] = factories.make_invoice(
        biller=biller, customer=consumer, number="2026-12-000101", published=False
    ).pk

    # the corporate customer: an approver (who logs in with a code) and a payer, bills to approve
    company = factories.make_customer(biller, code="K-900001", name="株式会社テスト商事", kind="corporate")
    approver = factories.make_portal_account(
        biller, company, role=CustomerAccount.Role.APPROVER, email="approver@corp.example"
    )
    factories.make_portal_account(
        biller, company, role=CustomerAccount.Role.PAYER, email="payer@corp.example"
    )
    CustomerAccount.objects.filter(pk=approver.pk).update(
        totp_secret=totp.new_secret(), totp_enabled_at=timezone.now()
    )
    corporate = factories.make_invoice(biller=biller, customer=company, number="2026-11-900001")
    ids["corporate_invoice"] = corporate.pk
    ids["company"] = company.pk
    decided = [corporate, *_bulk_invoices(biller, company, "K-", size.corporate)][::2]
    InvoiceApproval.objects.bulk_create(
        InvoiceApproval(
            biller=biller, invoice=bill, customer=company, decision="approved", decided_by=approver.user
        )
        for bill in decided
    )
    for i in range(size.customers):
        other = factories.make_customer(biller, code=f"C-{i:05d}", name=f"顧客 {i}")
        _bulk_invoices(biller, other, f"C{i:05d}-", 1)

    # pay-later orders, a balance, imports, webhooks, a deposit statement, invitations
    order = factories.make_invoice(biller=biller, kind=Invoice.Kind.PAYMENT_REQUEST, amount=12800)
    for _ in range(size.orders):
        factories.make_invoice(biller=biller, kind=Invoice.Kind.PAYMENT_REQUEST, amount=3000)
    ids["payment_request"] = order.pk
    ids["paylater_token"] = token_for(order)
    _balance(biller, consumer, size.items)
    ids["import"] = _imports(biller, size.imports, admin)
    for i in range(size.api_keys):
        api_key_create(actor=admin, biller=biller, name=f"会計システム{i}")
    ids["webhook"], ids["delivery"] = _webhooks(biller, size.deliveries)
    ids["statement"] = _statement(biller, size.deposits)
    invited = factories.make_customer(biller, code="D-000102", name="佐藤 花子")
    ids["portal_invitation"] = customer_invitation_create(
        actor=None, biller=biller, customer=invited, email="family@example.jp", send=False
    )[1]
    for i in range(size.invitations):
        customer_invitation_create(
            actor=None, biller=biller, customer=company, email=f"staff{i}@corp.example", send=False
        )
    ids["reset_uid"] = urlsafe_base64_encode(force_bytes(payer.user.pk))
    ids["reset_token"] = default_token_generator.make_token(payer.user)
    ids["handoff"] = HandoffEndpoint.objects.get(bank_code=settings.PAYEASY_SANDBOX_BANK_CODE).pk
    ids["biller"] = biller.pk

    tenant = Tenant(name=name, data=Data(slug=biller.slug, ids=ids))
    tenant.clients = {
        area: Client() for area in ("public", "portal", "corporate", "console", "staff", "totp")
    }
    tenant.clients["portal"].force_login(payer.user)
    tenant.clients["corporate"].force_login(approver.user)
    tenant.clients["console"].force_login(admin)
    tenant.clients["staff"].force_login(staff)
    session = tenant.clients["totp"].session
    # the password step's mark, dated an hour ahead: still fresh (5 minutes) however long the module runs
    at = int(time.time()) + 3600
    session[TOTP_PENDING] = {"biller": biller.pk, "user": approver.user.pk, "at": at}
    session.save()
    return tenant


def make_staff() -> User:
    return factories.make_user("staff@idc.test", is_idc_staff=True)
