"""The MPN simulator against a real commserver and worker: what it reports is what the books show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from billing.models import Invoice
from payeasy import codec
from payeasy.models import LedgerEntry, LineState, Message, Notice
from reconciliation.models import Finding
from tests.integration.conftest import ROOT, process_env
from tests.payeasy import line_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def simulate(port: int, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "manage.py", "mpn_simulate", *args, "--port", str(port)],
        cwd=ROOT,
        env=process_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_pay_scenario_pays_an_invoice_through_the_line(  # type: ignore[no-untyped-def]
    postgres, celery_broker, commserver_factory, worker_factory
) -> None:
    biller = h.line_biller()
    invoice = h.published_invoice(biller, price=5000)
    untouched = h.published_invoice(biller, price=7000)
    server = commserver_factory(**celery_broker)
    worker_factory(**celery_broker)
    out = simulate(
        server.port, celery_broker, "pay", "--biller", biller.biller_code, "--invoice", invoice.number
    )
    assert f"invoice {invoice.number} is paid" in out, out
    assert "online day" in out  # the line was closed: the simulator opened it first
    invoice.refresh_from_db(), untouched.refresh_from_db()
    assert (invoice.status, untouched.status) == ("paid", "published")
    assert list(Message.objects.order_by("id").values_list("message_type", "response_code")) == [
        ("0800", "0000"),
        ("1100", "0000"),
        ("1200", "0000"),
    ]
    assert LedgerEntry.objects.get().amount == 5500


def test_day_scenario(postgres, celery_broker, commserver_factory, worker_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    biller = h.line_biller()
    invoices = [h.published_invoice(biller, price=1000 + i) for i in range(10)]
    cancelled = h.published_invoice(biller, price=900)
    from billing.services.invoices import invoice_cancel

    invoice_cancel(actor=None, biller=biller, invoice=cancelled)
    server = commserver_factory(**celery_broker)
    worker_factory(**celery_broker)
    out = simulate(
        server.port, celery_broker, "day", "--biller", biller.biller_code, "--count", "1",
        "--rate", "50", "--duration", "1", "--out", str(tmp_path / "teller"),
    )  # fmt: skip
    assert "unanswered" not in out, out
    assert LineState.objects.get().state == "closed"
    # the storm: 20 copies, one notice; the resends: one of a stored payment, one recorded anew
    storm_key = out.split("copies of ")[1].split()[0]
    assert Notice.objects.filter(transaction_key=storm_key).count() == 1
    assert Message.objects.filter(transaction_key=storm_key, outcome="duplicate").count() == 19
    assert Notice.objects.filter(message__message_type="1700").count() == 1
    # the reversal of a teller payment, and the refused ones
    assert "reversal of an unknown payment: B006; from an ATM: A301" in out
    assert "DIFFER" in out  # the day plays a centre that counted one payment more than it sent
    # the teller file is a valid file for this biller's bill that the line did not pay
    (written,) = list((tmp_path / "teller").iterdir())
    batch = codec.parse_batch_file(written.name, written.read_bytes())
    teller_bill = next(i for i in invoices if i.customer_number == batch.records[0].customer_number)
    assert not Notice.objects.filter(customer_number=teller_bill.customer_number).exists()
    # after the workers: every bill the line paid is paid once; the reversed one is payable again
    import time

    deadline = time.monotonic() + 30
    while Notice.objects.filter(applied_at__isnull=True).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Notice.objects.filter(applied_at__isnull=True).exists()
    reversed_ = LedgerEntry.objects.get(outcome="reversal")
    assert Invoice.objects.get(pk=reversed_.invoice_id).status == "published"  # payable again
    standing = LedgerEntry.objects.filter(outcome="paid", reversed_by__isnull=True).values_list(
        "invoice_id", flat=True
    )
    assert len(list(standing)) == len(set(standing))  # no bill paid twice as "paid"
    # reconciliation finds what the day played, and the books hold
    from reconciliation.services.checks import reconcile_check
    from reconciliation.services.reconcile import reconcile

    day = LineState.objects.get().processing_date
    from payeasy.services.teller import teller_file_import

    assert teller_file_import(written.name, written.read_bytes()).accepted
    from payeasy.services.payments import notices_apply

    notices_apply(limit=1000)
    reconcile(biller=biller, processing_date=day)
    found = set(Finding.objects.for_biller(biller).values_list("kind", "detail"))
    assert {
        ("double_payment", ""),
        ("unknown_reversal", ""),
        ("counter_mismatch", ""),
        ("batch_line_mismatch", "both_routes"),
        ("provisional", "cancelled"),
    } <= found, found
    assert reconcile_check(billers=[biller]) == []
