"""Operator alerts (payeasy.alerts): each condition made with real rows, processes' locks, broker queues and
TCP, then seen on the staff operations view and in /metrics under the same key and severity — the one
function behind both — and gone from both once resolved.

The line rules depend on the time of day (``PAYEASY_ALERT_ONLINE_HOURS``): off here unless a test turns
them on. Beat is a lock (config.celery.beat_lock): the tests hold it as a running beat does, except the
test about beat. Reconciliation registers its rule in its AppConfig (checked by
``test_reconciliation_registers_its_rule_when_django_starts``); the ``_reconciliation_rule`` fixture registers
it too (registering twice changes nothing), so that the other tests do not depend on that line.
"""

from __future__ import annotations

import datetime
import re
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from billing import events
from billing.models import Biller, ImportJob
from config.celery import app as celery_app
from config.celery import beat_lock
from payeasy import alert_rules, alerts, metrics, selectors
from payeasy.models import LedgerEntry, Notice, WebhookDelivery
from payeasy.queues import queue_names
from payeasy.services.payments import notices_apply
from payeasy.services.webhook_endpoints import webhook_endpoint_create
from reconciliation.alerts import finding_alerts
from reconciliation.models import Finding
from tests.payeasy import line_helpers as h
from tests.payeasy.test_operations import send

pytestmark = pytest.mark.django_db

TOKEN = "alerts-metrics-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# the rules registered when Django started (pytest-django sets Django up before it collects this module)
AT_STARTUP = tuple(alerts.registered_rules())
CLOSED_PORT = 7598  # in this suite's range; nothing listens there (checked by ``refused_port``)


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.PAYEASY_METRICS_TOKEN = TOKEN
    settings.PAYEASY_ALERT_ONLINE_HOURS = ""  # the line rules: only where a test turns them on
    # a busy test machine may take a second to connect: only the test about it measures that
    settings.PAYEASY_ALERT_DATABASE_SLOW_SECONDS = 30


@pytest.fixture(autouse=True)
def _reconciliation_rule() -> None:
    alerts.register_rule(finding_alerts)


@pytest.fixture(autouse=True)
def beat() -> Iterator[Any]:
    """A running beat, as far as the alerts can tell: the beat lock held (on PostgreSQL a session advisory
    lock on a connection of its own; on SQLite a flock)."""
    lock = beat_lock()
    assert lock.hold()
    yield lock
    lock.release()


@pytest.fixture
def no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notices stay waiting until the test applies them (no wake-up of the payments worker)."""
    monkeypatch.setattr(events, "send", lambda task, *args: True)


@pytest.fixture
def biller() -> Biller:
    return h.line_biller(legal_name="警報テスト電力株式会社")


def firing(client: Client, *, collect_errors: int = 0) -> dict[str, str]:
    """The alerts firing, ``{key: severity}``, as the operations view shows them — asserted to be exactly
    those of /metrics (``payeasy_alerts`` 1 each, ``payeasy_alerts_firing`` their count)."""
    response = client.get("/staff/operations/", {"refresh": "0"})
    assert response.status_code == 200
    page = response.content.decode()
    on_page = dict(re.findall(r'data-alert-key="([a-z0-9_]+)" data-severity="(critical|warning)"', page))
    scraped = client.get("/metrics", headers=AUTH)
    assert scraped.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(scraped.content.decode())}
    in_metrics = {s.labels["key"]: s.labels["severity"] for s in families["payeasy_alerts"].samples}
    assert all(s.value == 1 for s in families["payeasy_alerts"].samples)
    assert all(set(s.labels) == {"key", "severity"} for s in families["payeasy_alerts"].samples)
    assert on_page == in_metrics, (on_page, in_metrics)
    assert families["payeasy_alerts_firing"].samples[0].value == len(on_page)
    assert families["payeasy_metrics_collect_errors"].samples[0].value == collect_errors
    if on_page:
        assert "No alerts" not in page
    else:
        assert "No alerts: nothing needs action now." in page
    return on_page


def page_text(client: Client) -> str:
    return re.sub(r"\s+", " ", client.get("/staff/operations/", {"refresh": "0"}).content.decode())


def alert_block(page: str, key: str) -> str:
    """The page's markup of one alert."""
    match = re.search(rf'<li id="alert-{key}".*?</li>', page)
    assert match, f"no alert {key} on the page"
    return match.group(0)


