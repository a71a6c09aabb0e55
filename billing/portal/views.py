"""The customer portal's bases and its invoice pages: the list (tabs, filters), detail, PDF, download
(ZIP of PDFs or CSV), and the corporate approvals. The accounts pages are ``account_views``; payments,
receipts and the balance are ``payment_views``.

Every page after login inherits ``PortalView``: it needs a tenant request and a portal account of
the logged-in user at that biller, and ``get_queryset()``/``get_object()`` (``billing.scoping``) are the
only way to reach invoices: filtered by ``request.biller`` and the account's customer, so another
biller's or another customer's invoice answers 404 exactly like a missing one.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext as _
from django.views import View

from billing import csvsafe, page_cache
from billing.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from billing.forms import form_errors_add
from billing.models import Biller, Customer, CustomerAccount, Invoice, InvoiceApproval
from billing.numbers import ATM_CASH_LIMIT
from billing.portal import selectors, services
from billing.portal.forms import (
    DecisionForm,
    InvoiceFilterForm,
)
from billing.scoping import TenantScopedMixin
from billing.tenancy import TenantRequest

PAGE_SIZE = 20
MAX_DOWNLOAD = 200


# --- bases ---------------------------------------------------------------------------------------------


class PortalPublicView(View):
    """A page of a biller's portal that needs no login (log in, register, reset a password)."""

    biller: Biller
    login_required = False

    def dispatch(self, request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        if request.biller is None:
            raise Http404
        self.biller = request.biller
        key, hit = self.page_from_cache(request, *args, **kwargs)
        response: HttpResponseBase
        if hit is not None:
            response = hit
        else:
            self.account = services.account_of(request.user, self.biller)
            if self.login_required:
                if self.account is None:
                    login = reverse("portal:login")
                    return HttpResponseRedirect(f"{login}?{urlencode({'next': request.get_full_path()})}")
                self.customer = self.account.customer
            response = super().dispatch(request, *args, **kwargs)
            if key is not None and isinstance(response, HttpResponse):
                page_cache.keep(key, response)
        add_never_cache_headers(response)
        return response

    def cached_page(self, request: TenantRequest, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """A page kept by ``billing.page_cache`` (``PAGES``, by view name): its fingerprint's parameters."""
        return None

    def page_from_cache(
        self, request: TenantRequest, *args: Any, **kwargs: Any
    ) -> tuple[str | None, HttpResponse | None]:
        if request.method != "GET":
            return None, None
        params = self.cached_page(request, *args, **kwargs)
        if params is None or request.resolver_match is None:
            return None, None
        return page_cache.lookup(request, page=request.resolver_match.view_name, params=params)

    def render(
        self, request: TenantRequest, template: str, context: dict[str, Any], status: int = 200
    ) -> HttpResponse:
        context.setdefault("biller", self.biller)
        context.setdefault("portal_account", self.account)
        return render(request, template, context, status=status)


class PortalView(TenantScopedMixin, PortalPublicView):
    """Base of every page after login; see the module docstring."""

    model = Invoice
    nav_section = ""
    login_required = True
    account: CustomerAccount
    customer: Customer

    def scoped_queryset(self, qs: QuerySet) -> QuerySet:
        """What the customer may see of the tenant's invoices (``billing.portal.selectors``)."""
        return selectors.portal_invoices(biller=self.biller, customer=self.customer)

    def render(
        self, request: TenantRequest, template: str, context: dict[str, Any], status: int = 200
    ) -> HttpResponse:
        context.setdefault("customer", self.customer)
        context.setdefault("view", self)
        return super().render(request, template, context, status)

    def own_invoice(self, pk: int) -> Invoice:
        """``get_object`` without its joins: the invoice's biller and customer are this page's."""
        try:
            invoice = self.get_queryset().select_related(None).get(pk=pk)
        except (Invoice.DoesNotExist, ValueError, TypeError) as exc:
            raise Http404 from exc
        selectors.known_parents([invoice], biller=self.biller, customer=self.customer)
        return invoice

    def page_of(self, request: TenantRequest, qs: QuerySet, *, count: int | None = None) -> Page:
        """The page of ``qs`` that ``?page=`` asks for, PAGE_SIZE rows a page; ``count``: how many rows
        ``qs`` has when the caller has just counted them (no second COUNT)."""
        paginator = Paginator(qs, PAGE_SIZE)
        if count is not None:
            paginator.__dict__["count"] = count  # Paginator.count is a cached_property
        return paginator.get_page(request.GET.get("page"))


# --- invoices ------------------------------------------------------------------------------------------


def pay_url(invoice: Invoice) -> str:
    """The 情報リンク bank chooser for this invoice (payeasy.paying_urls), or "" while it is not mounted."""
    try:
        return reverse("portal:pay", args=[invoice.pk])
    except NoReverseMatch:
        return ""


class HomeView(PortalView):
    def get(self, request: TenantRequest) -> HttpResponseBase:
        return redirect("portal:invoice_list")


class InvoiceListView(PortalView):
    nav_section = "invoices"
    template_name = "billing/portal/invoice_list.html"

    def cached_page(self, request: TenantRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"user": request.user.pk, "biller": self.biller.pk}

    def get(self, request: TenantRequest) -> HttpResponse:
        form = InvoiceFilterForm(request.GET or None)
        status = 200
        qs: QuerySet[Invoice]
        try:
            filters = selectors.PortalFilters.parse(request.GET)
        except ValidationFailed as exc:
            form.is_valid()
            form_errors_add(form, exc)
            filters = selectors.PortalFilters(tab=selectors.DEFAULT_TAB)
            status = 400
            qs = Invoice.objects.none()
        else:
            qs = selectors.invoice_list(biller=self.biller, customer=self.customer, filters=filters)
            qs = qs.select_related(None)  # the rows' biller and customer are this page's (below)
        counts = selectors.tab_counts(biller=self.biller, customer=self.customer)
        known = counts.get(filters.tab) if status == 200 and filters.tab_only else None
        page = self.page_of(request, qs, count=known)
        base = request.GET.copy()
        for name in ("tab", "page"):
            base.pop(name, None)
        tabs = []
        for key, label in selectors.TABS.items():
            query = base.copy()
            query["tab"] = key
            tabs.append(
                {
                    "key": key,
                    "label": label,
                    "url": f"?{query.urlencode()}",
                    "count": counts.get(key),
                    "current": key == filters.tab,
                }
            )
        invoices = list(page)
        selectors.known_parents(invoices, biller=self.biller, customer=self.customer)
        rows = [(invoice, invoice.is_overdue) for invoice in invoices]
        context = {
            "form": form,
            "filters": filters,
            "page": page,
            "rows": rows,
            "tabs": tabs,
            "current_tab": selectors.TABS[filters.tab],
            "max_download": MAX_DOWNLOAD,
        }
        return self.render(request, self.template_name, context, status=status)


class InvoiceDetailView(PortalView):
    nav_section = "invoices"
    template_name = "billing/portal/invoice_detail.html"

    def cached_page(self, request: TenantRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"user": request.user.pk, "invoice": kwargs["pk"], "biller": self.biller.pk}

    def get(
        self, request: TenantRequest, pk: int, decision_form: DecisionForm | None = None, status: int = 200
    ) -> HttpResponse:
        invoice = self.own_invoice(pk)
        state = services.approval_state(invoice)
        approvals = (
            list(selectors.approvals_of(biller=self.biller, invoice=invoice))
            if state != "not_required"
            else []
        )
        payable = invoice.is_payable and invoice.confirmation_number is not None
        may_pay = services.can_pay(request.user, invoice, account=self.account)
        reason = ""
        if payable and not may_pay:
            if services.past_due_refused(invoice):
                reason = _(
                    "The due date has passed and %(biller)s does not accept late payments. "
                    "Please contact them."
                ) % {"biller": self.biller.legal_name}
            elif state == "rejected":
                reason = _(
                    "This invoice was rejected in your company's approval. "
                    "It can be paid once an approver approves it."
                )
            elif state == "pending":
                reason = _("This invoice needs your company's approval before it can be paid.")
            elif self.account.role != CustomerAccount.Role.PAYER:
                reason = _("Your role (%(role)s) cannot pay invoices. A payer of your company can.") % {
                    "role": self.account.get_role_display()
                }
        context = {
            "invoice": invoice,
            "lines": invoice.lines,
            "rate_rows": invoice.rate_rows(),
            "has_reduced_rate": any(str(line.get("tax_category")) == "8" for line in invoice.lines),
            "payable": payable,
            "can_pay": may_pay,
            "cannot_pay_reason": reason,
            "pay_url": pay_url(invoice) if may_pay else "",
            "over_atm_limit": invoice.total > ATM_CASH_LIMIT,
            "atm_cash_limit": ATM_CASH_LIMIT,
            "returned": request.GET.get("returned") == "1",
            "approval_state": state,
            "approvals": approvals,
            **decision_context(self.account, approvals, payable=payable, form=decision_form),
            "receipts": selectors.invoice_receipts(
                biller=self.biller, customer=self.customer, invoice=invoice
            ),
            "original": self.get_queryset().filter(pk=invoice.original_id).first()
            if invoice.original_id
            else None,
        }
        return self.render(request, self.template_name, context, status=status)


class InvoicePdfView(PortalView):
    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        invoice = self.get_object(pk)
        from billing.pdf import invoice_pdf, pdf_filename

        numbers = services.numbers_visibility(request.user, invoice, account=self.account)
        response = HttpResponse(invoice_pdf(invoice, numbers=numbers), content_type="application/pdf")
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=pdf_filename(invoice)
        )
        return response


CSV_COLUMNS = (
    ("number", lambda: _("Invoice number")),
    ("kind", lambda: _("Kind")),
    ("issue_date", lambda: _("Issue date")),
    ("due_date", lambda: _("Due date")),
    ("description", lambda: _("Description")),
    ("status", lambda: _("Status")),
    ("subtotal_10", lambda: _("Subtotal 10%")),
    ("tax_10", lambda: _("Tax 10%")),
    ("subtotal_8", lambda: _("Subtotal 8% (reduced)")),
    ("tax_8", lambda: _("Tax 8% (reduced)")),
    ("subtotal_exempt", lambda: _("Tax exempt")),
    ("total", lambda: _("Total (tax included)")),
    ("issuer", lambda: _("Issuer")),
    ("registration_number", lambda: _("Registration number")),
    ("customer_number", lambda: _("Customer number (お客様番号)")),
)


def _csv_row(invoice: Invoice, numbers: services.NumbersVisibility) -> list[Any]:
    """One invoice's CSV row; the お客様番号 only where ``numbers`` (the reader's) shows it."""
    return [
        invoice.number,
        invoice.get_kind_display(),
        invoice.issue_date.isoformat(),
        invoice.due_date.isoformat(),
        invoice.description,
        _("Overdue") if invoice.is_overdue else invoice.get_status_display(),
        invoice.subtotal_10,
        invoice.tax_10,
        invoice.subtotal_8,
        invoice.tax_8,
        invoice.subtotal_exempt,
        invoice.total,
        invoice.biller.legal_name,
        invoice.biller.registration_number,
        (invoice.customer_number or "") if numbers.visible else numbers.withheld_text,
    ]


class InvoiceDownloadView(PortalView):
    """The selected invoices as one ZIP of PDFs, or as CSV in UTF-8 or cp932 (Shift_JIS)."""

    def get(self, request: TenantRequest) -> HttpResponseBase:
        raw = request.GET.getlist("ids")
        fmt = request.GET.get("format", "zip")
        back = reverse("portal:invoice_list")
        if fmt not in {"zip", "csv-utf8", "csv-cp932"}:
            messages.error(request, _("Choose a download format."))
            return redirect(back)
        if not raw:
            messages.error(request, _("Select at least one invoice."))
            return redirect(back)
        if len(raw) > MAX_DOWNLOAD:
            messages.error(request, _("Select at most %(max)d invoices at a time.") % {"max": MAX_DOWNLOAD})
            return redirect(back)
        if not all(v.isdigit() for v in raw):
            raise Http404
        ids = list(dict.fromkeys(int(v) for v in raw))
        invoices = list(self.get_queryset().filter(pk__in=ids).order_by("issue_date", "id"))
        if len(invoices) != len(ids):  # another customer's or biller's id answers like a missing one
            raise Http404
        stamp = timezone.localdate().strftime("%Y%m%d")
        if fmt == "zip":
            body, content_type, filename = self.zip(invoices), "application/zip", f"invoices-{stamp}.zip"
        else:
            encoding = "cp932" if fmt == "csv-cp932" else "utf-8"
            body, content_type = (
                self.csv(invoices, encoding),
                f"text/csv; charset={'Shift_JIS' if encoding == 'cp932' else 'utf-8'}",
            )
            filename = f"invoices-{stamp}.csv"
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
        return response

    def zip(self, invoices: list[Invoice]) -> bytes:
        from billing.pdf import invoice_pdf, pdf_filename

        buffer = io.BytesIO()
        used: set[str] = set()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for invoice in invoices:
                name = pdf_filename(invoice)
                if name in used:
                    name = f"{name[:-4]}-{invoice.pk}.pdf"
                used.add(name)
                info = zipfile.ZipInfo(name, date_time=invoice.issue_date.timetuple()[:6])
                info.compress_type = zipfile.ZIP_DEFLATED
                info.flag_bits |= 0x800  # names are UTF-8
                numbers = services.numbers_visibility(self.request.user, invoice, account=self.account)
                archive.writestr(info, invoice_pdf(invoice, numbers=numbers))
        return buffer.getvalue()

    def csv(self, invoices: list[Invoice], encoding: str) -> bytes:
        out = io.StringIO(newline="")
        writer = csvsafe.writer(out, lineterminator="\r\n")
        writer.writerow([str(label()) for _name, label in CSV_COLUMNS])
        for invoice in invoices:
            numbers = services.numbers_visibility(self.request.user, invoice, account=self.account)
            writer.writerow(_csv_row(invoice, numbers))
        # Shift_JIS cannot carry every character a name may hold: those few become "?", the rest is exact.
        return out.getvalue().encode(encoding, errors="replace")


# --- approvals -----------------------------------------------------------------------------------------


class ApprovalListView(PortalView):
    nav_section = "approvals"
    template_name = "billing/portal/approval_list.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        if not self.customer.is_corporate:
            raise Http404
        rows = selectors.awaiting_approval(biller=self.biller, customer=self.customer)
        return self.render(
            request, self.template_name, {"rows": rows, "can_decide": self.account.can_approve}
        )


def decision_context(
    account: CustomerAccount, approvals: list[InvoiceApproval], *, payable: bool, form: DecisionForm | None
) -> dict[str, Any]:
    """What the bill page offers an approver. Before any decision: the approve/reject form
    (``can_decide``). After one: the decision itself (``decision``: who, when, result) instead of the form,
    and only the opposite step (``change_to``): withdraw an approval (a rejection, with its reason) or
    approve a rejected bill after all. The same decision twice is refused (``InvoiceDecisionView``)."""
    decision = approvals[-1] if approvals else None
    may = payable and account.can_approve
    change_to = ""
    if may and decision is not None:
        approved = decision.decision == InvoiceApproval.Decision.APPROVED
        change_to = InvoiceApproval.Decision.REJECTED if approved else InvoiceApproval.Decision.APPROVED
    return {
        "decision": decision,
        "can_decide": may and decision is None,
        "change_to": change_to,
        "decision_form": form or DecisionForm(initial={"decision": change_to} if change_to else None),
    }


def repeated_decision_message(latest: InvoiceApproval) -> str:
    """Why the same decision a second time records nothing: who took it, and when (JST)."""
    from billing.audit_labels import when

    who = latest.decided_by.name or latest.decided_by.email
    facts = {"who": who, "when": when(latest.decided_at)}
    if latest.decision == InvoiceApproval.Decision.APPROVED:
        return (
            _("This invoice is approved already: %(who)s approved it on %(when)s. Nothing was recorded.")
            % facts
        )
    return (
        _("This invoice is rejected already: %(who)s rejected it on %(when)s. Nothing was recorded.") % facts
    )


class InvoiceDecisionView(PortalView):
    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        invoice = self.get_object(pk)
        form = DecisionForm(request.POST)
        if not form.is_valid():
            return InvoiceDetailView(
                request=request, biller=self.biller, account=self.account, customer=self.customer
            ).get(request, pk, decision_form=form, status=400)
        latest = services.latest_decision(invoice)
        if (
            latest is not None
            and latest.decision == form.cleaned_data["decision"]
            and self.account.can_approve
        ):
            # a second click, a stale page or another approver who decided first: nothing is appended
            messages.error(request, repeated_decision_message(latest))
            return redirect("portal:invoice_detail", pk=pk)
        try:
            approval = services.invoice_decide(
                actor=request.user,
                biller=self.biller,
                invoice=invoice,
                decision=form.cleaned_data["decision"],
                comment=form.cleaned_data["comment"],
            )
        except NotFound as exc:
            raise Http404 from exc
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from exc
        except ValidationFailed as exc:
            form_errors_add(form, exc)
            return InvoiceDetailView(
                request=request, biller=self.biller, account=self.account, customer=self.customer
            ).get(request, pk, decision_form=form, status=400)
        except (Conflict, InvalidTransition) as exc:
            messages.error(request, exc.message)
            return redirect("portal:invoice_detail", pk=pk)
        if approval.decision == InvoiceApproval.Decision.APPROVED:
            messages.success(request, _("Invoice %(number)s was approved.") % {"number": invoice.number})
        else:
            messages.success(request, _("Invoice %(number)s was rejected.") % {"number": invoice.number})
        return redirect("portal:invoice_detail", pk=pk)
