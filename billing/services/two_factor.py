"""The console's second factor (TOTP, RFC 6238, with recovery codes) and its login audit.

iDC staff, Django admin users and tenant administrators must use it; a biller may require it of
its operators too (``Biller.console_totp_for_operators``). Every change is audited; so are failed
logins, lockouts, successful logins and each recovery code used, with the client address.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import totp
from billing.errors import InvalidTransition, NotFound, ValidationFailed
from billing.models import Biller, ConsoleTwoFactor, Membership, User
from billing.services.audit import audit_field_set, audit_record
from billing.services.tokens import token_hash
from billing.tenancy import cross_tenant

RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read from paper
ISSUER = "Pay-easy console"


def _audit(**entry: Any) -> None:
    """An entry of no biller (a console user's own security): written on the sign-in path."""
    with cross_tenant("accounts"):
        audit_record(**entry)


def _code_wrong() -> str:
    return _("The code is not correct. Check the time on your phone.")


def totp_required(user: Any) -> bool:
    """Must this console user pass a second factor? iDC staff, Django admin users and tenant
    administrators always; an operator where one of their billers requires it."""
    if user is None or not getattr(user, "is_authenticated", False) or user.realm != User.Realm.CONSOLE:
        return False
    if user.is_idc_staff or user.is_staff or user.is_superuser:
        return True
    with cross_tenant("accounts"):  # the user's memberships at every biller
        return (
            Membership.objects.filter(user=user)
            .filter(Q(role=Membership.Role.ADMIN) | Q(biller__console_totp_for_operators=True))
            .exists()
        )


def two_factor_of(user: Any) -> ConsoleTwoFactor | None:
    """The user's confirmed second factor, or None."""
    if user is None or user.pk is None:
        return None
    return ConsoleTwoFactor.objects.filter(user_id=user.pk, enabled_at__isnull=False).first()


def _locked(user: User) -> ConsoleTwoFactor | None:
    return ConsoleTwoFactor.objects.select_for_update().filter(user_id=user.pk).first()


def _normalise_recovery(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def _new_recovery_codes() -> list[str]:
    codes = []
    for _i in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _j in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def _hashes(codes: list[str]) -> list[str]:
    return [token_hash(_normalise_recovery(code)) for code in codes]


def recovery_codes_issue(
    *,
    user: User,
    factor: ConsoleTwoFactor,
    step: int,
    ip: str,
    action: str,
    update_fields: Sequence[str] = (),
) -> list[str]:
    """Remember the accepted TOTP ``step`` and replace the recovery codes with new ones (returned, to
    show once), saving ``update_fields`` too; audited as ``action`` with the address. The factor is
    locked by the caller's transaction."""
    codes = _new_recovery_codes()
    factor.last_step = step
    factor.recovery_hashes = _hashes(codes)
    factor.save(update_fields=[*update_fields, "last_step", "recovery_hashes"])
    _audit(
        actor=user,
        action=action,
        target=user,
        summary=f"{user.login} from {ip}",
        after={"ip": ip},
    )
    return codes


# --- enrolment -----------------------------------------------------------------------------------------


def enrolment_begin(*, user: User) -> ConsoleTwoFactor:
    """The secret being enrolled (a new one unless one is waiting for its first code)."""
    with transaction.atomic():
        factor = _locked(user)
        if factor is not None and factor.enabled:
            raise InvalidTransition(_("Two-step verification is already on."))
        if factor is None:
            factor = ConsoleTwoFactor.objects.create(user=user, secret=totp.new_secret())
    return factor


def provisioning_uri(factor: ConsoleTwoFactor) -> str:
    return totp.provisioning_uri(factor.secret, name=factor.user.email, issuer=ISSUER)


def enrolment_confirm(*, user: User, code: str, ip: str) -> list[str]:
    """Turn the second factor on with a first code; returns the recovery codes (shown once)."""
    with transaction.atomic():
        factor = _locked(user)
        if factor is None or factor.enabled:
            raise InvalidTransition(_("Start setting up two-step verification first."))
        step = totp.matching_step(factor.secret, code, after=None)
        if step is None:
            raise ValidationFailed({"code": [_code_wrong()]})
        factor.enabled_at = timezone.now()
        return recovery_codes_issue(
            user=user, factor=factor, step=step, ip=ip, action="console.totp_on", update_fields=["enabled_at"]
        )


# --- verification --------------------------------------------------------------------------------------


def verify(*, user: User, code: str = "", recovery_code: str = "", ip: str) -> bool:
    """Check a login's second factor: a TOTP code (each accepted once) or a recovery code (each
    usable once, audited)."""
    with transaction.atomic():
        factor = _locked(user)
        if factor is None or not factor.enabled:
            return False
        if recovery_code:
            digest = token_hash(_normalise_recovery(recovery_code))
            if digest not in factor.recovery_hashes:
                return False
            factor.recovery_hashes = [h for h in factor.recovery_hashes if h != digest]
            factor.save(update_fields=["recovery_hashes"])
            _audit(
                actor=user,
                action="console.recovery_code_used",
                target=user,
                summary=f"{user.login} from {ip}: {len(factor.recovery_hashes)} recovery codes left",
                after={"ip": ip, "left": len(factor.recovery_hashes)},
            )
            return True
        step = totp.matching_step(factor.secret, code, after=factor.last_step)
        if step is None:
            return False
        factor.last_step = step
        factor.save(update_fields=["last_step"])
    return True


def recovery_codes_regenerate(*, user: User, code: str, ip: str) -> list[str]:
    """New recovery codes (the old ones stop working), confirmed with a current TOTP code."""
    with transaction.atomic():
        factor = _locked(user)
        if factor is None or not factor.enabled:
            raise InvalidTransition(_("Two-step verification is off."))
        step = totp.matching_step(factor.secret, code, after=factor.last_step)
        if step is None:
            raise ValidationFailed({"code": [_code_wrong()]})
        return recovery_codes_issue(
            user=user, factor=factor, step=step, ip=ip, action="console.recovery_codes_regenerate"
        )


def recovery_codes_left(user: User) -> int:
    factor = two_factor_of(user)
    return len(factor.recovery_hashes) if factor is not None else 0


def reset(*, actor: User, user: User, reason: str = "") -> None:
    """An iDC staff member removes another user's second factor (a lost phone and lost codes); the
    user enrols again at the next login."""
    if not actor.is_idc_staff:
        raise InvalidTransition(_("Only iDC staff can reset two-step verification."))
    if actor.pk == user.pk:
        raise InvalidTransition(_("Ask another iDC staff member to reset your own two-step verification."))
    if user.realm != User.Realm.CONSOLE:
        raise NotFound(_("No such console user."))
    with transaction.atomic():
        deleted, _rows = ConsoleTwoFactor.objects.filter(user=user).delete()
        _audit(
            actor=actor,
            action="console.totp_reset",
            target=user,
            summary=f"{user.login}: {reason}"[:300] if reason else user.login,
            after={"had_second_factor": bool(deleted)},
        )


def biller_set_operator_totp(*, actor: User, biller: Biller, required: bool) -> Biller:
    """A tenant admin decides whether the biller's operators need two-step verification too."""
    with transaction.atomic():
        locked = Biller.objects.select_for_update().get(pk=biller.pk)
        audit_field_set(
            actor=actor,
            action="biller.console_totp_for_operators",
            biller=locked,
            target=locked,
            field="console_totp_for_operators",
            value=required,
            summary=f"operators need two-step verification: {'yes' if required else 'no'}",
            update_fields=["updated_at"],
        )
    return locked


# --- the login's audit ---------------------------------------------------------------------------------


def login_audit(
    *, action: str, login: str, ip: str, user: User | None = None, via: str = "", step: str = ""
) -> None:
    """``console.login`` (success), ``console.login_failed`` or ``console.login_locked``, with the address."""
    detail = {"login": login, "ip": ip, **({"via": via} if via else {}), **({"step": step} if step else {})}
    _audit(
        actor=user if action == "console.login" else None,
        action=action,
        target=user,
        summary=" ".join(x for x in (login, "from", ip, f"({step})" if step else "", via) if x),
        after=detail,
    )


__all__ = [
    "biller_set_operator_totp",
    "enrolment_begin",
    "enrolment_confirm",
    "login_audit",
    "provisioning_uri",
    "recovery_codes_left",
    "recovery_codes_regenerate",
    "reset",
    "totp_required",
    "two_factor_of",
    "verify",
]
