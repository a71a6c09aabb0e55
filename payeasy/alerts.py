"""Alerts: what an operator must act on, decided here and nowhere else.

:func:`active_alerts` is the one source of both places that show them: the staff operations view
(``/staff/operations/``, a panel at the top) and ``/metrics`` (``payeasy_alerts{key,severity}`` and
``payeasy_alerts_firing``, added by ``payeasy.metrics.OperationsCollector``). A rule is decided once, so
the page and the scraper cannot disagree about what is wrong; they differ only by the moment they ask.

Each rule reads the figures the page and the health checks already read (``payeasy.selectors``,
``payeasy.health``, ``payeasy.queues.queue_depths``) and turns them into :class:`Alert` values: a fixed
``key`` (a Prometheus label value: never a tenant, an id or an amount), a severity, a title, the figures,
what to do, since when and a link. Thresholds are settings (``PAYEASY_ALERT_*``, see :data:`DEFAULTS`),
read on every call, so a deployment tunes them without code.

The database and the broker are checked first, in threads within the readiness budget
(``payeasy.health.run_checks``): when the database does not answer, the rules that read it are not run
(each would wait for it in turn) and the database alert says why; ``/metrics`` still reports it. Every
other rule runs in a savepoint of its own, under PostgreSQL's statement timeout of the health checks and
``cross_tenant("health")``; a rule that fails is reported as the alert ``alert_rules_failed`` (naming the
rule), never silently dropped, and the others still run.

Other apps add rules with :func:`register_rule` from their ``AppConfig.ready`` (payeasy may not import
reconciliation: docs/adr/0001-app-split.md), as they add ``/metrics`` parts with
``payeasy.metrics.register_part``. A rule is ``rule(now) -> iterable of Alert``.
"""

from __future__ import annotations

import datetime
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.tenancy import cross_tenant
from payeasy import health
from payeasy.alert_rules import DATABASE_RULES
from payeasy.alerting import (
    CRITICAL,
    DEFAULTS,
    SEVERITIES,
    WARNING,
    Alert,
    Rule,
    threshold,
)

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------
# The database, the broker, the queues
# ---------------------------------------------------------------------------------------------------------


def timed_database_check() -> health.CheckResult:
    """``payeasy.health.check_database`` with the seconds it took, connecting included."""
    started = time.monotonic()
    result = health.check_database()
    return {**result, "seconds": time.monotonic() - started}


def infrastructure_checks() -> dict[str, health.CheckResult]:
    """The database and the broker, side by side within the readiness budget (as /readyz checks them)."""
    return health.run_checks(
        [
            health.ReadinessCheck("database", timed_database_check, critical=True),
            health.ReadinessCheck("broker", health.check_broker, critical=True),
        ]
    )


def _check_failure(entry: health.CheckResult) -> str:
    if entry.get("timed_out"):
        return _("no answer within %(seconds)s s") % {"seconds": f"{entry['timeout_seconds']:g}"}
    return _("error %(error)s") % {"error": entry.get("error") or "?"}


def infrastructure_alerts(report: dict[str, health.CheckResult]) -> list[Alert]:
    alerts = []
    database, broker = report["database"], report["broker"]
    if not database["ok"]:
        alerts.append(
            Alert(
                key="database_unreachable",
                severity=CRITICAL,
                title=_("The database does not answer"),
                detail=_("SELECT 1 failed: %(failure)s.") % {"failure": _check_failure(database)},
                action=_(
                    "Check PostgreSQL (the server, its disk, its connections) and the network to it. The "
                    "line cannot store payments meanwhile: the centre's messages go unanswered and it "
                    "sends them again later."
                ),
            )
        )
    else:
        slow = float(threshold("PAYEASY_ALERT_DATABASE_SLOW_SECONDS"))
        seconds = float(database.get("seconds", 0.0))
        if seconds > slow:
            alerts.append(
                Alert(
                    key="database_slow",
                    severity=WARNING,
                    title=_("The database answers slowly"),
                    detail=_("SELECT 1 took %(seconds)s s, connecting included (alert above %(limit)s s).")
                    % {"seconds": f"{seconds:.2f}", "limit": f"{slow:g}"},
                    action=_(
                        "Look for long transactions, locks and load on PostgreSQL, and at the network "
                        "to it; payments are applied slower meanwhile."
                    ),
                )
            )
    if not broker["ok"]:
        alerts.append(
            Alert(
                key="broker_unreachable",
                severity=CRITICAL,
                title=_("The Celery broker does not answer"),
                detail=_("The broker check failed: %(failure)s.") % {"failure": _check_failure(broker)},
                action=_(
                    "Check Redis. Payments are still applied by beat's sweeper (from the database, every "
                    "few seconds, late by up to half a minute); e-mails, webhooks and imports wait until "
                    "Redis is back."
                ),
            )
        )
    return alerts


