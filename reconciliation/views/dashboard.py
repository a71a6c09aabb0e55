"""The console's home: the biller's facts and its money at a glance — open, overdue and paid-today
invoices, the payments of the last 30 days as a chart (and a table), open findings by age, the last
reconciliation run. Every figure comes from ``reconciliation.selectors.dashboard`` (aggregates, a fixed
number of queries), scoped to the request's biller."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing import charts
from billing.tenancy import TenantRequest
from reconciliation.selectors import dashboard as selectors
from reconciliation.views.base import ReconciliationConsoleView


def finding_list_url(bucket: selectors.AgeBucket | None = None) -> str | None:
    """The findings queue (``console:finding_list``) filtered to the open findings of ``bucket`` (its
    ``age`` filter takes the same keys), or to all open ones; None while that page does not exist."""
    try:
        base = reverse("console:finding_list")
    except NoReverseMatch:
        return None
    query = {"state": "open", **({"age": bucket.key} if bucket is not None else {})}
    return f"{base}?{urlencode(query)}"


def age_label(bucket: selectors.AgeBucket) -> str:
    if bucket.last_day is None:
        return _("Over %(days)d days") % {"days": bucket.first_day - 1}
    return _("%(first)d–%(last)d days") % {"first": bucket.first_day, "last": bucket.last_day}


def payments_chart(data: selectors.Dashboard) -> str:
    days = data.payments
    bars = [
        charts.Bar(
            label=f"{d.day.month}/{d.day.day}",
            heading=formats.date_format(d.day, "Y-m-d (D)"),
            value=d.amount,
            extra=(
                f"{d.count:,}",
                f"{d.reversals:,}" if d.reversals else "—",
                f"{d.reversed_amount:,}円" if d.reversals else "—",
            ),
        )
        for d in days
    ]
    total = data.payments_total
    description = ngettext(
        "Yen received per day from %(first)s to %(last)s (JST): %(count)s payment, %(amount)s in all.",
        "Yen received per day from %(first)s to %(last)s (JST): %(count)s payments, %(amount)s in all.",
        total.count,
    ) % {
        "first": days[0].day.isoformat(),
        "last": days[-1].day.isoformat(),
        "count": f"{total.count:,}",
        "amount": f"{total.amount:,}円",
    }
    return charts.bar_chart_figure(
        bars=bars,
        chart_id="payments-chart",
        title=_("Payments of the last %(days)d days") % {"days": len(days)},
        description=description,
        columns=[_("Day (JST)"), _("Yen received"), _("Payments"), _("Reversals"), _("Yen reversed")],
        empty_statement=_("No payment was received from %(first)s to %(last)s (JST).")
        % {"first": days[0].day.isoformat(), "last": days[-1].day.isoformat()},
    )


class DashboardView(ReconciliationConsoleView):
    template_name = "reconciliation/dashboard/home.html"
    nav_section = "home"

    def get(self, request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        data = selectors.dashboard_read(biller=self.biller)
        ages = [(bucket, age_label(bucket), finding_list_url(bucket)) for bucket in data.ages]
        context = self.get_context_data(
            dashboard=data,
            counts=data.counts,
            chart=payments_chart(data),
            ages=ages,
            all_open_url=finding_list_url(),
        )
        return render(request, self.template_name, context)


urlpatterns: list[URLPattern] = [
    path("", DashboardView.as_view(), name="home"),
]
