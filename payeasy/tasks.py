"""Thin Celery tasks of the payeasy app: take ids, call a service. Every one is safe to run twice."""

from __future__ import annotations

import datetime

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from payeasy.models import Notice
from payeasy.services import payments, teller, webhooks


@shared_task(name="payeasy.tasks.notices_apply", autoretry_for=(OperationalError,), retry_backoff=True)
def notices_apply(limit: int = payments.APPLY_BATCH) -> int:
    """Apply waiting notices until none is left (or only ones another worker holds)."""
    total = 0
    while True:
        result = payments.notices_apply(limit=limit)
        total += result.applied
        if result.applied + len(result.failed) < limit or (result.failed and not result.applied):
            return total


@shared_task(name="payeasy.tasks.notices_sweep")
def notices_sweep() -> int:
    """Run by beat: apply every notice still waiting 30 s after it arrived (a lost task, a dead worker,
    a wiped Redis). The notices are in the database; the queue only carries wake-ups."""
    cutoff = timezone.now() - datetime.timedelta(seconds=settings.PAYEASY_SWEEP_AFTER_SECONDS)
    if not Notice.objects.filter(applied_at__isnull=True, received_at__lte=cutoff).exists():
        return 0
    return notices_apply.run()


@shared_task(name="payeasy.tasks.teller_drop_scan")
def teller_drop_scan() -> int:
    """Run by beat: import the teller batch files dropped into ``PAYEASY_TELLER_DROP_DIR/incoming``."""
    from pathlib import Path

    directory = settings.PAYEASY_TELLER_DROP_DIR
    if not directory:
        return 0
    return len(teller.teller_drop_scan(Path(directory)))


@shared_task(name="payeasy.tasks.webhooks_deliver")
def webhooks_deliver(delivery_ids: list[int] | None = None) -> int:
    """Post the webhook deliveries that are due (only ``delivery_ids`` when given): one batch, and
    another task for the rest, so that a slow endpoint holds a worker for one batch at most."""
    result = webhooks.deliver_due(delivery_ids=delivery_ids)
    if delivery_ids is None and result.attempted >= webhooks.DELIVER_BATCH:
        webhooks_deliver.delay()
    return result.succeeded


@shared_task(name="payeasy.tasks.webhooks_retry_due")
def webhooks_retry_due() -> int:
    """Run by beat: post the retries that are due, and anything a lost wake-up or a dead worker left."""
    return webhooks_deliver.run()


@shared_task(name="payeasy.tasks.handoff_nonces_prune")
def handoff_nonces_prune() -> int:
    """Run by beat: forget the 情報リンク nonces of envelopes that have expired (payeasy.handoff)."""
    from payeasy import handoff

    return handoff.nonces_prune()