# --- nothing wrong ----------------------------------------------------------------------------------------


def test_no_alerts_when_all_is_well(staff_client: Client) -> None:
    assert firing(staff_client) == {}
    page = page_text(staff_client)
    assert "<title>Operations |" in page  # no count in the title
    assert page.index('id="alerts-heading"') < page.index('id="line-heading"')  # the panel comes first


# --- notices ----------------------------------------------------------------------------------------------


def test_a_notice_waiting_ten_minutes_is_critical_until_it_is_applied(
    staff_client: Client, biller: Biller, no_worker: None
) -> None:
    invoice = h.published_invoice(biller, price=3000)
    send(h.open_day(biller))
    send(h.payment(biller, invoice))
    Notice.objects.update(received_at=timezone.now() - datetime.timedelta(minutes=10))
    assert firing(staff_client) == {"notices_stuck": "critical"}
    block = alert_block(page_text(staff_client), "notices_stuck")
    assert "Critical" in block and "Payments are not being applied" in block  # the severity as text
    assert re.search(
        r"1 notice waiting \(3,300円\); the oldest has waited 10 min \d+ s \(alert after 1 min 0 s\)", block
    )
    assert 'href="/staff/operations/#notices-heading"' in block and "What to do:" in block
    assert "<title>(1 alert) Operations |" in page_text(staff_client)

    assert notices_apply().applied == 1
    # applied at last, ten minutes after its acknowledgment: that is the apply lag of the last 5 minutes
    assert firing(staff_client) == {"apply_lag_high": "warning"}


def test_notices_failing_at_their_last_attempt(staff_client: Client, biller: Biller, no_worker: None) -> None:
    send(h.open_day(biller))
    send(h.payment(biller, h.published_invoice(biller)))
    Notice.objects.update(attempts=3, last_error="OperationalError: gone")
    assert firing(staff_client) == {"notices_failing": "warning"}
    assert "1 waiting notice failed at its last attempt." in alert_block(
        page_text(staff_client), "notices_failing"
    )
    assert notices_apply().applied == 1
    assert firing(staff_client) == {}


def test_apply_lag_p95_over_the_threshold_until_fast_payments_bring_it_down(
    staff_client: Client, biller: Biller, no_worker: None, settings: Any
) -> None:
    settings.PAYEASY_ALERT_APPLY_LAG_P95_SECONDS = 5
    send(h.open_day(biller))
    send(h.payment(biller, h.published_invoice(biller)))
    Notice.objects.update(received_at=timezone.now() - datetime.timedelta(seconds=40))
    notices_apply()
    count, p95 = alert_rules.apply_lag_p95(timezone.now(), datetime.timedelta(minutes=5))
    assert count == 1 and p95 is not None and 40 <= p95 < 45
    assert firing(staff_client) == {"apply_lag_high": "warning"}
    assert "1 line payment applied in the last 5 min 0 s; 95% within 4" in alert_block(
        page_text(staff_client), "apply_lag_high"
    )
    for _ in range(20):  # twenty more, each applied as soon as it arrives: one slow in 21 is the top 5 %
        send(h.payment(biller, h.published_invoice(biller)))
        notices_apply()
    count, p95 = alert_rules.apply_lag_p95(timezone.now(), datetime.timedelta(minutes=5))
    assert count == 21 and p95 is not None and p95 < 5
    assert firing(staff_client) == {}


def test_provisional_payments_today_until_the_day_ends(staff_client: Client, biller: Biller) -> None:
    send(h.open_day(biller))
    send(h.payment(biller, h.published_invoice(biller, price=2000), amount=5))  # the amount differs
    notices_apply()
    assert LedgerEntry.objects.get().outcome == LedgerEntry.Outcome.PROVISIONAL
    assert firing(staff_client) == {"provisional_today": "warning"}
    block = alert_block(page_text(staff_client), "provisional_today")
    assert "1 provisional payment today, 5円 in all." in block
    assert 'href="/staff/operations/#provisional-heading"' in block
    tomorrow = selectors.jst_day_start(selectors.jst_today()) + datetime.timedelta(days=1, hours=9)
    assert [a.key for a in alerts.active_alerts(tomorrow)] == []
    scraped = metrics.OperationsCollector(clock=lambda: tomorrow).collect()
    assert [s.value for f in scraped if f.name == "payeasy_alerts_firing" for s in f.samples] == [0]


