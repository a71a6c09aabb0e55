"""Reads of the payeasy app that carry a rule."""

from __future__ import annotations

import datetime

from django.db.models import QuerySet

from billing.models import Biller
from payeasy.models import ContractedBank


def contracted_bank_list(*, biller: Biller) -> QuerySet[ContractedBank]:
    return ContractedBank.objects.filter(biller=biller).order_by("bank_code", "valid_from")


def contracted_bank_check(*, biller: Biller, bank_code: str, channel: str, day: datetime.date) -> str | None:
    """The MPN response code for a bank/channel on a day: None when allowed, else ``A002`` or ``A010``."""
    rows = [r for r in ContractedBank.objects.filter(biller=biller, bank_code=bank_code) if r.covers(day)]
    if not rows:
        return "A002"
    if not any(r.allows(channel) for r in rows):
        return "A010"
    return None
