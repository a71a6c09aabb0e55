"""The console's payments pages (see reconciliation.urls): every ledger entry of the tenant as the
network reported it, filtered and in keyset pages, and one payment with its message history."""

from __future__ import annotations

import html
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.errors import ValidationFailed
from billing.forms import form_errors_add
from billing.pagination import BadCursor, KeysetPage, keyset_page, page_links
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


def column_labels() -> dict[str, str]:
    """The payments table's column names in the request's language, once per request: its headers and
    every cell's ``data-label`` (the cell's label in a row's card at phone width, static/css/lists.css)."""
    return {
        "paid_at": _("Paid at (JST)"),
        "key_date": _("Processing date"),
        "amount": _("Amount"),
        "outcome": _("Outcome"),
        "reason": _("Reason"),
        "bank": _("Bank"),
        "branch": _("Branch"),
        "channel": _("Channel"),
        "transaction_key": _("Transaction key"),
        "confirmation": _("Report (速報/確報)"),
        "invoice": _("Invoice"),
        "customer_number": _("Customer number"),
    }


def payment_rows(entries: list[LedgerEntry], labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """What each line of the page shows of an entry (``selectors.payment_entries``'s annotations), as
    ready text: a page of 50 rows costs one pass here instead of some 1,500 template lookups and 100 URL
    reversals (the links are the reversed pattern with the id put in). ``labels``: ``column_labels()``."""
    detail = reverse("console:payment_detail", args=[0])[:-2]  # …/payments/0/ → …/payments/
    invoice = reverse("console:invoice_detail", args=[0])[:-2]
    # the labels in the request's language, once (lazy strings would translate again for every row)
    outcomes = {k: str(v) for k, v in LedgerEntry.Outcome.choices}
    reasons = {k: str(v) for k, v in LedgerEntry.Reason.choices}
    channels = {k: str(v) for k, v in Channel.choices}
    teller = Notice.Source.TELLER_FILE
    teller_label = str(_("teller file"))
    # each cell's attributes, escaped once: its role (the card layout changes the cells' display, which
    # may drop their table semantics) and its column's name
    cells = {
        name: f' role="cell" data-label="{html.escape(label)}"'
        for name, label in (labels or column_labels()).items()
    }
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
        rows[-1]["html"] = _row_html(rows[-1], teller_label, cells)
    return rows


def _row_html(row: dict[str, Any], teller_label: str, cells: dict[str, str]) -> SafeString:
    """One table row, escaped once here: the page's 50 rows × 12 cells through the template engine (or
    ``format_html``'s per-argument escaping) cost more than the rest of the request
    (tests/bench/test_reconcile.py). ``cells``: each column's cell attributes, already escaped."""
    entry, notice = row["entry"], row["notice"]
    e = html.escape
    c = cells
    channel = e(row["channel"])
    if row["teller_file"]:
        channel += f' <span class="muted">({e(teller_label)})</span>'
    invoice = (
        f'<a href="{e(row["invoice_url"])}">{e(entry.invoice_number or "")}</a>'
        if row["invoice_url"]
        else "—"
    )
    return mark_safe(  # noqa: S308 - every value above and below is escaped
        f'<tr role="row"><td{c["paid_at"]} class="cell-primary"><a href="{e(row["url"])}">'
        f'<time datetime="{e(row["paid_at_iso"])}">{e(row["paid_at"])}</time></a></td>'
        f'<td{c["key_date"]}><time datetime="{e(row["key_date"])}">{e(row["key_date"])}</time></td>'
        f'<td{c["amount"]} class="num">{e(yen(entry.amount))}</td><td{c["outcome"]}>{e(row["outcome"])}</td>'
        f"<td{c['reason']}>{e(row['reason'] or '—')}</td><td{c['bank']}>{e(row['bank'])}</td>"
        f"<td{c['branch']}>{e(row['branch'])}</td>"
        f"<td{c['channel']}>{channel}</td>"
        f"<td{c['transaction_key']}><code>{e(notice.transaction_key)}</code></td>"
        f'<td{c["confirmation"]}><span class="confirmation-{e(entry.confirmation)}">'  # type: ignore[attr-defined]
        f"{e(row['confirmation'])}</span></td>"
        f"<td{c['invoice']}>{invoice}</td><td{c['customer_number']}>{e(notice.customer_number)}</td></tr>"
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
        labels = column_labels()
        context = self.get_context_data(
            form=form,
            page=page,
            labels=labels,
            rows=payment_rows(list(page.rows), labels) if page else [],
            **page_links(url, params, page),
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
