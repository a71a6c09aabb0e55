"""The customer portal's payments pages: payment history, receipts, and the balance with its chosen
amounts (任意金額). Every page inherits ``billing.portal.views.PortalView``."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _

from billing.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from billing.forms import form_errors_add
from billing.models import Biller, CustomerAccount, Invoice, Receipt
from billing.portal import selectors, services
from billing.portal.forms import (
    ChosenAmountForm,
)
from billing.portal.views import PortalView
from billing.tenancy import TenantRequest
from billing.views import TenantConsoleView

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


class ReceiptPdfView(PortalView):
    """The receipt (領収書) as a PDF: only of a payment on a bill this customer may see (the bill page's
    rule, ``get_queryset``); another customer's or biller's receipt answers 404 like a missing one."""

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        receipt = selectors.receipt_list(biller=self.biller, customer=self.customer).filter(pk=pk).first()
        if receipt is None or not self.get_queryset().filter(pk=receipt.payment.invoice_id).exists():
            raise Http404
        return receipt_pdf_response(receipt)


def receipt_pdf_response(receipt: Receipt) -> HttpResponse:
    """A receipt's PDF as a download (the portal's and the console's)."""
    from billing.receipt_pdf import receipt_filename, receipt_pdf  # only PDF pages load reportlab

    pdf = receipt_pdf(receipt, bank=selectors.bank_name(receipt.payment.bank_code))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=receipt_filename(receipt)
    )
    return response


class ConsoleReceiptPdfView(TenantConsoleView):
    """The console's download of a receipt of one of the tenant's bills (the console's invoice rule:
    ``get_object`` of the bill, then the receipt of a payment on it); anything else answers 404."""

    model = Invoice
    nav_section = "invoices"

    def get(self, request: TenantRequest, pk: int, receipt_pk: int) -> HttpResponse:
        invoice = self.get_object(pk)
        receipt = (
            Receipt.objects.for_biller(self.biller)
            .filter(pk=receipt_pk, payment__invoice=invoice)
            .select_related("payment__invoice__biller", "payment__invoice__customer")
            .first()
        )
        if receipt is None:
            raise Http404
        return receipt_pdf_response(receipt)


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
