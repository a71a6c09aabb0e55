"""Thin Celery tasks of reconciliation: take ids, call a service. Every one is safe to run twice."""

from __future__ import annotations

import datetime
import logging

from celery import shared_task
from django.db.models import Max

from billing.models import Biller, User
from payeasy.codec import JST
from payeasy.models import LineState
from reconciliation.models import DepositStatement, ExpectedFunds, Run
from reconciliation.services.reconcile import reconcile

log = logging.getLogger("reconciliation.tasks")


def day_to_reconcile() -> datetime.date:
    """The processing date a run reconciles by default: the line's day once it closed, the previous one
    while a day is open, today (JST) when the line never opened."""
    line = LineState.objects.filter(pk=1).first()
    if line is not None and line.processing_date is not None:
        if line.state == LineState.State.CLOSED:
            return line.processing_date
        if line.previous_processing_date is not None:
            return line.previous_processing_date
    return datetime.datetime.now(JST).date()


@shared_task(name="reconciliation.tasks.reconcile_after_close")
def reconcile_after_close() -> int:
    """Run by beat every few minutes: once the line has closed (閉局) a processing date, reconcile it for
    every active biller that has no scheduled run of it since the close; and reconcile again the dates
    whose funds fall in a deposit statement imported since their last run. Returns the runs made."""
    line = LineState.objects.filter(pk=1).first()
    runs = 0
    for biller in Biller.objects.filter(status=Biller.Status.ACTIVE).order_by("pk"):
        days: set[datetime.date] = set()
        if _closed_day_unreconciled(line, biller):
            assert line is not None and line.processing_date is not None
            days.add(line.processing_date)
        days |= _days_with_new_deposits(biller)
        for day in sorted(days):
            reconcile(biller=biller, processing_date=day, trigger=Run.Trigger.SCHEDULE)
            runs += 1
    return runs


def _closed_day_unreconciled(line: LineState | None, biller: Biller) -> bool:
    if line is None or line.state != LineState.State.CLOSED or line.processing_date is None:
        return False
    return not (
        Run.objects.for_biller(biller)
        .filter(
            processing_date=line.processing_date, trigger=Run.Trigger.SCHEDULE, started_at__gte=line.since
        )
        .exists()
    )


def _days_with_new_deposits(biller: Biller) -> set[datetime.date]:
    last = Run.objects.for_biller(biller).aggregate(at=Max("started_at"))["at"]
    if last is None:
        return set()
    days: set[datetime.date] = set()
    for first, last_date in (
        DepositStatement.objects.for_biller(biller)
        .filter(imported_at__gt=last)
        .values_list("first_date", "last_date")
    ):
        days |= set(
            ExpectedFunds.objects.for_biller(biller)
            .filter(value_date__range=(first, last_date))
            .values_list("processing_date", flat=True)
        )
    return days


@shared_task(name="reconciliation.tasks.reconcile_run")
def reconcile_run(biller_id: int, day: str, user_id: int | None = None) -> int:
    """Reconcile one biller's processing date on demand (from the daily report)."""
    biller = Biller.objects.get(pk=biller_id)
    actor = User.objects.filter(pk=user_id).first() if user_id else None
    run = reconcile(
        biller=biller, processing_date=datetime.date.fromisoformat(day), trigger=Run.Trigger.USER, actor=actor
    )
    return run.pk
