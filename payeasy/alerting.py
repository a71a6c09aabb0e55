"""The alerts' vocabulary (``payeasy.alerts``): an :class:`Alert`, its severities, the thresholds as
settings with their defaults, and the online hours the line rules follow. The rules are in
``payeasy.alert_rules``; what runs them, in ``payeasy.alerts``."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from payeasy.codec import JST

CRITICAL = "critical"  # money or payments are affected now: act at once
WARNING = "warning"  # something is degraded or needs a person's review today
SEVERITIES = (CRITICAL, WARNING)
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,62}$")

# The thresholds, as settings with these defaults (getattr: a deployment sets only what it changes).
DEFAULTS: dict[str, Any] = {
    # JST hours during which the line must be open ("HH:MM-HH:MM"; "" turns the line rules off)
    "PAYEASY_ALERT_ONLINE_HOURS": "08:00-21:00",
    # the line open but no frame for this long, within the online hours
    "PAYEASY_ALERT_LINE_SILENT_SECONDS": 600,
    # the oldest waiting notice older than this: neither the workers nor beat's sweeper apply
    "PAYEASY_ALERT_NOTICE_WAIT_SECONDS": 60,
    # the 95th percentile of the apply lag of the line payments applied in the window
    "PAYEASY_ALERT_APPLY_LAG_P95_SECONDS": 5.0,
    "PAYEASY_ALERT_APPLY_LAG_WINDOW_SECONDS": 300,
    # messages waiting in a Celery queue: the payments queue, and every other one
    "PAYEASY_ALERT_PAYMENTS_QUEUE_DEPTH": 100,
    "PAYEASY_ALERT_QUEUE_DEPTH": 1000,
    # the database check (SELECT 1, connection included) taking longer than this
    "PAYEASY_ALERT_DATABASE_SLOW_SECONDS": 1.0,
    # webhook deliveries waiting for another attempt after a failure, all tenants together
    "PAYEASY_ALERT_WEBHOOKS_RETRYING": 20,
    # how far back failed imports and given-up webhook deliveries count
    "PAYEASY_ALERT_LOOKBACK_SECONDS": 86400,
    # the active commserver's answer time p99 over the last minute (its heartbeat), in milliseconds
    "PAYEASY_ALERT_ACK_P99_MS": 500,
}


def threshold(name: str) -> Any:
    """The setting ``name``, or its default in :data:`DEFAULTS`."""
    return getattr(settings, name, DEFAULTS[name])


@dataclass(frozen=True)
class Alert:
    """One thing an operator must act on. ``key`` is fixed per condition (the Prometheus label);
    ``title``, ``detail`` and ``action`` are for people, in the active language; ``since`` is when the
    condition began when it is known; ``link`` the page to go to."""

    key: str
    severity: str
    title: str
    detail: str
    action: str
    since: datetime.datetime | None = None
    link: str = ""
    link_text: str = ""

    def __post_init__(self) -> None:
        if not KEY_PATTERN.match(self.key):
            raise ValueError(f"an alert key is a fixed identifier ([a-z][a-z0-9_]*): {self.key!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"an alert is critical or warning, not {self.severity!r}")

    @property
    def critical(self) -> bool:
        return self.severity == CRITICAL

    @property
    def severity_label(self) -> str:
        return _("Critical") if self.critical else _("Warning")

    def age_seconds(self, now: datetime.datetime) -> int | None:
        """Whole seconds since the condition began (None when not known)."""
        if self.since is None:
            return None
        return max(0, int((now - self.since).total_seconds()))


Rule = Callable[[datetime.datetime], Iterable[Alert]]


def age_of(moment: datetime.datetime | None, now: datetime.datetime) -> int:
    return 0 if moment is None else max(0, int((now - moment).total_seconds()))


def operations_link(anchor: str = "") -> str:
    return reverse("staff:operations") + (f"#{anchor}" if anchor else "")


# ---------------------------------------------------------------------------------------------------------
# The line
# ---------------------------------------------------------------------------------------------------------


def online_hours() -> tuple[datetime.time, datetime.time] | None:
    """``PAYEASY_ALERT_ONLINE_HOURS`` as (start, end) in JST; None when empty. "24:00" ends at midnight."""
    text = str(threshold("PAYEASY_ALERT_ONLINE_HOURS") or "").strip()
    if not text:
        return None
    try:
        first, last = (part.strip() for part in text.split("-"))
        start = datetime.time.fromisoformat(first)
        end = datetime.time.max if last == "24:00" else datetime.time.fromisoformat(last)
    except ValueError as exc:
        raise ValueError(f"PAYEASY_ALERT_ONLINE_HOURS is HH:MM-HH:MM, not {text!r}") from exc
    return start, end


def in_online_hours(now: datetime.datetime) -> bool:
    hours = online_hours()
    if hours is None:
        return False
    moment = now.astimezone(JST).time()
    start, end = hours
    return start <= moment < end if start <= end else moment >= start or moment < end
