"""電子帳簿保存法 search: a tenant's transaction records by 取引年月日, 取引金額 and 取引先, with ranges
and in any combination (the one query logic of the console page and the API).

The records are the invoices the biller issued (date: issue date; amount: total; counterparty: the
customer, or the recipient of a payment request without one) and the payments it received, read from
payeasy's ledger so that a provisional payment that reached no bill is found too (date: the day paid,
JST; amount: signed, a reversal is negative and is found by the amount it reverses; counterparty: the
bill's customer, or the payer's kana the bank reported).

A counterparty matches anywhere in the name, the kana reading or the payer kana, as typed and in its
katakana forms (hiragana, full-width and half-width katakana are one search: ``たなか`` finds
``ﾀﾅｶ ｲﾁﾛｳ``). Pages are keyset pages over (day, kind, id), newest first: one query per kind of record
and page, LIMIT size + 1, no OFFSET, no COUNT.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass
from typing import Any

import jaconv
from django.db.models import Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils.translation import gettext

from billing.models import Biller, Invoice
from payeasy.models import LedgerEntry
from reconciliation.selectors.exports import jst_bounds

KIND_INVOICE = "invoice"
KIND_PAYMENT = "payment"
KINDS = (KIND_INVOICE, KIND_PAYMENT)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# the day of a payment is its JST day (a named zone: the databases' date functions take a zone name)
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
MAX_AMOUNT = 10**12  # yen; more is not a search any bill could answer
_YEN = re.compile(r"^[0-9][0-9,]*$")


class BadRecordCursor(ValueError):
    """A cursor this search did not give out."""


def parse_yen(text: str) -> int | None:
    """A yen amount as typed: digits, with or without thousands commas (``1,000``); None when empty;
    ``ValueError`` otherwise."""
    text = unicodedata.normalize("NFKC", text or "").strip().removeprefix("¥").replace("円", "").strip()
    if not text:
        return None
    if not _YEN.match(text):
        raise ValueError(text)
    value = int(text.replace(",", ""))
    if value > MAX_AMOUNT:
        raise ValueError(text)
    return value


def counterparty_variants(text: str) -> list[str]:
    """``text`` as typed and in its kana forms (hiragana → katakana, full- and half-width), distinct."""
    base = " ".join(unicodedata.normalize("NFKC", text).split())
    if not base:
        return []
    katakana = jaconv.hira2kata(base)
    half = jaconv.z2h(katakana, kana=True, ascii=False, digit=False)
    variants = [base, text.strip(), katakana, half, jaconv.kata2hira(base)]
    seen: list[str] = []
    for v in variants:
        if v and v not in seen:
            seen.append(v)
    return seen


@dataclass(frozen=True)
class RecordFilters:
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    counterparty: str = ""
    kind: str = ""  # "" for both kinds


def range_errors(filters: RecordFilters) -> dict[str, str]:
    """The field whose bound lies before its start (``date_to``, ``amount_max``), and why."""
    errors: dict[str, str] = {}
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        errors["date_to"] = gettext("The end date is before the start date.")
    if (
        filters.amount_min is not None
        and filters.amount_max is not None
        and filters.amount_max < filters.amount_min
    ):
        errors["amount_max"] = gettext("The maximum amount is less than the minimum.")
    return errors


@dataclass(frozen=True)
class Record:
    kind: str  # invoice | payment
    id: int  # the invoice's id, or the ledger entry's
    day: datetime.date
    amount: int
    counterparty: str
    counterparty_kana: str
    invoice_id: int | None
    invoice_number: str
    state: str  # the invoice's status, or the entry's outcome
    detail: str  # an invoice's kind; a payment's transaction key

    @property
    def sort_key(self) -> tuple[datetime.date, str, int]:
        return (self.day, self.kind, self.id)


@dataclass
class RecordPage:
    rows: list[Record]
    next_cursor: str | None
    is_first: bool


def encode_cursor(record: Record) -> str:
    payload = json.dumps(["records", record.day.isoformat(), record.kind, record.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()


def decode_cursor(token: str) -> tuple[datetime.date, str, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
        tag, day, kind, pk = data
        if tag != "records" or kind not in KINDS or not isinstance(pk, int) or isinstance(pk, bool):
            raise ValueError(token)
        if not 0 < pk < 2**63:
            raise ValueError(token)
        return datetime.date.fromisoformat(day), kind, pk
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise BadRecordCursor(token) from exc


def _after(kind: str, cursor: tuple[datetime.date, str, int] | None, *, day_field: str = "day") -> Q:
    """Rows of ``kind`` after the cursor in the order (day, kind, id) descending: (day, kind, id) <
    (cursor day, cursor kind, cursor id), where ``kind`` is the same for every row of the query."""
    if cursor is None:
        return Q()
    day, cursor_kind, pk = cursor
    if cursor_kind > kind:  # this kind follows the cursor's within a day: the cursor's day onwards
        return Q(**{f"{day_field}__lte": day})
    if cursor_kind < kind:  # this kind precedes the cursor's within a day: the days before
        return Q(**{f"{day_field}__lt": day})
    return Q(**{f"{day_field}__lt": day}) | Q(**{day_field: day, "id__lt": pk})


def _invoices(biller: Biller, f: RecordFilters, cursor: Any, size: int) -> list[Record]:
    qs: QuerySet[Any] = Invoice.objects.for_biller(biller).exclude(status=Invoice.Status.DRAFT)
    if f.date_from:
        qs = qs.filter(issue_date__gte=f.date_from)
    if f.date_to:
        qs = qs.filter(issue_date__lte=f.date_to)
    if f.amount_min is not None:
        qs = qs.filter(total__gte=f.amount_min)
    if f.amount_max is not None:
        qs = qs.filter(total__lte=f.amount_max)
    variants = counterparty_variants(f.counterparty)
    if variants:
        match = Q()
        for v in variants:
            match |= (
                Q(customer__name__icontains=v)
                | Q(customer__name_kana__icontains=v)
                | Q(recipient_name__icontains=v)
            )
        qs = qs.filter(match)
    qs = qs.filter(_after(KIND_INVOICE, cursor, day_field="issue_date"))
    rows = qs.order_by("-issue_date", "-id").values_list(
        "id",
        "issue_date",
        "total",
        "customer__name",
        "customer__name_kana",
        "recipient_name",
        "number",
        "status",
        "kind",
    )[: size + 1]
    return [
        Record(
            kind=KIND_INVOICE,
            id=pk,
            day=day,
            amount=total,
            counterparty=name or recipient or "",
            counterparty_kana=kana or "",
            invoice_id=pk,
            invoice_number=number,
            state=status,
            detail=kind,
        )
        for pk, day, total, name, kana, recipient, number, status, kind in rows
    ]


def _payments(biller: Biller, f: RecordFilters, cursor: Any, size: int) -> list[Record]:
    qs = LedgerEntry.objects.for_biller(biller).annotate(day=TruncDate("notice__paid_at", tzinfo=TOKYO))
    start, end = jst_bounds(f.date_from, f.date_to)
    if start is not None:
        qs = qs.filter(notice__paid_at__gte=start)
    if end is not None:
        qs = qs.filter(notice__paid_at__lt=end)
    if f.amount_min is not None or f.amount_max is not None:
        # a reversal (negative) is found by the amount it reverses
        positive, negative = Q(amount__gt=0), Q(amount__lt=0)
        if f.amount_min is not None:
            positive &= Q(amount__gte=f.amount_min)
            negative &= Q(amount__lte=-f.amount_min)
        if f.amount_max is not None:
            positive &= Q(amount__lte=f.amount_max)
            negative &= Q(amount__gte=-f.amount_max)
        qs = qs.filter(positive | negative)
    variants = counterparty_variants(f.counterparty)
    if variants:
        match = Q()
        for v in variants:
            match |= (
                Q(invoice__customer__name__icontains=v)
                | Q(invoice__customer__name_kana__icontains=v)
                | Q(invoice__recipient_name__icontains=v)
                | Q(notice__payer_name_kana__icontains=v)
            )
        qs = qs.filter(match)
    qs = qs.filter(_after(KIND_PAYMENT, cursor))
    rows = qs.order_by("-day", "-id").values_list(
        "id",
        "day",
        "amount",
        "invoice__customer__name",
        "invoice__customer__name_kana",
        "invoice__recipient_name",
        "notice__payer_name_kana",
        "invoice_id",
        "invoice__number",
        "outcome",
        "notice__transaction_key",
    )[: size + 1]
    return [
        Record(
            kind=KIND_PAYMENT,
            id=pk,
            day=day,
            amount=amount,
            counterparty=name or recipient or payer_kana or "",
            counterparty_kana=payer_kana or kana or "",
            invoice_id=invoice_id,
            invoice_number=number or "",
            state=outcome,
            detail=key,
        )
        for pk, day, amount, name, kana, recipient, payer_kana, invoice_id, number, outcome, key in rows
    ]


def record_search(
    *, biller: Biller, filters: RecordFilters, after: str = "", size: int = DEFAULT_PAGE_SIZE
) -> RecordPage:
    """One page of the biller's records matching ``filters``, newest first, after the cursor ``after``
    (``BadRecordCursor`` for one this search did not give out). One query per kind searched."""
    cursor = decode_cursor(after) if after else None
    size = max(1, min(size, MAX_PAGE_SIZE))
    found: list[Record] = []
    if filters.kind in ("", KIND_INVOICE):
        found += _invoices(biller, filters, cursor, size)
    if filters.kind in ("", KIND_PAYMENT):
        found += _payments(biller, filters, cursor, size)
    found.sort(key=lambda r: r.sort_key, reverse=True)
    rows = found[:size]
    has_next = len(found) > size
    return RecordPage(
        rows=rows, next_cursor=encode_cursor(rows[-1]) if has_next and rows else None, is_first=not after
    )
