"""Findings (every disagreement the daily comparisons find) and the actions staff take on them.

A finding is found by a reconciliation run (``reconciliation.services.reconcile``) and stored once per
biller and ``key``: the key names what disagrees (``double:<ledger entry id>``, ``counter:<date>``, …), so
running the comparisons again finds the same row instead of a second one. What happens to a finding is
an ``Action``: append-only, one row per step (match, refund, write-off, reopen; ``cleared`` when a run no
longer finds the disagreement, ``found_again`` when it returns). The finding's ``state`` is derived from
its last action — written with the action, under a lock on the finding row — as an invoice's status is
derived from its ledger.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from billing.models import Biller, Invoice, User
from billing.models.audit import AppendOnlyQuerySet
from billing.scoping import TenantManager


class Finding(models.Model):
    class Kind(models.TextChoices):
        PROVISIONAL = "provisional", _("Provisional payment (仮消込)")
        DOUBLE_PAYMENT = "double_payment", _("Double payment (二重支払)")
        LATE_PAYMENT = "late_payment", _("Late payment")
        COUNTER_MISMATCH = "counter_mismatch", _("Counter mismatch")
        BATCH_LINE_MISMATCH = "batch_line_mismatch", _("Teller file and line disagree")
        UNKNOWN_REVERSAL = "unknown_reversal", _("Reversal of an unknown payment")
        DEPOSIT_SHORTFALL = "deposit_shortfall", _("Deposit shortfall")
        DEPOSIT_EXCESS = "deposit_excess", _("Deposit excess")
        LEDGER_INCONSISTENCY = "ledger_inconsistency", _("Ledger inconsistency")

    class Detail(models.TextChoices):
        """What exactly disagrees, within a kind (the provisional reasons are the ledger's own)."""

        NONE = "", _("—")
        # batch_line_mismatch
        BOTH_ROUTES = "both_routes", _("Reported by the line and again by a teller file")
        LINE_ONLY = "line_only", _("Reported on the line, missing from the bank's teller file")
        FILE_ONLY = "file_only", _("In the teller file, never reported on the line")
        # ledger_inconsistency
        PAID_WITHOUT_PAYMENT = "paid_without_payment", _("Bill marked paid without a standing payment")
        PAYMENT_WITHOUT_BILL = "payment_without_bill", _("Payment applied to no bill")
        REVERSED_STILL_COUNTED = "reversed_still_counted", _("Reversed payment still counted as paid")
        FACTS_DIFFER = "facts_differ", _("The bill's payments differ from the ledger")

    class State(models.TextChoices):
        OPEN = "open", pgettext_lazy("finding state", "Open")
        MATCHED = "matched", _("Matched to a bill")
        REFUNDED = "refunded", _("Refunded")
        WRITTEN_OFF = "written_off", _("Written off")
        CLEARED = "cleared", _("Cleared (no longer found)")

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    key = models.CharField(_("key"), max_length=80)
    kind = models.CharField(_("type"), max_length=24, choices=Kind)
    detail = models.CharField(_("detail"), max_length=32, blank=True, default="")
    processing_date = models.DateField(_("processing date"))
    amount = models.BigIntegerField(_("amount"))  # yen at stake, never negative
    bank_code = models.CharField(_("bank code"), max_length=4, blank=True)
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # the payeasy ledger entry and notice at the heart of it (opaque ids: reconciliation reads payeasy's
    # rows, it does not own them), and everything else involved
    entry_id = models.BigIntegerField(_("ledger entry"), null=True, blank=True)
    links = models.JSONField(_("links"), default=dict, blank=True)  # {"entries": [...], "notices": [...],
    #   "messages": [...], "invoices": [...], "teller_files": [...], "deposits": [...]}
    facts = models.JSONField(_("facts"), default=dict, blank=True)  # figures shown with it (counters, sums)
    found_at = models.DateTimeField(_("found at"), default=timezone.now)
    state = models.CharField(_("state"), max_length=12, choices=State, default=State.OPEN)
    state_at = models.DateTimeField(_("state since"), default=timezone.now)

    objects = TenantManager()

    class Meta:
        ordering = ["found_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["biller", "key"], name="finding_once_per_key"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="finding_amount_not_negative"),
        ]
        indexes = [
            models.Index(fields=["biller", "state", "found_at"], name="finding_queue"),
            models.Index(fields=["biller", "processing_date"], name="finding_day"),
            models.Index(fields=["state", "found_at"], name="finding_open_age"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ¥{self.amount:,} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN


class Action(models.Model):
    """One step on a finding: append-only (never changed, never deleted), with its audit entry."""

    class Kind(models.TextChoices):
        MATCH = "match", _("Matched to a bill")
        REFUND = "refund", _("Refund requested")
        WRITE_OFF = "write_off", _("Written off")
        REOPEN = "reopen", _("Reopened")
        CLEARED = "cleared", _("Cleared: no longer found")
        FOUND_AGAIN = "found_again", _("Found again")

    # the state a finding is in after each kind of action
    STATE_AFTER = {
        Kind.MATCH: Finding.State.MATCHED,
        Kind.REFUND: Finding.State.REFUNDED,
        Kind.WRITE_OFF: Finding.State.WRITTEN_OFF,
        Kind.REOPEN: Finding.State.OPEN,
        Kind.CLEARED: Finding.State.CLEARED,
        Kind.FOUND_AGAIN: Finding.State.OPEN,
    }

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    finding = models.ForeignKey(Finding, on_delete=models.PROTECT, related_name="actions")
    kind = models.CharField(_("action"), max_length=12, choices=Kind)
    amount = models.BigIntegerField(_("amount"), default=0)  # yen matched, refunded or written off
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="action_amount_not_negative")]

    def __str__(self) -> str:
        return f"{self.kind} on finding {self.finding_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("Action is append-only: an action is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("Action is append-only: an action is never deleted.")
