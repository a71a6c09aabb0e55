"""The communication server over real TCP, with real worker processes, on PostgreSQL and Redis."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from billing.models import Invoice
from payeasy.models import LedgerEntry, Message, Notice
from tests.integration.conftest import wait_for
from tests.payeasy import line_helpers as h

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def line(postgres: None, celery_broker, commserver_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A biller with a published invoice and a running commserver whose line is open (its wake-ups go
    to the test's broker)."""
    biller = h.line_biller()
    invoice = h.published_invoice(biller, price=5000)
    server = commserver_factory(**celery_broker)
    with h.LineClient(server.port) as client:
        client.send(h.open_day(biller))
        assert client.receive(1)[0].response_code == "0000"
    return biller, invoice, server


def test_a_frame_split_across_reads_and_two_frames_in_one_read(line) -> None:  # type: ignore[no-untyped-def]
    biller, invoice, server = line
    inquiry, payment = h.inquiry(biller, invoice), h.payment(biller, invoice)
    data = h.frame(inquiry) + h.frame(payment)
    with h.LineClient(server.port) as client:
        for i in range(0, 63, 7):  # the first frame in 7-byte pieces…
            client.send_raw(data[i : i + 7])
            time.sleep(0.01)
        client.send_raw(data[63:])  # …then the rest of it and the whole second frame in one write
        responses = client.receive(2)
    assert h.answer_of(responses, inquiry).response_code == "0000"
    assert h.answer_of(responses, payment).response_code == "0000"
    assert Notice.objects.filter(transaction_key=payment.transaction_key).count() == 1


def test_garbage_on_one_connection_while_another_keeps_working(line) -> None:  # type: ignore[no-untyped-def]
    biller, invoice, server = line
    with h.LineClient(server.port) as good, h.LineClient(server.port) as bad:
        bad.send_raw(b"12xx not a length prefix")
        good.send(h.inquiry(biller, invoice))
        assert good.receive(1)[0].response_code == "0000"
        assert bad.closed_by_server()
        bad_header = h.LineClient(server.port)
        bad_header.send_raw(b"0010" + b"0123456789")  # a frame whose header cannot be read
        assert bad_header.closed_by_server()
        good.send(h.payment(biller, invoice))
        assert good.receive(1)[0].response_code == "0000"
    wait_for(lambda: Message.objects.filter(outcome="unreadable").count() == 2)


