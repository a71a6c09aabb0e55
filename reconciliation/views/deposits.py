"""Deposit pages of the tenant console (see reconciliation.urls): funds expected per value date and bank
beside the deposits of the imported statements, the statements and their upload, one statement's
deposits, and each bank's lag."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _

from billing.errors import Conflict, NotFound, ValidationFailed
from billing.forms import form_errors_add
from billing.pagination import BadCursor, keyset_page, page_query
from billing.tenancy import TenantRequest
from payeasy.banks import bank_all, bank_get
from reconciliation.forms_deposits import BankFilterForm, LagForm, StatementUploadForm
from reconciliation.models import Deposit, DepositLag, DepositStatement
from reconciliation.selectors import deposits as selectors
from reconciliation.services import deposits as services
from reconciliation.views.base import ReconciliationConsoleView

STATEMENTS_PER_PAGE = 20
DEPOSITS_PER_PAGE = 200


def bank_label(code: str) -> str:
    bank = bank_get(code) if code else None
    return bank.label if bank is not None else code


class DepositListView(ReconciliationConsoleView):
    """Funds expected beside deposits, the statements imported, and the upload form."""

    model = DepositStatement
    template_name = "reconciliation/deposits/deposit_list.html"

    def scoped_queryset(self, qs: Any) -> Any:
        return qs.select_related("imported_by").order_by(*selectors.STATEMENT_ORDERING)

    def get(self, request: TenantRequest) -> HttpResponse:
        return self.page(request)

    def page(
        self,
        request: TenantRequest,
        *,
        form: StatementUploadForm | None = None,
        error: services.StatementInvalid | None = None,
        status: int = 200,
    ) -> HttpResponse:
        filters = BankFilterForm(request.GET)
        bank = filters.cleaned_data["bank"] if filters.is_valid() else ""
        after = selectors.funds_cursor_parse(request.GET.get("after", ""))
        funds = selectors.funds_by_day(
            biller=self.biller, after=after, bank_code=bank, size=selectors.DAYS_PER_PAGE
        )
        try:
            statements = keyset_page(
                self.get_queryset(),
                sort="imported",
                ordering=selectors.STATEMENT_ORDERING,
                after=request.GET.get("statements_after", ""),
                before="",
                size=STATEMENTS_PER_PAGE,
            )
        except BadCursor:
            statements = keyset_page(
                self.get_queryset(),
                sort="imported",
                ordering=selectors.STATEMENT_ORDERING,
                after="",
                before="",
                size=STATEMENTS_PER_PAGE,
            )
        params = request.GET.copy()
        params.pop("statements_after", None)
        context = self.get_context_data(
            filters=filters,
            funds=[(row, bank_label(row.bank_code)) for row in funds.rows],
            funds_next=f"?{page_query(params, after=funds.next_cursor)}" if funds.next_cursor else "",
            funds_is_first=after is None,
            funds_first=f"?{page_query(params)}" if after is not None else "",
            statements=statements,
            statements_next=(
                f"?{page_query(request.GET.copy(), statements_after=statements.next_cursor)}"
                if statements.next_cursor
                else ""
            ),
            form=form or StatementUploadForm(),
            problems=error.problems if error is not None else [],
            problem_count=error.error_count if error is not None else 0,
            banks=bank_all(),
        )
        return render(request, self.template_name, context, status=status)


class DepositImportView(DepositListView):
    """The upload: the statement is imported whole, or the page comes back listing every problem."""

    def get(self, request: TenantRequest) -> HttpResponseBase:  # type: ignore[override]
        return redirect("console:deposit_list")

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = StatementUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.page(request, form=form, status=400)
        upload = form.cleaned_data["file"]
        data = upload.read(services.MAX_BYTES + 1)
        try:
            statement = services.deposit_statement_import(
                actor=request.user, biller=self.biller, name=upload.name or "", data=data
            )
        except services.StatementInvalid as exc:
            form.add_error("file", exc.errors["file"])
            return self.page(request, form=form, error=exc, status=400)
        except Conflict as exc:
            form.add_error("file", exc.message)
            return self.page(request, form=form, status=409)
        messages.success(
            request,
            _("Imported %(name)s: %(rows)d deposits, %(total)s yen, %(first)s to %(last)s.")
            % {
                "name": statement.name,
                "rows": statement.row_count,
                "total": f"{statement.total:,}",
                "first": statement.first_date.isoformat(),
                "last": statement.last_date.isoformat(),
            },
        )
        return redirect("console:deposit_list")


class StatementDetailView(ReconciliationConsoleView):
    """One statement as imported and its deposits, in the file's order."""

    model = DepositStatement
    template_name = "reconciliation/deposits/statement_detail.html"

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        statement: DepositStatement = self.get_object(pk)
        rows = Deposit.objects.for_biller(self.biller).filter(statement=statement).order_by("row", "id")
        try:
            page = keyset_page(
                rows,
                sort="row",
                ordering=("row", "id"),
                after=request.GET.get("after", ""),
                before="",
                size=DEPOSITS_PER_PAGE,
            )
        except BadCursor:
            page = keyset_page(
                rows, sort="row", ordering=("row", "id"), after="", before="", size=DEPOSITS_PER_PAGE
            )
        deposits = [(d, bank_label(d.bank_code)) for d in page.rows]
        context = self.get_context_data(
            statement=statement,
            page=page,
            deposits=deposits,
            next_url=f"?{page_query(request.GET, after=page.next_cursor)}" if page.next_cursor else "",
        )
        return render(request, self.template_name, context)


