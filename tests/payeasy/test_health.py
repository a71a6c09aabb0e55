"""/healthz and /readyz (payeasy.health): liveness without the database, readiness of the database and the
broker within a time budget, the line and the waiting notices reported without making the web unready.

The endpoints are served by ``payeasy.health.HealthMiddleware`` first in MIDDLEWARE; until the lead adds
it to config/settings/core.py the ``_health_middleware`` fixture below puts it there for these tests.
"""

from __future__ import annotations

import datetime
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import OperationalError, connection, connections
from django.test import Client
from django.utils import timezone

from billing import events
from billing.models import Biller, Invoice
from payeasy import codec, health
from payeasy.line import LineProcessor, Received
from payeasy.models import LineState, Notice
from tests.payeasy import line_helpers as h

MIDDLEWARE = "payeasy.health.HealthMiddleware"


@pytest.fixture(autouse=True)
def _health_middleware(settings: Any) -> None:
    if MIDDLEWARE not in settings.MIDDLEWARE:
        settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE]


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then closed): connecting there is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ready(client: Client, **extra: Any) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz", **extra)
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.status_code, response.json()


# --- liveness --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_answers_without_the_database(client: Client, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_healthz_is_outside_the_tenant_routing_hosts_and_ssl_redirect(
    client: Client, settings: Any, django_assert_num_queries: Any
) -> None:
    """A probe of a tenant host that is no tenant, by the pod's address over plain HTTP: still 200,
    without reading anything (the tenant middleware would look the biller up, and 404)."""
    settings.PORTAL_DOMAIN = "portal.example"
    settings.ALLOWED_HOSTS = [".portal.example"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/", HTTP_HOST="nosuch.portal.example", secure=True).status_code == 404
    for host in ("nosuch.portal.example", "portal.example", "10.0.0.7:8000"):
        for path in ("/healthz", "/healthz/"):
            with django_assert_num_queries(0):
                response = client.get(path, HTTP_HOST=host)
            assert (response.status_code, response.json()) == (200, {"status": "ok"}), (host, path)
    # only the root paths: under a tenant's path prefix it is the tenant's URL (no such biller: 404)
    assert client.get("/b/nosuch/healthz", HTTP_HOST="portal.example", secure=True).status_code == 404


@pytest.mark.django_db
def test_other_methods_are_refused(client: Client) -> None:
    for path in ("/healthz", "/readyz"):
        response = client.post(path)
        assert response.status_code == 405
        assert response["Allow"] == "GET, HEAD"
    assert client.head("/healthz").status_code == 200


# --- readiness --------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_readyz_all_fine(client: Client, settings: Any) -> None:
    status, body = ready(client)
    assert status == 200, body
    assert body["status"] == "ok"
    assert list(body["checks"]) == ["database", "broker", "line", "notices"]
    assert all(c["ok"] for c in body["checks"].values()), body
    assert body["checks"]["database"] == {"ok": True, "critical": True, "vendor": connection.vendor}
    broker = body["checks"]["broker"]
    assert broker["critical"] is True
    assert broker["transport"] == (
        "redis" if settings.CELERY_BROKER_URL.startswith("redis") else "filesystem"
    )
    # the line never ran: closed, no processing date, no frame
    assert body["checks"]["line"] == {
        "ok": True,
        "critical": False,
        "state": "closed",
        "processing_date": None,
        "since": None,
        "last_frame_at": None,
        "last_frame_age_seconds": None,
    }
    notices = body["checks"]["notices"]
    assert (notices["waiting"], notices["failing"], notices["oldest_waiting_age_seconds"]) == (0, 0, None)
    assert body["warnings"] == []


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_the_broker_when_redis_does_not_answer(client: Client, settings: Any) -> None:
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/1"  # a real connection, refused
    status, body = ready(client)
    assert status == 503
    assert body["status"] == "unavailable"
    broker = body["checks"]["broker"]
    assert broker == {"ok": False, "critical": True, "error": "ConnectionError"}
    assert body["checks"]["database"]["ok"] is True
    assert "127.0.0.1" not in str(body) and "redis://" not in str(body)  # no address, no URL


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_when_the_filesystem_broker_folder_is_missing(
    client: Client, settings: Any, tmp_path: Any
) -> None:
    settings.CELERY_BROKER_URL = "filesystem://"
    folders = {"data_folder_in": str(tmp_path / "queue"), "control_folder": str(tmp_path / "control")}
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**folders, "data_folder_out": folders["data_folder_in"]}
    (tmp_path / "queue").mkdir()
    status, body = ready(client)
    assert status == 503
    assert body["checks"]["broker"] == {"ok": False, "critical": True, "error": "BrokerUnavailable"}
    (tmp_path / "control").mkdir()
    status, body = ready(client)
    assert status == 200, body
    assert body["checks"]["broker"] == {"ok": True, "critical": True, "transport": "filesystem"}
    assert list(tmp_path.rglob("*readyz*")) == []  # the probe file is removed


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_the_database_when_it_fails(client: Client, monkeypatch: Any) -> None:
    def refused(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise OperationalError('connection to server at "db.internal" failed: password authentication')

    # every thread's connection (each check runs in its own thread, with its own connection)
    monkeypatch.setattr(type(connections["default"]), "cursor", refused)
    status, body = ready(client)
    assert status == 503
    assert body["checks"]["database"] == {"ok": False, "critical": True, "error": "OperationalError"}
    assert body["checks"]["broker"]["ok"] is True
    # the line and the notices read the database too: failed, reported, not what makes it unready
    assert body["checks"]["line"]["ok"] is False and body["checks"]["notices"]["ok"] is False
    assert "line: check failed (OperationalError)" in body["warnings"]
    assert "db.internal" not in str(body) and "password" not in str(body)


# --- the line and the notices -------------------------------------------------------------------------------


def send(*messages: codec.Message, at: datetime.datetime) -> None:
    """One batch through the line, received at ``at`` (as the communication server would store it)."""
    LineProcessor().process([Received(body=h.body(m), received_at=at) for m in messages])


@pytest.fixture
def biller() -> Biller:
    return h.line_biller(legal_name="健康チェック電力株式会社")


@pytest.fixture
def invoice(biller: Biller) -> Invoice:
    return h.published_invoice(biller, price=1000)


@pytest.fixture
def no_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Notices stay waiting: the wake-up of the payments worker is dropped (no worker ran)."""
    monkeypatch.setattr(events, "send", lambda task, *args: True)
    yield


@pytest.mark.django_db(transaction=True)
def test_line_state_and_oldest_waiting_notice_are_reported_without_tenant_data(
    client: Client, biller: Biller, invoice: Invoice, no_worker: None, settings: Any
) -> None:
    settings.PAYEASY_SWEEP_AFTER_SECONDS = 30
    last_frame = timezone.now() - datetime.timedelta(seconds=12)
    other = h.published_invoice(biller, price=2000)
    send(h.open_day(biller), h.payment(biller, invoice), h.payment(biller, other), at=last_frame)
    assert Notice.objects.filter(applied_at__isnull=True).count() == 2
    Notice.objects.filter(customer_number=invoice.customer_number).update(
        received_at=timezone.now() - datetime.timedelta(seconds=20)
    )
    Notice.objects.filter(customer_number=other.customer_number).update(last_error="OperationalError: gone")

    status, body = ready(client)
    assert status == 200, body
    line = LineState.objects.get()
    assert body["checks"]["line"]["state"] == "open"
    assert body["checks"]["line"]["processing_date"] == "2026-11-26"
    assert datetime.datetime.fromisoformat(body["checks"]["line"]["since"]) == line.since
    assert datetime.datetime.fromisoformat(body["checks"]["line"]["last_frame_at"]) == last_frame
    assert 12 <= body["checks"]["line"]["last_frame_age_seconds"] < 20
    notices = body["checks"]["notices"]
    assert (notices["ok"], notices["waiting"], notices["failing"], notices["warn_after_seconds"]) == (
        True,
        2,
        1,
        30,
    )
    assert 20 <= notices["oldest_waiting_age_seconds"] < 28
    assert body["warnings"] == []  # 20 s: the sweeper's 30 s are not over yet
    text = json.dumps(body, ensure_ascii=False)
    assert invoice.customer_number
    for secret in (biller.legal_name, f'"{biller.biller_code}"', invoice.customer_number, "amount", "gone"):
        assert secret not in text, secret  # no tenant, no payment number, no amount, no error text

    # older than the sweeper allows: a warning, still ready
    Notice.objects.filter(customer_number=invoice.customer_number).update(
        received_at=timezone.now() - datetime.timedelta(seconds=95)
    )
    status, body = ready(client)
    assert status == 200
    assert 95 <= body["checks"]["notices"]["oldest_waiting_age_seconds"] < 105
    assert len(body["warnings"]) == 1
    assert body["warnings"][0].startswith("notices: the oldest waiting notice has waited 9")
    assert "PAYEASY_SWEEP_AFTER_SECONDS (30 s)" in body["warnings"][0]

    # applied: nothing waits, no warning
    Notice.objects.update(applied_at=timezone.now())
    status, body = ready(client)
    assert (
        body["checks"]["notices"]["waiting"],
        body["checks"]["notices"]["oldest_waiting_age_seconds"],
    ) == (
        0,
        None,
    )
    assert body["warnings"] == []


# --- the time budget --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_hanging_check_is_reported_as_timed_out_within_the_budget(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = health.readiness_checks

    def hangs() -> dict[str, Any]:
        time.sleep(3)
        return {}

    def with_a_hanging_broker() -> list[health.ReadinessCheck]:
        return [
            health.ReadinessCheck("broker", hangs, critical=True) if c.name == "broker" else c for c in real()
        ]

    monkeypatch.setattr(health, "readiness_checks", with_a_hanging_broker)
    monkeypatch.setattr(health, "READY_BUDGET_SECONDS", 0.5)
    started = time.monotonic()
    status, body = ready(client)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed  # the 3 s sleep is not waited for
    assert status == 503
    assert body["checks"]["broker"] == {
        "ok": False,
        "critical": True,
        "error": "Timeout",
        "timed_out": True,
        "timeout_seconds": 0.5,
    }
    assert body["checks"]["database"]["ok"] is True

    # a non-critical one that hangs: reported and warned about, still ready
    def with_a_hanging_line() -> list[health.ReadinessCheck]:
        return [
            health.ReadinessCheck("line", hangs, critical=False) if c.name == "line" else c for c in real()
        ]

    monkeypatch.setattr(health, "readiness_checks", with_a_hanging_line)
    started = time.monotonic()
    status, body = ready(client)
    assert time.monotonic() - started < 1.5
    assert status == 200
    assert body["checks"]["line"]["timed_out"] is True
    assert "line: check failed (Timeout)" in body["warnings"]


@pytest.mark.django_db(transaction=True)
def test_the_database_check_has_a_statement_timeout_on_postgresql(
    postgres: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks' queries run under a short statement_timeout: a query that would hang is cancelled."""
    monkeypatch.setattr(health, "STATEMENT_TIMEOUT_MS", 300)
    with health.bounded_queries(), connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "300ms"
        started = time.monotonic()
        with pytest.raises(OperationalError):
            cursor.execute("SELECT pg_sleep(5)")
    assert time.monotonic() - started < 3
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] != "300ms"  # local to that transaction


@pytest.mark.django_db(transaction=True)
def test_the_checks_read_across_tenants_by_name_under_the_tenant_policies(
    postgres: None, client: Client, biller: Biller, invoice: Invoice, no_worker: None
) -> None:
    """A web process binds no cross-tenant bypass: the checks' own connections see every tenant's waiting
    notices and frames only because they read under ``cross_tenant("staff")``."""
    from django.db.backends.signals import connection_created

    from billing import tenancy

    h.send(h.open_day(biller), h.payment(biller, invoice))
    assert connection_created.disconnect(dispatch_uid="payeasy-cross-tenant-tests")  # as in production
    try:
        status, body = ready(client)
    finally:
        tenancy.bind_cross_tenant("tests")
    assert status == 200, body
    assert body["checks"]["notices"]["waiting"] == 1
    assert body["checks"]["line"]["last_frame_at"] is not None
