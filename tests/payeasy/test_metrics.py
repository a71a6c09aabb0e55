"""/metrics (payeasy.metrics): the Prometheus endpoint behind a bearer token, the operations figures computed
at scrape time from real rows, request metrics labelled by view name only, multiprocess aggregation.

config/settings is not this module's: until the lead adds ``PAYEASY_METRICS_TOKEN`` to product.py and the
two middlewares to core.py, the ``_metrics_middleware`` fixture puts them in MIDDLEWARE (right after
``payeasy.health.HealthMiddleware``) and the tests set the token with the ``settings`` fixture.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from billing import events
from billing.models import Biller, ImportJob
from payeasy import alerts, metrics
from payeasy.codec import JST
from payeasy.models import Message, Notice, WebhookDelivery
from payeasy.services.payments import notices_apply
from payeasy.services.webhook_endpoints import webhook_endpoint_create
from reconciliation.models import Finding
from tests.payeasy import line_helpers as h
from tests.payeasy.test_operations import send

TOKEN = "s3cret-metrics-token"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
BASE = Path(__file__).resolve().parents[2]
MIDDLEWARE = ["payeasy.metrics.MetricsMiddleware", "payeasy.metrics.RequestMetricsMiddleware"]
HEALTH = "payeasy.health.HealthMiddleware"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(autouse=True)
def _metrics_middleware(settings: Any) -> None:
    rest = [m for m in settings.MIDDLEWARE if m not in {HEALTH, *MIDDLEWARE}]
    settings.MIDDLEWARE = [HEALTH, *MIDDLEWARE, *rest]
    settings.PAYEASY_METRICS_TOKEN = TOKEN


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)


@pytest.fixture
def no_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Notices stay waiting until the test applies them (no wake-up of the payments worker)."""
    monkeypatch.setattr(events, "send", lambda task, *args: True)
    yield


def samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def collected(collector: metrics.OperationsCollector) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in collector.collect() for s in f.samples
    }


def scrape(client: Client) -> str:
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 200, response.content[:300]
    return response.content.decode()


# --- the guard -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_off_without_the_token_setting(client: Client, settings: Any) -> None:
    settings.PAYEASY_METRICS_TOKEN = ""
    for extra in ({}, AUTH, {"HTTP_AUTHORIZATION": "Bearer "}):
        response = client.get("/metrics", **extra)
        assert response.status_code == 404
        assert b"payeasy_" not in response.content


@pytest.mark.django_db
def test_a_wrong_or_missing_token_is_answered_as_if_there_were_no_endpoint(
    client: Client, settings: Any
) -> None:
    """404, not 401: the request goes on through the stack and gets the product's own 404, the very answer
    of the endpoint switched off — who has no token cannot even learn that there is one to guess."""
    settings.PAYEASY_METRICS_TOKEN = ""
    off = client.get("/metrics")
    settings.PAYEASY_METRICS_TOKEN = TOKEN
    for header in (None, f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer"):
        extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
        response = client.get("/metrics", **extra)
        assert (response.status_code, response.content) == (off.status_code, off.content), header
        assert response.status_code == 404
        assert "WWW-Authenticate" not in response


@pytest.mark.django_db
def test_the_view_itself_refuses_without_the_token(rf: Any) -> None:
    from django.http import Http404

    with pytest.raises(Http404):
        metrics.metrics_view(rf.get("/metrics"))
    assert metrics.metrics_view(rf.get("/metrics", **AUTH)).status_code == 200


@pytest.mark.django_db
def test_the_right_token_gets_the_text_format_on_any_host(client: Client, settings: Any) -> None:
    settings.PORTAL_DOMAIN = "portal.example"
    settings.ALLOWED_HOSTS = [".portal.example"]
    settings.SECURE_SSL_REDIRECT = True
    for host in ("10.0.0.7:8000", "nosuch.portal.example"):
        for path in ("/metrics", "/metrics/"):
            response = client.get(path, HTTP_HOST=host, **AUTH)
            assert response.status_code == 200, (host, path)
            assert response["Content-Type"] == metrics.CONTENT_TYPE_LATEST
            assert response["Cache-Control"] == "no-store"
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    for name in (
        "payeasy_line_messages_recent",
        "payeasy_line_messages_today",
        "payeasy_line_state",
        "payeasy_notices_waiting",
        "payeasy_notices_oldest_waiting_age_seconds",
        "payeasy_apply_lag_max_seconds",
        "payeasy_apply_lag_average_seconds",
        "payeasy_celery_queue_messages",
        "payeasy_webhook_deliveries_failing",
        "payeasy_import_jobs",
        "payeasy_metrics_collect_errors",
    ):
        assert name in families, name
        assert families[name].documentation, name
    assert families["payeasy_line_messages_today"].type == "counter"
    values = samples(response.content.decode())
    assert values[("payeasy_metrics_collect_errors", ())] == 0
    assert values[("payeasy_line_state", (("state", "closed"),))] == 1  # the line never ran
    assert client.post("/metrics", **AUTH).status_code == 405


# --- the figures from real rows --------------------------------------------------------------------------

NOON = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=JST)  # the line's day DAY (line_helpers)


