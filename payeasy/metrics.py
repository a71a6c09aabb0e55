"""Prometheus metrics for the scraper: ``/metrics``, guarded by a bearer token.

What is exposed (every name prefixed ``payeasy_``; labels only ``message_type``, ``outcome``, ``state``,
``queue``, ``kind``, ``status``, ``method``, ``view``, and the alerts' fixed ``key`` and ``severity`` —
never a tenant, a slug, an id, a payment number or an amount):

- computed at scrape time by :class:`OperationsCollector`, from the database (aggregate queries only,
  each on an index, across tenants under ``cross_tenant("health")`` and PostgreSQL's statement timeout of
  ``payeasy.health.bounded_queries``) and from the broker: line messages of the last 5 minutes and of
  today (JST) by type and outcome, the line's state, the notices waiting (count, failing, oldest age), the
  apply lag of the last 5 minutes, the depth of each Celery queue, the webhook deliveries failed or
  being retried, the import jobs by status; and what other apps add with :func:`register_part` (the
  open reconciliation findings by kind: payeasy may not import reconciliation, which registers its
  part). A part that fails (the database or the broker away) is left out of the answer and counted in
  ``payeasy_metrics_collect_errors``; the others are still reported. Then the operator alerts
  (``payeasy_alerts{key,severity}``, ``payeasy_alerts_firing``) from ``payeasy.alerts.active_alerts``,
  the very function of the operations view's alerts panel.
- per request, by :class:`RequestMetricsMiddleware`: ``payeasy_http_requests_total{method,status,view}``
  and ``payeasy_http_request_duration_seconds{method,view}``. ``view`` is the URL pattern's name
  (``resolver_match.view_name``) or ``unmatched``, never the path: tenant slugs and ids are in paths.

Serving. ``MetricsMiddleware`` answers ``/metrics`` before host checks and tenant routing, as
``payeasy.health.HealthMiddleware`` answers ``/healthz``: put it right after that one in ``MIDDLEWARE``,
and ``RequestMetricsMiddleware`` right after it (so neither probes nor scrapes are counted as requests).
The endpoint is off unless ``settings.PAYEASY_METRICS_TOKEN`` is set; then a request must carry
``Authorization: Bearer <token>``. Off, or without the right token, the request goes on through the stack
as if this middleware did not exist (the product's own 404): nobody without the token can tell whether
the endpoint is there.

Several processes (gunicorn workers). The request counters live in each worker's memory; with several
workers each scrape would see one worker's only. Set ``PROMETHEUS_MULTIPROC_DIR`` in the environment of
the web service (before the process starts: prometheus_client reads it when it is imported) to a
directory of its own, writable, and EMPTIED AT EVERY START OF THE SERVICE (e.g. ``rm -rf "$DIR"/*`` in the
unit's ExecStartPre, or a tmpfs): the workers then write their counters to files there, and the endpoint
sums every worker's files (``MultiProcessCollector``) into a fresh ``CollectorRegistry`` at each scrape.
Without the variable the default registry of the process is served (one process: ``runserver``, tests).
Only counters and histograms are kept per worker, so gunicorn's ``child_exit`` hook needs nothing.
"""

from __future__ import annotations

import datetime
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from billing.tenancy import cross_tenant
from config.logs import method_name
from payeasy.codec import MESSAGE_TYPES
from payeasy.queues import queue_depths

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
RECENT = datetime.timedelta(minutes=5)

# ---------------------------------------------------------------------------------------------------------
# Request metrics
# ---------------------------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "payeasy_http_requests",
    "HTTP requests answered, by method, status code and view (URL name; unmatched: no URL pattern).",
    ["method", "status", "view"],
)
HTTP_REQUEST_DURATION = Histogram(
    "payeasy_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and view (URL name; unmatched: no URL pattern).",
    ["method", "view"],
)


def view_label(request: HttpRequest) -> str:
    """The URL pattern's name (``namespace:name``, or the view's dotted path when unnamed), or
    ``unmatched``: never the path itself, which carries tenant slugs and ids."""
    match = getattr(request, "resolver_match", None)
    return (match.view_name if match is not None else "") or "unmatched"


