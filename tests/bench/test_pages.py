"""Pages as fast as the line: the portal's bill page and invoice list and the console's invoice list under
``wrk``, beside the yardstick, on a small and on a large database, with 1,000 live-status streams open.

The portal runs as docs/operations.md and config/deploy/Procfile.production start it: ``gunicorn -c
config/gunicorn.conf.py`` with production settings, PostgreSQL and Redis, ``WEB_WORKERS`` as the
configuration gives it (2 × cores + 1) unless ``BENCH_WEB_WORKERS`` is set; the yardstick — a bare
Django project with one short view (tests/bench/yardstick) — on the same configuration and worker
count; the events service as the ``events:`` line starts it (gunicorn with ``uvicorn_worker.UvicornWorker``,
one process).

Each page is measured with ``wrk -t2 -c20 -d<BENCH_PAGE_SECONDS>s --latency`` after a 3 s warm-up, one
path at a time: the yardstick's ``/ping/`` (before the pages and after them: the ratio is to the mean of
the two, as this VM's speed drifts within a run); the bill page ``/b/<slug>/my/invoices/<id>/`` and the
invoice list ``/b/<slug>/my/invoices/`` (first page) of a customer logged in through the portal's login
form; the console's invoice list ``/b/<slug>/console/invoices/`` of a tenant administrator whose session
is made as the console's login makes it after the second factor (billing.login_views), with the
CSRF cookie its login page set. Two datasets, one phase each:

- *small*: one biller, five customers with six bills each (loaded as the large one is);
- *large*: ``BENCH_PAGE_INVOICES`` (1,000,000) invoices of ``BENCH_PAGE_CUSTOMERS`` (100,000) customers,
  nine tenths of both in the measured biller, the rest in another; loaded with COPY
  (tests/bench/page_data.py), then analysed. The measured customer has 500 bills; its list's first page
  and one of its bills are measured. While this phase is measured, ``BENCH_STREAMS`` (1,000) live-status
  streams (``…/my/invoices/<id>/events/``) of ten customers are held open on the events service; how many
  opened, how long opening took, the service's memory, threads and PostgreSQL connections are reported,
  and every stream must still be open at the end: none ended by the server, each served (a keep-alive
  every 15 s) to the last. A stream ends by itself after 300 s (payeasy.live.STREAM_SECONDS): the
  phase fits in that with the default BENCH_PAGE_SECONDS; streams ended so are counted apart.

Reported (table and .run/bench/pages.json): requests/s, p50, p99, how the page was served after the load
(X-Page-Cache: replay, hit, miss) and the ratio to the yardstick's requests/s, against the goals ≥ 0.3×
the yardstick and p99 ≤ 50 ms (met / not met: never asserted).
Asserted (correctness only): every response 200, each page shows what it should, every stream opened
and none dropped.

Environment: BENCH_PAGE_SECONDS (15), BENCH_PAGE_INVOICES (1000000), BENCH_PAGE_CUSTOMERS (100000),
BENCH_STREAMS (1000), BENCH_WEB_WORKERS (the configuration's default), BENCH_WEB_MAX_REQUESTS (0: no
worker recycled during a measurement, on either server), BENCH_REDIS_URL (Redis DB 13),
BENCH_PORT (free ports: web, yardstick, events at +0, +1, +2). Logs stay in .run/bench/pages/.

``make bench`` runs it with the other benchmarks; alone::

    CI=true REQUIRE_SERVICES=1 DATABASE_OWNER_URL=postgres://postgres@127.0.0.1:5432/payeasy \\
      DATABASE_URL=postgres://payeasy_app@127.0.0.1:5432/payeasy REDIS_URL=redis://127.0.0.1:6379/0 \\
      env -u DJANGO_SETTINGS_MODULE .venv/bin/python -m pytest tests/bench/test_pages.py \\
      -p no:cacheprovider -s -q --create-db

(about six minutes; a quick look: BENCH_PAGE_INVOICES=50000 BENCH_PAGE_CUSTOMERS=5000
BENCH_PAGE_SECONDS=3 BENCH_STREAMS=200, under two minutes).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import resource
import shutil
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from billing.models import Biller, Customer, Invoice, Membership
from payeasy.live import KEEPALIVE_SECONDS, STREAM_SECONDS
from tests.bench.conftest import (
    RESULTS,
    ROOT,
    owner_execute,
    portal_account,
    production_env,
    production_password,
    report,
)
from tests.bench.page_data import Spec, bills_of, load
from tests.bench.test_line import Processes, bench_redis_url
from tests.bench.test_whole_system import (
    PASSWORD,
    cookies_of,
    free_port,
    gunicorn_argv,
    http_get,
    log_in,
    lua_script,
    wait_http,
    wrk,
    wrk_figures,
)
from tests.conftest import need
from tests.factories import make_member

SECONDS = float(os.environ.get("BENCH_PAGE_SECONDS", 15))
INVOICES = int(os.environ.get("BENCH_PAGE_INVOICES", 1_000_000))
CUSTOMERS = int(os.environ.get("BENCH_PAGE_CUSTOMERS", 100_000))
STREAMS = int(os.environ.get("BENCH_STREAMS", 1000))
WEB_WORKERS = os.environ.get("BENCH_WEB_WORKERS", "").strip()
WARM_UP_SECONDS = 3.0
CONNECTIONS = 20  # wrk -t2 -c20
MEASURED_INVOICES = 500  # the measured customer's bills in the large dataset
STREAM_CUSTOMERS = 10  # whose bills the open streams watch
OPENING_AT_ONCE = 10  # streams being opened at a time (each opening needs a database connection)
GOAL_RATIO, GOAL_P99_MS = 0.3, 50.0  # reported, not asserted
PAGES = ("yardstick", "bill page", "invoice list", "console invoice list")

pytestmark = pytest.mark.django_db(transaction=True)


# --- sessions ------------------------------------------------------------------------------------------


def console_cookie(biller: Biller, secret_key: str, port: int) -> str:
    """A tenant administrator (two-step verification enrolled) logged in as billing.login_views._complete
    logs in: ``auth_login``'s session keys and the second factor's mark, signed with the server's key;
    with the CSRF cookie the console's login page gave the browser (a browser that has logged in holds
    it: the login form cannot be posted without it)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.test import override_settings

    from billing import login_views, two_factor

    user = make_member(biller, role=Membership.Role.ADMIN)
    with override_settings(SECRET_KEY=secret_key, SECRET_KEY_FALLBACKS=[]):
        store = import_module(settings.SESSION_ENGINE).SessionStore()
        store[SESSION_KEY] = user._meta.pk.value_to_string(user)
        store[BACKEND_SESSION_KEY] = login_views.BACKEND
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store[two_factor.VERIFIED] = user.pk
        store.create()
    status, headers, body = http_get(port, f"/b/{biller.slug}/accounts/login/")
    assert status == 200, (status, body[:500])
    csrf = cookies_of(headers)[settings.CSRF_COOKIE_NAME]
    return f"{settings.CSRF_COOKIE_NAME}={csrf}; {settings.SESSION_COOKIE_NAME}={store.session_key}"


