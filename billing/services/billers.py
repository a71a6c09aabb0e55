"""Billers (収納企業, the tenants): onboarding, editing their details, and their status transitions."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from billing.errors import Conflict, InvalidTransition
from billing.kana import to_double_byte, to_zengin_kana
from billing.models import Biller, User
from billing.services.audit import audit_field_set, audit_record, snapshot
from billing.services.validation import model_full_clean, reject_unknown_fields

BILLER_FIELDS = (
    "legal_name",
    "short_name",
    "name_kana",
    "payee_number",
    "biller_code",
    "registration_number",
    "slug",
    "contact_name",
    "contact_email",
    "contact_phone",
    "late_payment_policy",
    "tax_rounding",
    "reminder_days",
)


def normalise_biller_input(data: dict[str, Any]) -> dict[str, Any]:
    """What people type, in the form the rules check: half-width kana, full-width short name, trimmed."""
    clean = {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()}
    if clean.get("name_kana"):
        clean["name_kana"] = to_zengin_kana(clean["name_kana"])
    if clean.get("short_name"):
        clean["short_name"] = to_double_byte(clean["short_name"])
    if clean.get("slug"):
        clean["slug"] = clean["slug"].lower()
    if clean.get("registration_number"):
        clean["registration_number"] = clean["registration_number"].upper()
    return clean


def biller_create(*, actor: User, data: dict[str, Any]) -> Biller:
    """Create a biller in status onboarding. ``data`` holds BILLER_FIELDS."""
    reject_unknown_fields(data, BILLER_FIELDS)
    biller = Biller(**normalise_biller_input(data))
    model_full_clean(biller)
    with transaction.atomic():
        try:
            biller.save()
        except IntegrityError as exc:  # a concurrent onboarding took the code or slug
            raise Conflict(_("The biller code or slug is already taken.")) from exc
        audit_record(
            actor=actor,
            action="biller.create",
            biller=biller,
            target=biller,
            summary=biller.legal_name,
            after=snapshot(biller, (*BILLER_FIELDS, "status")),
        )
    return biller


def biller_update(*, actor: User, biller: Biller, data: dict[str, Any]) -> Biller:
    reject_unknown_fields(data, BILLER_FIELDS)
    with transaction.atomic():
        locked = Biller.objects.select_for_update().get(pk=biller.pk)
        before = snapshot(locked, BILLER_FIELDS)
        for field, value in normalise_biller_input(data).items():
            setattr(locked, field, value)
        model_full_clean(locked)
        locked.save()
        audit_record(
            actor=actor,
            action="biller.update",
            biller=locked,
            target=locked,
            summary=locked.legal_name,
            before=before,
            after=snapshot(locked, BILLER_FIELDS),
        )
    return locked


_TRANSITIONS = {
    ("onboarding", "active"): "biller.activate",
    ("active", "suspended"): "biller.suspend",
    ("suspended", "active"): "biller.reactivate",
    ("onboarding", "suspended"): "biller.suspend",
}


def biller_set_status(*, actor: User, biller: Biller, status: str, reason: str = "") -> Biller:
    with transaction.atomic():
        locked = Biller.objects.select_for_update().get(pk=biller.pk)
        action = _TRANSITIONS.get((locked.status, status))
        if action is None:
            raise InvalidTransition(
                _("A biller in status %(current)s cannot become %(new)s.")
                % {"current": locked.get_status_display().lower(), "new": status},
                field="status",
            )
        audit_field_set(
            actor=actor,
            action=action,
            biller=locked,
            target=locked,
            field="status",
            value=status,
            summary=reason,
            update_fields=["updated_at"],
        )
    return locked


__all__ = ["BILLER_FIELDS", "biller_create", "biller_set_status", "biller_update", "normalise_biller_input"]