class DepositLagsView(ReconciliationConsoleView):
    """Each bank's lag and the default; set one, or remove a bank's own (it then follows the default)."""

    model = DepositLag
    template_name = "reconciliation/deposits/lags.html"

    def get(self, request: TenantRequest, form: LagForm | None = None, status: int = 200) -> HttpResponse:
        lags = list(self.get_queryset().order_by("bank_code"))
        default = next((lag.business_days for lag in lags if lag.bank_code == ""), DepositLag.DEFAULT_DAYS)
        context = self.get_context_data(
            lags=[(lag, bank_label(lag.bank_code)) for lag in lags],
            default_days=default,
            default_is_set=any(lag.bank_code == "" for lag in lags),
            built_in_days=DepositLag.DEFAULT_DAYS,
            form=form or LagForm(),
            banks=bank_all(),
        )
        return render(request, self.template_name, context, status=status)

    def post(self, request: TenantRequest) -> HttpResponseBase:
        if "delete" in request.POST:
            lag: DepositLag = self.get_object(request.POST["delete"])
            try:
                services.deposit_lag_delete(actor=request.user, biller=self.biller, bank_code=lag.bank_code)
            except NotFound as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request, _("Removed the lag of %(bank)s.") % {"bank": self.lag_name(lag.bank_code)}
                )
            return redirect("console:deposit_lags")
        form = LagForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form, status=400)
        try:
            lag = services.deposit_lag_save(
                actor=request.user,
                biller=self.biller,
                bank_code=form.cleaned_data["bank_code"],
                business_days=form.cleaned_data["business_days"],
            )
        except ValidationFailed as exc:
            form_errors_add(form, exc, named=True)
            return self.get(request, form=form, status=400)
        except Conflict as exc:
            form.add_error(None, exc.message)
            return self.get(request, form=form, status=409)
        messages.success(
            request,
            _("%(bank)s: funds expected %(days)d business days after the processing date.")
            % {"bank": self.lag_name(lag.bank_code), "days": lag.business_days},
        )
        return redirect("console:deposit_lags")

    @staticmethod
    def lag_name(bank_code: str) -> str:
        return bank_label(bank_code) if bank_code else _("the default")


urlpatterns: list[URLPattern] = [
    path("deposits/", DepositListView.as_view(), name="deposit_list"),
    path("deposits/import/", DepositImportView.as_view(), name="deposit_import"),
    path("deposits/statements/<int:pk>/", StatementDetailView.as_view(), name="deposit_statement_detail"),
    path("deposits/lags/", DepositLagsView.as_view(), name="deposit_lags"),
]