# --- the line -----------------------------------------------------------------------------------------------


def test_the_line_not_open_during_online_hours_then_silent(
    staff_client: Client, biller: Biller, settings: Any, no_worker: None
) -> None:
    settings.PAYEASY_ALERT_ONLINE_HOURS = "00:00-24:00"
    settings.PAYEASY_ALERT_LINE_SILENT_SECONDS = 300
    assert firing(staff_client) == {"line_not_open": "critical"}
    assert "The line has never been opened" in alert_block(page_text(staff_client), "line_not_open")
    send(h.open_day(biller), at=timezone.now() - datetime.timedelta(minutes=20))
    assert firing(staff_client) == {"line_silent": "warning"}  # open, but nothing for 20 minutes
    send(h.inquiry(biller, h.published_invoice(biller)))
    assert firing(staff_client) == {}
    send(h.close(biller, 1))  # pre-closed: inquiries refused
    assert firing(staff_client) == {"line_not_open": "warning"}
    send(h.close(biller, 2))
    assert firing(staff_client) == {"line_not_open": "critical"}
    settings.PAYEASY_ALERT_ONLINE_HOURS = ""  # outside the online hours a closed line is normal
    assert firing(staff_client) == {}


# --- webhooks, imports, findings -------------------------------------------------------------------------


def test_a_webhook_delivery_given_up_until_it_is_delivered(staff_client: Client, biller: Biller) -> None:
    endpoint, _secret = webhook_endpoint_create(
        actor=None, biller=biller, url="https://hooks.example.com/p", event_types=["payment.received"]
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        biller=biller,
        event_id=uuid.uuid4(),
        event_type="payment.received",
        payload="{}",
        status=WebhookDelivery.Status.FAILED,
        attempts=8,
        last_attempt_at=timezone.now() - datetime.timedelta(minutes=5),
        give_up_at=timezone.now(),
    )
    assert firing(staff_client) == {"webhooks_failing": "warning"}
    block = alert_block(page_text(staff_client), "webhooks_failing")
    assert "Given up in the last 1 d 0 h: 1; waiting for another attempt: 0" in block
    assert biller.legal_name not in block and biller.biller_code not in block
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.SUCCEEDED, delivered_at=timezone.now()
    )
    assert firing(staff_client) == {}


def test_an_import_failed_in_the_last_day(staff_client: Client, biller: Biller) -> None:
    def job(mode: str) -> ImportJob:
        return ImportJob.objects.create(
            biller=biller,
            mode=mode,
            status=ImportJob.Status.FAILED,
            file_path="/nonexistent",
            file_name="請求.csv",
            file_sha256="0" * 64,
        )

    job(ImportJob.Mode.PREVIEW)  # a preview finds a file's errors: that is what it is for
    assert firing(staff_client) == {}
    failed = job(ImportJob.Mode.IMPORT)
    assert firing(staff_client) == {"imports_failed": "warning"}
    assert "1 invoice import failed in the last 1 d 0 h" in alert_block(
        page_text(staff_client), "imports_failed"
    )
    ImportJob.objects.filter(pk=failed.pk).update(created_at=timezone.now() - datetime.timedelta(hours=25))
    assert firing(staff_client) == {}


def test_open_findings_critical_when_the_money_differs(staff_client: Client, biller: Biller) -> None:
    def finding(key: str, kind: str) -> Finding:
        return Finding.objects.create(
            biller=biller, key=key, kind=kind, processing_date=datetime.date(2026, 11, 26), amount=1100
        )

    counter = finding("counter:1", Finding.Kind.COUNTER_MISMATCH)
    assert firing(staff_client) == {"reconciliation_money_differs": "critical"}
    block = alert_block(page_text(staff_client), "reconciliation_money_differs")
    assert "1 open finding where the amounts differ" in block and "1,100円 at stake" in block
    assert 'href="/staff/reconciliation/"' in block
    double = finding("double:1", Finding.Kind.DOUBLE_PAYMENT)
    assert firing(staff_client) == {
        "reconciliation_money_differs": "critical",
        "reconciliation_findings_open": "warning",
    }
    Finding.objects.filter(pk=counter.pk).update(state=Finding.State.CLEARED)
    assert firing(staff_client) == {"reconciliation_findings_open": "warning"}
    Finding.objects.filter(pk=double.pk).update(state=Finding.State.REFUNDED)
    assert firing(staff_client) == {}


