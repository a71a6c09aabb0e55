"""The operations view of the iDC staff console: the MPN line, messages per minute by type, every
tenant's waiting and applied notices, today's provisional payments (仮消込) by reason, and the message
history (電文履歴) with each stored frame."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, Sum
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Biller
from billing.pagination import BadCursor, KeysetPage, keyset_page, page_query
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
    entries = LedgerEntry.objects.cross_tenant("staff").filter(
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


# the message history's keyset: ``payeasy.selectors.message_search`` orders by it (index message_received)
MESSAGE_SORT = "received"
MESSAGE_ORDERING = ("-received_at", "-id")


class MessageSearchView(StaffView):
    """The message history, searched by key, customer number, biller, type, outcome and JST dates."""

    def get(self, request: TenantRequest) -> HttpResponse:
        form = MessageSearchForm(request.GET)
        page: KeysetPage | None = None
        days = None
        if form.is_valid():
            days = form.date_range(form.cleaned_data)
            try:
                page = keyset_page(
                    form.search(),
                    sort=MESSAGE_SORT,
                    ordering=MESSAGE_ORDERING,
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
                "first_url": f"{path}?{page_query(request.GET)}",
                "older_url": f"{path}?{page_query(request.GET, after=page.next_cursor)}"
                if page and page.next_cursor
                else "",
                "newer_url": f"{path}?{page_query(request.GET, before=page.previous_cursor)}"
                if page and page.previous_cursor
                else "",
            },
            status=200 if page is not None else 400,
        )


class MessageDetailView(StaffView):
    """One stored frame and the response sent for it: hex dump, fields, and the notice it made."""

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        message = get_object_or_404(Message.objects.cross_tenant("staff").select_related("biller"), pk=pk)
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