# --- processes -----------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def configured_workers() -> int:
    """What config/gunicorn.conf.py makes of this environment (its default: 2 × cores + 1)."""
    spec = importlib.util.spec_from_file_location("bench_gunicorn_conf", ROOT / "config" / "gunicorn.conf.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.workers)


def wait_workers(master: int, expected: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while len(children(master)) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return len(children(master))


def raise_open_files(needed: int) -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft, hard


def sockets_to(pid: int, port: int) -> list[int]:
    """The local ports of ``pid``'s TCP connections to ``port`` (from /proc: its socket inodes)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return []
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[9] in inodes and int(parts[2].rsplit(":", 1)[1], 16) == port:
                    ports.append(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


def process_figures(master: int, redis_url: str) -> dict[str, Any]:
    """The events service's worker: memory, threads, PostgreSQL sessions (pg_stat_activity, by its
    client ports) and Redis connections."""
    worker = children(master)[0]
    status = Path(f"/proc/{worker}/status").read_text()
    rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    pg_ports = sockets_to(worker, int(connection.settings_dict.get("PORT") or 5432))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE client_port = ANY(%s) AND datname = current_database()",
            [pg_ports],
        )
        sessions = int(cursor.fetchone()[0])
    redis_port = int(re.search(r":(\d+)(?:/|$)", redis_url.split("@")[-1]).group(1))  # type: ignore[union-attr]
    return {
        "pid": worker,
        "rss_mb": round(rss_kb / 1024, 1),
        "threads": threads,
        "postgres_sessions": sessions,
        "redis_connections": len(sockets_to(worker, redis_port)),
    }


# --- live-status streams -------------------------------------------------------------------------------


class Streams:
    """``count`` server-sent event streams held open by an asyncio client on a thread of its own, each
    opened as a browser opens it (GET with the session cookie) and read until stopped."""

    def __init__(self, port: int, targets: list[tuple[str, str]], count: int) -> None:
        self.port, self.targets, self.count = port, targets, count
        self.opened = self.open_now = self.dropped = self.ended_at_limit = 0
        self.last_data: dict[int, float] = {}  # stream → when it last received anything (keep-alives too)
        self.failures: list[str] = []
        self.first_status: Counter[str] = Counter()
        self.open_seconds = 0.0
        self.all_tried = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="streams", daemon=True)
        self.thread.start()

    async def _one(self, k: int, gate: asyncio.Semaphore) -> None:
        path, cookie = self.targets[k % len(self.targets)]
        request = (
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n"
            f"Accept: text/event-stream\r\nCookie: {cookie}\r\n\r\n"
        ).encode()
        writer = None
        try:
            async with gate:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 30)
                writer.write(request)
                await writer.drain()
                data, marker = b"", b"event: status\ndata: "
                while marker not in data or b"\n" not in data.split(marker, 1)[1]:
                    chunk = await asyncio.wait_for(reader.read(4096), 30)
                    if not chunk:
                        raise ConnectionError(f"ended before its first event: {data[:300]!r}")
                    data += chunk
                if not data.startswith(b"HTTP/1.1 200"):
                    raise ConnectionError(data[:300].decode("latin-1"))
                status = re.search(rb'"status":\s*"([a-z_]+)"', data.split(marker, 1)[1])
                self.first_status[status.group(1).decode() if status else "?"] += 1
            self.opened += 1
            self.open_now += 1
            opened_at = self.last_data[k] = time.monotonic()
            while await reader.read(4096):
                self.last_data[k] = time.monotonic()
            self.open_now -= 1
            del self.last_data[k]
            if time.monotonic() - opened_at >= STREAM_SECONDS - 5:
                self.ended_at_limit += 1  # the stream's own end (the browser reconnects)
            else:
                self.dropped += 1  # the server ended it before its time
        except asyncio.CancelledError:
            raise
        except (OSError, TimeoutError, ConnectionError) as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            if writer is not None:
                writer.close()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        gate = asyncio.Semaphore(OPENING_AT_ONCE)
        started = time.perf_counter()
        tasks = [asyncio.create_task(self._one(k, gate)) for k in range(self.count)]
        while self.opened + len(self.failures) < self.count and time.perf_counter() - started < 600:
            await asyncio.sleep(0.05)
        self.open_seconds = time.perf_counter() - started
        self.all_tried.set()
        await self.stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if self.thread.is_alive() and self.loop is not None and self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(60)

    def longest_silence(self) -> float:
        """Seconds since the stream that heard from the server longest ago last did (keep-alives are
        sent every KEEPALIVE_SECONDS): a stream the server stopped serving shows here."""
        now = time.monotonic()
        return max((now - t for t in list(self.last_data.values())), default=0.0)

    def figures(self) -> dict[str, Any]:
        return {
            "requested": self.count,
            "opened": self.opened,
            "open_seconds": round(self.open_seconds, 1),
            "open_now": self.open_now,
            "dropped_by_server": self.dropped,
            "ended_at_stream_limit": self.ended_at_limit,
            "failed": len(self.failures),
            "failures": self.failures[:5],
            "first_status": dict(self.first_status),
        }


# --- measuring -----------------------------------------------------------------------------------------


def measure(port: int, path: str, cookie: str, tmp: Path, name: str) -> dict[str, Any]:
    """``path`` under wrk: a warm-up, then BENCH_PAGE_SECONDS measured."""
    out = tmp / f"{name}.json"
    script = lua_script(tmp / f"{name}.lua", out, [(cookie, [])], path, path)
    wrk_figures(wrk(port, script, WARM_UP_SECONDS, threads=2, connections=CONNECTIONS), out)
    figures = wrk_figures(wrk(port, script, SECONDS, threads=2, connections=CONNECTIONS), out)
    figures["path"] = path
    return figures


def check_page(port: int, path: str, cookie: str, expected: str, absent: str = "") -> str:
    """``path`` answers 200 with ``expected`` in it (and, when given, without ``absent``); how it was
    served (its X-Page-Cache header: miss, hit, replay)."""
    status, headers, body = http_get(port, path, cookie)
    assert status == 200, (path, status, body[:1000])
    assert expected in body, (path, expected, body[:3000])
    assert not absent or absent not in body, (path, absent, "another customer's bill shown")
    return next((v for k, v in headers if k.lower() == "x-page-cache"), "")


def phase(
    ports: dict[str, int], customer: Customer, cookie: str, console: str, tmp: Path, name: str
) -> dict[str, dict[str, Any]]:
    """The four measurements of one dataset, each page first checked for its content."""
    biller = customer.biller
    customer_bills = bills_of(biller, customer)
    bill = next(b for b in customer_bills if b.status == Invoice.Status.PUBLISHED)
    newest = Invoice.objects.filter(biller=biller).order_by("-issue_date", "-id").first()
    other = Invoice.objects.filter(biller=biller).exclude(customer=customer).order_by("-issue_date", "-id")
    assert newest is not None and other.exists()
    slug, web, stranger = biller.slug, ports["web"], other[0].number
    paths = {
        "bill page": (f"/b/{slug}/my/invoices/{bill.pk}/", cookie, bill.number, stranger),
        "invoice list": (f"/b/{slug}/my/invoices/", cookie, customer_bills[0].number, stranger),
        "console invoice list": (f"/b/{slug}/console/invoices/", console, newest.number, ""),
    }
    for path, session, expected, absent in paths.values():
        check_page(web, path, session, expected, absent)
    # the yardstick before and after the pages, its mean the ruler: this VM's speed drifts within a run
    pages = {"yardstick": measure(ports["yardstick"], "/ping/", "", tmp, f"{name}-yardstick")}
    for page, (path, session, expected, absent) in paths.items():
        pages[page] = measure(web, path, session, tmp, f"{name}-{page.replace(' ', '-')}")
        # still right after the load, and how it is served (X-Page-Cache)
        pages[page]["served_as"] = check_page(web, path, session, expected, absent)
    after = measure(ports["yardstick"], "/ping/", "", tmp, f"{name}-yardstick-after")
    yardstick = pages["yardstick"]
    yardstick["requests_per_second_before_after"] = [
        yardstick["requests_per_second"],
        after["requests_per_second"],
    ]
    yardstick["requests_per_second"] = (yardstick["requests_per_second"] + after["requests_per_second"]) / 2
    ruler = yardstick["requests_per_second"]
    for figures in pages.values():
        ratio = figures["requests_per_second"] / ruler if ruler else 0.0
        figures["over_yardstick"] = round(ratio, 3)
        figures["ratio_goal_met"] = ratio >= GOAL_RATIO
        figures["p99_goal_met"] = figures["p99_ms"] <= GOAL_P99_MS
    return pages


def print_table(results: dict[str, dict[str, dict[str, Any]]], workers: int) -> None:
    print(f"\n  pages, {workers} web worker(s), wrk -t2 -c20 -d{SECONDS:.0f}s")
    print(
        f"  | dataset | page | requests/s | p50 ms | p99 ms | served | × yardstick | ≥ {GOAL_RATIO}× "
        "| p99 ≤ 50 ms |"
    )
    print("  |---|---|---:|---:|---:|---|---:|---|---|")
    for dataset, pages in results.items():
        for page, f in pages.items():
            ratio = "met" if f["ratio_goal_met"] else "NOT met"
            p99 = "met" if f["p99_goal_met"] else "NOT met"
            print(
                f"  | {dataset} | {page} | {f['requests_per_second']:,.0f} | {f['p50_ms']:.1f} | "
                f"{f['p99_ms']:.1f} | {f.get('served_as', '')} | {f['over_yardstick']:.2f} | {ratio} "
                f"| {p99} |"
            )


# --- the benchmark -------------------------------------------------------------------------------------


def test_pages(postgres_only: None) -> None:
    need(shutil.which("wrk") is not None, "wrk is not installed")
    tmp = RESULTS / "pages"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    limits = raise_open_files(3 * STREAMS + 1024)
    redis_url = bench_redis_url()
    env = production_env(
        REDIS_URL=redis_url, DJANGO_EMAIL_BACKEND="locmem", PROMETHEUS_MULTIPROC_DIR=str(tmp / "prometheus")
    )
    (tmp / "prometheus").mkdir()
    if WEB_WORKERS:
        env["WEB_WORKERS"] = WEB_WORKERS
    # workers are not recycled while measuring, on both servers alike: at thousands of requests a second
    # the configuration's WEB_MAX_REQUESTS would restart the yardstick's workers several times a second
    env["WEB_MAX_REQUESTS"] = os.environ.get("BENCH_WEB_MAX_REQUESTS", "0")
    expected_workers = int(WEB_WORKERS) if WEB_WORKERS else configured_workers()
    password = production_password(PASSWORD)

    # the small dataset: one biller, five customers, six bills each
    (small,), _seconds = load(
        [Spec("bench-pages-small", "58990", customers=5, invoices=30, measured_invoices=6)]
    )
    owner_execute("VACUUM ANALYZE billing_customer", "VACUUM ANALYZE billing_invoice")
    portal_account(small.biller, small.measured, "small@example.jp", password)

    ports = {"web": free_port(0), "yardstick": free_port(1), "events": free_port(2)}
    processes = Processes(tmp, env)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    figures: dict[str, Any] = {}
    streams: Streams | None = None
    try:
        processes.start("web", gunicorn_argv(), "Listening at:", WEB_BIND=f"127.0.0.1:{ports['web']}")
        processes.start(
            "yardstick",
            gunicorn_argv("tests.bench.yardstick.wsgi:application"),
            "Listening at:",
            DJANGO_SETTINGS_MODULE="tests.bench.yardstick.settings",
            WEB_BIND=f"127.0.0.1:{ports['yardstick']}",
        )
        processes.start(
            "events",
            [
                *gunicorn_argv()[:3],
                *("config.asgi:application", "-k", "uvicorn_worker.UvicornWorker"),
                *("--bind", f"127.0.0.1:{ports['events']}", "--workers", "1", "--graceful-timeout", "5"),
                *("--no-control-socket", "--access-logfile", "-", "--error-logfile", "-"),
            ],
            "Application startup complete",
        )
        masters = {
            name: proc.pid
            for name, (proc, _log) in zip(("web", "yardstick", "events"), processes.procs, strict=True)
        }
        wait_http(ports["web"], f"/b/{small.biller.slug}/my/login/")
        wait_http(ports["yardstick"], "/ping/")
        workers = wait_workers(masters["web"], expected_workers)
        figures["web_workers"] = workers
        figures["yardstick_workers"] = wait_workers(masters["yardstick"], expected_workers)

        cookie = log_in(ports["web"], "small@example.jp", slug=small.biller.slug)
        console = console_cookie(small.biller, env["DJANGO_SECRET_KEY"], ports["web"])
        results["small"] = phase(ports, small.measured, cookie, console, tmp, "small")

        # the large dataset: nine tenths in the measured biller, the rest in another
        started = time.perf_counter()
        (large, other), seconds = load(
            [
                Spec("bench-pages", "58991", CUSTOMERS * 9 // 10, INVOICES * 9 // 10, MEASURED_INVOICES),
                Spec(
                    "bench-pages-other",
                    "58992",
                    CUSTOMERS - CUSTOMERS * 9 // 10,
                    INVOICES - INVOICES * 9 // 10,
                    MEASURED_INVOICES,
                ),
            ]
        )
        copied = time.perf_counter() - started
        owner_execute("VACUUM ANALYZE billing_customer", "VACUUM ANALYZE billing_invoice", "CHECKPOINT")
        figures["large_load"] = {
            "invoices": large.invoices + other.invoices,
            "customers": large.customers + other.customers,
            "measured_biller_invoices": large.invoices,
            "copy_customers_seconds": round(seconds["customers"], 1),
            "copy_invoices_seconds": round(seconds["invoices"], 1),
            "build_indexes_seconds": round(seconds["indexes"], 1),
            "vacuum_analyze_seconds": round(time.perf_counter() - started - copied, 1),
            "total_seconds": round(time.perf_counter() - started, 1),
        }
        print(f"\n  large dataset loaded: {figures['large_load']}")
        portal_account(large.biller, large.measured, "large@example.jp", password)
        measured_bills = bills_of(large.biller, large.measured)
        assert len(measured_bills) == min(MEASURED_INVOICES, large.invoices)
        cookie = log_in(ports["web"], "large@example.jp", slug=large.biller.slug)
        console = console_cookie(large.biller, env["DJANGO_SECRET_KEY"], ports["web"])

        # the streams: ten customers' open bills, watched 1,000 times over
        targets = []
        for c in range(1, STREAM_CUSTOMERS + 1):
            customer = large.biller.customers.get(code=f"C{c:07d}")
            email = f"stream{c}@example.jp"
            portal_account(large.biller, customer, email, password)
            session = log_in(ports["web"], email, slug=large.biller.slug)
            bills = bills_of(large.biller, customer)
            open_bills = [b for b in bills if b.status == Invoice.Status.PUBLISHED] or bills
            targets += [(f"/b/{large.biller.slug}/my/invoices/{b.pk}/events/", session) for b in open_bills]
        idle = process_figures(masters["events"], redis_url)
        streams = Streams(ports["events"], targets, STREAMS)
        assert streams.all_tried.wait(900), "the streams did not open in 15 minutes"
        opened_at = time.perf_counter()
        time.sleep(1.0)
        held = process_figures(masters["events"], redis_url)
        open_before = streams.open_now
        results["large"] = phase(ports, large.measured, cookie, console, tmp, "large")
        open_after, silence = streams.open_now, streams.longest_silence()
        held_seconds = time.perf_counter() - opened_at
        figures["streams"] = {
            **streams.figures(),
            "watched_bills": len(targets),
            "customers": STREAM_CUSTOMERS,
            "open_when_pages_measured": {"before": open_before, "after": open_after},
            "held_seconds_after_opening": round(held_seconds, 1),
            "longest_silence_seconds_at_end": round(silence, 1),
            "events_service_idle": idle,
            "events_service_with_streams": held,
            "rss_per_stream_kb": round((held["rss_mb"] - idle["rss_mb"]) * 1024 / max(1, streams.opened), 1),
            "open_files_limit": list(limits),
        }
        streams.stop()
        figures["streams"]["dropped_by_server"] = streams.dropped
    finally:
        if streams is not None:
            streams.stop()
        processes.stop()

    report(
        "pages",
        {
            "seconds": SECONDS,
            "wrk": "-t2 -c20 --latency, 3 s warm-up",
            **figures,
            "goals": {"over_yardstick_rps": GOAL_RATIO, "p99_ms": GOAL_P99_MS},
            "datasets": results,
        },
    )
    print_table(results, figures["web_workers"])
    for pages in results.values():
        for page in PAGES:
            f = pages[page]
            assert set(f["statuses"]) == {"200"}, (page, f)
            assert not any(f["errors"][kind] for kind in ("connect", "read", "write", "status")), (page, f)
    s = figures["streams"]
    assert s["opened"] == STREAMS, s
    assert s["open_when_pages_measured"] == {"before": STREAMS, "after": STREAMS}, s
    assert s["dropped_by_server"] == 0, s
    assert s["longest_silence_seconds_at_end"] <= KEEPALIVE_SECONDS + 15, s  # every one still served
