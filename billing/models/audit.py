"""The audit trail: append-only, one entry per change a person or the system made."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from billing.models.tenants import Biller, User
from billing.scoping import TenantQuerySet


class AppendOnlyQuerySet(TenantQuerySet):
    def update(self, **kwargs: Any) -> int:
        raise TypeError(f"{self.model.__name__} is append-only: rows are never updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError(f"{self.model.__name__} is append-only: rows are never deleted.")


class AuditEntry(models.Model):
    """Who did what, to which biller, when (UTC), with before/after where it matters.

    Append-only three times over: no service updates it, the model refuses
    ``save()`` of an existing row and ``delete()``, and a database trigger
    (migration 0002) refuses UPDATE (and DELETE on PostgreSQL).
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(max_length=300)
    action = models.CharField(max_length=64, db_index=True)
    biller = models.ForeignKey(Biller, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    summary = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["biller", "-created_at"], name="audit_biller_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("AuditEntry is append-only: an entry is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("AuditEntry is append-only: an entry is never deleted.")
