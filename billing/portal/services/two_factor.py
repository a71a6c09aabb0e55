"""Two-step verification (TOTP) of customers' portal accounts: enrolling, checking a login's code,
turning it off. The console's own second factor is ``billing.services.two_factor``.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import totp
from billing.errors import InvalidTransition, ValidationFailed
from billing.models import Biller, CustomerAccount
from billing.portal.services.accounts import customer_account_lock
from billing.services.audit import audit_record

TOTP_INTERVAL = totp.INTERVAL


def totp_provisioning_uri(account: CustomerAccount) -> str:
    biller_name = Biller.objects.only("legal_name").get(pk=account.biller_id).legal_name
    return totp.provisioning_uri(account.totp_secret, name=account.user.email, issuer=biller_name)


def totp_enrol_begin(*, account: CustomerAccount) -> CustomerAccount:
    """Give the account a new secret to put in an authenticator app; it counts once confirmed."""
    with transaction.atomic():
        locked = customer_account_lock(biller=account.biller_id, account=account)
        if locked.totp_enabled:
            raise InvalidTransition(_("Two-step verification is already on."))
        locked.totp_secret = totp.new_secret()
        locked.save(update_fields=["totp_secret"])
    return locked


def totp_enrol_confirm(*, account: CustomerAccount, code: str) -> CustomerAccount:
    with transaction.atomic():
        locked = customer_account_lock(biller=account.biller_id, account=account)
        if locked.totp_enabled or not locked.totp_secret:
            raise InvalidTransition(_("Start setting up two-step verification first."))
        step = totp.matching_step(locked.totp_secret, code, after=None)
        if step is None:
            raise ValidationFailed({"code": [_("The code is not correct. Check the time on your phone.")]})
        locked.totp_enabled_at = timezone.now()
        locked.totp_last_step = step
        locked.save(update_fields=["totp_enabled_at", "totp_last_step"])
        audit_record(
            actor=locked.user, action="customer_account.totp_on", biller=locked.biller, target=locked
        )
    return locked


def totp_verify(*, account: CustomerAccount, code: str) -> bool:
    """Check a login code. Each code is accepted once (the step is remembered under a row lock)."""
    with transaction.atomic():
        locked = customer_account_lock(biller=account.biller_id, account=account)
        if not locked.totp_enabled:
            return False
        step = totp.matching_step(locked.totp_secret, code, after=locked.totp_last_step)
        if step is None:
            return False
        locked.totp_last_step = step
        locked.save(update_fields=["totp_last_step"])
    return True


def totp_disable(*, account: CustomerAccount, code: str) -> CustomerAccount:
    """Turn two-step verification off; it takes a current code, so a stolen session alone cannot."""
    with transaction.atomic():
        locked = customer_account_lock(biller=account.biller_id, account=account)
        if not locked.totp_enabled:
            raise InvalidTransition(_("Two-step verification is off."))
        step = totp.matching_step(locked.totp_secret, code, after=locked.totp_last_step)
        if step is None:
            raise ValidationFailed({"code": [_("The code is not correct. Check the time on your phone.")]})
        locked.totp_secret, locked.totp_enabled_at, locked.totp_last_step = "", None, None
        locked.save(update_fields=["totp_secret", "totp_enabled_at", "totp_last_step"])
        audit_record(
            actor=locked.user, action="customer_account.totp_off", biller=locked.biller, target=locked
        )
    return locked


__all__ = ["totp_disable", "totp_enrol_begin", "totp_enrol_confirm", "totp_provisioning_uri", "totp_verify"]