class RequestMetricsMiddleware:
    """Counts and times every request that reaches it: in ``MIDDLEWARE`` right after ``MetricsMiddleware``.
    The labelled series are looked up once per process and label values (``labels()`` validates and locks
    on every call); their number is bounded by the URL patterns, the methods and the status codes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        status = "500"  # an exception that escapes the handler
        try:
            response = self.get_response(request)
            status = str(response.status_code)
            return response
        finally:
            method, view = method_name(request), view_label(request)  # as the access line names them
            series = self.series.get((method, status, view))
            if series is None:
                series = self.series[method, status, view] = (
                    HTTP_REQUESTS.labels(method=method, status=status, view=view),
                    HTTP_REQUEST_DURATION.labels(method=method, view=view),
                )
            series[0].inc()
            series[1].observe(time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------------------
# The collector: operations figures computed at scrape time
# ---------------------------------------------------------------------------------------------------------


def message_type_label(value: str) -> str:
    """A message type of the MPN specification, or ``other`` (a frame may carry anything there): the
    label of line messages here and of the commserver's own metrics (payeasy.commserver_metrics)."""
    return value if value in MESSAGE_TYPES else "other"


def line_message_metrics(now: datetime.datetime) -> list[Metric]:
    """One GROUP BY on index message_time over today (JST) and the last 5 minutes."""
    from payeasy.codec import JST
    from payeasy.models import Message
    from payeasy.selectors import jst_day_start

    day_start = jst_day_start(now.astimezone(JST).date())
    since = now - RECENT
    recent = GaugeMetricFamily(
        "payeasy_line_messages_recent",
        "Line messages received in the last 5 minutes, by message type and outcome.",
        labels=["message_type", "outcome"],
    )
    today = CounterMetricFamily(
        "payeasy_line_messages_today",
        "Line messages received today (JST; starts again from 0 at midnight), by message type and outcome.",
        labels=["message_type", "outcome"],
    )
    counts: dict[tuple[str, str], list[int]] = {}
    for row in (
        Message.objects.filter(received_at__gte=min(day_start, since), received_at__lte=now)
        .values("message_type", "outcome")
        .annotate(
            recent=Count("id", filter=Q(received_at__gte=since)),
            today=Count("id", filter=Q(received_at__gte=day_start)),
        )
        .order_by()
    ):
        key = (message_type_label(row["message_type"]), row["outcome"])
        pair = counts.setdefault(key, [0, 0])
        pair[0] += row["recent"]
        pair[1] += row["today"]
    for (message_type, outcome), (n_recent, n_today) in sorted(counts.items()):
        recent.add_metric([message_type, outcome], n_recent)
        today.add_metric([message_type, outcome], n_today)
    return [recent, today]


def line_state_metrics(now: datetime.datetime) -> list[Metric]:
    """The line's state as the staff operations page reads it (``selectors.line_overview``)."""
    from payeasy import selectors
    from payeasy.models import LineState

    overview = selectors.line_overview()
    state = GaugeMetricFamily(
        "payeasy_line_state",
        "The MPN line's state: 1 for the current one, 0 for the others.",
        labels=["state"],
    )
    for value in LineState.State.values:
        state.add_metric([value], 1 if overview.line.state == value else 0)
    families: list[Metric] = [state]
    if overview.last_message_at is not None:
        families.append(
            GaugeMetricFamily(
                "payeasy_line_last_message_age_seconds",
                "Seconds since the line's last frame was received (absent: never).",
                value=max(0.0, (now - overview.last_message_at).total_seconds()),
            )
        )
    return families


def notice_metrics(now: datetime.datetime) -> list[Metric]:
    """The notices not yet applied, every tenant together (``selectors.waiting_notices_total``)."""
    from payeasy import selectors

    waiting = selectors.waiting_notices_total()
    oldest = waiting.oldest_waiting_at
    return [
        GaugeMetricFamily(
            "payeasy_notices_waiting", "Notices waiting to be applied.", value=waiting.waiting.count
        ),
        GaugeMetricFamily(
            "payeasy_notices_waiting_failing",
            "Notices waiting to be applied whose last attempt failed.",
            value=waiting.failing,
        ),
        GaugeMetricFamily(
            "payeasy_notices_oldest_waiting_age_seconds",
            "Seconds the oldest waiting notice has waited (0: none waits).",
            value=0.0 if oldest is None else max(0.0, (now - oldest).total_seconds()),
        ),
    ]


