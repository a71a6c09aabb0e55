"""Billing's record of the payments on its bills (billing.InvoicePayment, billing.Receipt), written by
payeasy's applier through billing.services.payments in the ledger's own transaction; the portal reads
only that record; the migration copies the payments and receipts made before, receipt numbers kept."""

from __future__ import annotations

import ast
import datetime
import pathlib
import re
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Biller, Invoice, InvoicePayment, Receipt
from payeasy.models import LedgerEntry, Notice
from payeasy.services.payments import notices_apply
from tests.factories import make_customer, make_portal_account
from tests.payeasy import line_helpers as h

ROOT = pathlib.Path(__file__).resolve().parents[2]
send = h.send


@pytest.fixture
def biller(db: None) -> Biller:
    return h.open_line_biller()


def facts(invoice: Invoice) -> list[tuple[str, str, int, str]]:
    rows = InvoicePayment.objects.filter(invoice=invoice).order_by("id")
    return list(rows.values_list("outcome", "reason", "amount", "channel"))


def test_each_ledger_entry_on_a_bill_is_billings_payment_too(biller: Biller) -> None:
    invoice = h.published_invoice(biller, price=3000)
    first = h.payment(biller, invoice, channel="05")
    second = h.payment(biller, invoice, channel="02")
    send(first, second)
    notices_apply()
    send(h.reversal(biller, first))
    notices_apply()
    invoice.refresh_from_db()
    assert invoice.status == "paid"  # the second payment stands
    assert facts(invoice) == [
        ("paid", "", 3300, "info_link"),
        ("double_payment", "", 3300, "atm"),
        ("reversal", "", -3300, "teller"),
    ]
    for entry in LedgerEntry.objects.filter(invoice=invoice):
        payment = InvoicePayment.objects.get(biller=biller, entry_ref=entry.pk)
        assert (payment.amount, payment.outcome) == (entry.amount, entry.outcome)
        assert (payment.paid_at, payment.bank_code) == (entry.notice.paid_at, entry.notice.bank_code)
        assert payment.payment_key == entry.notice.transaction_key


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": 3299}, "amount_differs"),  # the customer may act on it: said as it is
        ({"bank": "0005"}, "checking"),  # the network's contract business: "being checked"
        ({"channel": "06"}, "checking"),
    ],
)
def test_a_provisional_payment_is_told_in_the_customers_terms(
    biller: Biller, change: dict[str, Any], reason: str
) -> None:
    invoice = h.published_invoice(biller, price=3000)
    send(h.payment(biller, invoice, **change))
    notices_apply()
    assert [(o, r) for o, r, _a, _c in facts(invoice)] == [("provisional", reason)]
    invoice.refresh_from_db()
    assert invoice.status == "published"


def test_a_payment_on_no_bill_is_not_billings(biller: Biller) -> None:
    invoice = h.published_invoice(biller, price=3000)
    send(h.payment(biller, invoice, confirmation_number="1"))
    notices_apply()
    assert LedgerEntry.objects.get().invoice_id is None
    assert not InvoicePayment.objects.exists()


def test_billing_fails_the_ledger_fails(biller: Biller, monkeypatch: pytest.MonkeyPatch) -> None:
    """One transaction: when billing cannot record the payment, the ledger entry is not written either
    and the notice waits (with its error) for the sweeper."""
    invoice = h.published_invoice(biller, price=3000)
    send(h.payment(biller, invoice))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("billing is down")

    monkeypatch.setattr(InvoicePayment.objects, "bulk_create", refuse)
    result = notices_apply()
    assert result.applied == 0 and len(result.failed) == 1
    assert not LedgerEntry.objects.exists() and not InvoicePayment.objects.exists()
    invoice.refresh_from_db()
    assert invoice.status == "published" and invoice.paid_at is None
    assert "billing is down" in Notice.objects.get().last_error
    monkeypatch.undo()
    assert notices_apply().applied == 1  # the sweeper's next run
    assert [o for o, *_rest in facts(invoice)] == ["paid"]


def test_a_rolled_back_batch_leaves_neither(biller: Biller) -> None:
    invoice = h.published_invoice(biller, price=3000)
    send(h.payment(biller, invoice))
    with pytest.raises(RuntimeError), transaction.atomic():
        assert notices_apply().applied == 1
        assert InvoicePayment.objects.count() == LedgerEntry.objects.count() == 1
        raise RuntimeError("rolled back")
    assert not InvoicePayment.objects.exists() and not LedgerEntry.objects.exists()
    invoice.refresh_from_db()
    assert invoice.status == "published"


