"""Telling the outside what happened to the books, after commit.

- Live: every event is published on Redis (pub/sub) on ``payeasy:invoice:<id>`` and
  ``payeasy:biller:<id>``, for open browser pages; without Redis (the embedded default) pages poll.
- Receipts: an e-mail for every entry that paid a bill (a task, so SMTP never slows a batch).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from payeasy.services.payments import Event

log = logging.getLogger("payeasy.events")


def invoice_channel(invoice_id: int) -> str:
    return f"payeasy:invoice:{invoice_id}"


def biller_channel(biller_id: int) -> str:
    return f"payeasy:biller:{biller_id}"


@cache
def _redis() -> Any:
    import redis

    return redis.Redis.from_url(str(settings.REDIS_URL))


def publish_live(events: Sequence[Event]) -> None:
    if not settings.REDIS_URL:
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for event in events:
            payload = json.dumps({"type": event.type, "invoice": event.invoice_id, **event.data})
            if event.invoice_id is not None:
                pipe.publish(invoice_channel(event.invoice_id), payload)
            pipe.publish(biller_channel(event.biller_id), payload)
        pipe.execute()
    except Exception:  # a page that misses an event refreshes; the books are committed
        log.exception("live events not published")


def dispatch(events: Sequence[Event]) -> None:
    """Called on commit of the transaction that wrote the entries behind ``events``."""
    from payeasy import tasks

    publish_live(events)
    paid = [e.data["ledger_entry"] for e in events if e.type == "invoice.paid"]
    if paid:
        try:
            tasks.receipts_send.delay(paid)
        except Exception:  # the broker is away: the payments are committed and the applier goes on
            log.exception("receipts of ledger entries %s not queued", paid)
