"""Reads of the work queue: a biller's findings with filters and their age, counts per age bucket, and
what one finding involves (bills, ledger entries, actions, refunds)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import Biller, Invoice
from payeasy.banks import bank_get
from payeasy.models import LedgerEntry
from reconciliation.models import Action, Finding, Refund


@dataclass(frozen=True, slots=True)
class AgeBucket:
    """Findings found ``low`` to ``high`` days ago (``high`` None: or longer), by the local calendar."""

    key: str
    label: Any
    low: int
    high: int | None


AGE_BUCKETS = (
    AgeBucket("0-2", _("0–2 days"), 0, 2),
    AgeBucket("3-7", _("3–7 days"), 3, 7),
    AgeBucket("8-30", _("8–30 days"), 8, 30),
    AgeBucket("31+", _("Over 30 days"), 31, None),
)
BUCKETS = {b.key: b for b in AGE_BUCKETS}
ALL_STATES = "all"


@dataclass(frozen=True, slots=True)
class FindingFilters:
    """What the queue shows: ``state`` "" or ``ALL_STATES`` for every state (the page defaults to open)."""

    kind: str = ""
    state: str = Finding.State.OPEN
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    age: str = ""


def _midnight(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def age_q(bucket: AgeBucket, *, today: datetime.date) -> Q:
    """Findings found ``bucket.low`` to ``bucket.high`` local days before ``today``."""
    q = Q(found_at__lt=_midnight(today - datetime.timedelta(days=bucket.low - 1)))
    if bucket.high is not None:
        q &= Q(found_at__gte=_midnight(today - datetime.timedelta(days=bucket.high)))
    return q


def _filtered(biller: Biller, f: FindingFilters) -> QuerySet[Finding]:
    qs = Finding.objects.for_biller(biller)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.state and f.state != ALL_STATES:
        qs = qs.filter(state=f.state)
    if f.date_from is not None:
        qs = qs.filter(processing_date__gte=f.date_from)
    if f.date_to is not None:
        qs = qs.filter(processing_date__lte=f.date_to)
    if f.amount_min is not None:
        qs = qs.filter(amount__gte=f.amount_min)
    if f.amount_max is not None:
        qs = qs.filter(amount__lte=f.amount_max)
    return qs


def finding_list(
    *, biller: Biller, filters: FindingFilters, today: datetime.date | None = None
) -> QuerySet[Finding]:
    """The biller's findings that pass ``filters``, oldest first (found at, then id)."""
    qs = _filtered(biller, filters)
    if filters.age in BUCKETS:
        qs = qs.filter(age_q(BUCKETS[filters.age], today=today or timezone.localdate()))
    return qs.select_related("invoice").order_by("found_at", "id")


def finding_age_counts(
    *, biller: Biller, filters: FindingFilters, today: datetime.date | None = None
) -> list[tuple[AgeBucket, int]]:
    """How many findings passing ``filters`` (all but the age) fall in each age bucket: one query."""
    day = today or timezone.localdate()
    counts = _filtered(biller, filters).aggregate(
        **{f"b{i}": Count("id", filter=age_q(b, today=day)) for i, b in enumerate(AGE_BUCKETS)}
    )
    return [(b, counts[f"b{i}"]) for i, b in enumerate(AGE_BUCKETS)]


def age_days(finding: Finding, *, today: datetime.date | None = None) -> int:
    """Local calendar days since the finding was found (0: today)."""
    return ((today or timezone.localdate()) - timezone.localdate(finding.found_at)).days


def detail_label(value: str) -> str:
    """The label of a finding's ``detail``: its own, or the ledger's 仮消込 reason it carries."""
    if not value:
        return ""
    for choices in (Finding.Detail, LedgerEntry.Reason):
        if value in choices.values:
            return str(choices(value).label)
    return value


def bank_label(code: str) -> str:
    if not code:
        return ""
    bank = bank_get(code)
    return bank.label if bank is not None else code


def _ids(values: Iterable[Any]) -> list[int]:
    out: list[int] = []
    for v in values:
        try:
            n = int(v)
        except (TypeError, ValueError):
            continue
        if n not in out:
            out.append(n)
    return out


@dataclass(frozen=True)
class FindingView:
    """Everything the detail page shows of one finding."""

    finding: Finding
    invoices: list[Invoice]
    entry_ids: list[int]
    links: dict[str, list[Any]]  # the other ids it names (notices, messages, teller files, deposits)
    actions: list[Action]
    refunds: list[Refund]


def finding_view(*, biller: Biller, finding: Finding) -> FindingView:
    """What ``finding`` (the biller's) involves: its bills (the biller's only), entries, actions, refunds."""
    links = finding.links if isinstance(finding.links, dict) else {}
    invoice_ids = _ids([finding.invoice_id, *links.get("invoices", [])])
    found = {i.pk: i for i in Invoice.objects.for_biller(biller).filter(pk__in=invoice_ids)}
    acted = Action.objects.for_biller(biller).filter(finding=finding)
    return FindingView(
        finding=finding,
        invoices=[found[pk] for pk in invoice_ids if pk in found],
        entry_ids=_ids([finding.entry_id, *links.get("entries", [])]),
        links={
            k: list(v)
            for k, v in links.items()
            if k not in {"invoices", "entries"} and isinstance(v, list) and v
        },
        actions=list(acted.select_related("actor", "invoice").order_by("id")),
        refunds=list(Refund.objects.for_biller(biller).filter(finding=finding).order_by("id")),
    )


def invoice_by_number(*, biller: Biller, number: str) -> Invoice | None:
    """The biller's invoice numbered ``number`` (as typed, spaces trimmed), or None."""
    return Invoice.objects.for_biller(biller).filter(number=number.strip()).first()


__all__ = [
    "AGE_BUCKETS",
    "ALL_STATES",
    "AgeBucket",
    "FindingFilters",
    "FindingView",
    "age_days",
    "bank_label",
    "detail_label",
    "finding_age_counts",
    "finding_list",
    "finding_view",
    "invoice_by_number",
]
