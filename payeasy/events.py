"""After-commit announcements of the payeasy books: :class:`Event`, and telling the outside about it.

The payment service makes an :class:`Event` for everything that happened to the books (a payment
received, an invoice paid, a reversal, …); the webhook outbox is written from them in the ledger's
transaction (``payeasy.services.webhooks``), and :func:`dispatch` runs once that transaction commits:

- Live: every event goes to open browser pages (:func:`payeasy.live.updates_publish`, Redis pub/sub);
  without Redis (the embedded default) pages poll.

Receipts are billing's: the billing service that records the payments on its bills announces them
(``billing.services.payments``). This module knows no services and no tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from payeasy import live


@dataclass
class Event:
    """Something that happened to the books, told to the outside after commit."""

    type: str  # payment.received, payment.provisional, payment.double, payment.reversed, invoice.paid, …
    biller_id: int
    invoice_id: int | None
    data: dict[str, Any]


def dispatch(announced: Sequence[Event]) -> None:
    """Called on commit of the transaction that wrote the entries behind ``announced``."""
    live.updates_publish(updates=announced)
