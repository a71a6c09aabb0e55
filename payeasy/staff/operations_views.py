"""The operations view of the iDC staff console: the alerts to act on, the MPN line, the last hour as
charts (payments per minute, apply lag, notices waiting, messages per minute), every tenant's waiting
and applied notices, today's provisional payments (仮消込) by reason, and the message history (電文履歴)
with each stored frame.

The charts cover the last 60 minutes by minute: the page is watched live through the online day and
reloads itself every ten seconds, so the hour is what a watcher compares "now" with (a peak, a backlog
building up and draining); a minute is the finest step at which a count means something, and 60 of
them still make bars a phone can draw. The day's totals are in the table of billers below.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, Sum
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing import charts
from billing.models import Biller
from billing.pagination import BadCursor, KeysetPage, keyset_page, page_query
from billing.tenancy import TenantRequest
from payeasy import selectors
from payeasy.alerts import CRITICAL, active_alerts
from payeasy.codec import JST
from payeasy.line_nodes import line_nodes
from payeasy.models import LedgerEntry, Message
from payeasy.staff.forms import MessageSearchForm
from payeasy.staff.frames import frame_view, message_type_label
from payeasy.staff.views import StaffView

STALE_SECONDS = 30  # a notice waiting longer than this is shown as a problem
REFRESH_SECONDS = 10
MESSAGE_PAGE_SIZE = 50
PROVISIONAL_LIST_SIZE = 20
CHART_MINUTES = 60
LABEL_EVERY_MINUTES = 10  # x-axis labels on the clock's round ten minutes (every 20 on a phone)


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


# --- the last hour as charts -----------------------------------------------------------------------------


Window = dict[str, int | str]  # minutes, first and last (JST "HH:MM"): the window as the texts name it


@dataclass(frozen=True)
class ActivityCharts:
    payments: SafeString
    lag: SafeString
    waiting: SafeString
    messages: SafeString


def _hm(moment: datetime.datetime) -> str:
    return moment.astimezone(JST).strftime("%H:%M")


def _round_minutes(starts: list[datetime.datetime]) -> list[int]:
    return [i for i, m in enumerate(starts) if m.minute % LABEL_EVERY_MINUTES == 0]


def activity_charts(
    activity: selectors.LineActivity, rates: selectors.RateTable, *, refresh: int | None
) -> ActivityCharts:
    """The operations view's four charts, each with its text summary and a compact table (only the
    minutes that have something), or a sentence when the hour had nothing to draw."""
    rows = activity.minutes
    starts = [r.minute for r in rows]
    labels = [_hm(m) for m in starts]
    ticks = _round_minutes(starts)
    window: Window = {"minutes": len(rows), "first": labels[0], "last": labels[-1]}
    note = (
        _(
            "This page reloads every %(seconds)d seconds, but not while a table is open: close it, or "
            "choose “Stop reloading” at the top of the page."
        )
        % {"seconds": refresh}
        if refresh
        else ""
    )
    return ActivityCharts(
        payments=_payments_chart(rows, labels, ticks, window, note),
        lag=_lag_chart(rows, labels, ticks, window, note),
        waiting=_waiting_chart(activity, labels, ticks, window, note),
        messages=_messages_chart(rates, ticks, window, note),
    )


def _payments_chart(
    rows: list[selectors.ActivityMinute], labels: list[str], ticks: list[int], window: Window, note: str
) -> SafeString:
    title = _("Payments per minute, the last %(minutes)d minutes") % window
    total, amount = sum(r.payments for r in rows), sum(r.amount for r in rows)
    top = charts.peak([r.payments for r in rows])
    if top is None:
        return charts.empty_figure(
            chart_id="payments-chart",
            title=title,
            statement=_(
                "No payment arrived on the line in the last %(minutes)d minutes (%(first)s–%(last)s JST)."
            )
            % window,
        )
    description = ngettext(
        "Last %(minutes)d minutes (%(first)s–%(last)s JST): %(count)s payment, %(amount)s in all; at most "
        "%(peak)s per minute (%(at)s).",
        "Last %(minutes)d minutes (%(first)s–%(last)s JST): %(count)s payments, %(amount)s in all; at most "
        "%(peak)s per minute (%(at)s).",
        total,
    ) % {
        **window,
        "count": f"{total:,}",
        "amount": charts.yen_text(amount),
        "peak": f"{rows[top].payments:,}",
        "at": labels[top],
    }
    bars = [
        charts.Bar(label=label, heading=label, value=r.payments, extra=(charts.yen_text(r.amount),))
        for r, label in zip(rows, labels, strict=True)
    ]
    svg = charts.bar_chart_svg(
        bars=bars,
        chart_id="payments-chart",
        title=title,
        description=description,
        unit=_("payments/min"),
        value_text=charts.count_text,
        label_indexes=ticks,
    )
    table = charts.DataTable(
        caption=_(
            "Payments acknowledged on the line per minute: only the minutes with payments, newest first "
            "(JST; the last minute so far)"
        ),
        columns=[_("Minute (JST)"), _("Payments"), _("Yen")],
        rows=[(b.heading, (f"{b.value:,}", *b.extra)) for b in reversed(bars) if b.value],
    )
    return charts.chart_figure(svg=svg, chart_id="payments-chart", title=title, table=table, note=note)


def _lag_chart(
    rows: list[selectors.ActivityMinute], labels: list[str], ticks: list[int], window: Window, note: str
) -> SafeString:
    title = _("Apply lag per minute, the last %(minutes)d minutes") % window
    longest = [r.lag_max for r in rows]
    top = charts.peak(longest)
    applied = sum(r.applied for r in rows)
    if not applied:
        return charts.empty_figure(
            chart_id="lag-chart",
            title=title,
            statement=_(
                "No payment from the line was applied in the last %(minutes)d minutes "
                "(%(first)s–%(last)s JST)."
            )
            % window,
        )
    average = sum(r.lag_total for r in rows) / applied
    description = ngettext(
        "Last %(minutes)d minutes: %(count)s payment from the line applied, %(average)s s after its "
        "acknowledgment on average; the longest took %(longest)s s (%(at)s).",
        "Last %(minutes)d minutes: %(count)s payments from the line applied, %(average)s s after their "
        "acknowledgment on average; the longest took %(longest)s s (%(at)s).",
        applied,
    ) % {
        **window,
        "count": f"{applied:,}",
        "average": charts.seconds_text(average),
        "longest": charts.seconds_text(rows[top].lag_max or 0) if top is not None else "0",
        "at": labels[top] if top is not None else labels[-1],
    }
    slots = [charts.Slot(label=label, heading=label) for label in labels]
    names = (_("Longest"), _("Average"))
    svg = charts.line_chart_svg(
        slots=slots,
        series=[charts.Series(names[0], longest), charts.Series(names[1], [r.lag_average for r in rows])],
        chart_id="lag-chart",
        title=title,
        description=description,
        unit=_("s"),
        value_text=charts.seconds_text,
        label_indexes=ticks,
    )
    table = charts.DataTable(
        caption=_(
            "Seconds from a line payment's acknowledgment (stored and answered) to its entry in the ledger "
            "and billing, per minute applied: only the minutes with payments applied, newest first (JST)"
        ),
        columns=[_("Minute (JST)"), _("Payments applied"), _("Average (s)"), _("Longest (s)")],
        rows=[
            (
                label,
                (
                    f"{r.applied:,}",
                    charts.seconds_text(r.lag_average or 0),
                    charts.seconds_text(r.lag_max or 0),
                ),
            )
            for r, label in reversed(list(zip(rows, labels, strict=True)))
            if r.applied
        ],
    )
    return charts.chart_figure(
        svg=svg, chart_id="lag-chart", title=title, table=table, legend=names, note=note
    )


def _waiting_chart(
    activity: selectors.LineActivity, labels: list[str], ticks: list[int], window: Window, note: str
) -> SafeString:
    rows = activity.minutes
    title = _("Notices waiting to be applied, the last %(minutes)d minutes") % window
    values = [r.waiting for r in rows]
    top = charts.peak(values)
    if top is None:
        return charts.empty_figure(
            chart_id="waiting-chart",
            title=title,
            statement=_(
                "No notice was waiting to be applied at the end of any minute of the last %(minutes)d "
                "minutes (%(first)s–%(last)s JST), and none is waiting now."
            )
            % window,
        )
    description = ngettext(
        "%(now)s notice waiting now; at most %(peak)s at the end of a minute (%(at)s) in the last "
        "%(minutes)d minutes.",
        "%(now)s notices waiting now; at most %(peak)s at the end of a minute (%(at)s) in the last "
        "%(minutes)d minutes.",
        activity.waiting_now,
    ) % {**window, "now": f"{activity.waiting_now:,}", "peak": f"{values[top]:,}", "at": labels[top]}
    name = _("Waiting")
    svg = charts.line_chart_svg(
        slots=[charts.Slot(label=label, heading=label) for label in labels],
        series=[charts.Series(name, values, area=True)],
        chart_id="waiting-chart",
        title=title,
        description=description,
        unit=_("notices"),
        whole=True,
        label_indexes=ticks,
    )
    table = charts.DataTable(
        caption=_(
            "Notices of any kind waiting to be applied at the end of each minute (now, for the last one): "
            "only the minutes with notices waiting, newest first (JST)"
        ),
        columns=[_("Minute (JST)"), _("Waiting")],
        rows=[(label, (f"{v:,}",)) for v, label in reversed(list(zip(values, labels, strict=True))) if v],
    )
    return charts.chart_figure(svg=svg, chart_id="waiting-chart", title=title, table=table, note=note)


def _messages_chart(rates: selectors.RateTable, ticks: list[int], window: Window, note: str) -> SafeString:
    title = _("Messages per minute, the last %(minutes)d minutes") % window
    if not rates.total:
        return charts.empty_figure(
            chart_id="messages-chart",
            title=title,
            statement=_(
                "No message arrived on the line in the last %(minutes)d minutes (%(first)s–%(last)s JST)."
            )
            % window,
        )
    oldest_first = list(reversed(rates.rows))
    labels = [_hm(r.minute) for r in oldest_first]
    top = charts.peak([r.total for r in oldest_first])
    description = ngettext(
        "Last %(minutes)d minutes (%(first)s–%(last)s JST): %(count)s message; at most %(peak)s per minute "
        "(%(at)s).",
        "Last %(minutes)d minutes (%(first)s–%(last)s JST): %(count)s messages; at most %(peak)s per minute "
        "(%(at)s).",
        rates.total,
    ) % {
        **window,
        "count": f"{rates.total:,}",
        "peak": f"{rates.peak:,}",
        "at": labels[top] if top is not None else labels[-1],
    }
    bars = [
        charts.Bar(label=label, heading=label, value=r.total)
        for r, label in zip(oldest_first, labels, strict=True)
    ]
    svg = charts.bar_chart_svg(
        bars=bars,
        chart_id="messages-chart",
        title=title,
        description=description,
        unit=_("messages/min"),
        value_text=charts.count_text,
        label_indexes=ticks,
    )
    table = charts.DataTable(
        caption=_(
            "Messages received per minute and message type: only the minutes with messages, newest first "
            "(JST; the first row is the current minute so far)"
        ),
        columns=[_("Minute (JST)"), *(message_type_label(t) for t in rates.types), _("Total")],
        rows=[(_hm(r.minute), (*(f"{n:,}" for n in r.counts), f"{r.total:,}")) for r in rates.rows if r.total]
        + [(_("%(minutes)d minutes") % window, (*(f"{n:,}" for n in rates.totals), f"{rates.total:,}"))],
    )
    return charts.chart_figure(svg=svg, chart_id="messages-chart", title=title, table=table, note=note)


class OperationsView(StaffView):
    """The alerts, the line, messages per minute by type, and every tenant's waiting and applied notices.

    The alerts panel comes first: ``payeasy.alerts.active_alerts``, the same call that /metrics exports as
    ``payeasy_alerts``. Reloads itself every ten seconds (static/js/auto-refresh.js) unless ``?refresh=0``.
    """

    def get(self, request: TenantRequest) -> HttpResponse:
        now = timezone.now()
        alerts = active_alerts(now)
        refresh = REFRESH_SECONDS if request.GET.get("refresh") != "0" else None
        rates = selectors.message_rates(minutes=CHART_MINUTES, now=now)
        activity = selectors.line_activity(minutes=CHART_MINUTES, now=now)
        return render(
            request,
            "payeasy/staff/operations.html",
            {
                "alerts": alerts,
                "critical_count": sum(1 for a in alerts if a.severity == CRITICAL),
                "overview": selectors.line_overview(),
                "line_nodes": line_nodes(now),
                "rates": rates,
                "activity": activity,
                "charts": activity_charts(activity, rates, refresh=refresh),
                "notices": selectors.notice_status_by_biller(now=now),
                "waiting": list(selectors.waiting_notices(limit=10)),
                "provisional": provisional_today(),
                "now": now,
                "stale_seconds": STALE_SECONDS,
                "refresh": refresh,
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
