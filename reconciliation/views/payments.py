"""The console's payments pages (see reconciliation.urls): every ledger entry of the tenant as the
network reported it, filtered and in keyset pages, and one payment with its message history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.errors import ValidationFailed
from billing.forms import form_errors_add
from billing.pagination import BadCursor, KeysetPage, keyset_page, page_query
from billing.templatetags.humanize_yen import yen
from billing.tenancy import TenantRequest
from payeasy.models import Channel, LedgerEntry, Notice
from reconciliation.selectors import payments as selectors
from reconciliation.views.base import ReconciliationConsoleView

PAGE_SIZE = 50
SORT = "-id"
ORDERING = ("-id",)


def _date_widget() -> forms.TextInput:
    return forms.TextInput(attrs={"type": "date"})


def _yen_widget() -> forms.TextInput:
    return forms.TextInput(attrs={"inputmode": "numeric", "size": 10})


class PaymentFilterForm(forms.Form):
    """The page's GET filters; every value is checked by ``selectors.PaymentFilters.parse`` alone."""

    use_required_attribute = False

    paid_from = forms.CharField(label=gettext_lazy("Paid from"), required=False, widget=_date_widget())
    paid_to = forms.CharField(label=gettext_lazy("Paid to"), required=False, widget=_date_widget())
    processing_date = forms.CharField(
        label=gettext_lazy("Processing date"), required=False, widget=_date_widget()
    )
    channel = forms.CharField(
        label=gettext_lazy("Channel"),
        required=False,
        widget=forms.Select(choices=[("", gettext_lazy("All")), *Channel.choices]),
    )
    bank = forms.CharField(
        label=gettext_lazy("Bank code"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 4, "maxlength": 4}),
        help_text=gettext_lazy("4 digits, e.g. 0001."),
    )
    outcome = forms.CharField(
        label=gettext_lazy("Outcome"),
        required=False,
        widget=forms.Select(choices=[("", gettext_lazy("All")), *LedgerEntry.Outcome.choices]),
    )
    amount_min = forms.CharField(
        label=gettext_lazy("Amount from (yen)"), required=False, widget=_yen_widget()
    )
    amount_max = forms.CharField(label=gettext_lazy("Amount to (yen)"), required=False, widget=_yen_widget())


def payment_rows(entries: list[LedgerEntry]) -> list[dict[str, Any]]:
    """What each line of the page shows of an entry (``selectors.payment_entries``'s annotations), as
    ready text: a page of 50 rows costs one pass here instead of some 1,500 template lookups and 100 URL
    reversals (the links are the reversed pattern with the id put in)."""
    detail = reverse("console:payment_detail", args=[0])[:-2]  # …/payments/0/ → …/payments/
    invoice = reverse("console:invoice_detail", args=[0])[:-2]
    outcomes, reasons = dict(LedgerEntry.Outcome.choices), dict(LedgerEntry.Reason.choices)
    channels = dict(Channel.choices)
    teller = Notice.Source.TELLER_FILE
    teller_label = _("teller file")
    rows: list[dict[str, Any]] = []
    for entry in entries:
        notice = entry.notice
        paid_at = timezone.localtime(notice.paid_at)
        rows.append(
            {
                "entry": entry,
                "notice": notice,
                "url": f"{detail}{entry.pk}/",
                "paid_at_iso": paid_at.isoformat(),
                "paid_at": paid_at.strftime("%Y-%m-%d %H:%M:%S"),
                "key_date": notice.key_date.isoformat(),
                "outcome": outcomes.get(entry.outcome, entry.outcome),
                "reason": reasons.get(entry.reason, entry.reason) if entry.reason else "",
                "channel": channels.get(notice.channel, notice.channel),
                "teller_file": notice.source == teller,
                "bank": selectors.bank_label(notice.bank_code),
                "branch": selectors.branch_label(notice.bank_code, notice.branch_code),
                "confirmation": selectors.confirmation_label(entry.confirmation),  # type: ignore[attr-defined]
                "invoice_url": f"{invoice}{entry.invoice_id}/" if entry.invoice_id else "",
            }
        )
        rows[-1]["html"] = _row_html(rows[-1], teller_label)
    return rows


