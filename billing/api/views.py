"""The tenant REST API: customers and invoices. One view per operation; thin over services and selectors."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors, services
from billing.api.auth import actor_of
from billing.api.base import ERRORS, IDEMPOTENCY, ListPagination, TenantAPIView, validated
from billing.api.idempotency import idempotent
from billing.api.serializers import (
    CancelInput,
    CustomerInput,
    CustomerOutputDoc,
    CustomerPatch,
    InvoiceInput,
    InvoiceOutputDoc,
    InvoicePaymentOutput,
    customer_out,
    invoice_out,
)
from billing.invoicing import invoice_create_numbered
from billing.models import Customer, Invoice

AMOUNT_PATTERN = r"^\s*[0-9,]*\s*$"  # what selectors.InvoiceFilters reads: digits and commas, or nothing
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
        data = validated(CustomerInput, request.data)
        customer = services.customer_create(actor=actor_of(request), biller=self.biller, data=data)
        return Response(customer_out(customer), status=201)


class CustomerDetailApi(TenantAPIView):
    model = Customer

    @extend_schema(operation_id="customers_retrieve", responses={200: CustomerOutputDoc, **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(customer_out(self.get_object(pk)))

    @extend_schema(
        operation_id="customers_update", request=CustomerPatch, responses={200: CustomerOutputDoc, **ERRORS}
    )
    def patch(self, request: Request, pk: int) -> Response:
        customer = self.get_object(pk)
        data = validated(CustomerPatch, request.data, partial=True)
        customer = services.customer_update(
            actor=actor_of(request), biller=self.biller, customer=customer, data=data
        )
        return Response(customer_out(customer))


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
        description=(
            "Create an invoice (a draft, or published at once with `publish`). Without `number` (or with "
            "an empty one) the invoice is numbered automatically with the biller's invoice number pattern "
            "(console: Invoice settings; default `{yyyy}-{mm}-{seq:06}`, dates from `issue_date`): one "
            "more than the highest number of that pattern and period. A number is never given twice; "
            "a number typed by the client is used as it is."
        ),
        request=InvoiceInput,
        responses={201: InvoiceOutputDoc, **ERRORS},
        parameters=[IDEMPOTENCY],
        examples=[INVOICE_EXAMPLE],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = validated(InvoiceInput, request.data)
        publish = data.pop("publish")
        data["customer"] = self.customer_for(data["customer"])
        data["lines"] = [dict(line) for line in data["lines"]]

        def create(number: str) -> Invoice:
            return services.invoice_create(
                actor=actor_of(request), biller=self.biller, data={**data, "number": number}, publish=publish
            )

        number = data.pop("number", "").strip()
        if number:
            invoice = create(number)
        else:  # omitted or empty: the biller's pattern numbers it
            invoice = invoice_create_numbered(create, biller=self.biller, on=data["issue_date"])
        return Response(invoice_out(invoice), status=201)


class InvoiceDetailApi(TenantAPIView):
    model = Invoice

    def scoped_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.select_related("customer", "biller")

    @extend_schema(operation_id="invoices_retrieve", responses={200: InvoiceOutputDoc, **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(invoice_out(self.get_object(pk)))


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
        invoice = self.get_object(pk)
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
        invoice = self.get_object(pk)
        reason = validated(CancelInput, request.data).get("reason", "")
        invoice = services.invoice_cancel(
            actor=actor_of(request), biller=self.biller, invoice=invoice, reason=reason
        )
        return Response(invoice_out(invoice))


class InvoicePaymentsApi(TenantAPIView):
    """The payments recorded on an invoice (billing's record of what the network reported), oldest first."""

    model = Invoice

    @extend_schema(
        operation_id="invoices_payments",
        responses={
            200: inline_serializer(
                "InvoicePayments",
                {"invoice": serializers.IntegerField(), "results": InvoicePaymentOutput(many=True)},
            ),
            **ERRORS,
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        invoice = self.get_object(pk)
        payments = selectors.invoice_payments(biller=self.biller, invoice=invoice)
        return Response({"invoice": invoice.pk, "results": InvoicePaymentOutput(payments, many=True).data})


@extend_schema(exclude=True)
class NotFoundApi(APIView):
    """Every path under the API that names no operation: 404 in the error shape, whatever the method."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise NotFound()