def test_twenty_identical_payments_at_once_are_one_payment(line, celery_broker, worker_factory) -> None:  # type: ignore[no-untyped-def]
    biller, invoice, server = line
    payment = h.payment(biller, invoice)
    codes: list[str] = []
    barrier = threading.Barrier(20)

    def pay() -> None:
        with h.LineClient(server.port) as client:
            barrier.wait()
            client.send(payment)
            codes.append(client.receive(1)[0].response_code)

    threads = [threading.Thread(target=pay) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert codes == ["0000"] * 20
    assert Notice.objects.filter(transaction_key=payment.transaction_key).count() == 1
    assert Message.objects.filter(transaction_key=payment.transaction_key).count() == 20
    worker_factory(**celery_broker)
    wait_for(lambda: Invoice.objects.get(pk=invoice.pk).status == "paid")
    time.sleep(0.5)
    assert LedgerEntry.objects.filter(invoice=invoice).count() == 1


def test_closed_line_answers_a001_and_records_nothing(line) -> None:  # type: ignore[no-untyped-def]
    biller, invoice, server = line
    with h.LineClient(server.port) as client:
        client.send(h.close(biller, 1), h.close(biller, 2))
        assert [r.response_code for r in client.receive(2)] == ["0000", "0000"]
        payment = h.payment(biller, invoice)
        client.send(payment)
        assert client.receive(1)[0].response_code == "A001"
    assert not Notice.objects.exists()
    assert Message.objects.get(transaction_key=payment.transaction_key).outcome == "discarded"


def test_pipelined_answers_may_come_out_of_order(line) -> None:  # type: ignore[no-untyped-def]
    """A payment waits for its commit (here: for a lock the test holds); an inquiry behind it on the
    same connection is answered first. The client matches answers by type and key."""
    biller, invoice, server = line
    import psycopg

    from tests.integration.conftest import database_url

    blocker = psycopg.connect(database_url())
    blocker.execute("LOCK TABLE payeasy_notice IN SHARE ROW EXCLUSIVE MODE")
    payment, inquiry = h.payment(biller, invoice), h.inquiry(biller, invoice)
    try:
        with h.LineClient(server.port) as client:
            client.send(payment, inquiry)
            first = client.receive(1)
            blocker.rollback()
            second = client.receive(1)
    finally:
        blocker.close()
    assert [r.message_type for r in first + second] == ["1110", "1210"]
    assert h.answer_of(first + second, payment).response_code == "0000"


def test_nothing_acknowledged_is_lost_when_the_commserver_is_killed(line) -> None:  # type: ignore[no-untyped-def]
    biller, _invoice, server = line
    invoices = [h.published_invoice(biller, price=100 + i) for i in range(30)]
    acknowledged: list[str] = []
    client = h.LineClient(server.port)
    payments = [h.payment(biller, inv) for inv in invoices]
    client.send(*payments)
    try:
        for response in client.receive(10):
            acknowledged.append(response.transaction_key)
        os.kill(server.proc.pid, signal.SIGKILL)
        while True:
            acknowledged += [r.transaction_key for r in client.receive(1)]
    except (TimeoutError, ConnectionError, OSError):
        pass
    client.close()
    server.proc.wait(10)
    assert len(acknowledged) >= 10
    stored = set(Notice.objects.values_list("transaction_key", flat=True))
    assert set(acknowledged) <= stored


def test_sigterm_stops_cleanly_answering_what_it_read(line) -> None:  # type: ignore[no-untyped-def]
    biller, _invoice, server = line
    invoices = [h.published_invoice(biller, price=200 + i) for i in range(20)]
    payments = [h.payment(biller, inv) for inv in invoices]
    with h.LineClient(server.port) as client:
        client.send(*payments)
        responses = client.receive(1)
        server.proc.send_signal(signal.SIGTERM)
        try:
            while True:
                responses += client.receive(1)
        except (TimeoutError, ConnectionError, OSError):
            pass
    assert server.proc.wait(15) == 0, server.output()
    assert "commserver stopped" in server.output()
    acknowledged = {r.transaction_key for r in responses if r.response_code == "0000"}
    stored = set(Notice.objects.values_list("transaction_key", flat=True))
    assert acknowledged <= stored
    assert len(acknowledged) == len(stored)  # what was stored was answered before the close


def test_worker_killed_during_application_applies_exactly_once_after_restart(  # type: ignore[no-untyped-def]
    line, celery_broker, worker_factory
) -> None:
    biller, invoice, server = line
    import psycopg

    from tests.integration.conftest import database_url

    # hold the invoice row: the worker's batch transaction blocks inside the application
    blocker = psycopg.connect(database_url())
    try:
        blocker.execute("SELECT set_config('app.bypass', 'tests', false)")  # any tenant's row
        blocker.execute("SELECT 1 FROM billing_invoice WHERE id = %s FOR UPDATE", [invoice.pk])
        with h.LineClient(server.port) as client:
            client.send(h.payment(biller, invoice))
            assert client.receive(1)[0].response_code == "0000"
        worker = worker_factory(**celery_broker)

        def blocked() -> bool:
            with blocker.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE NOT l.granted AND a.datname = current_database()"
                )
                return cur.fetchone()[0] > 0

        wait_for(blocked)
        worker.proc.kill()  # SIGKILL mid-application
        worker.proc.wait(10)
    finally:
        blocker.rollback()
        blocker.close()
    assert Notice.objects.get().applied_at is None  # its transaction died with the worker
    worker_factory(**celery_broker, PAYEASY_SWEEP_AFTER_SECONDS="0")
    from payeasy import tasks

    tasks.notices_sweep.delay()  # what beat does every few seconds
    wait_for(lambda: Invoice.objects.get(pk=invoice.pk).status == "paid")
    time.sleep(0.5)
    assert LedgerEntry.objects.filter(invoice=invoice).count() == 1


@pytest.mark.parametrize("celery_broker", ["redis"], indirect=True)
def test_redis_flushed_with_payments_queued_all_applied_by_the_sweeper(  # type: ignore[no-untyped-def]
    postgres, celery_broker, worker_factory, commserver_factory, tmp_path: Path
) -> None:
    import redis

    biller = h.line_biller()
    invoices = [h.published_invoice(biller, price=300 + i) for i in range(25)]
    server = commserver_factory(**celery_broker)
    with h.LineClient(server.port) as client:
        client.send(h.open_day(biller))
        client.receive(1)
        client.send(*[h.payment(biller, inv) for inv in invoices])
        assert {r.response_code for r in client.receive(25)} == {"0000"}
    redis.Redis.from_url(celery_broker["REDIS_URL"]).flushdb()  # every queued wake-up is gone
    assert Notice.objects.filter(applied_at__isnull=True).count() == 25
    worker_factory(**celery_broker, PAYEASY_SWEEP_AFTER_SECONDS="1")
    from payeasy import tasks

    time.sleep(1.1)
    tasks.notices_sweep.delay()
    wait_for(lambda: Invoice.objects.filter(biller=biller, status="paid").count() == 25)
    assert LedgerEntry.objects.count() == 25