def test_the_receipt_is_billings_and_sent_once(  # type: ignore[no-untyped-def]
    biller: Biller, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    invoice = h.published_invoice(biller, price=3000)
    send(h.payment(biller, invoice))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notices_apply()
    assert callbacks  # billing's service announced billing.tasks.receipts_send
    receipt = Receipt.objects.get()
    assert receipt.payment.invoice_id == invoice.pk and receipt.biller_id == biller.pk
    assert len(mailoutbox) == 1 and receipt.payment.payment_key in mailoutbox[0].body
    with pytest.raises(TypeError):
        Receipt.objects.filter(pk=receipt.pk).delete()


def test_the_portal_pages_read_no_payeasy_table(biller: Biller, client: Client) -> None:
    customer = make_customer(biller)
    account = make_portal_account(biller, customer, email="hanako@example.jp")
    invoice = h.published_invoice(biller, price=3000, customer=customer)
    send(h.payment(biller, invoice))
    notices_apply()
    payment = InvoicePayment.objects.get()
    receipt = Receipt.objects.create(biller=biller, payment=payment)
    client.force_login(account.user)
    base = f"/b/{biller.slug}/my/"
    with CaptureQueriesContext(connection) as queries:
        pages = [client.get(base + path) for path in ("payments/", "receipts/", f"receipts/{receipt.pk}/")]
    assert [p.status_code for p in pages] == [200, 200, 200]
    assert all("3,300" in p.content.decode() for p in pages)
    assert invoice.number in pages[0].content.decode() and invoice.number in pages[1].content.decode()
    assert [q["sql"] for q in queries.captured_queries if "payeasy_" in q["sql"]] == []


def test_payeasy_writes_no_sql_on_billings_tables() -> None:
    """payeasy changes billing's rows through billing's services and models, never by SQL of its own."""
    from django.apps import apps

    tables = sorted(m._meta.db_table for m in apps.get_app_config("billing").get_models())
    named = re.compile(r"\b(" + "|".join(tables) + r")\b")
    found = []
    for path in sorted((ROOT / "payeasy").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and named.search(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_the_migration_keeps_receipt_numbers(transactional_db: None) -> None:
    from django.db.migrations.executor import MigrationExecutor

    from billing.dbsecurity import as_owner
    from tests.factories import make_biller, make_invoice

    before = [("payeasy", "0010_row_level_security")]
    with as_owner(connection):
        MigrationExecutor(connection).migrate(before)
    old = MigrationExecutor(connection).loader.project_state(before).apps
    biller = make_biller()
    invoice = make_invoice(biller=biller, amount=3000)
    OldNotice = old.get_model("payeasy", "Notice")
    OldEntry = old.get_model("payeasy", "LedgerEntry")
    OldReceipt = old.get_model("payeasy", "Receipt")
    paid_at = timezone.now() - datetime.timedelta(days=1)
    entries = []
    for n, (outcome, reason, channel) in enumerate(
        [("paid", "", "05"), ("provisional", "bank_not_contracted", "02"), ("provisional", "", "01")]
    ):
        notice = OldNotice.objects.create(
            transaction_key=f"K{n:025d}",
            kind="payment",
            biller_id=biller.pk,
            key_date=paid_at.date(),
            customer_number=invoice.customer_number,
            confirmation_number=invoice.confirmation_number,
            amount=invoice.total,
            bank_code="0001",
            branch_code="001",
            channel=channel,
            paid_at=paid_at,
            applied_at=paid_at,
        )
        entries.append(
            OldEntry.objects.create(
                biller_id=biller.pk,
                notice=notice,
                invoice_id=invoice.pk if n < 2 else None,  # the third matched no bill
                outcome=outcome,
                reason=reason,
                amount=invoice.total,
            )
        )
    OldReceipt.objects.create(id=41, entry=entries[0])
    with as_owner(connection):
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert facts(invoice) == [("paid", "", 3300, "info_link"), ("provisional", "checking", 3300, "atm")]
    receipt = Receipt.objects.get()
    assert receipt.pk == 41 and receipt.payment.entry_ref == entries[0].pk and receipt.biller_id == biller.pk
    # the next receipt number follows the copied ones
    second = h.published_invoice(biller, price=100)
    from tests.factories import make_payment

    later = Receipt.objects.get(payment=make_payment(second))  # sent on commit (autocommit here)
    assert later.pk > 41
