"""The tenant console's invoice, customer and API key pages.

Every view inherits ``TenantConsoleView`` (membership, read-only operators,
the tenant filter). Reads go through ``get_queryset()`` or the selectors;
every write goes through a service.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing import selectors, services
from billing.console_forms import (
    ApiKeyForm,
    BaseLineFormSet,
    CancelForm,
    CustomerForm,
    CustomerSearchForm,
    InvoiceFilterForm,
    InvoiceForm,
    LineForm,
    LineFormSet,
    apply_form_errors,
    apply_invoice_errors,
)
from billing.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from billing.models import ApiKey, Customer, Invoice
from billing.tenancy import TenantRequest
from billing.views import TenantConsoleView

INVOICE_PAGE_SIZE = 50
CUSTOMER_PAGE_SIZE = 50
CUSTOMER_SUGGESTIONS = 200

logger = logging.getLogger(__name__)


def _refused_by_database(exc: IntegrityError) -> str:
    """A database rule refused a service's write (the service rolled back): logged as the bug it is."""
    logger.exception("a service write was refused by the database", exc_info=exc)
    return _("the database refused the change; nothing was changed. Please report this.")


# --- keyset pagination ---------------------------------------------------------------------------------


class BadCursor(ValueError):
    pass


@dataclass
class KeysetPage:
    rows: list[Any]
    next_cursor: str | None
    previous_cursor: str | None
    is_first: bool


def _field_names(ordering: tuple[str, ...]) -> list[str]:
    return [o.lstrip("-") for o in ordering]


def encode_cursor(sort: str, ordering: tuple[str, ...], row: Any) -> str:
    values = [getattr(row, name) for name in _field_names(ordering)]
    payload = json.dumps([sort, *values], separators=(",", ":"), default=str, ensure_ascii=False)
    return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()


def decode_cursor(
    token: str, sort: str, ordering: tuple[str, ...], model: type[Model] = Invoice
) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw.decode())
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadCursor from exc
    names = _field_names(ordering)
    if not isinstance(data, list) or len(data) != len(names) + 1 or data[0] != sort:
        raise BadCursor
    try:
        values = [
            model._meta.get_field(n).to_python(v)  # type: ignore[union-attr]
            for n, v in zip(names, data[1:], strict=True)
        ]
    except (ValidationError, TypeError, ValueError) as exc:
        raise BadCursor from exc
    # every sort key is NOT NULL, and a number must fit the BIGINT columns
    if any(v is None or isinstance(v, bool | dict | list) for v in values) or any(
        isinstance(v, int) and not -(2**63) <= v < 2**63 for v in values
    ):
        raise BadCursor
    return values


def _beyond(ordering: tuple[str, ...], values: list[Any], *, backwards: bool) -> Q:
    """Rows strictly after the cursor in ``ordering`` (strictly before it when ``backwards``).

    (a, b) after (x, y) is ``a > x OR (a = x AND b > y)``; the extra ``a >= x``
    bounds the first key so the index scan starts at the cursor, not at the top.
    """
    names = _field_names(ordering)
    descending = [o.startswith("-") != backwards for o in ordering]
    equal = Q()
    beyond: Q | None = None
    for name, desc, value in zip(names, descending, values, strict=True):
        step = equal & Q(**{f"{name}__{'lt' if desc else 'gt'}": value})
        beyond = step if beyond is None else beyond | step
        equal &= Q(**{name: value})
    first = Q(**{f"{names[0]}__{'lte' if descending[0] else 'gte'}": values[0]})
    return first & beyond  # type: ignore[operator]


def keyset_page(
    qs: QuerySet, *, sort: str, ordering: tuple[str, ...], after: str, before: str, size: int
) -> KeysetPage:
    """One page of ``qs`` (ordered by ``ordering``) after or before a cursor, with LIMIT size+1, no COUNT."""
    if before:
        values = decode_cursor(before, sort, ordering)
        flipped = [o[1:] if o.startswith("-") else f"-{o}" for o in ordering]
        rows = list(qs.filter(_beyond(ordering, values, backwards=True)).order_by(*flipped)[: size + 1])
        has_previous = len(rows) > size
        rows = rows[:size][::-1]
        has_next = True
    else:
        if after:
            qs = qs.filter(_beyond(ordering, decode_cursor(after, sort, ordering), backwards=False))
        rows = list(qs[: size + 1])
        has_next = len(rows) > size
        rows = rows[:size]
        has_previous = bool(after)
    return KeysetPage(
        rows=rows,
        next_cursor=encode_cursor(sort, ordering, rows[-1]) if has_next and rows else None,
        previous_cursor=encode_cursor(sort, ordering, rows[0]) if has_previous and rows else None,
        is_first=not (after or before) or (bool(before) and not has_previous),
    )


