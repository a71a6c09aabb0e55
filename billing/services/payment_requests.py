"""Payment requests: an order's pay-later numbers (ATM後払い) without invoice lines.

A payment request is an ``Invoice`` of kind ``payment_request``, published at once (its numbers are
given on creation), so the line's inquiry and payment path reads it like any bill. Its amount is
tax-included in one tax category (10 %, 8 % or exempt); the per-rate totals are computed like one
line of that amount (billing.invoicing). The customer gets the numbers and a signed link
(billing.paylater) by e-mail after commit.
"""

from __future__ import annotations

import datetime
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import events
from billing.errors import InvalidTransition, NotFound, ValidationFailed
from billing.invoicing import MAX_TOTAL, LineError, compute_totals, tax_category_parse
from billing.models import ApiKey, Biller, Customer, Invoice, User
from billing.numbers import confirmation_numbers
from billing.services.audit import audit_record
from billing.services.invoices import invoice_cancel, invoice_save
from billing.services.validation import model_full_clean, reject_unknown_fields
from billing.validators import description_errors

Actor = User | ApiKey | None

PAYMENT_REQUEST_FIELDS = (
    "amount",
    "description",
    "due_date",
    "email",
    "name",
    "external_id",
    "customer",
    "tax_category",
)
DEFAULT_TAX_CATEGORY = "10"


def _new_number() -> str:
    """PR-YYYYMMDD-XXXXXXXX: not guessable from a neighbour's, and no counter to contend on."""
    return f"PR-{timezone.localdate():%Y%m%d}-{secrets.token_hex(4).upper()}"


def clean_amount(value: Any, field: str = "amount") -> int:
    """A whole number of yen, 1 to the line's maximum. Raises ValidationFailed naming ``field``."""
    if isinstance(value, bool) or value is None or value == "":
        raise ValidationFailed({field: [_("is required: a whole number of yen")]})
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().replace(",", "")
        if not text.isdigit():
            raise ValidationFailed(
                {field: [_("must be a whole number of yen, not %(value)r") % {"value": value}]}
            )
        number = int(text)
    if not 1 <= number <= MAX_TOTAL:
        raise ValidationFailed(
            {
                field: [
                    _("must be between %(low)s and %(high)s yen (got %(number)s)")
                    % {"low": "1", "high": f"{MAX_TOTAL:,}", "number": f"{number:,}"}
                ]
            }
        )
    return number


def build_payment_request(
    *,
    biller: Biller,
    amount: int,
    description: str,
    due_date: Any,
    tax_category: str = DEFAULT_TAX_CATEGORY,
    customer: Customer | None = None,
    email: str = "",
    name: str = "",
    external_id: str = "",
    require_email: bool = True,
) -> Invoice:
    """A validated, unsaved payment request. Every error names its field."""
    errors: dict[str, list[str]] = {}
    description = (description or "").strip()
    description_problems = description_errors(description)
    if description_problems:
        errors["description"] = description_problems
    today = timezone.localdate()
    if not isinstance(due_date, datetime.date):
        errors["due_date"] = [_("is required: a date YYYY-MM-DD")]
    elif due_date < today:
        errors["due_date"] = [_("must not be in the past")]
    tax_category = str(tax_category or DEFAULT_TAX_CATEGORY).strip()
    category = tax_category_parse(tax_category)
    if category is None:
        errors["tax_category"] = [_("must be 10, 8 or exempt (got %(value)r)") % {"value": tax_category}]
    if customer is not None:
        if customer.biller_id != biller.pk:
            errors["customer"] = [_("unknown customer")]
        elif customer.status != Customer.Status.ACTIVE:
            errors["customer"] = [_("customer %(code)s is inactive") % {"code": customer.code}]
    email = (email or "").strip() or (customer.email if customer is not None else "")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = [_("is not a valid e-mail address")]
    elif require_email:
        errors["email"] = [_("is required: the numbers are sent to this address")]
    name = (name or "").strip() or (customer.name if customer is not None else "")
    if len(name) > 100:
        errors["name"] = [_("must be at most 100 characters")]
    external_id = (external_id or "").strip()
    if len(external_id) > 64:
        errors["external_id"] = [_("must be at most 64 characters")]
    elif external_id and Invoice.objects.filter(biller=biller, external_id=external_id).exists():
        errors["external_id"] = [_("external id %(id)s already exists") % {"id": external_id}]
    if errors:
        raise ValidationFailed(errors)
    line = {
        "description": description,
        "quantity": 1,
        "unit_price": amount,
        "tax_category": category,
        "amount": amount,
    }
    try:
        totals = compute_totals([line], rounding=biller.tax_rounding, tax_inclusive=True)
    except LineError as exc:
        raise ValidationFailed({"amount": [exc.message]}) from exc
    invoice = Invoice(
        biller=biller,
        kind=Invoice.Kind.PAYMENT_REQUEST,
        customer=customer,
        number=_new_number(),
        external_id=external_id,
        issue_date=today,
        due_date=due_date,
        description=description,
        tax_inclusive=True,
        tax_rounding=biller.tax_rounding,
        recipient_name=name,
        recipient_email=email,
        **totals.as_fields(),
    )
    invoice.lines = [line]
    model_full_clean(invoice, exclude=["biller", "customer", "original", "lines"])
    return invoice


