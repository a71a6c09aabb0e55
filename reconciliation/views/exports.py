"""The exports page (payments CSV, invoices CSV, 弥生会計 journal import) and the 電子帳簿保存法 search
of the tenant console (see reconciliation.urls; docs/exports.md).

Thin: the forms parse, ``reconciliation.selectors`` reads, ``reconciliation.exports`` writes. A download
is a ``StreamingHttpResponse`` over one query read in chunks (the tenant middleware produces every
chunk in the tenant's scope), so its memory and its number of queries do not grow with the rows.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

from django import forms
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import Invoice
from billing.pagination import page_query
from billing.tenancy import TenantRequest
from payeasy.models import LedgerEntry
from reconciliation import exports
from reconciliation.selectors import exports as export_rows
from reconciliation.selectors import records
from reconciliation.views.base import ReconciliationConsoleView

DATE_ATTRS = {"type": "date"}
WHAT_PAYMENTS, WHAT_INVOICES, WHAT_YAYOI = "payments", "invoices", "yayoi"
DOWNLOADS = (WHAT_PAYMENTS, WHAT_INVOICES, WHAT_YAYOI)
CONTENT_TYPES = {exports.UTF8: "text/csv; charset=utf-8", exports.CP932: "text/csv; charset=Windows-31J"}


def _date_widget() -> forms.DateInput:
    return forms.DateInput(attrs=DATE_ATTRS, format="%Y-%m-%d")


class ExportForm(forms.Form):
    date_from = forms.DateField(label=_("From"), widget=_date_widget())
    date_to = forms.DateField(label=_("To"), widget=_date_widget())
    outcome = forms.ChoiceField(
        label=_("Payments of outcome"),
        required=False,
        choices=[("", _("All outcomes")), *LedgerEntry.Outcome.choices],
        help_text=_("Payments CSV and 弥生 journal only."),
    )
    encoding = forms.ChoiceField(
        label=_("Character encoding (CSV)"),
        choices=[
            (exports.UTF8, _("UTF-8 with BOM (Excel opens it directly)")),
            (exports.CP932, _("Shift_JIS (cp932) for older software")),
        ],
        initial=exports.UTF8,
        required=False,  # UTF-8 when not given
        widget=forms.RadioSelect,
    )
    what = forms.ChoiceField(choices=[(w, w) for w in DOWNLOADS], required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("The end date is before the start date."))
        return data


class RecordSearchForm(forms.Form):
    """The 電帳法 search: every field optional, any combination."""

    use_required_attribute = False

    date_from = forms.DateField(label=_("Date from (取引年月日)"), required=False, widget=_date_widget())
    date_to = forms.DateField(label=_("Date to"), required=False, widget=_date_widget())
    amount_min = forms.CharField(
        label=_("Amount from (yen)"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 12}),
    )
    amount_max = forms.CharField(
        label=_("Amount to (yen)"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 12}),
    )
    counterparty = forms.CharField(
        label=_("Counterparty (取引先)"),
        required=False,
        max_length=100,
        help_text=_("Part of the name or its kana; hiragana, katakana and half-width kana all match."),
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    kind = forms.ChoiceField(
        label=_("Records"),
        required=False,
        choices=[
            ("", _("Invoices and payments")),
            (records.KIND_INVOICE, _("Invoices issued")),
            (records.KIND_PAYMENT, _("Payments received")),
        ],
    )

    def _yen(self, name: str) -> int | None:
        try:
            return records.parse_yen(self.cleaned_data.get(name, ""))
        except ValueError:
            raise forms.ValidationError(
                _("Enter a whole number of yen (digits, commas allowed)."), code="invalid"
            ) from None

    def clean_amount_min(self) -> int | None:
        return self._yen("amount_min")

    def clean_amount_max(self) -> int | None:
        return self._yen("amount_max")

    def filters(self) -> records.RecordFilters:
        data = self.cleaned_data
        return records.RecordFilters(
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            amount_min=data.get("amount_min"),
            amount_max=data.get("amount_max"),
            counterparty=data.get("counterparty", ""),
            kind=data.get("kind", ""),
        )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not self.errors:
            for field, message in records.range_errors(self.filters()).items():
                self.add_error(field, message)
        return data


def _month_so_far() -> dict[str, datetime.date]:
    today = timezone.localdate()
    return {"date_from": today.replace(day=1), "date_to": today}


class ExportListView(ReconciliationConsoleView):
    template_name = "reconciliation/exports/export_list.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        form = ExportForm(initial={**_month_so_far(), "encoding": exports.UTF8})
        return self.page(request, form)

    def page(self, request: TenantRequest, form: ExportForm, *, status: int = 200) -> HttpResponse:
        context = self.get_context_data(form=form, substitute=exports.SUBSTITUTE)
        return render(request, self.template_name, context, status=status)


class ExportDownloadView(ExportListView):
    """The file of the export page's form (``what``: payments, invoices or yayoi), streamed."""

    def get(self, request: TenantRequest) -> HttpResponse:  # type: ignore[override]
        form = ExportForm(request.GET)
        if not form.is_valid() or form.cleaned_data["what"] not in DOWNLOADS:
            if form.is_bound and form.is_valid():
                form.add_error(None, _("Choose one of the downloads."))
            return self.page(request, form, status=400)
        data = form.cleaned_data
        what, start, end = data["what"], data["date_from"], data["date_to"]
        encoding = exports.CP932 if what == WHAT_YAYOI else data["encoding"] or exports.UTF8
        content: Iterator[bytes]
        if what == WHAT_INVOICES:
            content = exports.invoices_csv(
                export_rows.invoice_export_rows(biller=self.biller, date_from=start, date_to=end),
                encoding=encoding,
            )
        else:
            rows = export_rows.payment_export_rows(
                biller=self.biller, date_from=start, date_to=end, outcome=data["outcome"]
            )
            content = (
                exports.yayoi_journal(rows)
                if what == WHAT_YAYOI
                else exports.payments_csv(rows, encoding=encoding)
            )
        suffix = "" if what == WHAT_YAYOI else f"_{encoding.replace('-', '')}"
        name = {WHAT_PAYMENTS: "payments", WHAT_INVOICES: "invoices", WHAT_YAYOI: "yayoi_shiwake"}[what]
        filename = f"{name}_{start:%Y%m%d}-{end:%Y%m%d}{suffix}.csv"
        response = StreamingHttpResponse(content, content_type=CONTENT_TYPES[encoding])
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response  # type: ignore[return-value]


