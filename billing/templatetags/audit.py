"""Showing an audit entry's before/after as rows a person can read."""

from __future__ import annotations

from typing import Any

from django import template

from billing.models import AuditEntry

register = template.Library()


@register.filter
def audit_changes(entry: AuditEntry) -> list[tuple[str, Any, Any]]:
    before = entry.before or {}
    after = entry.after or {}
    keys = list(dict.fromkeys([*before, *after]))
    return [(key, before.get(key, ""), after.get(key, "")) for key in keys]
