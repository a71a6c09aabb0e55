"""The live event streams on the ASGI service, started as payeasy-events.service starts it (gunicorn with
the uvicorn worker, config.asgi): a logged-in customer's stream gets the invoice's status, then *paid*
when the payment is committed and announced; many open streams hold no database connection each.

On PostgreSQL with the application role (DATABASE_OWNER_URL beside DATABASE_URL) the stream's reads run
under row-level security: after the request's transaction has ended, a read outside the invoice's tenant
would see no invoice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from billing.models import Invoice
from payeasy import live
from tests.factories import make_biller, make_customer, make_invoice, make_portal_account
from tests.integration.conftest import ROOT, process_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STREAMS = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def started_events(redis_url: str, tmp_path: Path, **env: str) -> Iterator[int]:
    """The events service's command line (config/deploy/systemd/payeasy-events.service) on a free port."""
    port = free_port()
    log = tmp_path / "events.log"
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "config.asgi:application"),
                *("-k", "uvicorn_worker.UvicornWorker", "--bind", f"127.0.0.1:{port}", "--workers", "1"),
                *("--graceful-timeout", "5", "--no-control-socket", "--error-logfile", "-"),
            ],
            cwd=ROOT,
            env=process_env(REDIS_URL=redis_url, PAYEASY_RUN_DIR=str(tmp_path / "run"), **env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "Application startup complete" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def events_service(redis_url: str, tmp_path: Path) -> Iterator[int]:
    with started_events(redis_url, tmp_path) as port:
        yield port


def backends() -> int:
    """Sessions on the test database other than this one (PostgreSQL), or 0."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def closing_connection(function: Any) -> Any:
    """``function`` for a thread of its own: the thread's database connection closed when it returns (the
    test database is dropped at the end of the run, which open sessions would prevent)."""

    def run() -> Any:
        try:
            return function()
        finally:
            connection.close()

    return run


async def open_stream(port: int, path: str, session: str) -> tuple[asyncio.StreamReader, Any, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sessionid={session}\r\n\r\n".encode())
    await writer.drain()
    return reader, writer, await next_status(reader, b"")


async def next_status(reader: asyncio.StreamReader, buffered: bytes) -> dict[str, Any]:
    data = buffered
    while b"event: status\ndata: " not in data or b"\n\n" not in data.split(b"event: status\ndata: ", 1)[1]:
        chunk = await asyncio.wait_for(reader.read(4096), 20)
        assert chunk, f"the stream ended: {data[:400]!r}"
        data += chunk
    payload = data.split(b"event: status\ndata: ", 1)[1].split(b"\n", 1)[0]
    return dict(json.loads(payload))


def watched_invoice(number: str) -> tuple[Invoice, str, str]:
    """A customer's published bill, the session id of the customer logged in, and the bill's stream path."""
    biller = make_biller()
    customer = make_customer(biller)
    today = timezone.localdate()
    invoice = make_invoice(
        biller=biller,
        customer=customer,
        number=number,
        amount=1200,
        issue_date=today,
        due_date=today + datetime.timedelta(days=20),
    )
    client = Client()
    client.force_login(make_portal_account(biller, customer).user)
    session = client.cookies["sessionid"].value
    return invoice, session, f"/b/{biller.slug}/my/invoices/{invoice.pk}/events/"


def test_open_pages_are_told_paid_and_hold_no_database_connection(
    events_service: int, redis_url: str
) -> None:
    invoice, session, path = watched_invoice("ASGI-1")
    idle = backends()

    async def scenario() -> tuple[list[dict[str, Any]], int, list[dict[str, Any]]]:
        streams = []
        for _ in range(0, STREAMS, 10):  # pages opening over a moment, not in one instant
            streams += await asyncio.gather(
                *(open_stream(events_service, path, session) for _page in range(10))
            )
        first = [status for _, _, status in streams]
        await asyncio.sleep(0.5)
        holding = await asyncio.to_thread(closing_connection(backends))
        await asyncio.to_thread(
            closing_connection(
                lambda: Invoice.objects.filter(pk=invoice.pk).update(
                    status=Invoice.Status.PAID, paid_at=timezone.now()
                )
            )
        )
        await asyncio.to_thread(
            lambda: live._redis().publish(
                live.invoice_channel(invoice.pk), json.dumps({"type": "invoice.paid"})
            )
        )
        told = await asyncio.gather(*(next_status(reader, b"") for reader, _, _ in streams))
        for _, writer, _ in streams:
            writer.close()
        return first, holding, told

    live._redis.cache_clear()
    try:
        # on a thread of its own: a browser test driven by Playwright's sync API may have left a loop
        # running on this one, where asyncio.run refuses to start
        with ThreadPoolExecutor(1) as pool:
            first, holding, told = pool.submit(asyncio.run, scenario()).result()
    finally:
        live._redis.cache_clear()
    assert [s["status"] for s in first] == ["published"] * STREAMS
    assert [s["status"] for s in told] == ["paid"] * STREAMS
    assert all(s["invoice"] == invoice.pk for s in told)
    # the streams wait on Redis, not on PostgreSQL: no connection each (a few for the service itself)
    assert holding - idle <= 3, f"{holding - idle} database sessions held by {STREAMS} open streams"


BURST = 150
OPENING_LIMIT = 8


def test_a_burst_of_pages_opening_at_once_takes_no_more_connections_than_the_opening_limit(
    redis_url: str, tmp_path: Path
) -> None:
    """150 pages open their streams in the same instant (a reminder e-mail read by everyone at once):
    each gets its first status, and the events service never holds more database sessions than its
    opening limit (``EVENTS_OPENING_LIMIT``, payeasy.live_admission) — not one per opening page, which
    would pass PostgreSQL's ``max_connections``."""
    if connection.vendor != "postgresql":
        pytest.skip("counts PostgreSQL sessions")
    _invoice, session, path = watched_invoice("ASGI-BURST")
    idle = backends()
    peak = [0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], backends())
            time.sleep(0.01)

    with started_events(redis_url, tmp_path, EVENTS_OPENING_LIMIT=str(OPENING_LIMIT)) as port:

        async def burst() -> list[dict[str, Any]]:
            streams = await asyncio.gather(*(open_stream(port, path, session) for _ in range(BURST)))
            for _, writer, _ in streams:
                writer.close()
            return [status for _, _, status in streams]

        sampler = threading.Thread(target=closing_connection(sample))
        sampler.start()
        try:
            with ThreadPoolExecutor(1) as pool:
                first = pool.submit(asyncio.run, burst()).result()
        finally:
            sampling.set()
            sampler.join()
    assert [s["status"] for s in first] == ["published"] * BURST
    # the sampler's own session and the service's own (Redis-free) setup aside
    assert peak[0] - idle <= OPENING_LIMIT + 2, f"{peak[0] - idle} sessions for {BURST} opening pages"