def save_published(invoice: Invoice) -> Invoice:
    """Insert a built payment request as published, with its numbers (call inside a transaction).

    The お客様番号 follows from the id (billing.numbers); the 確認番号 is random.
    """
    now = timezone.now()
    invoice.confirmation_number = confirmation_numbers(1)[0]
    invoice.status, invoice.published_at = Invoice.Status.PUBLISHED, now
    invoice.created_at = invoice.updated_at = now
    invoice_save(invoice)
    return invoice


def payment_request_create(*, actor: Actor, biller: Biller, data: dict[str, Any]) -> Invoice:
    """Create a payment request for an order and publish it; e-mail the numbers and link after commit.

    ``data``: amount, description (料金名), due_date, email, and optionally name, external_id (the
    order reference), customer (a Customer of this biller) and tax_category ("10", "8", "exempt").
    """
    reject_unknown_fields(data, PAYMENT_REQUEST_FIELDS)
    if biller.is_suspended:
        raise InvalidTransition(_("A suspended biller cannot issue payment requests."))
    amount_error: ValidationFailed | None = None
    try:
        amount = clean_amount(data.get("amount"))
    except ValidationFailed as exc:
        amount_error, amount = exc, 1
    try:
        invoice = build_payment_request(
            biller=biller,
            amount=amount,
            description=data.get("description", ""),
            due_date=data.get("due_date"),
            tax_category=data.get("tax_category") or DEFAULT_TAX_CATEGORY,
            customer=data.get("customer"),
            email=data.get("email", ""),
            name=data.get("name", ""),
            external_id=data.get("external_id", ""),
        )
    except ValidationFailed as exc:
        if amount_error is not None:
            raise ValidationFailed({**amount_error.errors, **exc.errors}) from exc
        raise
    if amount_error is not None:
        raise amount_error
    with transaction.atomic():
        save_published(invoice)
        audit_record(
            actor=actor,
            action="payment_request.create",
            biller=biller,
            target=invoice,
            summary=f"{invoice.number} {invoice.total:,}円 {invoice.external_id}".strip(),
            after={"customer_number": invoice.customer_number, "email": invoice.recipient_email},
        )
        events.after_commit("billing.tasks.payment_request_notify", invoice.pk)
    return invoice


def payment_request_cancel(
    *, actor: Actor, biller: Biller, invoice: Invoice | int, reason: str = ""
) -> Invoice:
    """Cancel an unpaid payment request: its numbers answer "cancelled" (B004) from now on."""
    pk = invoice if isinstance(invoice, int) else invoice.pk
    if not Invoice.objects.filter(pk=pk, biller=biller, kind=Invoice.Kind.PAYMENT_REQUEST).exists():
        raise NotFound(_("No such payment request."))
    return invoice_cancel(actor=actor, biller=biller, invoice=pk, reason=reason)


__all__ = [
    "PAYMENT_REQUEST_FIELDS",
    "build_payment_request",
    "clean_amount",
    "payment_request_cancel",
    "payment_request_create",
    "save_published",
]
