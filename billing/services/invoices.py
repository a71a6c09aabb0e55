"""Invoices: drafts, publication with payment numbers, cancellation, credit notes."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import events
from billing.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from billing.invoicing import MAX_LINES_PER_INVOICE as MAX_LINES
from billing.invoicing import LineError, Totals, clean_line, compute_totals
from billing.models import ApiKey, Biller, Customer, Invoice, User
from billing.numbers import confirmation_numbers
from billing.services.audit import audit_field_set, audit_record
from billing.services.validation import model_full_clean, reject_unknown_fields
from billing.validators import description_errors

Actor = User | ApiKey | None

INVOICE_INPUT_FIELDS = (
    "customer",
    "number",
    "external_id",
    "issue_date",
    "due_date",
    "description",
    "lines",
    "tax_inclusive",
)


def _number_taken(number: str) -> str:
    return _("invoice number %(number)s already exists") % {"number": number}


def clean_lines(raw_lines: Any, *, required: bool = True) -> list[dict[str, Any]]:
    if not isinstance(raw_lines, list):
        raise ValidationFailed({"lines": [_("must be a list of lines")]})
    if required and not raw_lines:
        raise ValidationFailed({"lines": [_("an invoice needs at least one line")]})
    if len(raw_lines) > MAX_LINES:
        raise ValidationFailed({"lines": [_("at most %(max)d lines") % {"max": MAX_LINES}]})
    cleaned, errors = [], {}
    for i, raw in enumerate(raw_lines):
        if not isinstance(raw, dict):
            errors[f"lines[{i}]"] = ["must be an object"]
            continue
        try:
            cleaned.append(clean_line(raw))
        except LineError as exc:
            errors[f"lines[{i}].{exc.field}"] = [exc.message]
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def _totals(lines: list[dict[str, Any]], *, biller: Biller, tax_inclusive: bool) -> Totals:
    try:
        return compute_totals(lines, rounding=biller.tax_rounding, tax_inclusive=tax_inclusive)
    except LineError as exc:
        raise ValidationFailed({exc.field: [exc.message]}) from exc


def _apply_input(invoice: Invoice, *, biller: Biller, data: dict[str, Any]) -> None:
    reject_unknown_fields(data, INVOICE_INPUT_FIELDS)
    customer = data.get("customer", invoice.customer if invoice.customer_id else None)
    if invoice.kind == Invoice.Kind.INVOICE:
        if not isinstance(customer, Customer) or customer.biller_id != biller.pk:
            raise ValidationFailed({"customer": [_("unknown customer")]})
        if customer.status != Customer.Status.ACTIVE:
            raise ValidationFailed(
                {"customer": [_("customer %(code)s is inactive") % {"code": customer.code}]}
            )
        invoice.customer = customer
        invoice.recipient_name = customer.name
        invoice.recipient_email = customer.email
    for field in ("number", "external_id", "issue_date", "due_date", "description", "tax_inclusive"):
        if field in data:
            value = data[field]
            setattr(invoice, field, value.strip() if isinstance(value, str) else value)
    errors: dict[str, list[str]] = {}
    description_problems = description_errors(invoice.description)
    if description_problems:
        errors["description"] = description_problems
    if invoice.issue_date and invoice.due_date and invoice.due_date < invoice.issue_date:
        errors["due_date"] = ["must not be before the issue date"]
    if errors:
        raise ValidationFailed(errors)
    if "lines" in data:
        invoice.lines = clean_lines(data["lines"], required=invoice.kind != Invoice.Kind.PAYMENT_REQUEST)
    invoice.tax_rounding = biller.tax_rounding
    for field, value in (
        _totals(invoice.lines, biller=biller, tax_inclusive=invoice.tax_inclusive).as_fields().items()
    ):
        setattr(invoice, field, value)
    model_full_clean(invoice, exclude=["biller", "customer", "original", "lines"])
    duplicate = Invoice.objects.filter(biller=biller, number=invoice.number).exclude(pk=invoice.pk)
    if duplicate.exists():
        raise ValidationFailed({"number": [_number_taken(invoice.number)]})
    if invoice.external_id:
        taken = Invoice.objects.filter(biller=biller, external_id=invoice.external_id).exclude(pk=invoice.pk)
        if taken.exists():
            raise ValidationFailed(
                {"external_id": [_("external id %(id)s already exists") % {"id": invoice.external_id}]}
            )


def invoice_save(invoice: Invoice) -> None:
    """Save ``invoice``; Conflict when a concurrent request took its number or external id."""
    try:
        with transaction.atomic():
            invoice.save()
    except IntegrityError as exc:  # a concurrent request took the number or external id
        raise Conflict(_("The invoice number or external id was taken meanwhile; try again.")) from exc


def invoice_create(*, actor: Actor, biller: Biller, data: dict[str, Any], publish: bool = False) -> Invoice:
    """Create a draft (or publish it at once). ``data['customer']`` is a Customer of this biller."""
    if biller.is_suspended:
        raise InvalidTransition(_("A suspended biller cannot issue invoices."))
    invoice = Invoice(biller=biller, kind=Invoice.Kind.INVOICE)
    _apply_input(invoice, biller=biller, data=data)
    with transaction.atomic():
        invoice_save(invoice)
        audit_record(
            actor=actor,
            action="invoice.create",
            biller=biller,
            target=invoice,
            summary=f"{invoice.number} {invoice.total:,}円",
        )
        if publish:
            invoice = invoice_publish(actor=actor, biller=biller, invoice=invoice)
    return invoice


def invoice_update_draft(*, actor: Actor, biller: Biller, invoice: Invoice, data: dict[str, Any]) -> Invoice:
    with transaction.atomic():
        locked = _locked(biller, invoice)
        if locked.status != Invoice.Status.DRAFT:
            raise InvalidTransition(
                _("Only a draft can be edited; a published invoice is cancelled and reissued.")
            )
        before = {"number": locked.number, "total": locked.total, "due_date": str(locked.due_date)}
        _apply_input(locked, biller=biller, data=data)
        locked.updated_at = timezone.now()
        invoice_save(locked)
        audit_record(
            actor=actor,
            action="invoice.update",
            biller=biller,
            target=locked,
            summary=locked.number,
            before=before,
            after={"number": locked.number, "total": locked.total, "due_date": str(locked.due_date)},
        )
    return locked


def _locked(biller: Biller, invoice: Invoice | int) -> Invoice:
    pk = invoice if isinstance(invoice, int) else invoice.pk
    try:
        return Invoice.objects.select_for_update().get(pk=pk, biller=biller)
    except Invoice.DoesNotExist as exc:
        raise NotFound(_("No such invoice.")) from exc


def invoice_publish(*, actor: Actor, biller: Biller, invoice: Invoice) -> Invoice:
    return invoice_publish_many(actor=actor, biller=biller, invoice_ids=[invoice.pk])[0]


def invoice_publish_many(*, actor: Actor, biller: Biller, invoice_ids: Sequence[int]) -> list[Invoice]:
    """Publish drafts: give each its payment numbers, freeze it, and e-mail the customer after commit.

    All or nothing: one invoice that cannot be published leaves every one a draft.
    """
    if biller.is_suspended:
        raise InvalidTransition(_("A suspended biller cannot publish invoices."))
    with transaction.atomic():
        invoices = list(
            Invoice.objects.select_for_update().filter(biller=biller, pk__in=list(invoice_ids)).order_by("pk")
        )
        if len(invoices) != len(set(invoice_ids)):
            raise NotFound(_("No such invoice."))
        for inv in invoices:
            if inv.status != Invoice.Status.DRAFT:
                raise InvalidTransition(
                    _("Invoice %(number)s is %(status)s, not a draft.")
                    % {"number": inv.number, "status": inv.get_status_display().lower()},
                    field="status",
                )
            if inv.total <= 0 and inv.kind != Invoice.Kind.CREDIT_NOTE:
                raise ValidationFailed(
                    {"lines": [_("invoice %(number)s has nothing to pay") % {"number": inv.number}]}
                )
        confirmations = confirmation_numbers(len(invoices))
        now = timezone.now()
        # the customer number follows from the id (billing.numbers); the confirmation number is random
        for inv, confirmation in zip(invoices, confirmations, strict=True):
            inv.confirmation_number = confirmation
            inv.status, inv.published_at, inv.updated_at = Invoice.Status.PUBLISHED, now, now
        Invoice.objects.bulk_update(
            invoices,
            ["confirmation_number", "status", "published_at", "updated_at"],
        )
        for inv in invoices:
            audit_record(
                actor=actor,
                action="invoice.publish",
                biller=biller,
                target=inv,
                summary=f"{inv.number} {inv.total:,}円",
                after={"customer_number": inv.customer_number},
            )
        ids = [inv.pk for inv in invoices]
        events.after_commit("billing.tasks.invoice_published_notify", ids)
    return invoices


def invoice_cancel(*, actor: Actor, biller: Biller, invoice: Invoice | int, reason: str = "") -> Invoice:
    """Cancel a draft or an unpaid published invoice. Its numbers are never reused: B004 answers them."""
    with transaction.atomic():
        locked = _locked(biller, invoice)
        if locked.status not in {Invoice.Status.DRAFT, Invoice.Status.PUBLISHED}:
            raise InvalidTransition(
                _("Invoice %(number)s is %(status)s; a paid invoice is reduced by a credit note.")
                % {"number": locked.number, "status": locked.get_status_display().lower()},
                field="status",
            )
        locked.cancelled_at = locked.updated_at = timezone.now()
        audit_field_set(
            actor=actor,
            action="invoice.cancel",
            biller=biller,
            target=locked,
            field="status",
            value=Invoice.Status.CANCELLED,
            summary=f"{locked.number} {reason}"[:300],
            update_fields=["cancelled_at", "updated_at"],
        )
    return locked


def invoice_cancel_many(*, actor: Actor, biller: Biller, invoice_ids: Sequence[int], reason: str = "") -> int:
    with transaction.atomic():
        for pk in invoice_ids:
            invoice_cancel(actor=actor, biller=biller, invoice=pk, reason=reason)
    return len(invoice_ids)


def credit_note_issue(
    *,
    actor: Actor,
    biller: Biller,
    invoice: Invoice,
    number: str,
    lines: list[dict[str, Any]],
    reason: str,
    issue_date: datetime.date | None = None,
) -> Invoice:
    """A 適格返還請求書 reducing a paid invoice: per-rate amounts and taxes, never more than the original."""
    with transaction.atomic():
        original = _locked(biller, invoice)
        if original.kind != Invoice.Kind.INVOICE or original.status != Invoice.Status.PAID:
            raise InvalidTransition(_("A credit note reduces a paid invoice."), field="invoice")
        cleaned = clean_lines(lines)
        totals = _totals(cleaned, biller=biller, tax_inclusive=original.tax_inclusive)
        already = sum(cn.total for cn in original.credit_notes.exclude(status=Invoice.Status.CANCELLED))
        if already + totals.total > original.total:
            raise ValidationFailed(
                {
                    "lines": [
                        _("credit notes would total %(total)s yen, more than the invoice's %(original)s")
                        % {"total": f"{already + totals.total:,}", "original": f"{original.total:,}"}
                    ]
                }
            )
        note = Invoice(
            biller=biller,
            kind=Invoice.Kind.CREDIT_NOTE,
            customer=original.customer,
            original=original,
            number=number,
            issue_date=issue_date or timezone.localdate(),
            due_date=issue_date or timezone.localdate(),
            description=(reason or "返還")[:20],
            tax_inclusive=original.tax_inclusive,
            tax_rounding=biller.tax_rounding,
            recipient_name=original.recipient_name,
            recipient_email=original.recipient_email,
            status=Invoice.Status.PUBLISHED,
            published_at=timezone.now(),
            **totals.as_fields(),
        )
        note.lines = cleaned
        if Invoice.objects.filter(biller=biller, number=number).exists():
            raise ValidationFailed({"number": [_number_taken(number)]})
        invoice_save(note)
        audit_record(
            actor=actor,
            action="credit_note.issue",
            biller=biller,
            target=note,
            summary=f"{note.number} for {original.number} {note.total:,}円 {reason}"[:300],
        )
    return note


__all__ = [
    "INVOICE_INPUT_FIELDS",
    "clean_lines",
    "credit_note_issue",
    "invoice_cancel",
    "invoice_cancel_many",
    "invoice_create",
    "invoice_publish",
    "invoice_publish_many",
    "invoice_update_draft",
]
