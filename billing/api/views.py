"""The tenant REST API: customers and invoices. One view per operation; thin over services and selectors."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import IntegerField, QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors, services
from billing.api.auth import actor_of
from billing.api.base import TenantAPIView
from billing.api.idempotency import idempotent
from billing.api.serializers import (
    CancelInput,
    CustomerInput,
    CustomerOutputDoc,
    CustomerPatch,
    ErrorEnvelopeDoc,
    InvoiceInput,
    InvoiceOutputDoc,
    customer_out,
    invoice_out,
)
from billing.errors import ValidationFailed
from billing.models import Customer, Invoice

AMOUNT_PATTERN = r"^\s*[0-9,]*\s*$"  # what selectors.InvoiceFilters reads: digits and commas, or nothing
IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="同じキーと同じ本文の再送は保存済みの応答を返します（24時間、テナントごと）。"
    "The same key with the same body replays the stored response (24 h, per tenant).",
)
ERRORS = {
    400: ErrorEnvelopeDoc,
    401: ErrorEnvelopeDoc,
    403: ErrorEnvelopeDoc,
    404: ErrorEnvelopeDoc,
    409: ErrorEnvelopeDoc,
    422: ErrorEnvelopeDoc,
}

INVOICE_EXAMPLE = OpenApiExample(
    "電気料金の請求書（公開まで）",
    request_only=True,
    value={
        "customer": "D-000101",
        "number": "2026-11-000101",
        "external_id": "cis-7781-202611",
        "issue_date": "2026-11-01",
        "due_date": "2026-11-30",
        "description": "11月分電気料金",
        "lines": [
            {"description": "基本料金", "quantity": 1, "unit_price": 1200, "tax_category": "10"},
            {"description": "電力量料金 300kWh", "quantity": 300, "unit_price": 31, "tax_category": "10"},
        ],
        "tax_inclusive": False,
        "publish": True,
    },
)
CUSTOMER_EXAMPLE = OpenApiExample(
    "個人のお客様",
    request_only=True,
    value={
        "code": "D-000199",
        "name": "田中 一郎",
        "name_kana": "タナカ イチロウ",
        "email": "ichiro@example.jp",
        "kind": "consumer",
        "postal_code": "100-0001",
        "address": "東京都千代田区千代田1-1",
    },
)


class ListPagination(CursorPagination):
    """Cursor pages. A cursor is client input: one this API did not give out (unreadable, or a position
    that is not a value of the sort column) is a 400 in the one error shape, never a query that fails."""

    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> tuple[str, ...]:
        return tuple(str(field) for field in queryset.query.order_by) or ("-id",)

    def get_page_size(self, request: Request) -> int:
        """``page_size`` is 1 to 500 when given; anything else is a 400 (not silently the default)."""
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= self.max_page_size):
            raise ValidationFailed(
                {
                    self.page_size_query_param: [
                        _("must be a whole number from 1 to %(max)d") % {"max": self.max_page_size}
                    ]
                }
            )
        return int(text)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise _bad_cursor() from None
        if cursor is not None and cursor.position is not None:
            field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
            try:
                value = field.to_python(cursor.position)
            except (DjangoValidationError, ValueError, TypeError):
                raise _bad_cursor() from None
            if value is None or "\x00" in str(cursor.position):
                raise _bad_cursor()
            if isinstance(field, IntegerField) and not -(2**63) <= value < 2**63:
                raise _bad_cursor()
        return cursor


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed(
        {"cursor": [_("this cursor was not given out by this API: start again from the first page")]}
    )


def _validated(serializer_class: type, data: Any, **kwargs: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class CustomerListApi(TenantAPIView):
    model = Customer
    pagination_class = ListPagination

    @extend_schema(
        operation_id="customers_list",
        responses={200: CustomerOutputDoc(many=True), **ERRORS},
        parameters=[OpenApiParameter("q", str, description="code or name contains")],
    )
    def get(self, request: Request) -> Response:
        qs = self.get_queryset().order_by("code", "id")
        q = request.query_params.get("q", "").strip()
        if q:
            qs = qs.filter(code__icontains=q) | qs.filter(name__icontains=q)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response([customer_out(c) for c in page or []])

    @extend_schema(
        operation_id="customers_create",
        request=CustomerInput,
        responses={201: CustomerOutputDoc, **ERRORS},
        parameters=[IDEMPOTENCY],
        examples=[CUSTOMER_EXAMPLE],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = _validated(CustomerInput, request.data)
        customer = services.customer_create(actor=actor_of(request), biller=self.biller, data=data)
        return Response(customer_out(customer), status=201)


class CustomerDetailApi(TenantAPIView):
    model = Customer

    @extend_schema(operation_id="customers_retrieve", responses={200: CustomerOutputDoc, **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(customer_out(self.get_object_by_pk(pk)))

    @extend_schema(
        operation_id="customers_update", request=CustomerPatch, responses={200: CustomerOutputDoc, **ERRORS}
    )
    def patch(self, request: Request, pk: int) -> Response:
        customer = self.get_object_by_pk(pk)
        data = _validated(CustomerPatch, request.data, partial=True)
        customer = services.customer_update(
            actor=actor_of(request), biller=self.biller, customer=customer, data=data
        )
        return Response(customer_out(customer))


def _customer_for(biller: Any, reference: str) -> Customer:
    qs = Customer.objects.filter(biller=biller)
    found = qs.filter(code=reference).first()
    if found is None and reference.isdigit():
        found = qs.filter(pk=int(reference)).first()
    if found is None:
        raise ValidationFailed({"customer": [_("no customer %(ref)r for this biller") % {"ref": reference}]})
    return found


class InvoiceListApi(TenantAPIView):
    model = Invoice
    pagination_class = ListPagination

    @extend_schema(
        operation_id="invoices_list",
        responses={200: InvoiceOutputDoc(many=True), **ERRORS},
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=["", "draft", "published", "paid", "cancelled", "overdue"],
                description="empty: every status",
            ),
            OpenApiParameter("kind", str, enum=["", *Invoice.Kind.values], description="empty: every kind"),
            OpenApiParameter("due_from", str, description="YYYY-MM-DD"),
            OpenApiParameter("due_to", str, description="YYYY-MM-DD"),
            OpenApiParameter("customer", str, description="customer id or code"),
            OpenApiParameter(
                "amount_min", str, pattern=AMOUNT_PATTERN, description="yen (1,000 or 1000); empty: no bound"
            ),
            OpenApiParameter(
                "amount_max", str, pattern=AMOUNT_PATTERN, description="yen (1,000 or 1000); empty: no bound"
            ),
            OpenApiParameter(
                "q", str, description="invoice number, お客様番号, external id or customer name"
            ),
            OpenApiParameter(
                "sort", str, enum=["", *selectors.INVOICE_SORTS], description="empty: -issue_date"
            ),
        ],
    )
    def get(self, request: Request) -> Response:
        filters = selectors.InvoiceFilters.parse(request.query_params)
        qs = selectors.invoice_list(biller=self.biller, filters=filters).select_related("customer", "biller")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response([invoice_out(inv) for inv in page or []])

    @extend_schema(
        operation_id="invoices_create",
        request=InvoiceInput,
        responses={201: InvoiceOutputDoc, **ERRORS},
        parameters=[IDEMPOTENCY],
        examples=[INVOICE_EXAMPLE],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = _validated(InvoiceInput, request.data)
        publish = data.pop("publish")
        data["customer"] = _customer_for(self.biller, data["customer"])
        data["lines"] = [dict(line) for line in data["lines"]]
        invoice = services.invoice_create(
            actor=actor_of(request), biller=self.biller, data=data, publish=publish
        )
        return Response(invoice_out(invoice), status=201)


class InvoiceDetailApi(TenantAPIView):
    model = Invoice

    def get_base_queryset(self) -> QuerySet:
        return Invoice.objects.select_related("customer", "biller")

    @extend_schema(operation_id="invoices_retrieve", responses={200: InvoiceOutputDoc, **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(invoice_out(self.get_object_by_pk(pk)))


class InvoicePublishApi(TenantAPIView):
    model = Invoice

    @extend_schema(
        operation_id="invoices_publish",
        request=None,
        responses={200: InvoiceOutputDoc, **ERRORS},
        parameters=[IDEMPOTENCY],
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        invoice = self.get_object_by_pk(pk)
        invoice = services.invoice_publish(actor=actor_of(request), biller=self.biller, invoice=invoice)
        return Response(invoice_out(invoice))


class InvoiceCancelApi(TenantAPIView):
    model = Invoice

    @extend_schema(
        operation_id="invoices_cancel",
        request=CancelInput,
        responses={200: InvoiceOutputDoc, **ERRORS},
        parameters=[IDEMPOTENCY],
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        invoice = self.get_object_by_pk(pk)
        reason = _validated(CancelInput, request.data).get("reason", "")
        invoice = services.invoice_cancel(
            actor=actor_of(request), biller=self.biller, invoice=invoice, reason=reason
        )
        return Response(invoice_out(invoice))


class InvoicePaymentsApi(TenantAPIView):
    """Payments recorded for an invoice over the MPN line (the communication server writes them)."""

    model = Invoice

    @extend_schema(operation_id="invoices_payments", responses={200: dict, **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        invoice = self.get_object_by_pk(pk)
        return Response({"invoice": invoice.pk, "results": selectors.invoice_payments(invoice=invoice)})


@extend_schema(exclude=True)
class NotFoundApi(APIView):
    """Every path under the API that names no operation: 404 in the error shape, whatever the method."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise NotFound()
