"""The MPN line under load (issue: communication server), on PostgreSQL and Redis, with pgbench beside it.

One run, in this order, against a commserver started with production settings:

1. pgbench ``simple-update`` TPS on this machine now — the yardstick every figure is reported beside;
2. acknowledged payments: 1,000 payments/s for 60 s over 4 pipelined connections to the line alone
   (commserver and PostgreSQL) — target: the full rate sustained, ack p99 ≤ 15 ms — first in plain TCP
   (``--insecure-plaintext``), then the same over mutual TLS (a second commserver with the production
   TLS settings, certificates made for the run; the simulator presents its client certificate): both
   are reported side by side. Then the workers start (payments at ``nice 10``, receipts and webhooks at
   ``nice 19``) and apply the 126,000 stored payments: their throughput is reported;
3. frame sent → invoice paid: 500 payments/s for 60 s of bills nobody paid yet, workers running,
   measured to the ``invoice.paid`` live event (published after the commit) — target p99 ≤ 500 ms;
   the acks of this phase are reported too (the line with the workers busy beside it). Afterwards
   every payment is applied exactly once: one notice, one ledger entry, each bill paid once;
4. inquiries: 200/s for 60 s of bills drawn at random from 1,000,000 published ones — target p99 ≤ 25 ms.

BENCH_LINE_SECONDS shortens every phase, BENCH_LINE_INVOICES the published bills (for a quick look).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from billing.models import Biller, Invoice, Receipt
from payeasy import simulator
from payeasy.models import LedgerEntry, Notice
from tests.bench.conftest import (
    ROOT,
    import_invoices_argv,
    owner_execute,
    production_env,
    report,
    run_measured,
)
from tests.bench.generate import write_invoices_csv
from tests.bench.test_invoice_import import load_customers
from tests.conftest import need
from tests.factories import make_biller, make_contract
from tests.integration.conftest import celery_worker_argv
from tests.payeasy import tls_helpers
from tests.payeasy.tls_helpers import Pki

SECONDS = float(os.environ.get("BENCH_LINE_SECONDS", 60))
INVOICES = int(os.environ.get("BENCH_LINE_INVOICES", 1_000_000))
CUSTOMERS = 100_000
ACK_RATE, ACK_P99_MS = 1000.0, 15.0
PAID_RATE, PAID_P99_MS = 500.0, 500.0
INQUIRY_RATE, INQUIRY_P99_MS = 200.0, 25.0
CONNECTIONS = 4
WARM_UP_SECONDS = 3.0

pytestmark = pytest.mark.django_db(transaction=True)


def bench_redis_url() -> str:
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    import redis

    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        need(False, f"the line benchmark needs Redis at {url}: {exc}")
    return url


def pgbench_tps(seconds: float) -> float:
    """pgbench's built-in simple-update script, 4 clients, on a scratch database of this server."""
    binary = shutil.which("pgbench")
    need(binary is not None, "pgbench is not installed (Debian: postgresql-client)")
    import psycopg

    from tests.conftest import owner_credentials

    owner = owner_credentials()  # CREATE DATABASE is the owner's (the application role may not)
    base = ["-h", str(owner["host"]), "-p", str(owner["port"]), "-U", str(owner["user"])]
    name = f"bench_pgbench_{connection.settings_dict['NAME']}"  # one per test database: runs side by side

    def admin(sql: str) -> None:
        with psycopg.connect(**owner, dbname="postgres", autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(sql)  # type: ignore[arg-type]

    admin(f"DROP DATABASE IF EXISTS {name}")
    admin(f"CREATE DATABASE {name}")
    try:
        subprocess.run([binary, *base, "-i", "-q", "-s", "10", name], check=True, capture_output=True)
        out = subprocess.run(
            [
                binary,
                *base,
                "-b",
                "simple-update",
                "-c",
                "4",
                "-j",
                "2",
                "-T",
                str(int(seconds)),
                name,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        admin(f"DROP DATABASE IF EXISTS {name}")
    match = re.search(r"tps = ([\d.]+)", out)
    assert match, out
    return float(match.group(1))


class Processes:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env = tmp, env
        self.procs: list[tuple[subprocess.Popen[str], Path]] = []

    def start(self, name: str, args: list[str], ready: str, **extra_env: str) -> str:
        log = self.tmp / f"{name}.log"
        env = {**self.env, **extra_env}
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True
        )
        self.procs.append((proc, log))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if ready in text:
                return text
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited:\n{text}")
            time.sleep(0.1)
        raise AssertionError(f"{name} not ready:\n{log.read_text(errors='replace')}")

    def stop(self) -> None:
        for proc, _log in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, _log in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_workers(processes: Processes) -> None:
    # one worker applies payments; one sends receipts and webhooks, at the lowest priority: the line and
    # the ledger come first on a shared box (docs/line.md). E-mail goes to Django's in-memory backend —
    # the SMTP relay is outside the product — after the receipts are rendered as they would be.
    # the queue names as the settings define them (before the queues by kind: "celery" and "notify")
    payments = getattr(settings, "PAYMENTS_QUEUE", "celery")
    background = ",".join(getattr(settings, "BACKGROUND_QUEUES", ("notify",)))
    for name, queue, nice in (("apply", payments, "10"), ("notify", background, "19")):
        processes.start(
            f"worker-{name}",
            ["nice", "-n", nice, *celery_worker_argv(queues=queue, hostname=f"bench-{name}@%h")],
            " ready.",
        )


@dataclasses.dataclass
class Line:
    biller: Biller
    port: int  # the commserver on plain TCP (--insecure-plaintext)
    tls_port: int  # the commserver on mutual TLS
    pki: Pki
    redis_url: str
    processes: Processes


def start_commserver(processes: Processes, name: str, *args: str, **env: str) -> int:
    text = processes.start(
        name,
        [sys.executable, "manage.py", "commserver", "--port", "0", *args],
        "commserver listening on",
        **env,
    )
    return int(re.search(r"commserver listening on [\d.]+:(\d+)", text).group(1))  # type: ignore[union-attr]


@pytest.fixture
def line_env(postgres_only: None, tmp_path: Path) -> Iterator[Line]:
    biller = make_biller(payee_number="58998", biller_code="58998001", slug="bench-line")
    make_contract(biller, "0001", channels=("01", "02", "03", "05"))
    load_customers(biller, CUSTOMERS)
    path = tmp_path / "invoices.csv"
    write_invoices_csv(path, invoices=INVOICES, customers=CUSTOMERS)
    run_measured(import_invoices_argv(path, biller), production_env())
    path.unlink()
    # the import's WAL is flushed now, not during the measurements (the owner's to run)
    owner_execute("VACUUM ANALYZE billing_invoice", "CHECKPOINT")
    redis_url = bench_redis_url()
    processes = Processes(tmp_path, production_env(REDIS_URL=redis_url, DJANGO_EMAIL_BACKEND="locmem"))
    pki = tls_helpers.make_pki(tmp_path / "pki")  # made for the run, none committed
    try:
        port = start_commserver(processes, "commserver", "--insecure-plaintext")
        tls_port = start_commserver(processes, "commserver-tls", **pki.server_env())
        yield Line(biller, port, tls_port, pki, redis_url, processes)
    finally:
        processes.stop()


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def _phase(port: int, frames: simulator.Frames, targets, tls=None, **kw) -> simulator.Stats:  # type: ignore[no-untyped-def]
    async with simulator.Line("127.0.0.1", port, frames, tls=tls) as line:
        return await simulator.load(line, targets, connections=CONNECTIONS, **kw)


def simulate_load(
    port: int,
    biller: Biller,
    processes: Processes,
    bills: int,
    *,
    skip: int,
    rate: float,
    seconds: float,
    tls: Sequence[str] = (),
) -> dict:  # type: ignore[type-arg]
    """``manage.py mpn_simulate load`` in its own process (``tls``: its --tls-* flags); its figures as
    written to ``--json``."""
    out = processes.tmp / "load.json"
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "mpn_simulate",
            "load",
            "--port",
            str(port),
            "--biller",
            biller.biller_code,
            "--invoices",
            str(bills),
            "--skip",
            str(skip),
            "--rate",
            str(rate),
            "--duration",
            str(seconds),
            "--connections",
            str(CONNECTIONS),
            "--json",
            str(out),
            *tls,
        ],
        cwd=ROOT,
        env=processes.env,
        check=True,
        capture_output=True,
        timeout=seconds + 300,
    )
    return json.loads(out.read_text())