def apply_lag_metrics(now: datetime.datetime) -> list[Metric]:
    """The line payments applied in the last 5 minutes and their lag, from the notice's ``received_at``
    (stored, so acknowledged) to its ledger entry's ``created_at``, as ``selectors.line_activity``
    computes it: one aggregate on index ledger_biller_time (every biller as a list of ids)."""
    from payeasy import selectors
    from payeasy.models import LedgerEntry, Notice

    lag = ExpressionWrapper(F("created_at") - F("notice__received_at"), output_field=DurationField())
    row = LedgerEntry.objects.filter(
        biller_id__in=selectors.biller_ids(),
        created_at__gte=now - RECENT,
        created_at__lte=now,
        notice__kind=Notice.Kind.PAYMENT,
        notice__source=Notice.Source.LINE,
    ).aggregate(n=Count("id"), lag_sum=Sum(lag), lag_max=Max(lag))
    n = row["n"]
    return [
        GaugeMetricFamily(
            "payeasy_notices_applied_recent",
            "Line payments applied to the ledger in the last 5 minutes.",
            value=n,
        ),
        GaugeMetricFamily(
            "payeasy_apply_lag_max_seconds",
            "Longest apply lag (acknowledged to ledger entry) of the last 5 minutes (0: none applied).",
            value=max(selectors.duration_seconds(row["lag_max"]), 0.0),
        ),
        GaugeMetricFamily(
            "payeasy_apply_lag_average_seconds",
            "Average apply lag (acknowledged to ledger entry) of the last 5 minutes (0: none applied).",
            value=max(selectors.duration_seconds(row["lag_sum"]), 0.0) / n if n else 0.0,
        ),
    ]


def webhook_metrics(now: datetime.datetime) -> list[Metric]:
    """Webhook deliveries given up (``failed``) and being retried (``retrying``: pending after a failed
    attempt), on index webhook_delivery_biller_status (every biller as a list of ids)."""
    from payeasy import selectors
    from payeasy.models import WebhookDelivery

    Status = WebhookDelivery.Status
    row = WebhookDelivery.objects.filter(
        biller_id__in=selectors.biller_ids(), status__in=[Status.FAILED, Status.PENDING]
    ).aggregate(
        failed=Count("id", filter=Q(status=Status.FAILED)),
        retrying=Count("id", filter=Q(status=Status.PENDING, attempts__gt=0)),
    )
    family = GaugeMetricFamily(
        "payeasy_webhook_deliveries_failing",
        "Webhook deliveries that failed: given up (failed) or waiting for another attempt (retrying).",
        labels=["status"],
    )
    family.add_metric(["failed"], row["failed"])
    family.add_metric(["retrying"], row["retrying"])
    return [family]


def import_job_metrics(now: datetime.datetime) -> list[Metric]:
    """Invoice import jobs by status (one small GROUP BY: a row per uploaded file)."""
    from billing.models import ImportJob

    counts = dict(
        ImportJob.objects.values("status").annotate(n=Count("id")).order_by().values_list("status", "n")
    )
    family = GaugeMetricFamily("payeasy_import_jobs", "Invoice import jobs, by status.", labels=["status"])
    for status in ImportJob.Status.values:
        family.add_metric([status], counts.get(status, 0))
    return [family]


def line_node_metrics(now: datetime.datetime) -> list[Metric]:
    """The commserver nodes alive, by role (``payeasy.line_nodes``): 1 active and at least 1 standby."""
    from payeasy import line_nodes

    return line_nodes.line_node_metrics(now)


Part = Callable[[datetime.datetime], list[Metric]]

DATABASE_PARTS: tuple[Part, ...] = (
    line_message_metrics,
    line_state_metrics,
    notice_metrics,
    apply_lag_metrics,
    webhook_metrics,
    import_job_metrics,
    line_node_metrics,
)
# Parts of the apps payeasy may not import (reconciliation: docs/adr/0001-app-split.md), registered by
# them when Django starts (their AppConfig.ready): each runs like the ones above.
REGISTERED_PARTS: list[Part] = []


def register_part(part: Part) -> None:
    """Add ``part`` (``now`` → metric families, read under ``cross_tenant("health")`` and the statement
    timeout) to every scrape; registering it again changes nothing."""
    if part not in REGISTERED_PARTS:
        REGISTERED_PARTS.append(part)


