"""The customer portal's payments pages: payment history, receipts, and the balance with its chosen
amounts (任意金額). Every page inherits ``billing.portal.views.PortalView``."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from billing.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from billing.forms import form_errors_add
from billing.models import Biller, CustomerAccount, Invoice
from billing.portal import selectors, services
from billing.portal.forms import (
    ChosenAmountForm,
)
from billing.portal.views import PortalView
from billing.tenancy import TenantRequest

# --- payments and receipts -----------------------------------------------------------------------------


class PaymentHistoryView(PortalView):
    nav_section = "payments"
    template_name = "billing/portal/payment_list.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        page = self.page_of(request, selectors.payment_list(biller=self.biller, customer=self.customer))
        rows = [(payment, selectors.bank_name(payment.bank_code)) for payment in page]
        return self.render(request, self.template_name, {"page": page, "rows": rows})


class ReceiptListView(PortalView):
    nav_section = "receipts"
    template_name = "billing/portal/receipt_list.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        page = self.page_of(request, selectors.receipt_list(biller=self.biller, customer=self.customer))
        return self.render(request, self.template_name, {"page": page})


class ReceiptDetailView(PortalView):
    nav_section = "receipts"
    template_name = "billing/portal/receipt_detail.html"

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        receipt = selectors.receipt_list(biller=self.biller, customer=self.customer).filter(pk=pk).first()
        if receipt is None:
            raise Http404
        payment = receipt.payment
        context = {
            "receipt": receipt,
            "payment": payment,
            "invoice": payment.invoice,
            "bank": selectors.bank_name(payment.bank_code),
        }
        return self.render(request, self.template_name, context)


# --- balance: chosen amounts (任意金額) ---------------------------------------------------------------


class BalanceView(PortalView):
    """The customer's balance (e.g. a card's): its items, and a form where a payer chooses an amount
    between the minimum and the balance. Choosing makes a fresh payment request with its own numbers and
    opens its page (``invoice_detail``), where 情報リンク and the numbers are. 404 without a balance."""

    nav_section = "balance"
    template_name = "billing/portal/balance.html"

    def page(
        self, request: TenantRequest, form: ChosenAmountForm | None = None, status: int = 200
    ) -> HttpResponse:
        from billing import selectors as billing_selectors

        account = billing_selectors.balance_account_of(biller=self.biller, customer=self.customer)
        if account is None:
            raise Http404
        limits = billing_selectors.balance_range(account)
        requests = billing_selectors.balance_requests(account=account).filter(customer=self.customer)
        context = {
            "account": account,
            "limits": limits,
            "items": billing_selectors.balance_items(account=account, open_only=True),
            "open_requests": [inv for inv in requests.filter(status=Invoice.Status.PUBLISHED)[:10]],
            "paid_requests": [inv for inv in requests.filter(status=Invoice.Status.PAID)[:10]],
            "may_pay": self.account.role == CustomerAccount.Role.PAYER
            and self.biller.status == Biller.Status.ACTIVE,
            "form": form or ChosenAmountForm(initial={"amount": limits.low or ""}),
        }
        return self.render(request, self.template_name, context, status=status)

    def get(self, request: TenantRequest) -> HttpResponse:
        return self.page(request)

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = ChosenAmountForm(request.POST)
        if not form.is_valid():
            return self.page(request, form, status=400)
        try:
            invoice = services.chosen_amount_request(
                user=request.user, biller=self.biller, amount=form.cleaned_data["amount"]
            )
        except NotFound as exc:
            raise Http404 from exc
        except Forbidden as exc:
            form.add_error(None, exc.message)
            return self.page(request, form, status=403)
        except ValidationFailed as exc:
            form_errors_add(form, exc)
            return self.page(request, form, status=400)
        except InvalidTransition as exc:
            form.add_error(None, exc.message)
            return self.page(request, form, status=409)
        messages.success(
            request,
            _("Your payment request for %(amount)s yen is ready: pay by 情報リンク or with the numbers.")
            % {"amount": f"{invoice.total:,}"},
        )
        return redirect("portal:invoice_detail", pk=invoice.pk)
