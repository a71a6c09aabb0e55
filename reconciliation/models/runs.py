"""Reconciliation runs, and the pairs of a teller-channel payment reported both on the line and in a
teller file (the same money, reported twice)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import Biller, User
from billing.scoping import TenantManager


class Run(models.Model):
    """One reconciliation of one biller's processing date: when, by whom or what, and what it found."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("After the line closed (schedule)")
        USER = "user", _("On demand")
        COMMAND = "command", _("Command line")

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    processing_date = models.DateField(_("processing date"))
    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger)
    started_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    found = models.PositiveIntegerField(_("new findings"), default=0)
    cleared = models.PositiveIntegerField(_("findings cleared"), default=0)
    open_total = models.PositiveIntegerField(_("open findings"), default=0)
    summary = models.JSONField(_("summary"), default=dict, blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["biller", "processing_date"], name="run_day")]

    def __str__(self) -> str:
        return f"run {self.processing_date} ({self.trigger})"


class ReportPair(models.Model):
    """A teller payment on the line (channel 01, 速報) and the teller-file record of the same payment
    (確報): same biller, bank, numbers and amount. The file's notice is the second report of money paid
    once; found by a run, stored once per notice on either side."""

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    line_notice_id = models.BigIntegerField(_("line notice"))
    file_notice_id = models.BigIntegerField(_("teller file notice"))
    paired_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["line_notice_id"], name="report_pair_line_once"),
            models.UniqueConstraint(fields=["file_notice_id"], name="report_pair_file_once"),
        ]
        indexes = [models.Index(fields=["biller"], name="report_pair_biller")]

    def __str__(self) -> str:
        return f"{self.line_notice_id} ↔ {self.file_notice_id}"
