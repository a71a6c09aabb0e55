"""Health endpoints for load balancers and orchestrators: ``/healthz`` (liveness) and ``/readyz`` (readiness).

``/healthz`` says the process answers: no database, no broker, nothing that can hang (a liveness probe
that fails while PostgreSQL is away would have the orchestrator restart every web process for nothing).

``/readyz`` runs the checks below side by side, each in a thread of its own, and answers within
``READY_BUDGET_SECONDS`` whatever hangs: a check that has not finished by then is reported as timed out
(its thread ends by itself, bounded by the statement and socket timeouts it sets). 200 when the
``database`` and the ``broker`` answer, 503 otherwise. The MPN ``line`` and the waiting ``notices`` are
reported, with ``warnings`` when the oldest notice has waited longer than the sweeper allows
(``PAYEASY_SWEEP_AFTER_SECONDS``), but do not make the web process unready: a closed line or a backlog
is the workers' business, and taking the web out of the load balancer would not help either.

Nothing of a tenant is shown: no biller, no payment number, no amount; only states, counts and ages. A
failing check names the exception's class, never its message (a DSN, a host, a password). No
authentication (a load balancer calls it) and never cached.

``HealthMiddleware`` answers both paths before any other middleware: before the SSL redirect and the
allowed hosts (a probe comes over plain HTTP to the pod's address), before the tenant routing (root
host, any tenant host, a suspended or unknown one alike) and before anything that reads the database.
"""

from __future__ import annotations

import datetime
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, connections, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from billing.tenancy import cross_tenant
from payeasy import selectors

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
READY_BUDGET_SECONDS = 1.5  # every check together: the endpoint answers within ~2 s
STATEMENT_TIMEOUT_MS = 1000  # PostgreSQL's statement_timeout for the checks' queries
SOCKET_TIMEOUT_SECONDS = 1.0  # the broker's connect and read timeouts

CheckResult = dict[str, Any]
Check = Callable[[], CheckResult]


class BrokerUnavailable(Exception):
    """The broker's connection failed in a way that raised nothing of its own (a folder missing)."""


# ---------------------------------------------------------------------------------------------------------
# The checks: plain functions, each returning its details or raising; ``run_checks`` adds ``ok``.
# ---------------------------------------------------------------------------------------------------------


@contextmanager
def bounded_queries() -> Any:
    """The block's queries end after ``STATEMENT_TIMEOUT_MS`` on PostgreSQL (a transaction with a local
    statement_timeout). On SQLite nothing: a transaction there would take the write lock (IMMEDIATE)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{STATEMENT_TIMEOUT_MS}ms"])
        yield


def check_database() -> CheckResult:
    """``SELECT 1`` on the default database."""
    with bounded_queries(), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    if row is None or row[0] != 1:
        raise RuntimeError("SELECT 1 answered something else")
    return {"vendor": connection.vendor}


def redis_client(url: str, timeout: float) -> Any:
    """The Redis connection the broker check pings (tests point it at a closed port)."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def broker_folders() -> list[Path]:
    """The folders of kombu's filesystem transport (config/settings/tasks.py), each once."""
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    names = ("data_folder_in", "data_folder_out", "control_folder")
    return [Path(p) for p in dict.fromkeys(options[n] for n in names if options.get(n))]


def check_broker() -> CheckResult:
    """Redis: a PING with short socket timeouts. The embedded filesystem broker: its folders exist and a
    file can be written in each. Any other transport: kombu connects once, with the same timeout."""
    url = settings.CELERY_BROKER_URL
    scheme = urlsplit(url).scheme.lower()
    if scheme in {"redis", "rediss", "unix"}:
        client = redis_client(url, SOCKET_TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
        return {"transport": "redis"}
    if scheme == "filesystem":
        folders = broker_folders()
        if not folders:
            raise BrokerUnavailable("no folders configured")
        for folder in folders:
            if not folder.is_dir():
                raise BrokerUnavailable("a folder is missing")
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".readyz-"):
                pass
        return {"transport": "filesystem"}
    from kombu import Connection

    with Connection(url, connect_timeout=SOCKET_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, timeout=SOCKET_TIMEOUT_SECONDS)
    return {"transport": scheme}


