"""What the centre and the banks know, read from the database before and after the event loop.

The bills a payer pays (:class:`Target`, :func:`targets_load`) with a contracted bank and channel, the
line's processing day (:func:`processing_day`), the next free processing serial and 取引通番
(:func:`serial_base`, :func:`teller_serial_base`), and the centre's own figures for a 1600
(:func:`centre_counts`). Nothing here touches the network.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from billing.models import Biller, Invoice
from payeasy import codec
from payeasy.models import Channel, ContractedBank, LineState, Message, Notice

__all__ = [
    "CENTRE",
    "PREFERRED_CHANNELS",
    "Target",
    "centre_counts",
    "first_biller_code",
    "line_state",
    "processing_day",
    "serial_base",
    "targets_load",
    "teller_serial_base",
    "today_and_before",
]

CENTRE = "MPNSIM0001"  # 仕向センタコード the simulator sends as (H2)
PREFERRED_CHANNELS = (Channel.ATM, Channel.INTERNET_BANKING, Channel.INFO_LINK, Channel.TELLER)


@dataclass(frozen=True)
class Target:
    """A bill a payer pays: its numbers and amount, and a bank and channel that may take it."""

    biller_id: int
    biller_code: str
    invoice_id: int
    number: str
    customer_number: str
    confirmation_number: str
    amount: int
    bank_code: str
    channel: str


def _bank_for(contracts: Sequence[ContractedBank], channel: str | None) -> tuple[str, str]:
    today = timezone.now().astimezone(codec.JST).date()
    live = [c for c in contracts if c.covers(today)] or list(contracts)
    wanted = (channel,) if channel else PREFERRED_CHANNELS
    for want in wanted:
        for contract in live:
            if contract.allows(want):
                return contract.bank_code, want
    if live:  # no contracted bank allows the channel: the payment becomes provisional (a real case)
        return live[0].bank_code, channel or Channel.ATM
    return "0001", channel or Channel.ATM  # no contract at all: provisional, bank not contracted


def targets_load(
    *,
    biller_codes: Sequence[str] = (),
    numbers: Sequence[str] = (),
    limit: int | None = None,
    offset: int = 0,
    channel: str | None = None,
    status: str = Invoice.Status.PUBLISHED,
) -> list[Target]:
    """Published bills (oldest first; bills in another ``status``, e.g. cancelled ones, when asked), of
    the given billers or with the given invoice numbers."""
    invoices = (
        Invoice.objects.filter(status=status, kind=Invoice.Kind.INVOICE, confirmation_number__isnull=False)
        .select_related("biller")
        .only("pk", "number", "confirmation_number", "total", "biller__biller_code", "biller__number_key")
        .order_by("pk")
    )
    if biller_codes:
        invoices = invoices.filter(biller__biller_code__in=list(biller_codes))
    if numbers:
        invoices = invoices.filter(number__in=list(numbers))
    if limit is not None:
        invoices = invoices[offset : offset + limit]
    elif offset:
        invoices = invoices[offset:]
    rows = list(invoices)
    contracts: dict[int, list[ContractedBank]] = defaultdict(list)
    for contract in ContractedBank.objects.filter(biller_id__in={i.biller_id for i in rows}):
        contracts[contract.biller_id].append(contract)
    banks = {pk: _bank_for(rows_, channel) for pk, rows_ in contracts.items()}
    return [
        Target(
            biller_id=i.biller_id,
            biller_code=i.biller.biller_code,
            invoice_id=i.pk,
            number=i.number,
            customer_number=str(i.customer_number),
            confirmation_number=str(i.confirmation_number),
            amount=i.total,
            bank_code=banks.get(i.biller_id, ("0001", channel or Channel.ATM))[0],
            channel=banks.get(i.biller_id, ("0001", channel or Channel.ATM))[1],
        )
        for i in rows
    ]


def line_state() -> LineState:
    return LineState.objects.get_or_create(pk=1)[0]


def _next_serial(model: type[Message] | type[Notice], prefix: str) -> int:
    """One more than the highest serial (key bytes 18–26) of the keys starting with ``prefix``."""
    last = (
        model.objects.filter(transaction_key__gte=prefix, transaction_key__lte=prefix + "99999999")
        .order_by("-transaction_key")
        .values_list("transaction_key", flat=True)
        .first()
    )
    return int(last[18:26]) + 1 if last else 1


def serial_base(centre: str, day: str) -> int:
    """The first processing serial (H4) not yet used by ``centre`` on ``day``: a transaction key is for
    ever, so a second run of the simulator must not resend the first run's keys by accident."""
    return _next_serial(Message, centre.ljust(10) + day)


def teller_serial_base(bank_code: str, day: str) -> int:
    """The first 取引通番 not yet stored for a teller file of ``bank_code`` on ``day``."""
    return _next_serial(Notice, bank_code.ljust(10) + day)


def first_biller_code() -> str | None:
    return Biller.objects.filter(status=Biller.Status.ACTIVE).values_list("biller_code", flat=True).first()


def processing_day(state: LineState, requested: str | None = None) -> str:
    if requested:
        return requested
    if state.processing_date is not None and state.state != LineState.State.CLOSED:
        return state.processing_date.strftime("%Y%m%d")
    return timezone.now().astimezone(codec.JST).strftime("%Y%m%d")


def today_and_before(day: str) -> tuple[datetime.date, datetime.date]:
    d = datetime.date(int(day[:4]), int(day[4:6]), int(day[6:8]))
    return d, d - datetime.timedelta(days=1)


def centre_counts(biller_code: str, day: str) -> tuple[int, int, int, int]:
    """The centre's own figures for a 1600: distinct payments it sent and got 0000 for, by key date."""
    today, before = today_and_before(day)
    rows = (
        Message.objects.filter(
            Q(message_type="1200") | Q(message_type="1700"),
            biller_code=biller_code,
            response_code="0000",
            transaction_key__gte=CENTRE.ljust(10) + before.strftime("%Y%m%d"),
            transaction_key__lte=CENTRE.ljust(10) + today.strftime("%Y%m%d") + "99999999",
        )
        .values_list("transaction_key", "amount")
        .distinct()
    )
    figures = {today: [0, 0], before: [0, 0]}
    seen: set[str] = set()
    for key, amount in rows:
        if key in seen:
            continue
        seen.add(key)
        d = datetime.date(int(key[10:14]), int(key[14:16]), int(key[16:18]))
        if d in figures:
            figures[d][0] += 1
            figures[d][1] += amount or 0
    return figures[today][0], figures[today][1], figures[before][0], figures[before][1]
