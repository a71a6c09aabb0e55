"""The audit trail in words in templates (``billing.audit_labels``): ``{% load audit_trail %}``.

``entry|audit_action`` (the action's label), ``entry|audit_actor``, ``entry|audit_rows`` ((label, before,
after) rows), ``value|audit_when`` (2026年4月1日 09:05), ``value|audit_iso`` (a ``<time datetime>``
value without microseconds) and ``{% audit_action_choices as choices %}`` (a filter's options).
"""

from __future__ import annotations

import datetime

from django import template

from billing import audit_labels
from billing.models import AuditEntry

register = template.Library()


@register.filter
def audit_action(entry: AuditEntry | str) -> str:
    return audit_labels.action_label(entry.action if isinstance(entry, AuditEntry) else str(entry))


@register.filter
def audit_actor(entry: AuditEntry) -> str:
    return audit_labels.actor_label(entry)


@register.filter
def audit_rows(entry: AuditEntry) -> list[tuple[str, str, str]]:
    return audit_labels.changes(entry)


@register.filter
def audit_when(value: datetime.datetime | datetime.date | None) -> str:
    return audit_labels.when(value)


@register.filter
def audit_iso(value: datetime.datetime | None) -> str:
    return audit_labels.iso_instant(value)


@register.simple_tag
def audit_action_choices() -> list[tuple[str, str]]:
    return audit_labels.action_choices()