def _iso(moment: datetime.datetime | datetime.date | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _age(moment: datetime.datetime | None, now: datetime.datetime) -> int | None:
    return None if moment is None else max(0, int((now - moment).total_seconds()))


def check_line() -> CheckResult:
    """The MPN line's state as the staff operations page reads it (``selectors.line_overview``)."""
    now = timezone.now()
    with bounded_queries(), cross_tenant("health"):
        overview = selectors.line_overview()
    line = overview.line
    opened = line.pk is not None  # no row: the communication server never ran
    return {
        "state": line.state,
        "processing_date": _iso(line.processing_date),
        "since": _iso(line.since) if opened else None,
        "last_frame_at": _iso(overview.last_message_at),
        "last_frame_age_seconds": _age(overview.last_message_at, now),
    }


def notice_warn_after() -> int:
    """Seconds a notice may wait before the sweeper applies it: older than that, something is stuck."""
    return int(settings.PAYEASY_SWEEP_AFTER_SECONDS)


def check_notices() -> CheckResult:
    """The notices not yet applied (``selectors.waiting_notices_total``, one aggregate): how many, how many
    failing, the oldest one's age. Only the totals: no tenant's row."""
    with bounded_queries(), cross_tenant("health"):
        waiting = selectors.waiting_notices_total()
    return {
        "waiting": waiting.waiting.count,
        "failing": waiting.failing,
        "oldest_waiting_age_seconds": waiting.oldest_waiting_age(timezone.now()),
        "warn_after_seconds": notice_warn_after(),
    }


@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    run: Check
    critical: bool  # a failure makes the process unready (503)


def readiness_checks() -> list[ReadinessCheck]:
    """The checks of ``/readyz``, in the order they are reported (read on each request: tests swap one)."""
    return [
        ReadinessCheck("database", check_database, critical=True),
        ReadinessCheck("broker", check_broker, critical=True),
        ReadinessCheck("line", check_line, critical=False),
        ReadinessCheck("notices", check_notices, critical=False),
    ]


# ---------------------------------------------------------------------------------------------------------
# Running them within the budget
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    result: CheckResult | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _run_in_thread(check: ReadinessCheck, outcome: _Outcome) -> None:
    try:
        outcome.result = check.run()
    except Exception as exc:  # a check's failure is its result: the class name, never the message
        logger.warning("readiness check %s failed: %s", check.name, type(exc).__name__, exc_info=True)
        outcome.error = type(exc).__name__
    finally:
        outcome.done.set()
        connections.close_all()  # this thread's connections only: it ends here


def run_checks(checks: list[ReadinessCheck], *, budget: float | None = None) -> dict[str, CheckResult]:
    """Every check at once, each in a daemon thread; whatever has not answered after ``budget`` seconds
    (from the start, for all of them together) is reported as timed out."""
    budget = READY_BUDGET_SECONDS if budget is None else budget
    started = time.monotonic()
    deadline = started + budget
    running: list[tuple[ReadinessCheck, _Outcome]] = []
    for check in checks:
        outcome = _Outcome()
        thread = threading.Thread(
            target=_run_in_thread, args=(check, outcome), name=f"readyz-{check.name}", daemon=True
        )
        thread.start()
        running.append((check, outcome))
    report: dict[str, CheckResult] = {}
    for check, outcome in running:
        finished = outcome.done.wait(max(0.0, deadline - time.monotonic()))
        entry: CheckResult = {"ok": False, "critical": check.critical}
        if not finished:
            entry.update(error="Timeout", timed_out=True, timeout_seconds=budget)
        elif outcome.error is not None:
            entry["error"] = outcome.error
        else:
            entry.update(ok=True, **(outcome.result or {}))
        report[check.name] = entry
    return report


def readiness_warnings(report: dict[str, CheckResult]) -> list[str]:
    """What an operator should look at though the process stays ready."""
    warnings = []
    for name, entry in report.items():
        if not entry["ok"] and not entry["critical"]:
            warnings.append(f"{name}: check failed ({entry.get('error')})")
    notices = report.get("notices", {})
    age = notices.get("oldest_waiting_age_seconds")
    if notices.get("ok") and age is not None and age > notices["warn_after_seconds"]:
        warnings.append(
            f"notices: the oldest waiting notice has waited {age} s, longer than "
            f"PAYEASY_SWEEP_AFTER_SECONDS ({notices['warn_after_seconds']} s)"
        )
    return warnings


# ---------------------------------------------------------------------------------------------------------
# Views and the middleware that serves them
# ---------------------------------------------------------------------------------------------------------


def _json(payload: dict[str, Any], status: int) -> JsonResponse:
    response = JsonResponse(payload, status=status, json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _method_refused(request: HttpRequest) -> HttpResponse | None:
    if request.method in {"GET", "HEAD"}:
        return None
    response = _json({"status": "error", "error": "method not allowed"}, 405)
    response["Allow"] = "GET, HEAD"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Reads nothing."""
    return _method_refused(request) or _json({"status": "ok"}, 200)


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database and the broker answer (503 if not); the line and the notices reported."""
    refused = _method_refused(request)
    if refused is not None:
        return refused
    report = run_checks(readiness_checks())
    ready = all(entry["ok"] for entry in report.values() if entry["critical"])
    payload = {
        "status": "ok" if ready else "unavailable",
        "checks": report,
        "warnings": readiness_warnings(report),
    }
    return _json(payload, 200 if ready else 503)


HEALTH_VIEWS: dict[str, Callable[[HttpRequest], HttpResponse]] = {HEALTH_PATH: healthz, READY_PATH: readyz}


class HealthMiddleware:
    """Answers ``/healthz`` and ``/readyz`` (with or without a trailing slash) before the rest of the
    stack: first in ``MIDDLEWARE``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = HEALTH_VIEWS.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        return view(request)
