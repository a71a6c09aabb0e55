"""Every write of the billing app. Each service is the transaction boundary and writes the audit entry."""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import events
from billing.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from billing.kana import to_double_byte, to_zengin_kana
from billing.models import ApiKey, AuditEntry, Biller, Customer, Invitation, Membership, User, console_login

SYSTEM = "system"

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


# --- audit -----------------------------------------------------------------------------------------


def _invitation_gone(state: str) -> str:
    labels = {
        "accepted": _("This invitation link has already been used."),
        "revoked": _("This invitation link has been revoked."),
        "expired": _("This invitation link has expired."),
    }
    return str(labels.get(state, _("This invitation link is not valid.")))


def _customer_code_taken(code: str) -> str:
    return _("Customer code %(code)s already exists for this biller.") % {"code": code}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    return value


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    return {f: _jsonable(getattr(instance, f)) for f in fields}


def audit_record(
    *,
    actor: User | ApiKey | None,
    action: str,
    biller: Biller | None = None,
    target: models.Model | None = None,
    summary: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the audit trail. Call inside the service's transaction."""
    if before is not None and after is not None:
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        before = {k: v for k, v in before.items() if k in changed}
        after = {k: v for k, v in after.items() if k in changed}
    if isinstance(actor, ApiKey):
        user, label = None, f"api-key:{actor.prefix} {actor.name}"
    else:
        user, label = actor, (actor.login if actor else SYSTEM)
    return AuditEntry.objects.create(
        actor=user,
        actor_label=label[:300],
        action=action,
        biller=biller,
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        summary=summary[:300],
        before=_jsonable(before),
        after=_jsonable(after),
    )


# --- validation helpers ------------------------------------------------------------------------------


def reject_unknown_fields(data: dict[str, Any], allowed: Iterable[str]) -> None:
    """A service takes only the fields it knows: anything else is an error naming it, not ignored."""
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValidationFailed({name: [_("unknown field")] for name in sorted(unknown)})


def _full_clean(instance: models.Model, *, prefix: str = "", exclude: list[str] | None = None) -> None:
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as exc:
        raise ValidationFailed(
            {f"{prefix}{field}": [str(m) for m in messages] for field, messages in exc.message_dict.items()}
        ) from exc


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


# --- billers -----------------------------------------------------------------------------------------


def biller_create(*, actor: User, data: dict[str, Any]) -> Biller:
    """Create a biller in status onboarding. ``data`` holds BILLER_FIELDS."""
    reject_unknown_fields(data, BILLER_FIELDS)
    biller = Biller(**normalise_biller_input(data))
    _full_clean(biller)
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
        _full_clean(locked)
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
        before = {"status": locked.status}
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            action=action,
            biller=locked,
            target=locked,
            summary=reason,
            before=before,
            after={"status": status},
        )
    return locked


# --- people --------------------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    """What is stored of a secret token (invitation links, API keys): its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(*, actor: User, biller: Biller, email: str, role: str) -> tuple[Invitation, str]:
    """Invite a person to a biller's console. Returns the invitation and its token (shown nowhere else).

    The e-mail is sent by a worker once the invitation is committed.
    """
    if role not in Membership.Role.values:
        raise ValidationFailed({"role": [_("unknown role %(role)r") % {"role": role}]})
    try:
        from django.core.validators import validate_email

        validate_email(email)
    except ValidationError as exc:
        raise ValidationFailed({"email": [str(m) for m in exc.messages]}) from exc
    if biller.is_suspended:
        raise InvalidTransition(_("A suspended biller cannot invite members."), field="biller")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            biller=biller,
            email=email.strip(),
            role=role,
            token_hash=token_hash(token),
            created_by=actor,
            expires_at=timezone.now() + datetime.timedelta(hours=settings.INVITATION_TTL_HOURS),
        )
        audit_record(
            actor=actor,
            action="invitation.create",
            biller=biller,
            target=invitation,
            summary=f"{invitation.email} ({role})",
            after={"email": invitation.email, "role": role, "expires_at": invitation.expires_at},
        )
        events.after_commit("billing.tasks.invitation_send", invitation.pk, token)
    return invitation, token


def invitation_get_pending(*, token: str) -> Invitation:
    """The pending invitation for a token; NotFound for a wrong, used, revoked or expired one."""
    invitation = Invitation.objects.select_related("biller").filter(token_hash=token_hash(token)).first()
    if invitation is None:
        raise NotFound(_("This invitation link is not valid."), code="invitation_invalid")
    state = invitation.state
    if state != "pending":
        raise NotFound(_invitation_gone(state), code=f"invitation_{state}")
    if invitation.biller.is_suspended:
        raise NotFound(_("This invitation link is not valid."), code="invitation_invalid")
    return invitation


