"""The tenant API of payment requests (pay-later numbers for orders) and customer balances (chosen
amounts). One view per operation; thin over services and selectors; the invoice API's error shape,
pagination and Idempotency-Key."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors, services
from billing.api.auth import actor_of
from billing.api.base import ERRORS, IDEMPOTENCY, ListPagination, TenantAPIView, validated
from billing.api.idempotency import idempotent
from billing.api.serializers import (
    CancelInput,
    DescriptionField,
    PaymentNumbersDoc,
    TaxCategoryField,
    TotalsDoc,
    invoice_totals,
    iso_or_none,
    payment_numbers,
)
from billing.errors import ValidationFailed
from billing.models import BalanceAccount, Customer, Invoice
from billing.paylater import link_expires, paylater_link

# --- serializers -------------------------------------------------------------------------------------------


class PaymentRequestInput(serializers.Serializer):
    amount = serializers.IntegerField(help_text="yen, tax included")
    description = DescriptionField(help_text="料金名: up to 20 characters, shown at ATMs")
    due_date = serializers.DateField()
    email = serializers.EmailField(
        required=False,
        allow_blank=True,
        help_text="the numbers and the link go here (default: the customer's)",
    )
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    external_id = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="your order reference; unique"
    )
    customer = serializers.CharField(
        required=False, allow_blank=True, help_text="customer id or code (optional)"
    )
    tax_category = TaxCategoryField(default="10")


class BalanceItemInput(serializers.Serializer):
    date = serializers.DateField()
    description = serializers.CharField(max_length=100)
    amount = serializers.IntegerField(help_text="the item's amount (yen)")
    outstanding = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="what is still owed; omitted: the whole amount for a new "
        "item, unchanged for a known one (same date and description)",
    )


class BalanceInput(serializers.Serializer):
    minimum_payment = serializers.IntegerField()
    items = BalanceItemInput(
        many=True, help_text="the whole balance as of now; known items missing are settled"
    )


class PaymentRequestOutputDoc(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    external_id = serializers.CharField()
    status = serializers.CharField()
    overdue = serializers.BooleanField()
    amount = serializers.IntegerField()
    tax_category = serializers.CharField()
    description = serializers.CharField()
    issue_date = serializers.DateField()
    due_date = serializers.DateField()
    email = serializers.CharField()
    name = serializers.CharField()
    customer = serializers.DictField(allow_null=True)
    balance = serializers.BooleanField(help_text="a chosen amount repaying the customer's balance")
    totals = TotalsDoc()
    payment_numbers = PaymentNumbersDoc(allow_null=True)
    pay_url = serializers.CharField(help_text="the customer's page with the numbers (no login)")
    pay_url_expires = serializers.DateField()
    notified_at = serializers.DateTimeField(allow_null=True)
    published_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)


class BalanceItemDoc(serializers.Serializer):
    date = serializers.DateField()
    description = serializers.CharField()
    amount = serializers.IntegerField()
    outstanding = serializers.IntegerField()


class BalanceOutputDoc(serializers.Serializer):
    customer = serializers.CharField()
    minimum_payment = serializers.IntegerField()
    balance = serializers.IntegerField()
    credit = serializers.IntegerField()
    payable_from = serializers.IntegerField()
    payable_to = serializers.IntegerField()
    items = BalanceItemDoc(many=True)


def payment_request_out(request: Request, inv: Invoice) -> dict[str, Any]:
    return {
        "id": inv.pk,
        "number": inv.number,
        "external_id": inv.external_id,
        "status": inv.status,
        "overdue": inv.is_overdue,
        "amount": inv.total,
        "tax_category": inv.lines[0].get("tax_category", "") if inv.lines else "",
        "description": inv.description,
        "issue_date": inv.issue_date.isoformat(),
        "due_date": inv.due_date.isoformat(),
        "email": inv.recipient_email,
        "name": inv.recipient_name,
        "customer": None
        if inv.customer_id is None
        else {"id": inv.customer_id, "code": inv.customer.code if inv.customer is not None else None},
        "balance": hasattr(inv, "balance_request"),
        "totals": invoice_totals(inv),
        "payment_numbers": payment_numbers(inv),
        "pay_url": paylater_link(request, inv),
        "pay_url_expires": link_expires(inv).isoformat(),
        "notified_at": iso_or_none(inv.notified_at),
        "published_at": iso_or_none(inv.published_at),
        "cancelled_at": iso_or_none(inv.cancelled_at),
        "paid_at": iso_or_none(inv.paid_at),
    }


def balance_out(account: BalanceAccount) -> dict[str, Any]:
    limits = selectors.balance_range(account)
    return {
        "customer": account.customer.code,
        "minimum_payment": account.minimum_payment,
        "balance": limits.balance,
        "credit": account.credit,
        "payable_from": limits.low,
        "payable_to": limits.high,
        "items": [
            {
                "date": item.date.isoformat(),
                "description": item.description,
                "amount": item.amount,
                "outstanding": item.outstanding,
            }
            for item in selectors.balance_items(account=account)
        ],
    }


PAYMENT_REQUEST_EXAMPLE = OpenApiExample(
    "カタログ通販のご注文（ATM後払い）",
    request_only=True,
    value={
        "amount": 12800,
        "description": "カタログ通販ご注文",
        "due_date": "2026-12-15",
        "email": "hanako@example.jp",
        "name": "佐藤 花子",
        "external_id": "order-20261201-0042",
        "tax_category": "10",
    },
)
BALANCE_EXAMPLE = OpenApiExample(
    "カードのご利用残高",
    request_only=True,
    value={
        "minimum_payment": 5000,
        "items": [
            {"date": "2026-10-10", "description": "9月ご利用分", "amount": 30000},
            {"date": "2026-11-10", "description": "10月ご利用分", "amount": 12000},
        ],
    },
)


# --- payment requests -------------------------------------------------------------------------------------


class PaymentRequestApiView(TenantAPIView):
    model = Invoice

    def scoped_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.filter(kind=Invoice.Kind.PAYMENT_REQUEST).select_related(
            "customer", "biller", "balance_request"
        )


class PaymentRequestListApi(PaymentRequestApiView):
    pagination_class = ListPagination

    @extend_schema(
        operation_id="payment_requests_list",
        responses={200: PaymentRequestOutputDoc(many=True), **ERRORS},
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=["", "published", "overdue", "paid", "cancelled"],
                description="empty: every status",
            ),
            OpenApiParameter(
                "q", str, description="number, お客様番号, external id, e-mail or customer code"
            ),
        ],
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status", "").strip()
        if status and status not in {"published", "overdue", "paid", "cancelled"}:
            raise ValidationFailed({"status": [f"unknown status {status!r}"]})
        qs = selectors.payment_request_list(
            biller=self.biller, status=status, q=request.query_params.get("q", "")
        ).select_related("balance_request")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response([payment_request_out(request, inv) for inv in page or []])

    @extend_schema(
        operation_id="payment_requests_create",
        request=PaymentRequestInput,
        responses={201: PaymentRequestOutputDoc, **ERRORS},
        parameters=[IDEMPOTENCY],
        examples=[PAYMENT_REQUEST_EXAMPLE],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = validated(PaymentRequestInput, request.data)
        reference = str(data.pop("customer", "") or "").strip()
        data["customer"] = self.customer_for(reference) if reference else None
        invoice = services.payment_request_create(actor=actor_of(request), biller=self.biller, data=data)
        return Response(payment_request_out(request, invoice), status=201)


class PaymentRequestDetailApi(PaymentRequestApiView):
    @extend_schema(
        operation_id="payment_requests_retrieve", responses={200: PaymentRequestOutputDoc, **ERRORS}
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(payment_request_out(request, self.get_object(pk)))


class PaymentRequestCancelApi(PaymentRequestApiView):
    @extend_schema(
        operation_id="payment_requests_cancel",
        request=CancelInput,
        responses={200: PaymentRequestOutputDoc, **ERRORS},
        parameters=[IDEMPOTENCY],
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        invoice = self.get_object(pk)
        reason = validated(CancelInput, request.data).get("reason", "")
        services.payment_request_cancel(
            actor=actor_of(request), biller=self.biller, invoice=invoice, reason=reason
        )
        return Response(payment_request_out(request, self.get_object(pk)))


# --- balances ---------------------------------------------------------------------------------------------


class CustomerBalanceApi(TenantAPIView):
    """A customer's balance, by customer code: read it, or state it (PUT replaces the items)."""

    model = Customer

    def customer(self, code: str) -> Customer:
        customer = self.get_queryset().filter(code=code).first()
        if customer is None:
            raise Http404
        return customer

    @extend_schema(operation_id="customers_balance_retrieve", responses={200: BalanceOutputDoc, **ERRORS})
    def get(self, request: Request, code: str) -> Response:
        customer = self.customer(code)
        account = selectors.balance_account_of(biller=self.biller, customer=customer)
        if account is None:
            raise Http404
        return Response(balance_out(account))

    @extend_schema(
        operation_id="customers_balance_update",
        request=BalanceInput,
        responses={200: BalanceOutputDoc, **ERRORS},
        examples=[BALANCE_EXAMPLE],
    )
    def put(self, request: Request, code: str) -> Response:
        customer = self.customer(code)
        data = validated(BalanceInput, request.data)
        account = services.balance_account_set(
            actor=actor_of(request),
            biller=self.biller,
            customer=customer,
            minimum_payment=data["minimum_payment"],
            items=[dict(item) for item in data["items"]],
        )
        account.customer = customer
        return Response(balance_out(account))
