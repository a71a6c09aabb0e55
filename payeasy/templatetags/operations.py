"""Filters of the operations view: ages in seconds as people read them, message type names, bar widths."""

from __future__ import annotations

import datetime

from django import template
from django.utils.translation import gettext as _

from payeasy.selectors import BillerNotices
from payeasy.staff.frames import message_type_label

register = template.Library()


@register.filter
def duration(seconds: int | None) -> str:
    """45 → "45 s", 185 → "3 min 5 s", 7500 → "2 h 5 min", 97200 → "1 d 3 h"."""
    if seconds is None or seconds == "":
        return "—"
    s = int(seconds)
    if s < 60:
        return _("%(s)d s") % {"s": s}
    if s < 3600:
        return _("%(m)d min %(s)d s") % {"m": s // 60, "s": s % 60}
    if s < 86400:
        return _("%(h)d h %(m)d min") % {"h": s // 3600, "m": s % 3600 // 60}
    return _("%(d)d d %(h)d h") % {"d": s // 86400, "h": s % 86400 // 3600}


@register.filter
def age(moment: datetime.datetime | None, now: datetime.datetime) -> int | None:
    """Whole seconds from ``moment`` to ``now`` (None without a moment)."""
    if moment is None:
        return None
    return max(0, int((now - moment).total_seconds()))


@register.filter
def type_label(code: str) -> str:
    return message_type_label(code)


@register.filter
def percent_of(value: int, whole: int) -> int:
    return round(100 * int(value) / int(whole)) if whole else 0


@register.filter
def oldest_age(row: BillerNotices, now: datetime.datetime) -> int | None:
    """Seconds the oldest waiting notice of a row of ``notice_status_by_biller`` has waited."""
    return row.oldest_waiting_age(now)
