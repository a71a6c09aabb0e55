"""The tenant console's invoice pages: the list (keyset pages, ``billing.pagination``), the bulk
actions, create and edit, detail, publish, cancel and the PDF; the invoice settings (the pattern of the
automatic invoice numbers).

The invoice form works without JavaScript: "add a line" and "remove line n" are submit buttons that
show the form again with what was typed (``rows_changed``); static/js/invoice-form.js does the same in
the page and keeps the totals up to date, the server's ``lines_totals`` showing them otherwise.

Every view inherits ``TenantConsoleView`` (membership, read-only operators,
the tenant filter). Reads go through ``get_queryset()``, ``Model.objects.for_biller`` or the
selectors; every write goes through a service.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.contrib import messages
from django.db import IntegrityError
from django.db.models import QuerySet
from django.http import HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing import page_cache, selectors, services
from billing.console_forms import (
    BaseLineFormSet,
    CancelForm,
    InvoiceFilterForm,
    InvoiceForm,
    InvoiceNumberingForm,
    LineForm,
    LineFormSet,
    form_typed,
    formset_errors_apply,
    line_formset,
    lines_totals,
    typed_rows,
)
from billing.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from billing.forms import form_errors_add
from billing.invoicing import invoice_create_numbered, invoice_number_next, invoice_numbering_update
from billing.models import Biller, Customer, Invoice
from billing.pagination import BadCursor, KeysetPage, keyset_page, page_links
from billing.portal.selectors import bank_name
from billing.tenancy import TenantRequest
from billing.views import TenantConsoleView
from config.logs import exception_summary

CUSTOMER_SUGGESTIONS = 200

logger = logging.getLogger(__name__)


def refused_by_database(exc: IntegrityError) -> str:
    """A database rule refused a service's write (the service rolled back): logged as the bug it is."""
    logger.error("a service write was refused by the database: %s", exception_summary(exc, frames=True))
    return _("the database refused the change; nothing was changed. Please report this.")


# --- invoices ------------------------------------------------------------------------------------------


class InvoiceConsoleView(TenantConsoleView):
    model = Invoice
    nav_section = "invoices"

    def scoped_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.select_related("customer")

    def customers(self) -> QuerySet[Customer]:
        return Customer.objects.for_biller(self.biller)


class InvoiceListView(InvoiceConsoleView):
    template_name = "billing/console/invoice_list.html"
    page_size = selectors.INVOICE_PAGE_SIZE

    def get(self, request: TenantRequest) -> HttpResponse:
        params = {"user": request.user.pk, "biller": self.biller.pk}
        key, hit = page_cache.lookup(request, page="console:invoice_list", params=params)
        if hit is not None:
            return hit
        response = self.rendered(request)
        if key is not None:
            page_cache.keep(key, response)
        return response

    def rendered(self, request: TenantRequest) -> HttpResponse:
        form = InvoiceFilterForm(request.GET or None)
        page: KeysetPage | None = None
        status = 200
        params = request.GET
        try:
            filters = selectors.InvoiceFilters.parse(params)
        except ValidationFailed as exc:
            form.is_valid()
            form_errors_add(form, exc, named=True)
            status = 400
        else:
            ordering = selectors.INVOICE_SORTS[filters.sort]
            qs = selectors.invoice_list(biller=self.biller, filters=filters).select_related("customer")
            try:
                page = keyset_page(
                    qs,
                    sort=filters.sort,
                    ordering=ordering,
                    after=params.get("after", ""),
                    before=params.get("before", ""),
                    size=self.page_size,
                )
            except BadCursor:
                form.is_valid()
                form.add_error(None, _("The page link is out of date. Start again from the first page."))
                status = 400
        path = reverse("console:invoice_list")
        context = self.get_context_data(
            form=form,
            page=page,
            **page_links(path, params, page),
            return_query=params.urlencode(),
        )
        return render(request, self.template_name, context, status=status)