def _query(params: QueryDict, **changes: str) -> str:
    """``params`` without the paging cursors, plus ``changes``, as a query string."""
    out = params.copy()
    for name in ("after", "before"):
        out.pop(name, None)
    for name, value in changes.items():
        out[name] = value
    return out.urlencode()


# --- invoices ------------------------------------------------------------------------------------------


class InvoiceConsoleView(TenantConsoleView):
    model = Invoice
    nav_section = "invoices"

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().select_related("customer")

    def customers(self) -> QuerySet[Customer]:
        return Customer.objects.filter(biller=self.biller)


class InvoiceListView(InvoiceConsoleView):
    template_name = "billing/console/invoice_list.html"
    page_size = INVOICE_PAGE_SIZE

    def get(self, request: TenantRequest) -> HttpResponse:
        form = InvoiceFilterForm(request.GET or None)
        page: KeysetPage | None = None
        status = 200
        params = request.GET
        try:
            filters = selectors.InvoiceFilters.parse(params)
        except ValidationFailed as exc:
            form.is_valid()
            form.apply_errors(exc)
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
            first_url=f"{path}?{_query(params)}",
            next_url=f"{path}?{_query(params, after=page.next_cursor)}" if page and page.next_cursor else "",
            previous_url=(
                f"{path}?{_query(params, before=page.previous_cursor)}"
                if page and page.previous_cursor
                else ""
            ),
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
            messages.error(request, _("Nothing was changed: %(error)s") % {"error": _error_text(exc)})
        except IntegrityError as exc:  # e.g. cancelling a draft: see the report on invoice_cancel
            messages.error(
                request, _("Nothing was changed: %(error)s") % {"error": _refused_by_database(exc)}
            )
        return redirect(back)


def _error_text(exc: Exception) -> str:
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
        context = self.get_context_data(
            form=form, formset=formset, invoice=invoice, customer_suggestions=suggestions
        )
        return render(request, self.template_name, context, status=status)

    def bound(self, request: TenantRequest) -> tuple[InvoiceForm, BaseLineFormSet]:
        return (
            InvoiceForm(request.POST, customers=self.customers()),
            LineFormSet(request.POST, prefix="lines"),
        )

    def lines_of(self, formset: BaseLineFormSet) -> tuple[list[dict[str, Any]], list[int]]:
        filled = formset.filled()
        return [f.to_line() for _i, f in filled], [i for i, _f in filled]  # type: ignore[attr-defined]


class InvoiceCreateView(InvoiceFormMixin):
    def get(self, request: TenantRequest) -> HttpResponse:
        from django.utils import timezone

        form = InvoiceForm(customers=self.customers(), initial={"issue_date": timezone.localdate()})
        return self.render_form(request, form, LineFormSet(prefix="lines"))

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form, formset = self.bound(request)
        if not (form.is_valid() and formset.is_valid()):
            return self.render_form(request, form, formset, status=400)
        lines, rows = self.lines_of(formset)
        publish = "publish" in request.POST
        try:
            invoice = services.invoice_create(
                actor=request.user,
                biller=self.biller,
                data={**form.to_input(), "lines": lines},
                publish=publish,
            )
        except ValidationFailed as exc:
            apply_invoice_errors(exc, form, formset, rows)
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
        invoice: Invoice = self.get_object(pk)  # type: ignore[assignment]
        if not self.editable(invoice):
            return self.locked(request, invoice)
        form = InvoiceForm(customers=self.customers(), initial=InvoiceForm.initial_for(invoice))
        formset = LineFormSet(prefix="lines", initial=[LineForm.initial_for(line) for line in invoice.lines])
        return self.render_form(request, form, formset, invoice=invoice)

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        invoice: Invoice = self.get_object(pk)  # type: ignore[assignment]
        if not self.editable(invoice):
            return self.locked(request, invoice)
        form, formset = self.bound(request)
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
            apply_invoice_errors(exc, form, formset, rows)
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

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().select_related("original")

    def get(self, request: TenantRequest, pk: int, cancel_form: CancelForm | None = None) -> HttpResponse:
        invoice: Invoice = self.get_object(pk)  # type: ignore[assignment]
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
            cancel_form=cancel_form or CancelForm(),
            can_edit=invoice.status == Invoice.Status.DRAFT and invoice.kind == Invoice.Kind.INVOICE,
            can_publish=invoice.status == Invoice.Status.DRAFT,
            can_cancel=invoice.status in {Invoice.Status.DRAFT, Invoice.Status.PUBLISHED},
        )
        return render(request, self.template_name, context, status=400 if cancel_form is not None else 200)