_ROW = (
    '<tr><td><a href="{url}"><time datetime="{paid_at_iso}">{paid_at}</time></a></td>'
    '<td><time datetime="{key_date}">{key_date}</time></td><td class="num">{amount}</td>'
    "<td>{outcome}</td><td>{reason}</td><td>{bank}</td><td>{branch}</td><td>{channel}</td>"
    '<td><code>{key}</code></td>'
    '<td><span class="confirmation-{confirmation_value}">{confirmation}</span></td>'
    "<td>{invoice}</td><td>{customer_number}</td></tr>"
)


def _row_html(row: dict[str, Any], teller_label: str) -> str:
    """One table row, escaped once here: the page's 50 rows × 12 cells through the template engine cost
    more than the rest of the request (tests/bench/test_reconcile.py)."""
    entry, notice = row["entry"], row["notice"]
    channel = (
        format_html('{} <span class="muted">({})</span>', row["channel"], teller_label)
        if row["teller_file"]
        else row["channel"]
    )
    invoice = (
        format_html('<a href="{}">{}</a>', row["invoice_url"], entry.invoice_number)
        if row["invoice_url"]
        else "—"
    )
    return format_html(
        _ROW,
        url=row["url"],
        paid_at_iso=row["paid_at_iso"],
        paid_at=row["paid_at"],
        key_date=row["key_date"],
        amount=yen(entry.amount),
        outcome=row["outcome"],
        reason=row["reason"] or "—",
        bank=row["bank"],
        branch=row["branch"],
        channel=channel,
        key=notice.transaction_key,
        confirmation_value=entry.confirmation,  # type: ignore[attr-defined]
        confirmation=row["confirmation"],
        invoice=invoice,
        customer_number=notice.customer_number,
    )


class PaymentListView(ReconciliationConsoleView):
    template_name = "reconciliation/payments/payment_list.html"
    model = LedgerEntry
    page_size = PAGE_SIZE

    def get(self, request: TenantRequest) -> HttpResponse:
        params = request.GET
        form = PaymentFilterForm(params or None)
        page: KeysetPage | None = None
        status = 200
        try:
            filters = selectors.PaymentFilters.parse(params)
        except ValidationFailed as exc:
            form.is_valid()
            form_errors_add(form, exc, named=True)
            status = 400
        else:
            try:
                page = keyset_page(
                    selectors.payment_list(biller=self.biller, filters=filters),
                    sort=SORT,
                    ordering=ORDERING,
                    after=params.get("after", ""),
                    before=params.get("before", ""),
                    size=self.page_size,
                )
            except BadCursor:
                form.is_valid()
                form.add_error(None, _("The page link is out of date. Start again from the first page."))
                status = 400
        url = reverse("console:payment_list")
        context = self.get_context_data(
            form=form,
            page=page,
            rows=payment_rows(list(page.rows)) if page else [],
            first_url=f"{url}?{page_query(params)}",
            next_url=f"{url}?{page_query(params, after=page.next_cursor)}"
            if page and page.next_cursor
            else "",
            previous_url=(
                f"{url}?{page_query(params, before=page.previous_cursor)}"
                if page and page.previous_cursor
                else ""
            ),
        )
        return render(request, self.template_name, context, status=status)


def finding_url(pk: int) -> str:
    """The finding's page, when the findings pages exist (another part of the console)."""
    try:
        return reverse("console:finding_detail", args=[pk])
    except NoReverseMatch:
        return ""


class PaymentDetailView(ReconciliationConsoleView):
    template_name = "reconciliation/payments/payment_detail.html"
    model = LedgerEntry

    def scoped_queryset(self, qs: QuerySet) -> QuerySet:
        return selectors.payment_entries(qs)

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        entry: LedgerEntry = self.get_object(pk)
        history = selectors.payment_history(biller=self.biller, entry=entry)
        context = self.get_context_data(
            row=payment_rows([entry])[0],
            entry=entry,
            notice=entry.notice,
            related=payment_rows(list(history.related)),
            messages_of_key=history.messages,
            teller_records=history.teller_records,
            findings=[(f, finding_url(f.pk)) for f in history.findings],
        )
        return render(request, self.template_name, context)


urlpatterns: list[URLPattern] = [
    path("payments/", PaymentListView.as_view(), name="payment_list"),
    path("payments/<int:pk>/", PaymentDetailView.as_view(), name="payment_detail"),
]