def test_reconciliation_registers_its_rule_when_django_starts() -> None:
    """reconciliation/apps.py: ``register_rule(finding_alerts)`` in ``ReconciliationConfig.ready`` (the rules
    as Django started, before any fixture of this module registered anything)."""
    assert finding_alerts in AT_STARTUP


# --- beat, the broker, the queues, the database ------------------------------------------------------------


def test_beat_not_running_while_no_beat_holds_the_lock(staff_client: Client, beat: Any) -> None:
    beat.release()
    assert firing(staff_client) == {"beat_not_running": "critical"}
    assert "celery beat is not running" in alert_block(page_text(staff_client), "beat_not_running")
    assert beat.hold()  # a beat starts and takes the lock
    assert firing(staff_client) == {}


def refused_port() -> int:
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", CLOSED_PORT)) != 0, f"something listens on {CLOSED_PORT}"
    return CLOSED_PORT


def test_the_broker_unreachable(staff_client: Client, settings: Any) -> None:
    url = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{refused_port()}/5"  # a real connection, refused
    # /metrics leaves out its queue depths (one part failed), not the alerts
    assert firing(staff_client, collect_errors=1) == {"broker_unreachable": "critical"}
    assert "The broker check failed: error ConnectionError." in alert_block(
        page_text(staff_client), "broker_unreachable"
    )
    settings.CELERY_BROKER_URL = url
    assert firing(staff_client) == {}


def purge(*names: str) -> None:
    with celery_app.connection_for_write() as conn:
        for name in names:
            conn.default_channel.queue_purge(name)


def test_celery_queues_backed_up_the_payments_queue_stricter(
    staff_client: Client, settings: Any, redis_url: str
) -> None:
    assert redis_url == settings.CELERY_BROKER_URL
    settings.PAYEASY_ALERT_PAYMENTS_QUEUE_DEPTH = 2
    settings.PAYEASY_ALERT_QUEUE_DEPTH = 3
    purge(*queue_names())
    try:
        for _ in range(3):  # no worker runs in the tests: the messages stay in the broker's queues
            celery_app.send_task("payeasy.tasks.notices_sweep", queue="payments", routing_key="payments")
            celery_app.send_task(
                "billing.tasks.sessions_clear", queue="maintenance", routing_key="maintenance"
            )
        assert firing(staff_client) == {"queue_backlog_payments": "critical"}  # 3 > 2; maintenance 3 ≤ 3
        assert "3 messages waiting (alert above 2)." in alert_block(
            page_text(staff_client), "queue_backlog_payments"
        )
        celery_app.send_task("billing.tasks.sessions_clear", queue="maintenance", routing_key="maintenance")
        assert firing(staff_client) == {
            "queue_backlog_payments": "critical",
            "queue_backlog_maintenance": "warning",
        }
        purge("payments")  # the payments worker is back and drains it
        assert firing(staff_client) == {"queue_backlog_maintenance": "warning"}
    finally:
        purge(*queue_names())
    assert firing(staff_client) == {}


def test_the_database_slow(staff_client: Client, settings: Any) -> None:
    settings.PAYEASY_ALERT_DATABASE_SLOW_SECONDS = 0  # every real SELECT 1 takes longer than nothing
    assert firing(staff_client) == {"database_slow": "warning"}
    settings.PAYEASY_ALERT_DATABASE_SLOW_SECONDS = 30
    assert firing(staff_client) == {}


