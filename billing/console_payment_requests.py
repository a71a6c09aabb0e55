"""The tenant console's payment requests (pay-later numbers for orders) and customer balances.

Every view inherits ``TenantConsoleView`` (membership, read-only operators, the tenant filter);
every write goes through a service.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import selectors, services
from billing.console_forms import (
    BalanceForm,
    BalanceItemFormSet,
    BaseBalanceItemFormSet,
    CancelForm,
    PaymentRequestForm,
    formset_errors_apply,
)
from billing.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from billing.forms import form_errors_add
from billing.models import BalanceAccount, Customer, Invoice
from billing.paylater import link_expires, paylater_link
from billing.tenancy import TenantRequest
from billing.views import TenantConsoleView

PAGE_SIZE = 50
CUSTOMER_SUGGESTIONS = 200
STATUS_FILTERS = ("published", "overdue", "paid", "cancelled")


class PaymentRequestConsoleView(TenantConsoleView):
    model = Invoice
    nav_section = "payment_requests"

    def scoped_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.filter(kind=Invoice.Kind.PAYMENT_REQUEST).select_related("customer")

    def customers(self) -> QuerySet[Customer]:
        return Customer.objects.for_biller(self.biller)


class PaymentRequestListView(PaymentRequestConsoleView):
    template_name = "billing/console/payment_request_list.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        status = request.GET.get("status", "").strip()
        if status not in STATUS_FILTERS:
            status = ""
        q = request.GET.get("q", "").strip()[:100]
        qs = selectors.payment_request_list(biller=self.biller, status=status, q=q)
        page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
        context = self.get_context_data(
            page=page,
            status=status,
            q=q,
            statuses=[
                ("", _("All")),
                ("published", _("Unpaid")),
                ("overdue", _("Overdue")),
                ("paid", _("Paid")),
                ("cancelled", _("Cancelled")),
            ],
        )
        return render(request, self.template_name, context)


class PaymentRequestCreateView(PaymentRequestConsoleView):
    template_name = "billing/console/payment_request_form.html"

    def render_form(
        self, request: TenantRequest, form: PaymentRequestForm, status: int = 200
    ) -> HttpResponse:
        suggestions = (
            self.customers().filter(status=Customer.Status.ACTIVE).order_by("code")[:CUSTOMER_SUGGESTIONS]
        )
        context = self.get_context_data(form=form, customer_suggestions=suggestions)
        return render(request, self.template_name, context, status=status)

    def get(self, request: TenantRequest) -> HttpResponse:
        initial = {"due_date": timezone.localdate() + datetime.timedelta(days=14), "tax_category": "10"}
        return self.render_form(request, PaymentRequestForm(customers=self.customers(), initial=initial))

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = PaymentRequestForm(request.POST, customers=self.customers())
        if not form.is_valid():
            return self.render_form(request, form, status=400)
        try:
            invoice = services.payment_request_create(
                actor=request.user, biller=self.biller, data=form.to_input()
            )
        except ValidationFailed as exc:
            form_errors_add(form, exc, named=True)
            return self.render_form(request, form, status=400)
        except (Conflict, InvalidTransition) as exc:
            form.add_error(None, exc.message)
            return self.render_form(request, form, status=409)
        messages.success(
            request,
            _("Payment request %(number)s was created; the numbers are sent to %(email)s.")
            % {"number": invoice.number, "email": invoice.recipient_email},
        )
        return redirect("console:payment_request_detail", pk=invoice.pk)


class PaymentRequestDetailView(PaymentRequestConsoleView):
    template_name = "billing/console/payment_request_detail.html"

    def get(self, request: TenantRequest, pk: int, cancel_form: CancelForm | None = None) -> HttpResponse:
        invoice: Invoice = self.get_object(pk)
        history = selectors.invoice_history(biller=self.biller, invoice=invoice)
        link = getattr(invoice, "balance_request", None)  # a chosen amount repays a balance
        allocations = (
            selectors.balance_allocations(account=link.account).filter(invoice=invoice)
            if link is not None
            else []
        )
        context = self.get_context_data(
            invoice=invoice,
            tax_category=(invoice.lines[0].get("tax_category") if invoice.lines else ""),
            paylater_url=paylater_link(request, invoice) if invoice.customer_number else "",
            paylater_expires=link_expires(invoice),
            balance_request=link,
            allocations=allocations,
            history=history,
            cancel_form=cancel_form or CancelForm(),
            can_cancel=invoice.status == Invoice.Status.PUBLISHED,
        )
        return render(request, self.template_name, context, status=400 if cancel_form is not None else 200)


class PaymentRequestCancelView(PaymentRequestConsoleView):
    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        invoice: Invoice = self.get_object(pk)
        form = CancelForm(request.POST)
        if not form.is_valid():
            view = PaymentRequestDetailView(request=request, membership=self.membership, biller=self.biller)
            return view.get(request, pk, cancel_form=form)
        try:
            services.payment_request_cancel(
                actor=request.user, biller=self.biller, invoice=invoice, reason=form.cleaned_data["reason"]
            )
        except (InvalidTransition, NotFound) as exc:
            messages.error(
                request, _("The payment request was not cancelled: %(error)s") % {"error": exc.message}
            )
        else:
            messages.success(
                request, _("Payment request %(number)s was cancelled.") % {"number": invoice.number}
            )
        return redirect("console:payment_request_detail", pk=pk)


# --- balances ----------------------------------------------------------------------------------------------


class CustomerBalanceView(TenantConsoleView):
    """A customer's balance: the minimum payment and the items (console page of the chosen amounts)."""

    model = Customer
    nav_section = "customers"
    template_name = "billing/console/customer_balance.html"

    def render_page(
        self,
        request: TenantRequest,
        customer: Customer,
        account: BalanceAccount | None,
        form: BalanceForm,
        formset: BaseBalanceItemFormSet,
        status: int = 200,
    ) -> HttpResponse:
        context = self.get_context_data(
            customer=customer,
            account=account,
            limits=selectors.balance_range(account) if account is not None else None,
            form=form,
            formset=formset,
            requests=selectors.balance_requests(account=account)[:20] if account is not None else [],
            allocations=selectors.balance_allocations(account=account)[:50] if account is not None else [],
        )
        return render(request, self.template_name, context, status=status)

    @staticmethod
    def initial(account: BalanceAccount | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if account is None:
            return {"minimum_payment": ""}, []
        items = [
            {
                "date": item.date,
                "description": item.description,
                "amount": str(item.amount),
                "outstanding": str(item.outstanding),
            }
            for item in selectors.balance_items(account=account, open_only=True)
        ]
        return {"minimum_payment": str(account.minimum_payment)}, items

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        customer: Customer = self.get_object(pk)
        account = selectors.balance_account_of(biller=self.biller, customer=customer)
        main, items = self.initial(account)
        return self.render_page(
            request,
            customer,
            account,
            BalanceForm(initial=main),
            BalanceItemFormSet(prefix="items", initial=items),
        )

    def invalid(
        self, request: TenantRequest, customer: Customer, form: BalanceForm, formset: BaseBalanceItemFormSet
    ) -> HttpResponse:
        """The page again with the errors, answered 400."""
        account = selectors.balance_account_of(biller=self.biller, customer=customer)
        return self.render_page(request, customer, account, form, formset, status=400)

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        customer: Customer = self.get_object(pk)
        form = BalanceForm(request.POST)
        formset = BalanceItemFormSet(request.POST, prefix="items")
        if not (form.is_valid() and formset.is_valid()):
            return self.invalid(request, customer, form, formset)
        filled = formset.filled()
        try:
            services.balance_account_set(
                actor=request.user,
                biller=self.biller,
                customer=customer,
                minimum_payment=form.cleaned_data["minimum_payment"],
                items=[f.to_item() for _i, f in filled],
            )
        except ValidationFailed as exc:
            rows = [i for i, _f in filled]
            formset_errors_apply(
                exc, form=form, formset=formset, rows=rows, list_name="items", stray_to_formset=False
            )
            return self.invalid(request, customer, form, formset)
        messages.success(request, _("The balance of %(code)s was saved.") % {"code": customer.code})
        return redirect("console:customer_balance", pk=customer.pk)
