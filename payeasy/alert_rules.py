"""The rules of the operator alerts (``payeasy.alerts.active_alerts`` runs them): each reads the figures the
operations page and the health checks read, and returns the :class:`payeasy.alerting.Alert` values that
fire now."""

from __future__ import annotations

import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Min,
    Q,
    Sum,
)
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing.templatetags.humanize_yen import yen
from payeasy import selectors
from payeasy.alerting import (
    CRITICAL,
    WARNING,
    Alert,
    Rule,
    age_of,
    in_online_hours,
    operations_link,
    threshold,
)
from payeasy.codec import JST
from payeasy.templatetags.operations import duration


def line_alerts(now: datetime.datetime) -> list[Alert]:
    """Within the online hours: the line not open (closed: critical; pre-closed: warning), or open and
    silent for ``PAYEASY_ALERT_LINE_SILENT_SECONDS`` (the centre's connection gone)."""
    if not in_online_hours(now):
        return []
    from payeasy.models import LineState

    overview = selectors.line_overview()
    line = overview.line
    hours = str(threshold("PAYEASY_ALERT_ONLINE_HOURS")).strip()
    search = reverse("staff:message_search")
    if line.state != LineState.State.OPEN:
        opened = line.pk is not None
        return [
            Alert(
                key="line_not_open",
                severity=CRITICAL if line.state == LineState.State.CLOSED else WARNING,
                title=_("The MPN line is not open during online hours"),
                detail=(
                    _("State: %(state)s since %(since)s (%(age)s); online hours %(hours)s JST.")
                    % {
                        "state": line.get_state_display(),
                        "since": timezone.localtime(line.since).strftime("%Y-%m-%d %H:%M"),
                        "age": duration(age_of(line.since, now)),
                        "hours": hours,
                    }
                    if opened
                    else _("The line has never been opened; online hours %(hours)s JST.") % {"hours": hours}
                ),
                action=_(
                    "Check that the commserver process runs and that the centre is connected (its TLS "
                    "connection and its log). The centre opens the line with 0800; while the line is "
                    "closed every business message is answered A001 and the centre sends it again later."
                ),
                since=line.since if opened else None,
                link=f"{search}?{urlencode({'type': '0800'})}",
                link_text=_("Today's 0800 messages"),
            )
        ]
    silent = int(threshold("PAYEASY_ALERT_LINE_SILENT_SECONDS"))
    last = overview.last_message_at
    if last is None or age_of(last, now) > silent:
        return [
            Alert(
                key="line_silent",
                severity=WARNING,
                title=_("The line is open but no message arrives"),
                detail=_(
                    "The last message arrived %(age)s ago (alert after %(limit)s); online hours %(hours)s "
                    "JST."
                )
                % {"age": duration(age_of(last, now)), "limit": duration(silent), "hours": hours},
                action=_(
                    "The centre's connection may be gone: check the commserver process, its TLS connection "
                    "and its log. Payments resume by themselves once the centre reconnects."
                ),
                since=last,
                link=search,
                link_text=_("Message history"),
            )
        ]
    return []


# ---------------------------------------------------------------------------------------------------------
# Notices and their application
# ---------------------------------------------------------------------------------------------------------


