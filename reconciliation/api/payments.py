"""The API's payments operations (see reconciliation.api.urls): the tenant's ledger entries as the network
reported them, with the page's filters, cursor pages and the 速報/確報 state."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.base import ERRORS, ListPagination, TenantAPIView
from payeasy import codec
from payeasy.banks import bank_get, branch_get
from payeasy.models import Channel, LedgerEntry, Notice
from reconciliation.selectors import payments as selectors

AMOUNT_PATTERN = r"^\s*[0-9,]*\s*$"  # what selectors.PaymentFilters reads: digits and commas, or nothing
DATE_PATTERN = r"^\s*([0-9]{4}-[0-9]{2}-[0-9]{2})?\s*$"


class CodeNameDoc(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField(allow_null=True, help_text="from the 全銀 master; null when unknown")


class InvoiceRefDoc(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()


class PaymentOutputDoc(serializers.Serializer):
    id = serializers.IntegerField(help_text="ledger entry id")
    paid_at = serializers.DateTimeField(help_text="収納日時 as the bank reported it, in JST (+09:00)")
    processing_date = serializers.DateField(help_text="処理日 (the notice's processing date)")
    amount = serializers.IntegerField(help_text="yen; negative for a reversal")
    kind = serializers.ChoiceField(choices=Notice.Kind.choices)
    outcome = serializers.ChoiceField(choices=LedgerEntry.Outcome.choices)
    reason = serializers.ChoiceField(choices=LedgerEntry.Reason.choices, help_text="仮消込 reason, or empty")
    source = serializers.ChoiceField(choices=Notice.Source.choices)  # type: ignore[assignment]
    bank = CodeNameDoc()
    branch = CodeNameDoc()
    channel = serializers.ChoiceField(choices=Channel.choices, help_text="チャネル区分")
    transaction_key = serializers.CharField()
    original_transaction_key = serializers.CharField(allow_null=True, help_text="a reversal's payment")
    confirmation = serializers.ChoiceField(
        choices=selectors.Confirmation.choices, help_text="preliminary: 速報; confirmed: 確報"
    )
    invoice = InvoiceRefDoc(allow_null=True)
    customer_number = serializers.CharField(help_text="お客様番号 as reported")
    reverses = serializers.IntegerField(allow_null=True, help_text="the ledger entry a reversal undoes")


def payment_out(entry: Any) -> dict[str, Any]:
    """One ledger entry as the API shows it (``selectors.payment_entries``'s annotations loaded)."""
    n = entry.notice
    bank, branch = bank_get(n.bank_code), branch_get(n.bank_code, n.branch_code)
    return {
        "id": entry.pk,
        "paid_at": n.paid_at.astimezone(codec.JST).isoformat(),
        "processing_date": n.key_date.isoformat(),
        "amount": entry.amount,
        "kind": n.kind,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "source": n.source,
        "bank": {"code": n.bank_code, "name": bank.name if bank is not None else None},
        "branch": {"code": n.branch_code, "name": branch.name if branch is not None else None},
        "channel": n.channel,
        "transaction_key": n.transaction_key,
        "original_transaction_key": n.original_key or None,
        "confirmation": entry.confirmation,
        "invoice": {"id": entry.invoice_id, "number": entry.invoice_number} if entry.invoice_id else None,
        "customer_number": n.customer_number,
        "reverses": entry.reverses_id,
    }


class PaymentListApi(TenantAPIView):
    model = LedgerEntry
    pagination_class = ListPagination

    @extend_schema(
        operation_id="payments_list",
        responses={200: PaymentOutputDoc(many=True), **ERRORS},
        parameters=[
            OpenApiParameter(
                "paid_from", str, pattern=DATE_PATTERN, description="first day paid (JST), YYYY-MM-DD"
            ),
            OpenApiParameter(
                "paid_to", str, pattern=DATE_PATTERN, description="last day paid (JST), YYYY-MM-DD"
            ),
            OpenApiParameter("processing_date", str, pattern=DATE_PATTERN, description="YYYY-MM-DD"),
            OpenApiParameter("channel", str, enum=["", *Channel.values], description="empty: every channel"),
            OpenApiParameter(
                "bank",
                str,
                pattern=r"^\s*([0-9]{4})?\s*$",
                description="4-digit bank code; empty: every bank",
            ),
            OpenApiParameter(
                "outcome", str, enum=["", *LedgerEntry.Outcome.values], description="empty: every outcome"
            ),
            OpenApiParameter(
                "amount_min",
                str,
                pattern=AMOUNT_PATTERN,
                description="yen moved, either sign; empty: no bound",
            ),
            OpenApiParameter(
                "amount_max",
                str,
                pattern=AMOUNT_PATTERN,
                description="yen moved, either sign; empty: no bound",
            ),
        ],
    )
    def get(self, request: Request) -> Response:
        filters = selectors.PaymentFilters.parse(request.query_params)
        qs = selectors.payment_list(biller=self.biller, filters=filters)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response([payment_out(e) for e in page or []])


urlpatterns: list[URLPattern] = [
    path("payments/", PaymentListApi.as_view(), name="payment_list"),
]
