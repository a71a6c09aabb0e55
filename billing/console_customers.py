"""The tenant console's customer pages: the list (search), add, edit (with the customer's portal accounts:
``billing.portal.console_views``).

Every view inherits ``TenantConsoleView`` (membership, read-only operators, the tenant filter); every
write goes through a service.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from billing import services
from billing.console_forms import CustomerForm, CustomerSearchForm
from billing.errors import NotFound, ValidationFailed
from billing.forms import form_errors_add
from billing.models import Customer
from billing.tenancy import TenantRequest
from billing.views import TenantConsoleView

CUSTOMER_PAGE_SIZE = 50


class CustomerConsoleView(TenantConsoleView):
    model = Customer
    nav_section = "customers"


class CustomerListView(CustomerConsoleView):
    def get(self, request: TenantRequest) -> HttpResponse:
        form = CustomerSearchForm(request.GET or None)
        qs = self.get_queryset().order_by("code", "id")
        if form.is_valid():
            q = form.cleaned_data["q"].strip()
            if q:
                qs = qs.filter(Q(code__icontains=q) | Q(name__icontains=q) | Q(name_kana__icontains=q))
            if form.cleaned_data["status"]:
                qs = qs.filter(status=form.cleaned_data["status"])
        page = Paginator(qs, CUSTOMER_PAGE_SIZE).get_page(request.GET.get("page"))
        context = self.get_context_data(form=form, page=page)
        return render(request, "billing/console/customer_list.html", context)


class CustomerFormView(CustomerConsoleView):
    template_name = "billing/console/customer_form.html"

    def render_form(
        self, request: TenantRequest, form: CustomerForm, customer: Customer | None, status: int = 200
    ) -> HttpResponse:
        context = self.get_context_data(form=form, customer=customer)
        if customer is not None:  # the customer's portal accounts and registration code (billing.portal)
            from billing.portal.console_views import customer_portal_context

            context["portal"] = customer_portal_context(biller=self.biller, customer=customer)
        return render(request, self.template_name, context, status=status)


class CustomerCreateView(CustomerFormView):
    def get(self, request: TenantRequest) -> HttpResponse:
        return self.render_form(request, CustomerForm(instance=Customer(biller=self.biller)), None)

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = CustomerForm(request.POST, instance=Customer(biller=self.biller))
        if not form.is_valid():
            return self.render_form(request, form, None, status=400)
        try:
            customer = services.customer_create(actor=request.user, biller=self.biller, data=form.to_input())
        except ValidationFailed as exc:
            form_errors_add(form, exc, named=True)
            return self.render_form(request, form, None, status=400)
        messages.success(request, _("Customer %(code)s was added.") % {"code": customer.code})
        return redirect("console:customer_list")


class CustomerEditView(CustomerFormView):
    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        customer: Customer = self.get_object(pk)
        return self.render_form(request, CustomerForm(instance=customer), customer)

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        customer: Customer = self.get_object(pk)
        # the form works on a copy; the service locks the row and applies the change
        form = CustomerForm(request.POST, instance=self.get_object(pk))
        if not form.is_valid():
            return self.render_form(request, form, customer, status=400)
        try:
            customer = services.customer_update(
                actor=request.user, biller=self.biller, customer=customer, data=form.to_input()
            )
        except ValidationFailed as exc:
            form_errors_add(form, exc, named=True)
            return self.render_form(request, form, customer, status=400)
        except NotFound as exc:
            raise Http404 from exc
        messages.success(request, _("Customer %(code)s was saved.") % {"code": customer.code})
        return redirect("console:customer_list")