def notice_alerts(now: datetime.datetime) -> list[Alert]:
    """The notices waiting (``selectors.waiting_notices_total``: the figures of /readyz and /metrics):
    the oldest older than ``PAYEASY_ALERT_NOTICE_WAIT_SECONDS`` (critical: nothing applies them), and
    notices whose last attempt failed (warning)."""
    waiting = selectors.waiting_notices_total()
    alerts = []
    limit = int(threshold("PAYEASY_ALERT_NOTICE_WAIT_SECONDS"))
    oldest = waiting.oldest_waiting_age(now)
    if oldest is not None and oldest > limit:
        alerts.append(
            Alert(
                key="notices_stuck",
                severity=CRITICAL,
                title=_("Payments are not being applied"),
                detail=ngettext(
                    "%(count)s notice waiting (%(amount)s); the oldest has waited %(age)s (alert after "
                    "%(limit)s).",
                    "%(count)s notices waiting (%(amount)s); the oldest has waited %(age)s (alert after "
                    "%(limit)s).",
                    waiting.waiting.count,
                )
                % {
                    "count": f"{waiting.waiting.count:,}",
                    "amount": yen(waiting.waiting.amount),
                    "age": duration(oldest),
                    "limit": duration(limit),
                },
                action=_(
                    "Neither the payments worker nor beat's sweeper is applying notices. Check the worker "
                    "of the payments queue (celery -A config inspect ping) and celery beat; with both "
                    "running the backlog drains within seconds. The money is safe: every notice is stored."
                ),
                since=waiting.oldest_waiting_at,
                link=operations_link("notices-heading"),
                link_text=_("Waiting notices"),
            )
        )
    if waiting.failing:
        alerts.append(
            Alert(
                key="notices_failing",
                severity=WARNING,
                title=_("Notices fail to apply"),
                detail=ngettext(
                    "%(count)s waiting notice failed at its last attempt.",
                    "%(count)s waiting notices failed at their last attempt.",
                    waiting.failing,
                )
                % {"count": f"{waiting.failing:,}"},
                action=_(
                    "The sweeper retries them. An error that passes (connection lost, lock timeout) clears "
                    "by itself; one that repeats is a bug or a data problem: note the transaction key and "
                    "the error in the list of waiting notices and report it. Never edit notices or ledger "
                    "entries by hand."
                ),
                link=operations_link("notices-heading"),
                link_text=_("Waiting notices"),
            )
        )
    return alerts


class Percentile95(Aggregate):
    """PostgreSQL's ``percentile_cont(0.95)``: the value below which 95 % of the group lies, interpolated."""

    function = "percentile_cont"
    template = "%(function)s(0.95) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def apply_lag_p95(now: datetime.datetime, window: datetime.timedelta) -> tuple[int, float | None]:
    """The line payments applied in ``window`` before ``now`` and the 95th percentile of their apply
    lag (a notice's ``received_at`` to its ledger entry's ``created_at``, as ``selectors.line_activity``
    and the /metrics lag figures measure it), in seconds; None when none was applied. PostgreSQL
    computes the percentile (``percentile_cont``); elsewhere the window's lags are read (a few minutes of
    payments) and interpolated the same way."""
    from payeasy.models import LedgerEntry, Notice

    entries = LedgerEntry.objects.filter(
        biller_id__in=selectors.biller_ids(),  # index ledger_biller_time
        created_at__gte=now - window,
        created_at__lte=now,
        notice__kind=Notice.Kind.PAYMENT,
        notice__source=Notice.Source.LINE,
    )
    lag = ExpressionWrapper(F("created_at") - F("notice__received_at"), output_field=DurationField())
    if connection.vendor == "postgresql":
        seconds = Func(lag, template="EXTRACT(EPOCH FROM %(expressions)s)", output_field=FloatField())
        row = entries.aggregate(n=Count("id"), p95=Percentile95(seconds))
        return row["n"], None if row["p95"] is None else max(0.0, float(row["p95"]))
    lags = sorted(
        max(0.0, selectors.duration_seconds(v))
        for v in entries.annotate(lag=lag).values_list("lag", flat=True)
    )
    if not lags:
        return 0, None
    position = 0.95 * (len(lags) - 1)
    low = int(position)
    high = min(low + 1, len(lags) - 1)
    return len(lags), lags[low] + (lags[high] - lags[low]) * (position - low)


