"""GET /api/v1/records/: the 電子帳簿保存法 search of the console (reconciliation.selectors.records) for
programs — the invoices issued and payments received, by date, amount and counterparty, in any
combination, newest first, in keyset pages (``after``: the ``next`` link's cursor)."""

from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.base import ERRORS, TenantAPIView, validated
from billing.errors import ValidationFailed
from reconciliation.selectors import records

AMOUNT_HELP = "yen, digits (1,000 or 1000); empty: no bound"


@extend_schema_field({"oneOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0}]})
class QueryDateField(serializers.DateField):
    """A date in a query string, where DRF reads an empty optional value as not given: the schema says so."""


class RecordQuery(serializers.Serializer):
    date_from = QueryDateField(required=False, help_text="YYYY-MM-DD (取引年月日 from); empty: no bound")
    date_to = QueryDateField(
        required=False, help_text="YYYY-MM-DD (取引年月日 to, included); empty: no bound"
    )
    amount_min = serializers.CharField(required=False, allow_blank=True, max_length=20, help_text=AMOUNT_HELP)
    amount_max = serializers.CharField(required=False, allow_blank=True, max_length=20, help_text=AMOUNT_HELP)
    counterparty = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="part of the customer's name or kana, or of the payer's kana (hiragana, katakana and "
        "half-width kana match each other)",
    )
    kind = serializers.ChoiceField(
        choices=["", *records.KINDS],
        required=False,
        allow_blank=True,
        default="",
        help_text="empty: both kinds",
    )
    after = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="cursor")
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=records.MAX_PAGE_SIZE, default=records.DEFAULT_PAGE_SIZE
    )

    def _yen(self, value: str) -> int | None:
        try:
            return records.parse_yen(value)
        except ValueError:
            raise serializers.ValidationError(
                _("Enter a whole number of yen (digits, commas allowed).")
            ) from None

    def validate_amount_min(self, value: str) -> int | None:
        return self._yen(value)

    def validate_amount_max(self, value: str) -> int | None:
        return self._yen(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = records.range_errors(filters_of(attrs))
        if errors:
            raise serializers.ValidationError({field: [message] for field, message in errors.items()})
        return attrs


class RecordOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=records.KINDS)
    id = serializers.IntegerField(help_text="the invoice's id, or the payment's ledger entry id")
    date = serializers.DateField(help_text="issue date, or the day paid (JST)")
    amount = serializers.IntegerField(help_text="yen; a reversal is negative")
    counterparty = serializers.CharField()
    counterparty_kana = serializers.CharField()
    invoice_id = serializers.IntegerField(allow_null=True)
    invoice_number = serializers.CharField()
    state = serializers.CharField(help_text="invoice status, or payment outcome")
    detail = serializers.CharField(help_text="invoice kind, or the payment's transaction key")
    console_url = serializers.CharField(allow_null=True)


class RecordPageOut(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    results = RecordOut(many=True)


def filters_of(data: dict[str, Any]) -> records.RecordFilters:
    return records.RecordFilters(
        date_from=data.get("date_from"),
        date_to=data.get("date_to"),
        amount_min=data.get("amount_min"),
        amount_max=data.get("amount_max"),
        counterparty=data.get("counterparty", ""),
        kind=data.get("kind", ""),
    )


def console_url(record: records.Record) -> str | None:
    name = "console:invoice_detail" if record.kind == records.KIND_INVOICE else "console:payment_detail"
    try:
        return reverse(name, args=[record.id])
    except NoReverseMatch:
        return None


def record_out(record: records.Record) -> dict[str, Any]:
    return {
        "kind": record.kind,
        "id": record.id,
        "date": record.day.isoformat(),
        "amount": record.amount,
        "counterparty": record.counterparty,
        "counterparty_kana": record.counterparty_kana,
        "invoice_id": record.invoice_id,
        "invoice_number": record.invoice_number,
        "state": record.state,
        "detail": record.detail,
        "console_url": console_url(record),
    }


class RecordListApi(TenantAPIView):
    @extend_schema(
        operation_id="records_list",
        parameters=[RecordQuery],
        responses={200: RecordPageOut, **ERRORS},
        description="電子帳簿保存法: search the invoices issued and payments received by date, amount and "
        "counterparty, with ranges, in any combination; newest first, in keyset pages.",
    )
    def get(self, request: Request) -> Response:
        data = validated(RecordQuery, request.query_params)
        try:
            page = records.record_search(
                biller=self.biller,
                filters=filters_of(data),
                after=data.get("after", ""),
                size=data["page_size"],
            )
        except records.BadRecordCursor:
            raise ValidationFailed(
                {"after": [_("this cursor was not given out by this API: start again from the first page")]}
            ) from None
        next_url = None
        if page.next_cursor:
            params = request.query_params.copy()
            params["after"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response({"next": next_url, "results": [record_out(r) for r in page.rows]})


urlpatterns: list[URLPattern] = [
    path("records/", RecordListApi.as_view(), name="record_list"),
]
