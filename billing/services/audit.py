"""The audit trail: one entry per write, appended inside the writing service's transaction.

Every app's services record here (billing's and payeasy's alike), so an entry looks the same whoever
wrote it: who (a user, an API key or the system), what, at which biller, on which row, before → after.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.db import models

from billing.models import ApiKey, AuditEntry, Biller, User

SYSTEM = "system"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    return value


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The values of ``fields`` of ``instance`` as the audit trail keeps them (dates as text, rows as ids)."""
    return {f: _jsonable(getattr(instance, f)) for f in fields}


def audit_record(
    *,
    actor: User | ApiKey | None,
    action: str,
    biller: Biller | None = None,
    target: models.Model | None = None,
    summary: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the audit trail. Call inside the service's transaction.

    With both ``before`` and ``after``, only the keys whose values differ are kept.
    """
    if before is not None and after is not None:
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        before = {k: v for k, v in before.items() if k in changed}
        after = {k: v for k, v in after.items() if k in changed}
    if isinstance(actor, ApiKey):
        user, label = None, f"api-key:{actor.prefix} {actor.name}"
    else:
        user, label = actor, (actor.login if actor else SYSTEM)
    return AuditEntry.objects.create(
        actor=user,
        actor_label=label[:300],
        action=action,
        biller=biller,
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        summary=summary[:300],
        before=_jsonable(before),
        after=_jsonable(after),
    )


def audit_field_set(
    *,
    actor: User | ApiKey | None,
    action: str,
    biller: Biller | None,
    target: models.Model,
    field: str,
    value: Any,
    summary: str = "",
    update_fields: Iterable[str] = (),
) -> bool:
    """Set one field of a row the caller holds locked, save it and record ``before`` → ``after``.

    Nothing is written (False) when the field holds ``value`` already. ``update_fields``: what else
    the save writes (``updated_at``).
    """
    before = getattr(target, field)
    if before == value:
        return False
    setattr(target, field, value)
    target.save(update_fields=[field, *update_fields])
    audit_record(
        actor=actor,
        action=action,
        biller=biller,
        target=target,
        summary=summary,
        before={field: before},
        after={field: value},
    )
    return True


__all__ = ["SYSTEM", "audit_field_set", "audit_record", "snapshot"]