class InvoiceBulkView(InvoiceConsoleView):
    """Publish or cancel the selected invoices: all of them, or (on any error) none."""

    def post(self, request: TenantRequest) -> HttpResponseBase:
        back = reverse("console:invoice_list")
        query = QueryDict(request.POST.get("return_query", "")).urlencode()
        if query:
            back = f"{back}?{query}"
        action = request.POST.get("action", "")
        raw_ids = request.POST.getlist("ids")
        if action not in {"publish", "cancel"}:
            messages.error(request, _("Choose an action: publish or cancel."))
            return redirect(back)
        if not raw_ids:
            messages.error(request, _("Select at least one invoice."))
            return redirect(back)
        if not all(v.isdigit() for v in raw_ids):
            messages.error(request, _("No such invoice."))
            return redirect(back)
        ids = list(dict.fromkeys(int(v) for v in raw_ids))
        try:
            if action == "publish":
                count = len(
                    services.invoice_publish_many(actor=request.user, biller=self.biller, invoice_ids=ids)
                )
                messages.success(
                    request,
                    ngettext("%(count)d invoice was published.", "%(count)d invoices were published.", count)
                    % {"count": count},
                )
            else:
                reason = request.POST.get("reason", "").strip()[:200]
                count = services.invoice_cancel_many(
                    actor=request.user, biller=self.biller, invoice_ids=ids, reason=reason
                )
                messages.success(
                    request,
                    ngettext("%(count)d invoice was cancelled.", "%(count)d invoices were cancelled.", count)
                    % {"count": count},
                )
        except (InvalidTransition, NotFound, ValidationFailed, Conflict) as exc:
            messages.error(request, _("Nothing was changed: %(error)s") % {"error": error_text(exc)})
        except IntegrityError as exc:  # e.g. cancelling a draft: see the report on invoice_cancel
            messages.error(request, _("Nothing was changed: %(error)s") % {"error": refused_by_database(exc)})
        return redirect(back)


def error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationFailed):
        return "; ".join(f"{field}: {' '.join(errs)}" for field, errs in exc.errors.items())
    return getattr(exc, "message", str(exc))


class InvoiceFormMixin(InvoiceConsoleView):
    template_name = "billing/console/invoice_form.html"

    def render_form(
        self,
        request: TenantRequest,
        form: InvoiceForm,
        formset: BaseLineFormSet,
        *,
        invoice: Invoice | None = None,
        status: int = 200,
    ) -> HttpResponse:
        suggestions = (
            self.customers().filter(status=Customer.Status.ACTIVE).order_by("code")[:CUSTOMER_SUGGESTIONS]
        )
        tax_inclusive = bool(form["tax_inclusive"].value())
        context = self.get_context_data(
            form=form,
            formset=formset,
            # the rows, then the empty row that static/js/invoice-form.js copies (in a <template>)
            line_rows=[
                *((f, i + 1, i) for i, f in enumerate(formset.forms)),
                (formset.empty_form, "__num__", "__prefix__"),
            ],
            invoice=invoice,
            customer_suggestions=suggestions,
            totals=lines_totals(formset, biller=self.biller, tax_inclusive=tax_inclusive),
            tax_inclusive=tax_inclusive,
        )
        return render(request, self.template_name, context, status=status)

    def next_number(self, request: TenantRequest | None = None) -> str | None:
        """None for an existing invoice (its number is required); else the automatic number's preview."""
        return None

    def bound(self, request: TenantRequest) -> tuple[InvoiceForm, BaseLineFormSet]:
        return (
            InvoiceForm(request.POST, customers=self.customers(), next_number=self.next_number(request)),
            LineFormSet(request.POST, prefix="lines"),
        )

    def rows_changed(
        self,
        request: TenantRequest,
        form: InvoiceForm,
        formset: BaseLineFormSet,
        *,
        invoice: Invoice | None = None,
    ) -> HttpResponse | None:
        """Without JavaScript, "add a line" and "remove line n" post the form: show it again with what was
        typed, one row more or less, and the keyboard focus in the row that follows. Nothing is saved."""
        add = "add_line" in request.POST
        remove = request.POST.get("remove_line", "")
        if not (add or remove) or not formset.management_form.is_valid():
            return None
        rows = typed_rows(formset)
        focus = len(rows)
        if remove.isdigit() and int(remove) < len(rows):
            del rows[int(remove)]
            focus = max(min(int(remove), len(rows) - 1), 0)  # no row left: the empty row added below
        again = line_formset(rows, extra=1 if add or not rows else 0)
        if 0 <= focus < len(again.forms):
            again.forms[focus].fields["description"].widget.attrs["autofocus"] = True
        unbound = InvoiceForm(
            customers=self.customers(), initial=form_typed(form), next_number=self.next_number(request)
        )
        return self.render_form(request, unbound, again, invoice=invoice)

    def lines_of(self, formset: BaseLineFormSet) -> tuple[list[dict[str, Any]], list[int]]:
        filled = formset.filled()
        return [f.to_line() for _i, f in filled], [i for i, _f in filled]  # type: ignore[attr-defined]