def queue_alerts(depths: dict[str, int]) -> list[Alert]:
    """A queue deeper than its threshold: the payments queue (critical, ``…_PAYMENTS_QUEUE_DEPTH``) and
    each other one (warning, ``…_QUEUE_DEPTH``). One key per queue: the queues are fixed by settings."""
    alerts = []
    for name, depth in depths.items():
        payments = name == "payments"
        limit = int(
            threshold("PAYEASY_ALERT_PAYMENTS_QUEUE_DEPTH" if payments else "PAYEASY_ALERT_QUEUE_DEPTH")
        )
        if depth <= limit:
            continue
        alerts.append(
            Alert(
                key=f"queue_backlog_{re.sub(r'[^a-z0-9_]', '_', name.lower())}",
                severity=CRITICAL if payments else WARNING,
                title=_("Celery queue %(queue)s is backed up") % {"queue": name},
                detail=_("%(depth)s messages waiting (alert above %(limit)s).")
                % {"depth": f"{depth:,}", "limit": f"{limit:,}"},
                action=(
                    _(
                        "The payments worker is not consuming: check it (celery -A config inspect ping). "
                        "Beat's sweeper still applies payments, late by up to half a minute."
                    )
                    if payments
                    else _(
                        "The worker of this queue is down or too slow: check it and its log; add worker "
                        "processes if it is only slow. Payments are not delayed: they have their own queue."
                    )
                ),
            )
        )
    return alerts


# Rules of the apps payeasy may not import (reconciliation's findings), registered when Django starts.
REGISTERED_RULES: list[Rule] = []


def register_rule(rule: Rule) -> None:
    """Add ``rule`` (``now`` → alerts; it runs like the rules above: in a savepoint, under the statement
    timeout and ``cross_tenant("health")``) to every evaluation; registering it again changes nothing.
    Its keys must be fixed identifiers (they are Prometheus label values) and say what is wrong.

    For example (reconciliation/apps.py)::

        from payeasy.alerts import register_rule
        from reconciliation.alerts import finding_alerts

        register_rule(finding_alerts)
    """
    if rule not in REGISTERED_RULES:
        REGISTERED_RULES.append(rule)


def registered_rules() -> list[Rule]:
    return list(REGISTERED_RULES)


@contextmanager
def rule_scope() -> Iterator[None]:
    """The rules' reads: one transaction (a savepoint inside a request's), PostgreSQL's statement timeout
    of the health checks (put back afterwards: a request's later queries keep theirs) and
    ``cross_tenant("health")``. Each rule then runs in a savepoint of its own (:func:`active_alerts`), so
    that one failing rolls back alone and the others go on."""
    with transaction.atomic():
        previous = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('statement_timeout'), set_config('statement_timeout', %s, true)",
                    [f"{health.STATEMENT_TIMEOUT_MS}ms"],
                )
                previous = cursor.fetchone()[0]
        with cross_tenant("health"):
            yield
        if previous is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])


def _rule_name(rule: Rule) -> str:
    return f"{getattr(rule, '__module__', '?')}.{getattr(rule, '__name__', type(rule).__name__)}"


def _order(alert: Alert) -> tuple[int, float, str]:
    since = alert.since.timestamp() if alert.since is not None else float("inf")
    return (SEVERITIES.index(alert.severity), since, alert.key)


def active_alerts(now: datetime.datetime | None = None) -> list[Alert]:
    """Every alert firing at ``now``: critical first, then the oldest first. The one source of the
    operations view's panel and of ``payeasy_alerts`` in /metrics."""
    now = now or timezone.now()
    report = infrastructure_checks()
    alerts = infrastructure_alerts(report)
    failed: list[str] = []
    if report["broker"]["ok"]:
        from payeasy.queues import queue_depths

        try:
            depths = queue_depths()
        except Exception as exc:  # reported below as a rule that could not run
            logger.warning("alerts: queue depths failed: %s", type(exc).__name__, exc_info=True)
            failed.append("payeasy.queues.queue_depths")
        else:
            alerts += queue_alerts(depths or {})
    if report["database"]["ok"]:
        try:
            with rule_scope():
                for rule in (*DATABASE_RULES, *REGISTERED_RULES):
                    try:
                        with transaction.atomic():  # a savepoint: a failed rule rolls back alone
                            alerts += list(rule(now))
                    except Exception as exc:  # one rule away: the others are still worth showing
                        name = _rule_name(rule)
                        logger.warning("alerts: %s failed: %s", name, type(exc).__name__, exc_info=True)
                        failed.append(name)
        except Exception as exc:  # the scope itself (the database went away since its check)
            logger.warning("alerts: the rules could not run: %s", type(exc).__name__, exc_info=True)
            failed.append("payeasy.alerts.rule_scope")
    if failed:
        alerts.append(
            Alert(
                key="alert_rules_failed",
                severity=WARNING,
                title=_("Some checks could not run"),
                detail=_("Not checked: %(rules)s.") % {"rules": ", ".join(failed)},
                action=_(
                    "What these checks watch is unknown until they run again: look at the web log "
                    "(“alerts: … failed”) for the error."
                ),
            )
        )
    return sorted(alerts, key=_order)


__all__ = [
    "CRITICAL",
    "DEFAULTS",
    "WARNING",
    "Alert",
    "Rule",
    "active_alerts",
    "register_rule",
    "registered_rules",
    "threshold",
]