def record_href(record: records.Record) -> str | None:
    """The console page of a record: the invoice, or the payment (its ledger entry); None while the
    payment page does not exist."""
    name = "console:invoice_detail" if record.kind == records.KIND_INVOICE else "console:payment_detail"
    try:
        return reverse(name, args=[record.id])
    except NoReverseMatch:
        return None


STATE_LABELS: dict[str, Any] = {**dict(LedgerEntry.Outcome.choices), **dict(Invoice.Status.choices)}
KIND_LABELS: dict[str, Any] = {
    records.KIND_INVOICE: _("Invoice issued"),
    records.KIND_PAYMENT: _("Payment received"),
    **dict(Invoice.Kind.choices),
}


class RecordSearchView(ReconciliationConsoleView):
    template_name = "reconciliation/exports/record_search.html"
    page_size = 50

    def get(self, request: TenantRequest) -> HttpResponse:
        form = RecordSearchForm(request.GET)
        page: records.RecordPage | None = None
        status = 200
        if form.is_valid():
            try:
                page = records.record_search(
                    biller=self.biller,
                    filters=form.filters(),
                    after=request.GET.get("after", ""),
                    size=self.page_size,
                )
            except records.BadRecordCursor:
                form.add_error(None, _("The page link is out of date. Start again from the first page."))
                status = 400
        else:
            status = 400
        rows = [
            {
                "record": r,
                "href": record_href(r),
                "kind_label": KIND_LABELS[r.kind],
                "state_label": STATE_LABELS.get(r.state, r.state),
                "detail_label": KIND_LABELS.get(r.detail, "") if r.kind == records.KIND_INVOICE else "",
            }
            for r in (page.rows if page else [])
        ]
        context = self.get_context_data(
            form=form,
            page=page,
            rows=rows,
            next_url=f"?{page_query(request.GET, after=page.next_cursor)}"
            if page and page.next_cursor
            else None,
            first_url=f"?{page_query(request.GET)}",
        )
        return render(request, self.template_name, context, status=status)


urlpatterns: list[URLPattern] = [
    path("exports/", ExportListView.as_view(), name="export_list"),
    path("exports/download/", ExportDownloadView.as_view(), name="export_download"),
    path("records/", RecordSearchView.as_view(), name="record_search"),
]