def wait_applied(timeout: float) -> float:
    started = time.perf_counter()
    deadline = started + timeout
    while Notice.objects.filter(applied_at__isnull=True).exists():
        assert time.perf_counter() < deadline, "notices still waiting"
        time.sleep(0.2)
    return time.perf_counter() - started


def test_line_speed(line_env: Line) -> None:
    biller, port, redis_url, processes = (
        line_env.biller,
        line_env.port,
        line_env.redis_url,
        line_env.processes,
    )
    pki = line_env.pki
    tps = pgbench_tps(min(SECONDS, 30))
    owner_execute("CHECKPOINT")  # pgbench's WAL is written out now, not during the measurements

    state = simulator.line_state()
    day = simulator.processing_day(state)
    frames = simulator.Frames(day, simulator.serial_base(simulator.CENTRE, day))

    async def open_day() -> None:
        async with simulator.Line("127.0.0.1", port, frames) as line:
            answer = await line.request(frames.open_day(biller.biller_code))
            assert answer is not None and answer.code == "0000"

    _run(open_day())
    ack_count = int(ACK_RATE * SECONDS)
    paid_count = int(PAID_RATE * SECONDS)
    warm_count = int(ACK_RATE * WARM_UP_SECONDS)
    targets = simulator.targets_load(
        biller_codes=[biller.biller_code], limit=2 * (warm_count + ack_count) + paid_count
    )
    assert len(targets) == 2 * (warm_count + ack_count) + paid_count
    everything = list(targets)
    # warm-up, not measured: connections, caches (its bills are counted below)
    _run(_phase(port, frames, targets[:warm_count], rate=ACK_RATE, duration=WARM_UP_SECONDS))
    targets = targets[warm_count:]

    # 2. acknowledged payments: the line alone (commserver and PostgreSQL); the workers start after it,
    # and applying what it stored is measured as their throughput
    # (the MPN side is another system: the simulator runs in a process of its own, as it would)
    ack = simulate_load(port, biller, processes, ack_count, skip=warm_count, rate=ACK_RATE, seconds=SECONDS)
    targets = targets[ack_count:]

    # 2b. the same over mutual TLS, to the commserver with the production TLS settings: its own warm-up
    # (handshakes, caches), then the simulator process with the client certificate; the bills are the
    # next ones (nothing is applied yet, so the published bills' order is unchanged)
    frames = simulator.Frames(day, simulator.serial_base(simulator.CENTRE, day))
    tls_warm, targets = targets[:warm_count], targets[warm_count:]
    _run(
        _phase(
            line_env.tls_port,
            frames,
            tls_warm,
            tls=pki.client_context("client"),
            rate=ACK_RATE,
            duration=WARM_UP_SECONDS,
        )
    )
    tls_flags = ["--tls-ca", pki.ca, "--tls-cert", pki.path("client"), "--tls-key", pki.path("client", "key")]
    ack_tls = simulate_load(
        line_env.tls_port,
        biller,
        processes,
        ack_count,
        skip=2 * warm_count + ack_count,
        rate=ACK_RATE,
        seconds=SECONDS,
        tls=tls_flags,
    )
    stored_before_workers = 2 * (warm_count + ack_count)
    start_workers(processes)
    drain = wait_applied(600)

    # 3. frame → paid, then exactly once (serials continue after the ones the simulator process used)
    frames = simulator.Frames(day, simulator.serial_base(simulator.CENTRE, day))
    watcher = simulator.PaidWatcher(redis_url, [biller.pk])
    try:
        paid = _run(
            _phase(port, frames, targets[ack_count:], rate=PAID_RATE, duration=SECONDS, watcher=watcher)
        )
    finally:
        watcher.stop()
    wait_applied(120)
    paid_ids = [t.invoice_id for t in everything]
    notices = Notice.objects.filter(biller=biller).count()
    entries = LedgerEntry.objects.filter(biller=biller)
    by_outcome = {o: entries.filter(outcome=o).count() for o in LedgerEntry.Outcome.values}
    bills_paid = Invoice.objects.filter(pk__in=paid_ids, status="paid").count()
    doubled = (
        entries.filter(outcome="paid").values("invoice_id").order_by().distinct().count()
        != by_outcome["paid"]
    )

    # the receipts of phases 2 and 3 (sent at the lowest priority) are sent before the inquiries start
    receipts_due = entries.filter(outcome="paid").exclude(invoice__recipient_email="").count()
    receipts_started = time.perf_counter()
    deadline = receipts_started + 600
    while Receipt.objects.count() < receipts_due and time.perf_counter() < deadline:
        time.sleep(1)
    receipts = Receipt.objects.count()
    receipts_seconds = time.perf_counter() - receipts_started

    # 4. inquiries over a million published bills, at random
    rng = random.Random(4)
    # distinct unpaid bills, one per inquiry (as many as there are, on a shortened run), at random
    wanted = int(INQUIRY_RATE * SECONDS)
    unpaid = list(Invoice.objects.filter(biller=biller, status="published").values_list("number", flat=True))
    numbers = rng.sample(unpaid, min(wanted, len(unpaid)))
    inquiry_targets = simulator.targets_load(numbers=numbers)
    published = Invoice.objects.filter(biller=biller, status="published").count()
    inquiry = _run(
        _phase(port, frames, inquiry_targets, rate=INQUIRY_RATE, duration=SECONDS, inquiry_share=1.0)
    )

    ack_trip = ack["round_trip_ms"]["1200"]
    tls_trip = ack_tls["round_trip_ms"]["1200"]
    paid_ms = [v * 1000 for v in paid.paid_latencies]
    inq_ms = [v * 1000 for v in inquiry.latencies["1100"]]
    p = simulator.percentile
    figures = {
        "seconds_per_phase": SECONDS,
        "published_invoices": INVOICES,
        "pgbench_simple_update_tps": round(tps),
        "ack_offered_per_second": ACK_RATE,
        "ack_achieved_per_second": round(ack_trip["count"] / ack["elapsed_seconds"]),
        "ack_ms": {k: ack_trip[k] for k in ("p50", "p90", "p99", "max")},
        "ack_codes": ack["answers"],
        "ack_lost": ack["lost"],
        "ack_rate_over_pgbench_tps": round(ack_trip["count"] / ack["elapsed_seconds"] / tps, 2),
        "ack_tls_achieved_per_second": round(tls_trip["count"] / ack_tls["elapsed_seconds"]),
        "ack_tls_ms": {k: tls_trip[k] for k in ("p50", "p90", "p99", "max")},
        "ack_tls_codes": ack_tls["answers"],
        "ack_tls_lost": ack_tls["lost"],
        "apply_seconds_for_ack_phases": round(drain, 1),
        "apply_per_second": round(stored_before_workers / drain) if drain else None,
        "ack_ms_at_500_per_second_with_workers_applying": {
            "p50": round(p([v * 1000 for v in paid.latencies["1200"]], 50), 2),
            "p99": round(p([v * 1000 for v in paid.latencies["1200"]], 99), 2),
        },
        "paid_rate": PAID_RATE,
        "paid_ms": {
            "p50": round(p(paid_ms, 50), 1),
            "p99": round(p(paid_ms, 99), 1),
            "max": round(max(paid_ms, default=0), 1),
        },
        "paid_missing": paid.paid_missing,
        "paid_rate_over_pgbench_tps": round(PAID_RATE / tps, 2),
        "notices": notices,
        "ledger_entries": by_outcome,
        "bills_paid": bills_paid,
        "receipts_due": receipts_due,
        "receipts_sent": receipts,
        "receipts_backlog_seconds_after_phase_3": round(receipts_seconds, 1),
        "inquiry_rate": INQUIRY_RATE,
        "inquiry_ms": {
            "p50": round(p(inq_ms, 50), 2),
            "p99": round(p(inq_ms, 99), 2),
            "max": round(max(inq_ms), 2),
        },
        "inquiry_codes": dict(inquiry.codes),
        "inquiry_published_invoices": published,
        "inquiry_rate_over_pgbench_tps": round(INQUIRY_RATE / tps, 2),
    }
    report(
        "line",
        {k: (str(v) if isinstance(v, dict) and k.endswith("codes") else v) for k, v in figures.items()},
    )
    print(
        f"\n  acknowledgements, {ACK_RATE:,.0f}/s offered for {SECONDS:.0f} s (simulator in its own process)"
    )
    print(f"  {'':<12}{'achieved':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for label, trip, run in (("plain TCP", ack_trip, ack), ("mutual TLS", tls_trip, ack_tls)):
        rate = trip["count"] / run["elapsed_seconds"]
        print(
            f"  {label:<12}{rate:>8,.0f}/s{trip['p50']:>9.2f}{trip['p90']:>9.2f}{trip['p99']:>9.2f}"
            f"{trip['max']:>9.2f}"
        )
    print(f"  pgbench simple-update, same run: {tps:,.0f} TPS")

    total = 2 * (warm_count + ack_count) + paid_count
    assert ack["lost"] == 0 and paid.lost == 0 and inquiry.lost == 0, figures
    assert ack["answers"] == {"1210 0000": ack_count}, figures
    assert ack_trip["count"] / ack["elapsed_seconds"] >= ACK_RATE * 0.98, figures
    assert ack_trip["p99"] <= ACK_P99_MS, figures
    # production speaks TLS: the same target holds there
    assert ack_tls["lost"] == 0 and ack_tls["answers"] == {"1210 0000": ack_count}, figures
    assert tls_trip["count"] / ack_tls["elapsed_seconds"] >= ACK_RATE * 0.98, figures
    assert tls_trip["p99"] <= ACK_P99_MS, figures
    # exactly once: one notice and one ledger entry per payment, every bill paid, none twice
    assert notices == total and sum(by_outcome.values()) == total, figures
    assert by_outcome["paid"] == total and not doubled and bills_paid == total, figures
    assert paid.paid_missing == 0 and len(paid_ms) == paid_count, figures
    assert receipts == receipts_due == total, figures  # one receipt per paid bill, none twice
    assert p(paid_ms, 99) <= PAID_P99_MS, figures
    assert inquiry.codes == {("1110", "0000"): len(inquiry_targets)}, figures
    assert published >= INVOICES - total, figures
    assert p(inq_ms, 99) <= INQUIRY_P99_MS, figures
