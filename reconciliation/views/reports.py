"""The daily report of the tenant console: one processing date on screen, as CSV and as PDF, and running
the reconciliation of that date now (see reconciliation.urls).

Screen, CSV and PDF read the same ``selectors.reports.daily_report``; the CSV and the PDF are Japanese
documents (read with Japanese active, whatever the console's language).
"""

from __future__ import annotations

import datetime
import io
import re

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, re_path, reverse
from django.utils import translation
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _

from billing import csvsafe
from billing.errors import ProductError
from billing.tenancy import TenantRequest
from reconciliation.models import Run
from reconciliation.selectors.reports import (
    daily_report,
    jst_today,
    latest_processing_date,
    report_heading,
    report_tables,
)
from reconciliation.services.reconcile import reconcile
from reconciliation.views.base import ReconciliationConsoleView

DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DAY = r"(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})"
ENCODINGS = {"utf-8": "utf-8-sig", "cp932": "cp932"}
# processing dates a report can be asked for (the previous and next day links stay real dates)
FIRST_DAY, LAST_DAY = datetime.date(2000, 1, 1), datetime.date(2999, 12, 31)


def parse_day(text: str) -> datetime.date | None:
    """``YYYY-MM-DD`` as a date; None for anything else (another format, a day that does not exist, a
    year outside 2000–2999)."""
    if not DATE_RE.fullmatch(text):
        return None
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def day_or_404(text: str) -> datetime.date:
    day = parse_day(text)
    if day is None:
        raise Http404
    return day


class DailyReportView(ReconciliationConsoleView):
    """``?date=YYYY-MM-DD``; without it the latest processing date with payments (else today, JST)."""

    template_name = "reconciliation/reports/daily.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        raw = request.GET.get("date", "").strip()
        if raw:
            day = parse_day(raw)
            if day is None:
                context = self.get_context_data(report=None, date_value=raw, date_error=True)
                return render(request, self.template_name, context, status=400)
        else:
            day = latest_processing_date(biller=self.biller) or jst_today()
        report = daily_report(biller=self.biller, processing_date=day)
        context = self.get_context_data(
            report=report,
            day=day,
            date_value=day.isoformat(),
            previous_day=day - datetime.timedelta(days=1),
            next_day=day + datetime.timedelta(days=1),
            can_run=self.membership.can_write,
        )
        return render(request, self.template_name, context)


class DailyReportCsvView(ReconciliationConsoleView):
    """Sectioned rows with Japanese headers; ``?encoding=utf-8`` (with BOM, the default) or ``cp932``."""

    def get(self, request: TenantRequest, day: str) -> HttpResponse:
        date = day_or_404(day)
        encoding = request.GET.get("encoding", "utf-8")
        if encoding not in ENCODINGS:
            return HttpResponse(
                _("Unknown encoding: choose utf-8 or cp932."), status=400, content_type="text/plain"
            )
        with translation.override("ja"):
            report = daily_report(biller=self.biller, processing_date=date)
            out = io.StringIO()
            writer = csvsafe.writer(out, lineterminator="\r\n")
            writer.writerow(["日次照合レポート"])
            writer.writerows([list(pair) for pair in report_heading(report)])
            for table in report_tables(report):
                writer.writerow([])
                writer.writerow([f"■{table.title}"])
                writer.writerow(table.header)
                writer.writerows(table.rows)
                if table.note:
                    writer.writerow([table.note])
        body = out.getvalue().encode(ENCODINGS[encoding], errors="replace")
        charset = "shift_jis" if encoding == "cp932" else "utf-8"
        response = HttpResponse(body, content_type=f"text/csv; charset={charset}")
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=f"daily-report-{self.biller.slug}-{date:%Y%m%d}.csv"
        )
        return response


class DailyReportPdfView(ReconciliationConsoleView):
    def get(self, request: TenantRequest, day: str) -> HttpResponse:
        date = day_or_404(day)
        from reconciliation.pdf import daily_report_pdf, pdf_filename  # only PDF pages load reportlab

        with translation.override("ja"):
            report = daily_report(biller=self.biller, processing_date=date)
            pdf = daily_report_pdf(report)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=pdf_filename(report)
        )
        return response


class ReportRunView(ReconciliationConsoleView):
    """Run the reconciliation of the date now (write roles only: the base refuses operators' POSTs)."""

    def post(self, request: TenantRequest, day: str) -> HttpResponseBase:
        date = day_or_404(day)
        target = reverse("console:report_daily") + f"?date={date.isoformat()}"
        try:
            run = reconcile(
                biller=self.biller, processing_date=date, trigger=Run.Trigger.USER, actor=request.user
            )
        except ProductError as exc:
            messages.error(request, _("The reconciliation did not run: %(error)s") % {"error": exc.message})
            return redirect(target)
        messages.success(
            request,
            _("Reconciliation of %(day)s done: %(found)s new findings, %(cleared)s cleared.")
            % {"day": date.isoformat(), "found": run.found, "cleared": run.cleared},
        )
        return redirect(target)


urlpatterns: list[URLPattern] = [
    path("reports/", DailyReportView.as_view(), name="report_daily"),
    re_path(rf"^reports/{DAY}\.csv$", DailyReportCsvView.as_view(), name="report_daily_csv"),
    re_path(rf"^reports/{DAY}\.pdf$", DailyReportPdfView.as_view(), name="report_daily_pdf"),
    re_path(rf"^reports/{DAY}/run/$", ReportRunView.as_view(), name="report_run"),
]
