"""The operations view of the iDC staff console: the MPN line, messages per minute by type, every
tenant's waiting and applied notices, today's provisional payments (仮消込) by reason, and the message
history (電文履歴) with each stored frame."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Biller
from billing.tenancy import TenantRequest
from payeasy import selectors
from payeasy.models import LedgerEntry, Message
from payeasy.staff.forms import MessageSearchForm
from payeasy.staff.frames import frame_view
from payeasy.staff.views import StaffView

STALE_SECONDS = 30  # a notice waiting longer than this is shown as a problem
REFRESH_SECONDS = 10
MESSAGE_PAGE_SIZE = 50
PROVISIONAL_LIST_SIZE = 20
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class ReasonTally:
    reason: str
    label: str
    count: int
    amount: int


@dataclass(frozen=True)
class ProvisionalToday:
    """The provisional (仮消込) entries made on ``day`` (JST): by reason, and the latest few."""

    day: datetime.date
    reasons: list[ReasonTally]  # most frequent first
    latest: list[LedgerEntry]  # newest first, with notice, biller and invoice


def provisional_today(
    *, day: datetime.date | None = None, size: int = PROVISIONAL_LIST_SIZE
) -> ProvisionalToday:
    """Two queries on ledger_biller_time, as selectors.notice_status_by_biller reads the day's entries (the
    billers named as a list of ids: one index range each): the day's provisional entries counted by
    reason, and the newest ``size`` of them."""
    day = day or selectors.jst_today()
    start = selectors.jst_day_start(day)
    entries = LedgerEntry.objects.filter(
        biller_id__in=list(Biller.objects.values_list("pk", flat=True)),
        created_at__gte=start,
        created_at__lt=start + datetime.timedelta(days=1),
        outcome=LedgerEntry.Outcome.PROVISIONAL,
    )
    labels = dict(LedgerEntry.Reason.choices)
    reasons = [
        ReasonTally(r["reason"], str(labels.get(r["reason"], r["reason"])), r["n"], r["amount"] or 0)
        for r in entries.values("reason").annotate(n=Count("id"), amount=Sum("amount")).order_by()
    ]
    reasons.sort(key=lambda r: (-r.count, r.label))
    latest = list(entries.select_related("notice", "biller", "invoice").order_by("-created_at", "-id")[:size])
    return ProvisionalToday(day=day, reasons=reasons, latest=latest)


class OperationsView(StaffView):
    """The line, messages per minute by type, and every tenant's waiting and applied notices.

    Reloads itself every ten seconds (a meta refresh: no script needed) unless ``?refresh=0``.
    """

    def get(self, request: TenantRequest) -> HttpResponse:
        now = timezone.now()
        return render(
            request,
            "payeasy/staff/operations.html",
            {
                "overview": selectors.line_overview(),
                "rates": selectors.message_rates(minutes=60, now=now),
                "notices": selectors.notice_status_by_biller(now=now),
                "waiting": list(selectors.waiting_notices(limit=10)),
                "provisional": provisional_today(),
                "now": now,
                "stale_seconds": STALE_SECONDS,
                "refresh": REFRESH_SECONDS if request.GET.get("refresh") != "0" else None,
            },
        )


def _cursor(message: Message) -> str:
    return f"{(message.received_at - _EPOCH) // datetime.timedelta(microseconds=1)}.{message.pk}"


def _parse_cursor(token: str) -> tuple[datetime.datetime, int]:
    micros, _dot, pk = token.partition(".")
    try:
        at, number = _EPOCH + datetime.timedelta(microseconds=int(micros)), int(pk)
    except (ValueError, OverflowError) as exc:
        raise BadCursor from exc
    if not 0 < number < 2**63:
        raise BadCursor
    return at, number


class BadCursor(ValueError):
    pass


@dataclass
class MessagePage:
    rows: list[Message]
    older: str | None  # cursor for the next page (older messages)
    newer: str | None  # cursor for the previous page (newer messages)


def message_page(qs: QuerySet[Message], *, after: str, before: str, size: int) -> MessagePage:
    """One page of a search ordered by ``-received_at, -id``, after (older) or before (newer) a cursor.

    Keyset paging: LIMIT size + 1 on the index, no COUNT and no OFFSET over millions of rows.
    """
    if before:
        at, pk = _parse_cursor(before)
        newer = qs.filter(Q(received_at__gt=at) | Q(received_at=at, pk__gt=pk), received_at__gte=at)
        rows = list(newer.order_by("received_at", "id")[: size + 1])
        has_newer = len(rows) > size
        rows = rows[:size][::-1]
        return MessagePage(
            rows=rows,
            older=_cursor(rows[-1]) if rows else None,
            newer=_cursor(rows[0]) if has_newer and rows else None,
        )
    if after:
        at, pk = _parse_cursor(after)
        qs = qs.filter(Q(received_at__lt=at) | Q(received_at=at, pk__lt=pk), received_at__lte=at)
    rows = list(qs[: size + 1])
    has_older = len(rows) > size
    rows = rows[:size]
    return MessagePage(
        rows=rows,
        older=_cursor(rows[-1]) if has_older and rows else None,
        newer=_cursor(rows[0]) if after and rows else None,
    )


def _query(params: QueryDict, **changes: str) -> str:
    out = params.copy()
    for name in ("after", "before"):
        out.pop(name, None)
    for name, value in changes.items():
        out[name] = value
    return out.urlencode()


class MessageSearchView(StaffView):
    """The message history, searched by key, customer number, biller, type, outcome and JST dates."""

    def get(self, request: TenantRequest) -> HttpResponse:
        form = MessageSearchForm(request.GET)
        page: MessagePage | None = None
        days = None
        if form.is_valid():
            days = form.date_range(form.cleaned_data)
            try:
                page = message_page(
                    form.search(),
                    after=request.GET.get("after", ""),
                    before=request.GET.get("before", ""),
                    size=MESSAGE_PAGE_SIZE,
                )
            except BadCursor:
                form.add_error(None, _("The page link is out of date. Start again from the first page."))
        path = reverse("staff:message_search")
        return render(
            request,
            "payeasy/staff/message_search.html",
            {
                "form": form,
                "page": page,
                "days": days,
                "billers": Biller.objects.order_by("biller_code").values_list("biller_code", "legal_name"),
                "first_url": f"{path}?{_query(request.GET)}",
                "older_url": f"{path}?{_query(request.GET, after=page.older)}" if page and page.older else "",
                "newer_url": f"{path}?{_query(request.GET, before=page.newer)}"
                if page and page.newer
                else "",
            },
            status=200 if page is not None else 400,
        )


class MessageDetailView(StaffView):
    """One stored frame and the response sent for it: hex dump, fields, and the notice it made."""

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        message = get_object_or_404(Message.objects.select_related("biller"), pk=pk)
        notice = selectors.message_notice(message=message)
        entry = None
        if notice is not None:
            try:
                entry = notice.entry
            except ObjectDoesNotExist:
                entry = None
        response_raw = bytes(message.response_raw or b"")
        return render(
            request,
            "payeasy/staff/message_detail.html",
            {
                "message": message,
                "frame": frame_view(bytes(message.raw)),
                "response": frame_view(response_raw) if response_raw else None,
                "notice": notice,
                "entry": entry,
                "now": timezone.now(),
                "stale_seconds": STALE_SECONDS,
            },
        )