class InvoicePublishView(InvoiceConsoleView):
    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        invoice: Invoice = self.get_object(pk)  # type: ignore[assignment]
        try:
            invoice = services.invoice_publish(actor=request.user, biller=self.biller, invoice=invoice)
        except (InvalidTransition, ValidationFailed, NotFound, Conflict) as exc:
            messages.error(
                request, _("The invoice was not published: %(error)s") % {"error": _error_text(exc)}
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
        invoice: Invoice = self.get_object(pk)  # type: ignore[assignment]
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
                request, _("The invoice was not cancelled: %(error)s") % {"error": _error_text(exc)}
            )
        except IntegrityError as exc:  # e.g. cancelling a draft: see the report on invoice_cancel
            messages.error(
                request,
                _("The invoice was not cancelled: %(error)s") % {"error": _refused_by_database(exc)},
            )
        else:
            messages.success(request, _("Invoice %(number)s was cancelled.") % {"number": invoice.number})
        return redirect("console:invoice_detail", pk=pk)


class InvoicePdfView(InvoiceConsoleView):
    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        invoice: Invoice = self.get_object(pk)  # type: ignore[assignment]
        from billing.pdf import invoice_pdf, pdf_filename  # imported here: only PDF pages load reportlab

        response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=pdf_filename(invoice)
        )
        return response


# --- customers -----------------------------------------------------------------------------------------


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
            apply_form_errors(form, exc.errors)
            return self.render_form(request, form, None, status=400)
        messages.success(request, _("Customer %(code)s was added.") % {"code": customer.code})
        return redirect("console:customer_list")


class CustomerEditView(CustomerFormView):
    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        customer: Customer = self.get_object(pk)  # type: ignore[assignment]
        return self.render_form(request, CustomerForm(instance=customer), customer)

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        customer: Customer = self.get_object(pk)  # type: ignore[assignment]
        # the form works on a copy; the service locks the row and applies the change
        form = CustomerForm(request.POST, instance=self.get_object(pk))
        if not form.is_valid():
            return self.render_form(request, form, customer, status=400)
        try:
            customer = services.customer_update(
                actor=request.user, biller=self.biller, customer=customer, data=form.to_input()
            )
        except ValidationFailed as exc:
            apply_form_errors(form, exc.errors)
            return self.render_form(request, form, customer, status=400)
        except NotFound as exc:
            raise Http404 from exc
        messages.success(request, _("Customer %(code)s was saved.") % {"code": customer.code})
        return redirect("console:customer_list")


# --- API keys ------------------------------------------------------------------------------------------


class ApiKeyListView(TenantConsoleView):
    """The biller's API keys; a new key's secret is on the response to its creation and nowhere else."""

    model = ApiKey
    nav_section = "api_keys"
    template_name = "billing/console/api_keys.html"

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().select_related("created_by").order_by("-created_at", "-id")

    def get(
        self,
        request: TenantRequest,
        form: ApiKeyForm | None = None,
        new_key: ApiKey | None = None,
        token: str = "",
        status: int = 200,
    ) -> HttpResponse:
        context = self.get_context_data(
            keys=self.get_queryset(), form=form or ApiKeyForm(), new_key=new_key, token=token
        )
        response = render(request, self.template_name, context, status=status)
        if token:
            add_never_cache_headers(response)
        return response

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = ApiKeyForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form, status=400)
        try:
            key, token = services.api_key_create(
                actor=request.user, biller=self.biller, name=form.cleaned_data["name"]
            )
        except ValidationFailed as exc:
            apply_form_errors(form, exc.errors)
            return self.get(request, form=form, status=400)
        # rendered, not redirected: the secret must not travel through the session or a later page
        return self.get(request, new_key=key, token=token)


class ApiKeyRevokeView(TenantConsoleView):
    model = ApiKey
    nav_section = "api_keys"

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        key: ApiKey = self.get_object(pk)  # type: ignore[assignment]
        try:
            services.api_key_revoke(actor=request.user, biller=self.biller, key_id=key.pk)
        except NotFound as exc:
            raise Http404 from exc
        messages.success(request, _("API key %(name)s was revoked.") % {"name": key.name})
        return redirect("console:api_key_list")
