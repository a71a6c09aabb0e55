"""People: a console user's membership (role) at a biller, and the checks of a new account's credentials."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from billing.errors import ValidationFailed
from billing.models import Biller, Membership, User
from billing.services.audit import audit_field_set, audit_record


def user_credentials_set(*, user: User, password: str) -> None:
    """Check a new account's name and password (Django's validators) and set the password.

    The one rule of every account a person opens (console invitation, portal invitation, portal
    registration); errors name the field. Saving is the caller's.
    """
    if not user.name:
        raise ValidationFailed({"name": [_("Enter your name.")]})
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationFailed({"password": [str(m) for m in exc.messages]}) from exc
    user.set_password(password)


def membership_create(*, actor: User | None, biller: Biller, user: User, role: str) -> Membership:
    """Give a console user a role at a biller (idempotent for the same role)."""
    if role not in Membership.Role.values:
        raise ValidationFailed({"role": [_("unknown role %(role)r") % {"role": role}]})
    if user.realm != User.Realm.CONSOLE:
        raise ValidationFailed({"user": [_("Only console users can be members of a biller.")]})
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            biller=biller, user=user, defaults={"role": role}
        )
        if created:
            audit_record(
                actor=actor,
                action="membership.create",
                biller=biller,
                target=membership,
                summary=f"{user.login} ({role})",
                after={"user": user.login, "role": role},
            )
        else:
            audit_field_set(
                actor=actor,
                action="membership.role",
                biller=biller,
                target=membership,
                field="role",
                value=role,
                summary=user.login,
            )
    return membership


__all__ = ["membership_create", "user_credentials_set"]
