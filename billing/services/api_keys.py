"""API keys of a biller's REST API: creating, revoking and recognising one (only its SHA-256 is kept)."""

from __future__ import annotations

import hmac
import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.errors import NotFound, ValidationFailed
from billing.models import ApiKey, Biller, User
from billing.services.audit import audit_record
from billing.services.tokens import token_hash, token_new

API_KEY_PREFIX = "pe_"


def api_key_create(*, actor: User | None, biller: Biller, name: str) -> tuple[ApiKey, str]:
    """Create a key; returns it with its secret, which is never shown again (only its SHA-256 is kept)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed({"name": [_("Give the key a name of 1–100 characters.")]})
    prefix = secrets.token_hex(5)
    token = f"{API_KEY_PREFIX}{prefix}_{token_new()}"
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


__all__ = ["API_KEY_PREFIX", "api_key_authenticate", "api_key_create", "api_key_revoke"]