def apply_lag_alerts(now: datetime.datetime) -> list[Alert]:
    """The 95th percentile of the apply lag over ``PAYEASY_ALERT_APPLY_LAG_WINDOW_SECONDS`` above
    ``PAYEASY_ALERT_APPLY_LAG_P95_SECONDS`` (warning: bills show paid late)."""
    window = int(threshold("PAYEASY_ALERT_APPLY_LAG_WINDOW_SECONDS"))
    limit = float(threshold("PAYEASY_ALERT_APPLY_LAG_P95_SECONDS"))
    count, p95 = apply_lag_p95(now, datetime.timedelta(seconds=window))
    if p95 is None or p95 <= limit:
        return []
    return [
        Alert(
            key="apply_lag_high",
            severity=WARNING,
            title=_("Payments are applied slowly"),
            detail=ngettext(
                "%(count)s line payment applied in the last %(window)s; 95%% within %(p95)s s of its "
                "acknowledgment (alert above %(limit)s s).",
                "%(count)s line payments applied in the last %(window)s; 95%% within %(p95)s s of their "
                "acknowledgment (alert above %(limit)s s).",
                count,
            )
            % {"count": f"{count:,}", "window": duration(window), "p95": f"{p95:.1f}", "limit": f"{limit:g}"},
            action=_(
                "The payments worker is behind or PostgreSQL is slow. Check the payments worker's load "
                "and the database (slow queries, locks); add payments worker processes if the load lasts."
            ),
            link=operations_link("hour-heading"),
            link_text=_("Apply lag chart"),
        )
    ]


def provisional_alerts(now: datetime.datetime) -> list[Alert]:
    """Provisional payments (仮消込) made today (JST): money received that no bill shows as paid until a
    person resolves it (warning)."""
    from payeasy.models import LedgerEntry

    start = selectors.jst_day_start(now.astimezone(JST).date())
    row = LedgerEntry.objects.filter(
        biller_id__in=selectors.biller_ids(),  # index ledger_biller_time
        created_at__gte=start,
        created_at__lt=start + datetime.timedelta(days=1),
        outcome=LedgerEntry.Outcome.PROVISIONAL,
    ).aggregate(n=Count("id"), amount=Sum("amount"), first=Min("created_at"))
    if not row["n"]:
        return []
    return [
        Alert(
            key="provisional_today",
            severity=WARNING,
            title=_("Provisional payments (仮消込) need review"),
            detail=ngettext(
                "%(count)s provisional payment today, %(amount)s in all.",
                "%(count)s provisional payments today, %(amount)s in all.",
                row["n"],
            )
            % {"count": f"{row['n']:,}", "amount": yen(abs(row["amount"] or 0))},
            action=_(
                "Each is money received that no bill shows as paid. Look at the reasons below, confirm "
                "with the centre where the reason says the payment looks wrong, and resolve each in "
                "reconciliation. Never refund or ignore one without checking."
            ),
            since=row["first"],
            link=operations_link("provisional-heading"),
            link_text=_("Provisional payments by reason"),
        )
    ]


# ---------------------------------------------------------------------------------------------------------
# Webhooks, imports, beat
# ---------------------------------------------------------------------------------------------------------


