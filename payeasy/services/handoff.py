"""Writes of the 情報リンク set-up, done by iDC staff: the banks' entry URLs and their keys.

A new key becomes the bank's active key and the one before it starts retiring (it still opens envelopes
sealed with it until it is retired). Key material is returned once, by :func:`handoff_key_create`, and
stored only wrapped.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.errors import InvalidTransition, ValidationFailed
from billing.models import User
from billing.services import audit_field_set, audit_record, model_full_clean, snapshot
from payeasy import handoff
from payeasy.models import HandoffEndpoint, HandoffKey

ENDPOINT_FIELDS = ("bank_code", "entry_url", "enabled")


def _check_entry_url(url: str) -> None:
    """Production takes https:// entry URLs only; a path on this site is the sandbox bank's."""
    if url.startswith("/"):
        if not settings.PAYEASY_SANDBOX_BANK:
            raise ValidationFailed(
                {"entry_url": [_("A path on this site is only for the sandbox bank, which is turned off.")]}
            )
        return
    if settings.PAYEASY_HANDOFF_REQUIRE_HTTPS and urlsplit(url).scheme != "https":
        raise ValidationFailed({"entry_url": [_("The entry URL must start with https://.")]})


def handoff_endpoint_create(
    *, actor: User | None, bank_code: str, entry_url: str, enabled: bool = True
) -> HandoffEndpoint:
    with transaction.atomic():
        row = HandoffEndpoint(bank_code=bank_code.strip(), entry_url=entry_url.strip(), enabled=enabled)
        model_full_clean(row)
        _check_entry_url(row.entry_url)
        row.save()
        audit_record(
            actor=actor,
            action="handoff_endpoint.create",
            target=row,
            summary=f"{row.bank_code} {row.entry_url}",
            after=snapshot(row, ENDPOINT_FIELDS),
        )
    return row


def handoff_endpoint_update(
    *, actor: User | None, endpoint: HandoffEndpoint, entry_url: str, enabled: bool
) -> HandoffEndpoint:
    """Change the entry URL or enabled flag (the bank code of an endpoint never changes)."""
    with transaction.atomic():
        row = HandoffEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = snapshot(row, ENDPOINT_FIELDS)
        row.entry_url, row.enabled = entry_url.strip(), enabled
        model_full_clean(row)
        _check_entry_url(row.entry_url)
        row.save()
        audit_record(
            actor=actor,
            action="handoff_endpoint.update",
            target=row,
            summary=row.bank_code,
            before=before,
            after=snapshot(row, ENDPOINT_FIELDS),
        )
    return row


def handoff_key_create(*, actor: User | None, endpoint: HandoffEndpoint) -> tuple[HandoffKey, bytes]:
    """A new active key for the bank (os.urandom(32)); the active one before it starts retiring.
    Returns the key material: the only time it is seen unwrapped."""
    with transaction.atomic():
        locked = HandoffEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        previous = list(locked.keys.filter(status=HandoffKey.Status.ACTIVE))
        locked.keys.filter(status=HandoffKey.Status.ACTIVE).update(status=HandoffKey.Status.RETIRING)
        material = handoff.new_key()
        kid = handoff.new_kid(locked.bank_code)
        row = HandoffKey.objects.create(
            endpoint=locked,
            kid=kid,
            wrapped_key=handoff.key_wrap(material, kid),
            status=HandoffKey.Status.ACTIVE,
        )
        audit_record(
            actor=actor,
            action="handoff_key.create",
            target=row,
            summary=f"{locked.bank_code} {kid}"
            + (f" (retiring {', '.join(k.kid for k in previous)})" if previous else ""),
        )
    return row, material


def handoff_key_retire(*, actor: User | None, key: HandoffKey) -> HandoffKey:
    """Retire a key: envelopes sealed with it no longer open. Retiring the active key leaves the bank
    without a sealing key (it disappears from the bank chooser) until a new key is created."""
    with transaction.atomic():
        row = HandoffKey.objects.select_for_update().get(pk=key.pk)
        if row.status == HandoffKey.Status.RETIRED:
            raise InvalidTransition(_("The key %(kid)s is already retired.") % {"kid": row.kid})
        row.retired_at = timezone.now()
        audit_field_set(
            actor=actor,
            action="handoff_key.retire",
            biller=None,
            target=row,
            field="status",
            value=HandoffKey.Status.RETIRED,
            summary=f"{row.kid} (was {row.status})",
            update_fields=["retired_at"],
        )
    return row
