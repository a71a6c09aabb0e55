"""Refunds pages of the tenant console: the refunds by transfer date and the 全銀 総合振込 files made of them
(download; make the file of a date), and the biller's refund account (委託者 settings).

Every view inherits ``ReconciliationConsoleView`` (membership, read-only operators, the tenant filter);
every write goes through ``reconciliation.services.transfers``.
"""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.errors import Conflict, ValidationFailed
from billing.forms import form_errors_add
from billing.tenancy import TenantRequest
from payeasy.banks import bank_all, bank_get, branch_get
from reconciliation.models import Refund, RefundAccount, TransferFile
from reconciliation.models.refunds import AccountType
from reconciliation.services.transfers import (
    REQUESTER_ACCOUNT_TYPES,
    refund_account_save,
    transfer_file_create,
)
from reconciliation.views.base import ReconciliationConsoleView

REFUND_PAGE_SIZE = 50
FILES_SHOWN = 30


class TransferFileForm(forms.Form):
    transfer_date = forms.DateField(
        label=gettext_lazy("Transfer date"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=gettext_lazy("The refunds of this date not yet in a file go into one new file."),
    )


class RefundAccountForm(forms.Form):
    requester_code = forms.CharField(
        label=gettext_lazy("Requester code (委託者コード)"),
        max_length=10,
        help_text=gettext_lazy("10 digits, as the bank's 総合振込 contract gives it."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    requester_name_kana = forms.CharField(
        label=gettext_lazy("Requester name (kana)"),
        max_length=80,
        help_text=gettext_lazy("As registered with the bank; written in half-width kana (at most 40)."),
    )
    bank_code = forms.CharField(
        label=gettext_lazy("Bank code"),
        max_length=4,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "list": "bank-directory"}),
    )
    branch_code = forms.CharField(
        label=gettext_lazy("Branch code"),
        max_length=3,
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
    )
    account_type = forms.ChoiceField(
        label=gettext_lazy("Account type"),
        choices=[(t.value, t.label) for t in REQUESTER_ACCOUNT_TYPES],
    )
    account_number = forms.CharField(
        label=gettext_lazy("Account number"),
        max_length=7,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )


def _finding_url(finding_id: int) -> str | None:
    """The finding's page, when the console has one."""
    try:
        return reverse("console:finding_detail", kwargs={"pk": finding_id})
    except NoReverseMatch:
        return None


def _bank_label(bank_code: str, branch_code: str) -> tuple[str, str]:
    bank = bank_get(bank_code)
    branch = branch_get(bank_code, branch_code)
    return (
        f"{bank_code} {bank.name}" if bank else bank_code,
        f"{branch_code} {branch.name}" if branch else branch_code,
    )


class RefundConsoleView(ReconciliationConsoleView):
    model = Refund


class RefundListView(RefundConsoleView):
    """Refunds by transfer date, the files made, and (administrators) the form that makes one."""

    template_name = "reconciliation/refunds/refund_list.html"

    def scoped_queryset(self, qs: Any) -> Any:
        return qs.order_by("-transfer_date", "id")

    def get(self, request: TenantRequest, form: TransferFileForm | None = None) -> HttpResponse:
        page = Paginator(self.get_queryset(), REFUND_PAGE_SIZE).get_page(request.GET.get("page"))
        refunds = list(page.object_list)
        files = list(TransferFile.objects.for_biller(self.biller).defer("content")[:FILES_SHOWN])
        shown = {f.pk for f in files}
        missing = {
            r.transfer_file_id for r in refunds if r.transfer_file_id and r.transfer_file_id not in shown
        }
        by_id = {f.pk: f for f in files}
        if missing:
            by_id.update(
                {
                    f.pk: f
                    for f in TransferFile.objects.for_biller(self.biller)
                    .filter(pk__in=missing)
                    .defer("content")
                }
            )
        finding_urls: dict[int, str | None] = {}
        for r in refunds:
            r.bank_label, r.branch_label = _bank_label(r.bank_code, r.branch_code)  # type: ignore[attr-defined]
            if r.finding_id not in finding_urls:
                finding_urls[r.finding_id] = _finding_url(r.finding_id)
            r.finding_url = finding_urls[r.finding_id]  # type: ignore[attr-defined]
            r.file = by_id.get(r.transfer_file_id) if r.transfer_file_id else None  # type: ignore[attr-defined]
        waiting = sorted(
            set(
                Refund.objects.for_biller(self.biller)
                .filter(transfer_file__isnull=True)
                .values_list("transfer_date", flat=True)
            )
        )
        if form is None:
            form = TransferFileForm(initial={"transfer_date": waiting[0] if waiting else None})
        context = self.get_context_data(
            page=page,
            refunds=refunds,
            files=files,
            waiting_dates=waiting,
            form=form,
            has_account=RefundAccount.objects.for_biller(self.biller).exists(),
        )
        return render(request, self.template_name, context)

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = TransferFileForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form)
        transfer_date: datetime.date = form.cleaned_data["transfer_date"]
        try:
            made = transfer_file_create(actor=request.user, biller=self.biller, transfer_date=transfer_date)
        except Conflict as exc:
            form.add_error(None, exc.message)
            return self.get(request, form=form)
        messages.success(
            request,
            _("Transfer file %(name)s made: %(count)d refunds, ¥%(total)s.")
            % {"name": made.filename, "count": made.count, "total": f"{made.total:,}"},
        )
        return redirect("console:refund_list")


class TransferFileDownloadView(ReconciliationConsoleView):
    """The file's bytes as made (cp932, 120-byte records), to upload to the bank."""

    model = TransferFile

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        transfer_file = self.get_object()
        response = HttpResponse(bytes(transfer_file.content), content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{transfer_file.filename}"'
        response["Content-Length"] = str(len(transfer_file.content))
        response["Cache-Control"] = "no-store"
        return response


class RefundAccountView(ReconciliationConsoleView):
    """The biller's own account refunds are paid from, and its 総合振込 contract (委託者)."""

    model = RefundAccount
    template_name = "reconciliation/refunds/refund_account.html"

    def get(self, request: TenantRequest, form: RefundAccountForm | None = None) -> HttpResponse:
        account = self.get_queryset().first()
        if form is None:
            initial = (
                {
                    "requester_code": account.requester_code,
                    "requester_name_kana": account.requester_name_kana,
                    "bank_code": account.bank_code,
                    "branch_code": account.branch_code,
                    "account_type": account.account_type,
                    "account_number": account.account_number,
                }
                if account
                else {"account_type": AccountType.ORDINARY}
            )
            form = RefundAccountForm(initial=initial)
        bank = branch = None
        if account:
            bank_label, branch_label = _bank_label(account.bank_code, account.branch_code)
            bank, branch = bank_label, branch_label
        context = self.get_context_data(
            form=form, account=account, bank_label=bank, branch_label=branch, banks=bank_all()
        )
        return render(request, self.template_name, context)

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = RefundAccountForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form)
        try:
            refund_account_save(actor=request.user, biller=self.biller, **form.cleaned_data)
        except ValidationFailed as exc:
            form_errors_add(form, exc, named=True)
            return self.get(request, form=form)
        except Conflict as exc:
            form.add_error(None, exc.message)
            return self.get(request, form=form)
        messages.success(request, _("Refund account saved."))
        return redirect("console:refund_account")


urlpatterns: list[URLPattern] = [
    path("refunds/", RefundListView.as_view(), name="refund_list"),
    path("refunds/files/<int:pk>/", TransferFileDownloadView.as_view(), name="transfer_file_download"),
    path("refunds/account/", RefundAccountView.as_view(), name="refund_account"),
]