def test_the_database_unreachable_is_in_metrics(client: Client, postgres: None) -> None:
    """The checks' connections (threads of their own) go to a port where nothing listens: refused. The
    rules that read the database are not run; the scrape still answers, with the database's alert."""
    settings_dict = connections.settings["default"]
    host, port = settings_dict["HOST"], settings_dict["PORT"]
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", str(refused_port())
    try:
        got = alerts.active_alerts()
        text = client.get("/metrics", headers=AUTH).content.decode()
    finally:
        settings_dict["HOST"], settings_dict["PORT"] = host, port
    assert [(a.key, a.severity) for a in got] == [("database_unreachable", "critical")]
    assert got[0].detail == "SELECT 1 failed: error OperationalError."
    assert 'payeasy_alerts{key="database_unreachable",severity="critical"} 1.0' in text
    assert "payeasy_alerts_firing 1.0" in text


# --- the hook, failing rules, the scope --------------------------------------------------------------------


def test_a_registered_rule_is_on_the_page_and_in_metrics_and_a_failing_one_is_named(
    staff_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def standby_nodes(now: datetime.datetime) -> list[alerts.Alert]:
        return [
            alerts.Alert(
                key="commserver_no_standby",
                severity=alerts.WARNING,
                title="No standby communication server",
                detail="1 node active, 0 standby.",
                action="Start a second commserver node.",
            )
        ]

    def broken(now: datetime.datetime) -> list[alerts.Alert]:
        Notice.objects.raw("SELECT * FROM no_such_table")[0]  # fails in the database: its savepoint only
        return []

    monkeypatch.setattr(alerts, "REGISTERED_RULES", [finding_alerts])
    alerts.register_rule(standby_nodes)
    alerts.register_rule(standby_nodes)
    alerts.register_rule(broken)
    assert alerts.registered_rules() == [finding_alerts, standby_nodes, broken]
    assert firing(staff_client) == {"commserver_no_standby": "warning", "alert_rules_failed": "warning"}
    assert "Not checked: tests.payeasy.test_alerts.broken." in alert_block(
        page_text(staff_client), "alert_rules_failed"
    )


def test_an_alert_key_is_a_fixed_identifier() -> None:
    for key in ("", "Line", "queue backlog", "biller_12345678:late", "x"):
        with pytest.raises(ValueError):
            alerts.Alert(key=key, severity=alerts.WARNING, title="t", detail="d", action="a")
    with pytest.raises(ValueError):
        alerts.Alert(key="line_not_open", severity="info", title="t", detail="d", action="a")


def test_a_rule_scope_leaves_the_requests_statement_timeout_as_it_was(postgres: None) -> None:
    def timeout() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            return str(cursor.fetchone()[0])

    with transaction.atomic():
        before = timeout()
        with alerts.rule_scope():
            assert timeout() == "1s"
        assert timeout() == before


# --- the commserver nodes -------------------------------------------------------------------------------


def test_commserver_nodes_without_a_standby_without_an_active_one_and_slow(
    staff_client: Client, settings: Any
) -> None:
    """The heartbeats the commservers write (payeasy.line_nodes): an active node alone is a warning, only
    standbys left is critical, a slow active one a warning; the node table shows each with its role."""
    from payeasy.models.line import LineNode

    settings.COMMSERVER_HEARTBEAT_SECONDS = 5
    now = timezone.now()
    assert "commserver_no_standby" not in firing(staff_client)  # no commserver ever reported: nothing
    active = LineNode.objects.create(
        name="line-a", role=LineNode.Role.ACTIVE, seen_at=now, ack_p50_ms=1.5, ack_p99_ms=4.0
    )
    assert firing(staff_client) == {"commserver_no_standby": "warning"}
    page = page_text(staff_client)
    assert 'id="line-nodes-heading"' in page and "line-a" in page and "4.0 ms" in page

    LineNode.objects.create(name="line-b", role=LineNode.Role.STANDBY, seen_at=now)
    assert firing(staff_client) == {}

    active.ack_p99_ms = 900.0
    active.save()
    assert firing(staff_client) == {"commserver_ack_slow": "warning"}

    # the active node's heartbeat stops (killed): after three missed beats only the standby is alive
    active.seen_at = now - datetime.timedelta(seconds=20)
    active.save()
    assert firing(staff_client) == {"commserver_no_active": "critical"}
    assert "Gone" in page_text(staff_client)