def alert_metrics(now: datetime.datetime) -> list[Metric]:
    """The operator alerts of ``payeasy.alerts.active_alerts`` — the operations view's panel, the same
    call: ``payeasy_alerts{key,severity}`` 1 for each alert firing (absent when not, like Prometheus's
    own ``ALERTS``), and ``payeasy_alerts_firing``, how many. Not a database part: it runs its own
    checks of the database and the broker first, so that it still reports the database being away."""
    from payeasy.alerts import active_alerts

    firing = GaugeMetricFamily(
        "payeasy_alerts",
        "Operator alerts firing (1), by fixed key and severity (critical, warning): the operations view's "
        "alerts, see docs/operations.md.",
        labels=["key", "severity"],
    )
    keys: set[str] = set()
    for alert in active_alerts(now):
        if alert.key not in keys:  # the most severe of one key (the alerts come critical first)
            keys.add(alert.key)
            firing.add_metric([alert.key, alert.severity], 1)
    return [
        firing,
        GaugeMetricFamily("payeasy_alerts_firing", "How many operator alerts are firing.", value=len(keys)),
    ]


class OperationsCollector(Collector):
    """The operations figures, computed at each scrape (no describe: registering it queries nothing).
    ``clock`` gives the moment they are computed for (tests set one)."""

    def __init__(self, clock: Callable[[], datetime.datetime] | None = None) -> None:
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        from payeasy.health import bounded_queries

        now = self.clock() if self.clock is not None else timezone.now()
        families: list[Metric] = []
        errors = 0
        for part in (*DATABASE_PARTS, *REGISTERED_PARTS):
            try:
                with bounded_queries(), cross_tenant("health"):
                    families += part(now)
            except Exception as exc:  # one part away: the others are still worth reporting
                errors += 1
                logger.warning("metrics: %s failed: %s", part.__name__, type(exc).__name__, exc_info=True)
        try:
            depths = queue_depths()
        except Exception as exc:
            errors += 1
            depths = None
            logger.warning("metrics: queue depths failed: %s", type(exc).__name__, exc_info=True)
        if depths is not None:
            queues = GaugeMetricFamily(
                "payeasy_celery_queue_messages", "Messages waiting in each Celery queue.", labels=["queue"]
            )
            for name, depth in depths.items():
                queues.add_metric([name], depth)
            families.append(queues)
        try:
            families += alert_metrics(now)
        except Exception as exc:
            errors += 1
            logger.warning("metrics: alerts failed: %s", type(exc).__name__, exc_info=True)
        families.append(
            GaugeMetricFamily(
                "payeasy_metrics_collect_errors",
                "Parts of this scrape that failed and were left out (see the web log).",
                value=errors,
            )
        )
        return families


# ---------------------------------------------------------------------------------------------------------
# The endpoint
# ---------------------------------------------------------------------------------------------------------


class _RegistryForward(Collector):
    """Every metric of another registry (the process's default one) in the scrape's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        return iter(self.registry.collect())


def multiprocess_dir() -> str:
    return os.environ.get(MULTIPROC_ENV, "")


def scrape_registry() -> CollectorRegistry:
    """A fresh registry for one scrape: the request metrics of every worker (multiprocess mode) or of
    this process, and the operations figures."""
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_RegistryForward(REGISTRY))
    registry.register(OperationsCollector())
    return registry


def metrics_token() -> str:
    return str(getattr(settings, "PAYEASY_METRICS_TOKEN", "") or "")


def authorized(request: HttpRequest) -> bool:
    """The endpoint is on (a token is set) and the request carries ``Authorization: Bearer <token>``."""
    token = metrics_token()
    return bool(token) and bearer_matches(request.headers.get("Authorization", ""), token)


def bearer_matches(authorization: str, token: str) -> bool:
    """``authorization`` (the header's value) is ``Bearer <token>``, compared in constant time: the web
    endpoint's check and the commserver's (payeasy.commserver_metrics)."""
    scheme, _sep, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The text exposition format of :func:`scrape_registry`, to the bearer of the token only (404 to
    anyone else, and when the endpoint is off)."""
    if not authorized(request):
        raise Http404("No such page.")
    if request.method not in {"GET", "HEAD"}:
        response = HttpResponse(status=405)
        response["Allow"] = "GET, HEAD"
        return response
    response = HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


class MetricsMiddleware:
    """Answers ``/metrics`` (with or without a trailing slash) to the bearer of the token, before host
    checks and tenant routing: in ``MIDDLEWARE`` right after ``payeasy.health.HealthMiddleware``. Anyone
    else's request goes on as if it were not there."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (request.path_info.rstrip("/") or "/") != METRICS_PATH or not authorized(request):
            # off, or no right token: on through the stack (the product's own 404), as if not here
            return self.get_response(request)
        return metrics_view(request)


__all__ = [
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "MetricsMiddleware",
    "OperationsCollector",
    "RequestMetricsMiddleware",
    "metrics_view",
    "scrape_registry",
]
