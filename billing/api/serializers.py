"""Input serializers (one per operation) and plain output functions (fast, no per-object serializer)."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.validators import MaxLengthValidator
from rest_framework import serializers

from billing.invoicing import TAX_CATEGORY_ALIASES, tax_category_parse
from billing.models import Customer, Invoice, InvoicePayment
from billing.validators import DESCRIPTION_MAX_LENGTH, validate_description


class TaxCategoryField(serializers.ChoiceField):
    """A tax rate: "10", "8" or "exempt", or an alias of one (8%, 軽減, 免税, …), read as the rate
    (billing.invoicing.tax_category_parse, the rule of the CSV import and the console too)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=list(TAX_CATEGORY_ALIASES), **kwargs)

    def to_internal_value(self, data: Any) -> str:
        category = (
            tax_category_parse(data) if isinstance(data, str | int) and not isinstance(data, bool) else None
        )
        if category is None:
            self.fail("invalid_choice", input=data)
        return category


class DescriptionField(serializers.CharField):
    """料金名, checked by billing.validators.description_errors (the rule of every door)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=DESCRIPTION_MAX_LENGTH, **kwargs)  # max_length: the schema's maxLength
        self.validators = [
            *(v for v in self.validators if not isinstance(v, MaxLengthValidator)),
            validate_description,
        ]


class CustomerInput(serializers.Serializer):
    code = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=100)
    name_kana = serializers.CharField(max_length=100, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=Customer.Kind.choices, required=False)
    postal_code = serializers.CharField(max_length=8, required=False, allow_blank=True)
    address = serializers.CharField(max_length=200, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=Customer.Status.choices, required=False)


class CustomerPatch(CustomerInput):
    code = serializers.CharField(max_length=32, required=False)
    name = serializers.CharField(max_length=100, required=False)


class LineInput(serializers.Serializer):
    description = serializers.CharField(max_length=100)
    quantity = serializers.IntegerField(min_value=1, default=1)
    unit_price = serializers.IntegerField()
    tax_category = TaxCategoryField()


class InvoiceInput(serializers.Serializer):
    customer = serializers.CharField(help_text="customer id or customer code")
    number = serializers.CharField(
        max_length=32,
        required=False,
        allow_blank=True,
        help_text=(
            "the invoice number, unique per biller (letters, digits and - _ / .). Omitted or empty: "
            "numbered automatically with the biller's invoice number pattern (default "
            "{yyyy}-{mm}-{seq:06}, e.g. 2026-12-000042: the issue date's year and month and a sequence "
            "that restarts every month); the number given is in the response"
        ),
    )
    external_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    issue_date = serializers.DateField()
    due_date = serializers.DateField()
    description = DescriptionField(help_text="料金名: up to 20 characters")
    lines = LineInput(many=True)
    tax_inclusive = serializers.BooleanField(default=False)
    publish = serializers.BooleanField(
        default=False, help_text="publish at once (assigns the payment numbers)"
    )


class CancelInput(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True)


def customer_out(c: Customer) -> dict[str, Any]:
    return {
        "id": c.pk,
        "code": c.code,
        "name": c.name,
        "name_kana": c.name_kana,
        "email": c.email,
        "kind": c.kind,
        "postal_code": c.postal_code,
        "address": c.address,
        "status": c.status,
        "created_at": c.created_at.isoformat(),
    }


def iso_or_none(value: datetime.date | None) -> str | None:
    """A date or time as the API shows it (ISO 8601), or None when there is none."""
    return value.isoformat() if value is not None else None


def invoice_out(inv: Invoice, *, customer_code: str | None = None) -> dict[str, Any]:
    return {
        "id": inv.pk,
        "kind": inv.kind,
        "number": inv.number,
        "external_id": inv.external_id,
        "customer": {
            "id": inv.customer_id,
            "code": customer_code
            if customer_code is not None
            else (inv.customer.code if inv.customer is not None else None),
        },
        "status": inv.status,
        "overdue": inv.is_overdue,
        "issue_date": inv.issue_date.isoformat(),
        "due_date": inv.due_date.isoformat(),
        "description": inv.description,
        "lines": inv.lines,
        "tax_inclusive": inv.tax_inclusive,
        "totals": invoice_totals(inv),
        "payment_numbers": payment_numbers(inv),
        "published_at": iso_or_none(inv.published_at),
        "cancelled_at": iso_or_none(inv.cancelled_at),
        "paid_at": iso_or_none(inv.paid_at),
    }


# OpenAPI documentation of the outputs (the views build dicts with the functions above).
class CustomerOutputDoc(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    name_kana = serializers.CharField()
    email = serializers.CharField(help_text="e-mail address, or empty when none is known")
    kind = serializers.CharField()
    postal_code = serializers.CharField()
    address = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class TotalsDoc(serializers.Serializer):
    subtotal_10 = serializers.IntegerField()
    tax_10 = serializers.IntegerField()
    subtotal_8 = serializers.IntegerField()
    tax_8 = serializers.IntegerField()
    subtotal_exempt = serializers.IntegerField()
    total = serializers.IntegerField()
    rounding = serializers.CharField()


class PaymentNumbersDoc(serializers.Serializer):
    payee_number = serializers.CharField(help_text="収納機関番号")
    customer_number = serializers.CharField(help_text="お客様番号")
    confirmation_number = serializers.CharField(help_text="確認番号")


class InvoiceOutputDoc(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    number = serializers.CharField()
    external_id = serializers.CharField()
    status = serializers.CharField()
    overdue = serializers.BooleanField()
    issue_date = serializers.DateField()
    due_date = serializers.DateField()
    description = serializers.CharField()
    lines = LineInput(many=True)
    tax_inclusive = serializers.BooleanField()
    totals = TotalsDoc()
    payment_numbers = PaymentNumbersDoc(allow_null=True)
    published_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)


class InvoicePaymentOutput(serializers.Serializer):
    """A payment on a bill as billing recorded it (``billing.models.InvoicePayment``)."""

    id = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="yen; negative for a reversal")
    paid_at = serializers.DateTimeField()
    bank_code = serializers.CharField()
    channel = serializers.ChoiceField(choices=InvoicePayment.Channel.choices)
    outcome = serializers.ChoiceField(choices=InvoicePayment.Outcome.choices)
    reason = serializers.ChoiceField(
        choices=InvoicePayment.Reason.choices, help_text="why a payment is provisional, or empty"
    )
    payment_key = serializers.CharField(help_text="the reference the payer sees (受付番号)")
    receipt_number = serializers.CharField(
        allow_null=True, help_text="the biller's receipt number (R-2026-000001); null until one is issued"
    )


class ErrorDoc(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class ErrorEnvelopeDoc(serializers.Serializer):
    error = ErrorDoc()


def invoice_totals(inv: Invoice) -> dict[str, Any]:
    """The per-rate totals of an invoice or payment request, as the API shows them."""
    return {
        "subtotal_10": inv.subtotal_10,
        "tax_10": inv.tax_10,
        "subtotal_8": inv.subtotal_8,
        "tax_8": inv.tax_8,
        "subtotal_exempt": inv.subtotal_exempt,
        "total": inv.total,
        "rounding": inv.tax_rounding,
    }


def payment_numbers(inv: Invoice) -> dict[str, Any] | None:
    """収納機関番号, お客様番号, 確認番号 of a published invoice; None before it has them."""
    if inv.customer_number is None:
        return None
    return {
        "payee_number": inv.biller.payee_number,
        "customer_number": inv.customer_number,
        "confirmation_number": inv.confirmation_number,
    }