def webhook_alerts(now: datetime.datetime) -> list[Alert]:
    """Webhook deliveries given up in the lookback (``PAYEASY_ALERT_LOOKBACK_SECONDS``), or
    ``PAYEASY_ALERT_WEBHOOKS_RETRYING`` or more waiting for another attempt after a failure (warning)."""
    from payeasy.models import WebhookDelivery

    Status = WebhookDelivery.Status
    lookback = int(threshold("PAYEASY_ALERT_LOOKBACK_SECONDS"))
    since = now - datetime.timedelta(seconds=lookback)
    gave_up = Q(status=Status.FAILED, last_attempt_at__gte=since)
    retrying = Q(status=Status.PENDING, attempts__gt=0)
    row = (
        WebhookDelivery.objects.cross_tenant("health")
        .filter(biller_id__in=selectors.biller_ids(), status__in=[Status.FAILED, Status.PENDING])
        .aggregate(
            failed=Count("id", filter=gave_up),
            retrying=Count("id", filter=retrying),
            billers=Count("biller_id", filter=gave_up | retrying, distinct=True),
            first=Min("last_attempt_at", filter=gave_up | retrying),
        )
    )
    limit = int(threshold("PAYEASY_ALERT_WEBHOOKS_RETRYING"))
    if not row["failed"] and row["retrying"] < limit:
        return []
    return [
        Alert(
            key="webhooks_failing",
            severity=WARNING,
            title=_("Webhook deliveries are failing"),
            detail=_(
                "Given up in the last %(lookback)s: %(failed)s; waiting for another attempt: %(retrying)s "
                "(alert from %(limit)s); billers concerned: %(billers)s."
            )
            % {
                "lookback": duration(lookback),
                "failed": f"{row['failed']:,}",
                "retrying": f"{row['retrying']:,}",
                "limit": f"{limit:,}",
                "billers": f"{row['billers']:,}",
            },
            action=_(
                "The billers' endpoints answer errors or do not answer. Tell the billers concerned: each "
                "sees its deliveries, the responses, and can send one again in its console (Webhooks). "
                "If every endpoint fails at once, check the webhooks worker and this site's outbound "
                "network."
            ),
            since=row["first"],
            link=reverse("staff:biller_list"),
            link_text=_("Billers"),
        )
    ]


def import_alerts(now: datetime.datetime) -> list[Alert]:
    """Invoice imports (not previews: a preview exists to find a file's errors) that failed in the
    lookback (warning)."""
    from billing.models import ImportJob

    lookback = int(threshold("PAYEASY_ALERT_LOOKBACK_SECONDS"))
    row = (
        ImportJob.objects.cross_tenant("health")
        .filter(
            status=ImportJob.Status.FAILED,
            mode=ImportJob.Mode.IMPORT,
            created_at__gte=now - datetime.timedelta(seconds=lookback),
        )
        .aggregate(n=Count("id"), billers=Count("biller_id", distinct=True), first=Min("created_at"))
    )
    if not row["n"]:
        return []
    return [
        Alert(
            key="imports_failed",
            severity=WARNING,
            title=_("Invoice imports failed"),
            detail=ngettext(
                "%(count)s invoice import failed in the last %(lookback)s (billers concerned: %(billers)s).",
                "%(count)s invoice imports failed in the last %(lookback)s (billers concerned: %(billers)s).",
                row["n"],
            )
            % {"count": f"{row['n']:,}", "lookback": duration(lookback), "billers": f"{row['billers']:,}"},
            action=_(
                "Nothing of a failed import was written. A file with errors is the biller's to correct "
                "(its console lists each row and field); a file no longer there, or an error on every "
                "import, is ours: check the imports worker and its log."
            ),
            since=row["first"],
            link=reverse("staff:biller_list"),
            link_text=_("Billers"),
        )
    ]


def beat_running() -> bool:
    """Whether a beat holds the beat lock (``config.celery.beat_lock``), and so sends and sweeps: on
    PostgreSQL the session advisory lock ``PAYEASY_BEAT_LOCK_KEY`` in this database (pg_locks); on SQLite
    the flock of the lock file (a shared lock tried without waiting: refused while a beat holds it)."""
    if connection.vendor == "postgresql":
        key = int(settings.PAYEASY_BEAT_LOCK_KEY)
        with connection.cursor() as cursor:
            # a bigint advisory key is held as classid (high 32 bits), objid (low 32 bits), objsubid 1
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND classid = %s AND objid = %s AND objsubid = 1)",
                [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
            )
            return bool(cursor.fetchone()[0])
    import fcntl
    import os

    from config.celery import sqlite_lock_path

    try:
        fd = os.open(sqlite_lock_path(), os.O_RDONLY)
    except FileNotFoundError:
        return False  # no beat ever ran on this database
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # frees the shared lock, if it was taken
    return False