def applied_at(notice: Notice, moment: datetime.datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker applies ``notice`` at ``moment``."""
    with monkeypatch.context() as clock:
        clock.setattr(timezone, "now", lambda: moment)
        assert notices_apply(notice_ids=[notice.pk]).applied == 1


def traffic(biller: Biller, monkeypatch: pytest.MonkeyPatch, *, payments: int = 4) -> dict[str, Any]:
    """Line traffic around ``NOON``: the day opened at 09:00, a payment at 10:00 (applied 3 s later),
    payments at -2 min (applied +4 s) and -1 min (applied +10 s), the -2 min one sent again at -1 min (a
    duplicate), one at -30 s still waiting; an inquiry of yesterday. ``payments`` > 4: more waiting ones."""
    minute = datetime.timedelta(minutes=1)
    invoices = [h.published_invoice(biller, price=1000) for _ in range(payments)]
    send(h.open_day(biller), at=NOON - datetime.timedelta(hours=3))
    send(h.inquiry(biller, invoices[0]), at=NOON - datetime.timedelta(days=1))
    moments = [NOON - datetime.timedelta(hours=2), NOON - 2 * minute, NOON - minute] + [
        NOON - datetime.timedelta(seconds=30)
    ] * (payments - 3)
    frames = [h.payment(biller, invoice) for invoice in invoices]
    for frame, moment in zip(frames, moments, strict=True):
        send(frame, at=moment)
    send(frames[1], at=NOON - minute)  # sent again: a duplicate
    notices = []
    for invoice, moment in zip(invoices, moments, strict=True):
        notice = Notice.objects.get(customer_number=invoice.customer_number, kind=Notice.Kind.PAYMENT)
        Notice.objects.filter(pk=notice.pk).update(received_at=moment)
        notice.refresh_from_db()
        notices.append(notice)
    for notice, after in zip(notices, (3, 4, 10), strict=False):
        applied_at(notice, notice.received_at + datetime.timedelta(seconds=after), monkeypatch)
    return {"invoices": invoices, "notices": notices}


def findings_jobs_deliveries(biller: Biller) -> None:
    for n, (kind, state) in enumerate(
        [
            (Finding.Kind.DOUBLE_PAYMENT, Finding.State.OPEN),
            (Finding.Kind.DOUBLE_PAYMENT, Finding.State.OPEN),
            (Finding.Kind.PROVISIONAL, Finding.State.CLEARED),
        ]
    ):
        Finding.objects.create(
            biller=biller, key=f"k{n}", kind=kind, state=state, processing_date=NOON.date(), amount=1100
        )
    for status in (ImportJob.Status.FAILED, ImportJob.Status.PENDING):
        ImportJob.objects.create(
            biller=biller, status=status, file_path="/nonexistent", file_name="請求.csv", file_sha256="0" * 64
        )
    endpoint, _secret = webhook_endpoint_create(
        actor=None, biller=biller, url="https://hooks.example.com/p", event_types=["payment.received"]
    )
    for status, attempts in (("failed", 8), ("pending", 2), ("pending", 0), ("succeeded", 1)):
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            biller=biller,
            event_id=uuid.uuid4(),
            event_type="payment.received",
            payload="{}",
            status=status,
            attempts=attempts,
            give_up_at=NOON,
        )


@pytest.mark.django_db
def test_real_rows_give_the_right_figures(monkeypatch: pytest.MonkeyPatch, no_worker: None) -> None:
    biller = h.line_biller(legal_name="メトリクス電力株式会社")
    traffic(biller, monkeypatch)
    findings_jobs_deliveries(biller)
    assert Message.objects.filter(outcome=Message.Outcome.DUPLICATE).count() == 1

    got = collected(metrics.OperationsCollector(clock=lambda: NOON))
    pair = (("message_type", "1200"), ("outcome", "processed"))
    assert {k: v for k, v in got.items() if k[0] == "payeasy_line_messages_recent"} == {
        ("payeasy_line_messages_recent", pair): 3,  # -2 min, -1 min, -30 s
        ("payeasy_line_messages_recent", (("message_type", "1200"), ("outcome", "duplicate"))): 1,
        ("payeasy_line_messages_recent", (("message_type", "0800"), ("outcome", "processed"))): 0,  # today's
    }
    assert {k: v for k, v in got.items() if k[0] == "payeasy_line_messages_today_total"} == {
        ("payeasy_line_messages_today_total", pair): 4,
        ("payeasy_line_messages_today_total", (("message_type", "1200"), ("outcome", "duplicate"))): 1,
        ("payeasy_line_messages_today_total", (("message_type", "0800"), ("outcome", "processed"))): 1,
    }  # not yesterday's inquiry
    assert {k[1][0][1]: v for k, v in got.items() if k[0] == "payeasy_line_state"} == {
        "open": 1,
        "closed": 0,
        "pre_closed": 0,
    }
    assert got[("payeasy_line_last_message_age_seconds", ())] == 30
    assert got[("payeasy_notices_waiting", ())] == 1
    assert got[("payeasy_notices_waiting_failing", ())] == 0
    assert got[("payeasy_notices_oldest_waiting_age_seconds", ())] == 30
    # applied in the last 5 minutes: 4 s and 10 s (the 10:00 one is long before)
    assert got[("payeasy_notices_applied_recent", ())] == 2
    assert got[("payeasy_apply_lag_max_seconds", ())] == pytest.approx(10.0)
    assert got[("payeasy_apply_lag_average_seconds", ())] == pytest.approx(7.0)
    jobs = {k[1][0][1]: v for k, v in got.items() if k[0] == "payeasy_import_jobs"}
    assert jobs == {"pending": 1, "running": 0, "succeeded": 0, "nothing": 0, "failed": 1}
    hooks = {k[1][0][1]: v for k, v in got.items() if k[0] == "payeasy_webhook_deliveries_failing"}
    assert hooks == {"failed": 1, "retrying": 1}
    assert got[("payeasy_metrics_collect_errors", ())] == 0
    every_label = {value for _name, labels in got for _key, value in labels}
    for secret in (biller.slug, biller.biller_code, biller.legal_name, str(biller.pk)):
        assert secret not in every_label

    # an hour later nothing is recent, the waiting notice has waited 1 h 30 s
    later = collected(metrics.OperationsCollector(clock=lambda: NOON + datetime.timedelta(hours=1)))
    assert {v for k, v in later.items() if k[0] == "payeasy_line_messages_recent"} == {0}
    assert later[("payeasy_notices_applied_recent", ())] == 0
    assert later[("payeasy_apply_lag_max_seconds", ())] == 0
    assert later[("payeasy_notices_oldest_waiting_age_seconds", ())] == 3630


@pytest.mark.django_db
def test_a_registered_part_is_in_every_scrape(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from prometheus_client.core import GaugeMetricFamily

    seen: list[datetime.datetime] = []

    def part(now: datetime.datetime) -> list[Any]:
        seen.append(now)
        return [
            GaugeMetricFamily(
                "payeasy_test_part", "A part another app registers.", value=Message.objects.count()
            )
        ]

    monkeypatch.setattr(metrics, "REGISTERED_PARTS", [])
    metrics.register_part(part)
    metrics.register_part(part)  # once only
    assert len(metrics.REGISTERED_PARTS) == 1 and metrics.REGISTERED_PARTS[0] is part
    assert samples(scrape(client))[("payeasy_test_part", ())] == 0
    assert len(seen) == 1


@pytest.mark.django_db
def test_open_findings_by_kind_once_reconciliation_registers_its_part(no_worker: None) -> None:
    """payeasy may not import reconciliation (docs/adr/0001-app-split.md): reconciliation registers
    ``reconciliation.metrics.finding_metrics`` in its AppConfig.ready (see the lead's change)."""
    reconciliation_metrics = pytest.importorskip("reconciliation.metrics")
    assert reconciliation_metrics.finding_metrics in metrics.REGISTERED_PARTS
    findings_jobs_deliveries(h.line_biller())
    got = collected(metrics.OperationsCollector(clock=lambda: NOON))
    findings = {k[1][0][1]: v for k, v in got.items() if k[0] == "payeasy_reconciliation_findings_open"}
    assert findings["double_payment"] == 2 and findings["provisional"] == 0  # the cleared one not
    assert set(findings) == set(Finding.Kind.values)


@pytest.mark.django_db
def test_the_endpoint_serves_the_figures(
    client: Client, monkeypatch: pytest.MonkeyPatch, no_worker: None
) -> None:
    biller = h.line_biller()
    invoice = h.published_invoice(biller)
    now = timezone.now()
    send(h.open_day(biller), h.payment(biller, invoice), at=now - datetime.timedelta(seconds=20))
    values = samples(scrape(client))
    assert values[("payeasy_line_messages_recent", (("message_type", "1200"), ("outcome", "processed")))] == 1
    assert values[("payeasy_notices_waiting", ())] == 1
    assert values[("payeasy_line_state", (("state", "open"),))] == 1


@pytest.mark.django_db
def test_a_part_that_fails_is_left_out_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(now: datetime.datetime) -> list[Any]:
        raise RuntimeError("database away")

    parts = (broken, *metrics.DATABASE_PARTS[1:])
    monkeypatch.setattr(metrics, "DATABASE_PARTS", parts)
    got = collected(metrics.OperationsCollector())
    assert got[("payeasy_metrics_collect_errors", ())] == 1
    assert ("payeasy_notices_waiting", ()) in got  # the others still answer


@pytest.mark.django_db
def test_the_queries_do_not_grow_with_the_rows(
    monkeypatch: pytest.MonkeyPatch, no_worker: None, django_assert_max_num_queries: Any
) -> None:
    """As many queries for one tenant with a few rows as for several with many (no biller at all needs
    two fewer: ``biller_id IN ()`` is answered without asking the database)."""

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            collected(metrics.OperationsCollector(clock=lambda: NOON))
        return len(ctx.captured_queries)

    first = h.line_biller()
    traffic(first, monkeypatch, payments=4)
    findings_jobs_deliveries(first)
    few = count()
    for _ in range(3):
        biller = h.line_biller()
        traffic(biller, monkeypatch, payments=8)
        findings_jobs_deliveries(biller)
    assert Message.objects.count() >= 40 and Notice.objects.count() >= 28
    assert count() == few
    # one or two queries a part (an aggregate, the billers' ids for two of them, the line's state), and
    # on PostgreSQL the statement timeout, the savepoint and the bypass around each
    parts = len(metrics.DATABASE_PARTS) + len(metrics.REGISTERED_PARTS)
    # and the operator alerts (payeasy.alerts): a query or two per rule, each in a savepoint, and their scope
    rules = len(alerts.DATABASE_RULES) + len(alerts.REGISTERED_RULES)
    with django_assert_max_num_queries(parts * (2 if connection.vendor == "sqlite" else 7) + rules * 4 + 6):
        collected(metrics.OperationsCollector(clock=lambda: NOON))


@pytest.mark.django_db
def test_the_figures_cross_tenants_by_name_under_the_tenant_policies(
    postgres: None, monkeypatch: pytest.MonkeyPatch, no_worker: None
) -> None:
    """Without any bypass the tenant policies hide every tenant row; the collector sees them all only
    because it reads under ``cross_tenant("health")``."""
    for _ in range(2):
        biller = h.line_biller()
        invoice = h.published_invoice(biller)
        send(h.open_day(biller), h.payment(biller, invoice), at=NOON - datetime.timedelta(minutes=1))
    Finding.objects.create(
        biller=biller, key="k", kind=Finding.Kind.PROVISIONAL, processing_date=NOON.date(), amount=1
    )
    with connection.cursor() as cursor:  # as a web process: no bypass (put back by the test's rollback)
        cursor.execute("SELECT set_config('app.bypass', '', false), set_config('app.biller_id', '', false)")
    assert Notice.objects.count() == 0 and Finding.objects.count() == 0
    assert Message.objects.count() == 0
    got = collected(metrics.OperationsCollector(clock=lambda: NOON))
    assert got[("payeasy_notices_waiting", ())] == 2
    assert got[("payeasy_line_messages_recent", (("message_type", "1200"), ("outcome", "processed")))] == 2
    assert got[("payeasy_metrics_collect_errors", ())] == 0
    assert Notice.objects.count() == 0  # the bypass ended with the scrape


# --- the broker's queues ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_queue_depths_of_the_filesystem_broker(settings: Any, tmp_path: Path) -> None:
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
    }
    for name in (
        "1_a.payments.msg",
        "2_b.payments.msg",
        "3_c.webhooks.msg",
        "4_d.nosuch.msg",
        "5_e.payments",
    ):
        (tmp_path / name).write_bytes(b"{}")
    got = collected(metrics.OperationsCollector())
    depths = {k[1][0][1]: v for k, v in got.items() if k[0] == "payeasy_celery_queue_messages"}
    assert depths == {"payments": 2, "notifications": 0, "webhooks": 1, "imports": 0, "maintenance": 0}


@pytest.mark.django_db
def test_queue_depths_on_redis(settings: Any, redis_url: str) -> None:
    import redis
    from kombu import Exchange, Queue

    names = [f"metrics-test-{uuid.uuid4().hex[:8]}", f"metrics-test-{uuid.uuid4().hex[:8]}"]
    settings.CELERY_BROKER_URL = redis_url
    settings.CELERY_TASK_QUEUES = tuple(Queue(n, Exchange(n), routing_key=n) for n in names)
    settings.CELERY_TASK_ROUTES = {}
    client = redis.Redis.from_url(redis_url)
    keys = [names[0], names[0], f"{names[0]}\x06\x163", names[1]]
    try:
        for key in keys:
            client.rpush(key, b"{}")
        got = collected(metrics.OperationsCollector())
    finally:
        client.delete(*set(keys))
        client.close()
    depths = {k[1][0][1]: v for k, v in got.items() if k[0] == "payeasy_celery_queue_messages"}
    assert depths == {names[0]: 3, names[1]: 1}


@pytest.mark.django_db
def test_a_broker_away_leaves_the_queues_out(settings: Any) -> None:
    from tests.payeasy.test_health import closed_port

    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    got = collected(metrics.OperationsCollector())
    assert not [k for k in got if k[0] == "payeasy_celery_queue_messages"]
    assert got[("payeasy_metrics_collect_errors", ())] == 1


# --- request metrics -------------------------------------------------------------------------------------


def http_samples(text: str) -> Samples:
    return {k: v for k, v in samples(text).items() if k[0].startswith("payeasy_http_")}


@pytest.mark.django_db
def test_requests_are_counted_by_view_name_never_by_path(client: Client) -> None:
    biller = h.line_biller(slug="metrics-slug-tenant")
    invoice = h.published_invoice(biller)
    path = f"/b/{biller.slug}/console/invoices/{invoice.pk}/"
    before = http_samples(scrape(client))
    key = (
        "payeasy_http_requests_total",
        (("method", "GET"), ("status", "302"), ("view", "console:invoice_detail")),
    )
    response = client.get(path)  # not signed in: sent to the sign-in page
    assert response.status_code == 302
    client.get("/b/no-such-biller/invoices/1/")  # an unknown tenant: 404 before any URL is resolved
    after = http_samples(scrape(client))
    assert after[key] - before.get(key, 0) == 1
    unmatched = ("payeasy_http_requests_total", (("method", "GET"), ("status", "404"), ("view", "unmatched")))
    assert after[unmatched] - before.get(unmatched, 0) == 1
    count = (
        "payeasy_http_request_duration_seconds_count",
        (("method", "GET"), ("view", "console:invoice_detail")),
    )
    assert after[count] - before.get(count, 0) == 1
    for (_name, labels), _value in after.items():
        for label, value in labels:
            assert biller.slug not in value and "no-such-biller" not in value, (label, value)
            if label in {"view", "status", "method"}:
                assert value != str(invoice.pk) and "/" not in value, (label, value)
    # the scrapes themselves are not requests of the product
    assert not [k for k in after if ("view", "unmatched") in k[1] and ("status", "200") in k[1]]


# --- several worker processes ----------------------------------------------------------------------------

WORKER = """
import django
django.setup()
from payeasy.metrics import HTTP_REQUESTS
HTTP_REQUESTS.labels(method="GET", status="200", view="mp_test_view").inc({n})
"""


@pytest.mark.django_db
def test_multiprocess_mode_sums_every_worker(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two "gunicorn workers" (processes with PROMETHEUS_MULTIPROC_DIR set) count requests in files there;
    the endpoint, in another process, sums them with MultiProcessCollector."""
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    for n in (2, 3):
        subprocess.run([sys.executable, "-c", WORKER.format(n=n)], cwd=BASE, env=env, check=True, timeout=120)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # a file per worker process
    key = ("payeasy_http_requests_total", (("method", "GET"), ("status", "200"), ("view", "mp_test_view")))
    assert key not in samples(scrape(client))  # single-process mode: only this process's registry
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    values = samples(scrape(client))
    assert values[key] == 5
    assert ("payeasy_notices_waiting", ()) in values  # the figures are computed by the scraped process