def issue_date_of(request: TenantRequest) -> datetime.date:
    """The issue date typed in the form (today when there is none or it cannot be read)."""
    try:
        return datetime.date.fromisoformat(request.POST.get("issue_date", "").strip())
    except ValueError:
        return timezone.localdate()


def number_preview(biller: Biller, on: datetime.date) -> str | None:
    """The next automatic number for an invoice issued ``on``, or None when the pattern cannot give one."""
    try:
        return invoice_number_next(biller=biller, on=on)
    except (ValidationFailed, ValueError):
        return None


class InvoiceCreateView(InvoiceFormMixin):
    def next_number(self, request: TenantRequest | None = None) -> str | None:
        on = issue_date_of(request) if request is not None and request.method == "POST" else None
        return number_preview(self.biller, on or timezone.localdate())

    def get(self, request: TenantRequest) -> HttpResponse:
        form = InvoiceForm(
            customers=self.customers(),
            initial={"issue_date": timezone.localdate()},
            next_number=self.next_number(),
        )
        return self.render_form(request, form, LineFormSet(prefix="lines"))

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form, formset = self.bound(request)
        if (again := self.rows_changed(request, form, formset)) is not None:
            return again
        if not (form.is_valid() and formset.is_valid()):
            return self.render_form(request, form, formset, status=400)
        lines, rows = self.lines_of(formset)
        publish = "publish" in request.POST
        data = {**form.to_input(), "lines": lines}

        def create(number: str) -> Invoice:
            return services.invoice_create(
                actor=request.user,
                biller=self.biller,
                data={**data, "number": number},
                publish=publish,
            )

        try:
            if data["number"].strip():
                invoice = create(data["number"])
            else:  # left empty: the biller's pattern numbers it
                invoice = invoice_create_numbered(create, biller=self.biller, on=data["issue_date"])
        except ValidationFailed as exc:
            formset_errors_apply(
                exc, form=form, formset=formset, rows=rows, list_name="lines", stray_to_formset=True
            )
            return self.render_form(request, form, formset, status=400)
        except (Conflict, InvalidTransition) as exc:
            form.add_error(None, exc.message)
            return self.render_form(request, form, formset, status=409)
        if publish:
            text = _("Invoice %(number)s was created and published.")
        else:
            text = _("Invoice %(number)s was saved as a draft.")
        messages.success(request, text % {"number": invoice.number})
        return redirect("console:invoice_detail", pk=invoice.pk)


class InvoiceEditView(InvoiceFormMixin):
    def locked(self, request: TenantRequest, invoice: Invoice, message: str = "") -> HttpResponse:
        context = self.get_context_data(invoice=invoice, message=message)
        return render(request, "billing/console/invoice_locked.html", context, status=409)

    def editable(self, invoice: Invoice) -> bool:
        return invoice.status == Invoice.Status.DRAFT and invoice.kind == Invoice.Kind.INVOICE

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        invoice: Invoice = self.get_object(pk)
        if not self.editable(invoice):
            return self.locked(request, invoice)
        form = InvoiceForm(customers=self.customers(), initial=InvoiceForm.initial_for(invoice))
        formset = LineFormSet(prefix="lines", initial=[LineForm.initial_for(line) for line in invoice.lines])
        return self.render_form(request, form, formset, invoice=invoice)

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        invoice: Invoice = self.get_object(pk)
        if not self.editable(invoice):
            return self.locked(request, invoice)
        form, formset = self.bound(request)
        if (again := self.rows_changed(request, form, formset, invoice=invoice)) is not None:
            return again
        if not (form.is_valid() and formset.is_valid()):
            return self.render_form(request, form, formset, invoice=invoice, status=400)
        lines, rows = self.lines_of(formset)
        try:
            invoice = services.invoice_update_draft(
                actor=request.user,
                biller=self.biller,
                invoice=invoice,
                data={**form.to_input(), "lines": lines},
            )
        except ValidationFailed as exc:
            formset_errors_apply(
                exc, form=form, formset=formset, rows=rows, list_name="lines", stray_to_formset=True
            )
            return self.render_form(request, form, formset, invoice=invoice, status=400)
        except InvalidTransition as exc:  # published meanwhile
            return self.locked(request, invoice, exc.message)
        except Conflict as exc:
            form.add_error(None, exc.message)
            return self.render_form(request, form, formset, invoice=invoice, status=409)
        messages.success(request, _("Invoice %(number)s was saved.") % {"number": invoice.number})
        return redirect("console:invoice_detail", pk=invoice.pk)