def invitation_accept(
    *, token: str, user: User | None = None, name: str = "", password: str = ""
) -> Membership:
    """Accept an invitation: as the logged-in ``user``, or by creating a console account.

    Single use: the invitation row is locked and marked accepted in the same
    transaction that creates the membership.
    """
    from django.contrib.auth.password_validation import validate_password

    with transaction.atomic():
        pending = invitation_get_pending(token=token)
        invitation = Invitation.objects.select_for_update().get(pk=pending.pk)
        if invitation.state != "pending":  # someone used it between the read and the lock
            raise NotFound(_invitation_gone(invitation.state), code="invitation_used")
        if user is None:
            login = console_login(invitation.email)
            if User.objects.filter(login=login).exists():
                raise Conflict(
                    _("An account with this e-mail exists: log in first, then open the link again."),
                    code="login_required",
                )
            candidate = User(login=login, email=invitation.email, name=name.strip())
            if not candidate.name:
                raise ValidationFailed({"name": [_("Enter your name.")]})
            try:
                validate_password(password, candidate)
            except ValidationError as exc:
                raise ValidationFailed({"password": [str(m) for m in exc.messages]}) from exc
            candidate.set_password(password)
            candidate.save()
            user = candidate
            audit_record(
                actor=user, action="user.create", biller=invitation.biller, target=user, summary=login
            )
        elif console_login(user.email) != console_login(invitation.email):
            raise Conflict(
                _("This invitation was sent to another e-mail address. Log out and open the link again."),
                code="wrong_account",
            )
        membership, created = Membership.objects.get_or_create(
            biller=invitation.biller, user=user, defaults={"role": invitation.role}
        )
        if not created and membership.role != invitation.role:
            before = {"role": membership.role}
            membership.role = invitation.role
            membership.save(update_fields=["role"])
            audit_record(
                actor=user,
                action="membership.role",
                biller=invitation.biller,
                target=membership,
                before=before,
                after={"role": membership.role},
            )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(
            actor=user,
            action="invitation.accept",
            biller=invitation.biller,
            target=invitation,
            summary=f"{invitation.email} ({invitation.role})",
        )
    return membership


def invitation_revoke(*, actor: User, invitation: Invitation) -> Invitation:
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if locked.state != "pending":
            raise InvalidTransition(_invitation_gone(locked.state), field="invitation")
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor, action="invitation.revoke", biller=locked.biller, target=locked, summary=locked.email
        )
    return locked


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
        elif membership.role != role:
            before = {"role": membership.role}
            membership.role = role
            membership.save(update_fields=["role"])
            audit_record(
                actor=actor,
                action="membership.role",
                biller=biller,
                target=membership,
                summary=user.login,
                before=before,
                after={"role": role},
            )
    return membership


# --- customers -------------------------------------------------------------------------------------------

CUSTOMER_FIELDS = ("code", "name", "name_kana", "email", "kind", "postal_code", "address", "status")


def customer_create(*, actor: User | ApiKey | None, biller: Biller, data: dict[str, Any]) -> Customer:
    reject_unknown_fields(data, CUSTOMER_FIELDS)
    customer = Customer(
        biller=biller, **{k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()}
    )
    _full_clean(customer, exclude=["biller"])
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
        _full_clean(locked, exclude=["biller"])
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


# --- API keys ----------------------------------------------------------------------------------------------

API_KEY_PREFIX = "pe_"


def api_key_create(*, actor: User | None, biller: Biller, name: str) -> tuple[ApiKey, str]:
    """Create a key; returns it with its secret, which is never shown again (only its SHA-256 is kept)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed({"name": [_("Give the key a name of 1–100 characters.")]})
    prefix = secrets.token_hex(5)
    token = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            biller=biller, name=name, prefix=prefix, key_hash=token_hash(token), created_by=actor
        )
        audit_record(
            actor=actor, action="api_key.create", biller=biller, target=key, summary=f"{name} ({prefix})"
        )
    return key, token


def api_key_revoke(*, actor: User | None, biller: Biller, key_id: int) -> ApiKey:
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(pk=key_id, biller=biller).first()
        if key is None:
            raise NotFound(_("No such API key."))
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit_record(actor=actor, action="api_key.revoke", biller=biller, target=key, summary=key.name)
    return key


def api_key_authenticate(*, token: str) -> ApiKey | None:
    """The active key for a presented token, or None. Compares hashes in constant time."""
    import hmac

    if not token.startswith(API_KEY_PREFIX) or token.count("_") < 2:
        return None
    prefix = token[len(API_KEY_PREFIX) :].split("_", 1)[0]
    key = ApiKey.objects.select_related("biller").filter(prefix=prefix, revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.key_hash, token_hash(token)):
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)  # at most one write a minute per key
        key.last_used_at = now
    return key