def beat_alerts(now: datetime.datetime) -> list[Alert]:
    """No beat holds the beat lock (critical): no sweeper (the path that applies payments when Redis or
    the workers fail), no webhook retries, no reconciliation after the close, no reminders."""
    if beat_running():
        return []
    return [
        Alert(
            key="beat_not_running",
            severity=CRITICAL,
            title=_("celery beat is not running"),
            detail=_(
                "No beat holds the beat lock: the payment sweeper, webhook retries, the reconciliation "
                "after the close and the reminders do not run."
            ),
            action=_(
                "Start celery -A config beat (one is enough; a second one stands by). Its log says "
                "“beat: leader” once it holds the lock."
            ),
        )
    ]


# ---------------------------------------------------------------------------------------------------------
# The commserver nodes (payeasy.line_nodes)
# ---------------------------------------------------------------------------------------------------------


def line_node_alerts(now: datetime.datetime) -> list[Alert]:
    """The nodes of the line, by their heartbeats: none active while others are alive (critical: nobody
    answers the centre), an active one without a live standby (warning: the next failure stops the line),
    and the active node's ack p99 of the last minute over ``PAYEASY_ALERT_ACK_P99_MS`` (warning). Nothing
    when no commserver has ever written a heartbeat (a web-only installation)."""
    from payeasy.line_nodes import line_nodes

    nodes = line_nodes(now)
    if not nodes.nodes:
        return []
    alerts = []
    link = operations_link("line-nodes-heading")
    if not nodes.active:
        seen = max((n.seen_at for n in nodes.nodes if n.role == "active"), default=None)
        alerts.append(
            Alert(
                key="commserver_no_active",
                severity=CRITICAL,
                title=_("No commserver is answering the line"),
                detail=ngettext(
                    "%(count)s commserver node is standing by; none holds the line lock.",
                    "%(count)s commserver nodes are standing by; none holds the line lock.",
                    len(nodes.standbys),
                )
                % {"count": len(nodes.standbys)},
                action=_(
                    "A standby takes the line lock within seconds of the active node's end; if none does, "
                    "the database is out of reach of the commserver hosts, or no commserver runs. Check "
                    "the commserver services (systemctl status payeasy-commserver) and their logs."
                ),
                since=seen,
                link=link,
                link_text=_("Commserver nodes"),
            )
        )
    elif not nodes.standbys:
        alerts.append(
            Alert(
                key="commserver_no_standby",
                severity=WARNING,
                title=_("The commserver has no standby"),
                detail=_("Active: %(name)s, since %(since)s.")
                % {
                    "name": nodes.active[0].name,
                    "since": timezone.localtime(nodes.active[0].role_since).strftime("%Y-%m-%d %H:%M"),
                },
                action=_(
                    "If the active node fails, nobody answers the centre until a commserver is started. "
                    "Start the standby commserver on the second host (payeasy-commserver.service)."
                ),
                link=link,
                link_text=_("Commserver nodes"),
            )
        )
    limit = float(threshold("PAYEASY_ALERT_ACK_P99_MS"))
    slow = [n for n in nodes.active if n.ack_p99_ms is not None and n.ack_p99_ms > limit]
    if slow:
        alerts.append(
            Alert(
                key="commserver_ack_slow",
                severity=WARNING,
                title=_("The line's answers are slow"),
                detail=_("Answer time p99 of the last minute: %(p99).0f ms (alert over %(limit).0f ms).")
                % {"p99": slow[0].ack_p99_ms, "limit": limit},
                action=_(
                    "The spec allows 2 s per answer. Slow answers come from the database (locks, I/O, a "
                    "busy host): look at the database's load and at long-running statements."
                ),
                link=link,
                link_text=_("Commserver nodes"),
            )
        )
    return alerts


DATABASE_RULES: tuple[Rule, ...] = (
    line_alerts,
    notice_alerts,
    apply_lag_alerts,
    provisional_alerts,
    webhook_alerts,
    import_alerts,
    beat_alerts,
    line_node_alerts,
)