class InvoiceDetailView(InvoiceConsoleView):
    template_name = "billing/console/invoice_detail.html"

    def scoped_queryset(self, qs: QuerySet) -> QuerySet:
        return super().scoped_queryset(qs).select_related("original")

    def get(self, request: TenantRequest, pk: int, cancel_form: CancelForm | None = None) -> HttpResponse:
        invoice: Invoice = self.get_object(pk)
        history = selectors.invoice_history(biller=self.biller, invoice=invoice)
        credit_notes = (
            self.get_queryset().filter(original=invoice).order_by("issue_date", "id")
            if invoice.kind == Invoice.Kind.INVOICE
            else Invoice.objects.none()
        )
        context = self.get_context_data(
            invoice=invoice,
            lines=invoice.lines,
            rate_rows=invoice.rate_rows(),
            has_reduced_rate=any(line.get("tax_category") == "8" for line in invoice.lines),
            history=history,
            credit_notes=credit_notes,
            payments=[
                (payment, bank_name(payment.bank_code))
                for payment in selectors.invoice_payments(biller=self.biller, invoice=invoice)
            ],
            cancel_form=cancel_form or CancelForm(),
            can_edit=invoice.status == Invoice.Status.DRAFT and invoice.kind == Invoice.Kind.INVOICE,
            can_publish=invoice.status == Invoice.Status.DRAFT,
            can_cancel=invoice.status in {Invoice.Status.DRAFT, Invoice.Status.PUBLISHED},
        )
        return render(request, self.template_name, context, status=400 if cancel_form is not None else 200)


class InvoicePublishView(InvoiceConsoleView):
    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        invoice: Invoice = self.get_object(pk)
        try:
            invoice = services.invoice_publish(actor=request.user, biller=self.biller, invoice=invoice)
        except (InvalidTransition, ValidationFailed, NotFound, Conflict) as exc:
            messages.error(
                request, _("The invoice was not published: %(error)s") % {"error": error_text(exc)}
            )
        else:
            messages.success(
                request,
                _("Invoice %(number)s was published; its customer number is %(customer_number)s.")
                % {"number": invoice.number, "customer_number": invoice.customer_number},
            )
        return redirect("console:invoice_detail", pk=pk)


class InvoiceCancelView(InvoiceConsoleView):
    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        invoice: Invoice = self.get_object(pk)
        form = CancelForm(request.POST)
        if not form.is_valid():
            return InvoiceDetailView(request=request, membership=self.membership, biller=self.biller).get(
                request, pk, cancel_form=form
            )
        try:
            services.invoice_cancel(
                actor=request.user, biller=self.biller, invoice=invoice, reason=form.cleaned_data["reason"]
            )
        except (InvalidTransition, NotFound) as exc:
            messages.error(
                request, _("The invoice was not cancelled: %(error)s") % {"error": error_text(exc)}
            )
        except IntegrityError as exc:  # e.g. cancelling a draft: see the report on invoice_cancel
            messages.error(
                request,
                _("The invoice was not cancelled: %(error)s") % {"error": refused_by_database(exc)},
            )
        else:
            messages.success(request, _("Invoice %(number)s was cancelled.") % {"number": invoice.number})
        return redirect("console:invoice_detail", pk=pk)


class InvoicePdfView(InvoiceConsoleView):
    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        invoice: Invoice = self.get_object(pk)
        from billing.pdf import invoice_pdf, pdf_filename  # imported here: only PDF pages load reportlab

        response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=pdf_filename(invoice)
        )
        return response


# --- invoice settings ----------------------------------------------------------------------------------


class InvoiceSettingsView(TenantConsoleView):
    """The biller's invoice settings: the pattern of the automatic invoice numbers (administrators)."""

    template_name = "billing/console/invoice_settings.html"
    nav_section = "invoices"

    def get(self, request: TenantRequest, form: InvoiceNumberingForm | None = None) -> HttpResponse:
        form = form or InvoiceNumberingForm(
            initial={"invoice_number_pattern": self.biller.invoice_number_pattern}
        )
        context = self.get_context_data(
            form=form,
            next_number=number_preview(self.biller, timezone.localdate()),
            today=timezone.localdate(),
        )
        return render(request, self.template_name, context, status=400 if form.errors else 200)

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = InvoiceNumberingForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form)
        try:
            invoice_numbering_update(
                actor=request.user, biller=self.biller, pattern=form.cleaned_data["invoice_number_pattern"]
            )
        except ValidationFailed as exc:
            form_errors_add(form, exc, named=True)
            return self.get(request, form=form)
        messages.success(request, _("The invoice settings were saved."))
        return redirect("console:invoice_settings")
