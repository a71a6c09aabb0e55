"""A biller's customers (the payers its invoices go to): creating and editing them."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from billing.errors import NotFound, ValidationFailed
from billing.models import ApiKey, Biller, Customer, User
from billing.services.audit import audit_record, snapshot
from billing.services.validation import model_full_clean, reject_unknown_fields

CUSTOMER_FIELDS = ("code", "name", "name_kana", "email", "kind", "postal_code", "address", "status")


def _customer_code_taken(code: str) -> str:
    return _("Customer code %(code)s already exists for this biller.") % {"code": code}


def customer_create(*, actor: User | ApiKey | None, biller: Biller, data: dict[str, Any]) -> Customer:
    reject_unknown_fields(data, CUSTOMER_FIELDS)
    customer = Customer(
        biller=biller, **{k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()}
    )
    model_full_clean(customer, exclude=["biller"])
    if Customer.objects.filter(biller=biller, code=customer.code).exists():
        raise ValidationFailed({"code": [_customer_code_taken(customer.code)]})
    with transaction.atomic():
        customer.save()
        audit_record(
            actor=actor,
            action="customer.create",
            biller=biller,
            target=customer,
            summary=f"{customer.code} {customer.name}",
            after=snapshot(customer, CUSTOMER_FIELDS),
        )
    return customer


def customer_update(
    *, actor: User | ApiKey | None, biller: Biller, customer: Customer, data: dict[str, Any]
) -> Customer:
    reject_unknown_fields(data, CUSTOMER_FIELDS)
    if customer.biller_id != biller.pk:
        raise NotFound(_("No such customer."))
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk, biller=biller)
        before = snapshot(locked, CUSTOMER_FIELDS)
        for field, value in data.items():
            setattr(locked, field, value.strip() if isinstance(value, str) else value)
        model_full_clean(locked, exclude=["biller"])
        if (
            locked.code != before["code"]
            and Customer.objects.filter(biller=biller, code=locked.code).exists()
        ):
            raise ValidationFailed({"code": [_customer_code_taken(locked.code)]})
        locked.save()
        audit_record(
            actor=actor,
            action="customer.update",
            biller=biller,
            target=locked,
            summary=f"{locked.code} {locked.name}",
            before=before,
            after=snapshot(locked, CUSTOMER_FIELDS),
        )
    return locked


__all__ = ["CUSTOMER_FIELDS", "customer_create", "customer_update"]
