"""System checks of payeasy's settings (``manage.py check``; ``--deploy`` adds the deployment ones)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured


@register(Tags.security, deploy=True)
def webhook_targets_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Webhooks to private addresses are for development: warn when production allows them."""
    if getattr(settings, "PAYEASY_WEBHOOK_ALLOW_PRIVATE", False) and not settings.DEBUG:
        return [
            Warning(
                "PAYEASY_WEBHOOK_ALLOW_PRIVATE is on: tenants' webhooks may reach loopback and private "
                "addresses (this machine, the internal network).",
                hint="Turn it off in production (unset PAYEASY_WEBHOOK_ALLOW_PRIVATE); it is meant for "
                "development with a receiver on this machine.",
                id="payeasy.W001",
            )
        ]
    return []


@register(Tags.security)
def key_encryption_keys_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every entry of PAYEASY_HANDOFF_KEK is a key: otherwise secrets can be neither stored nor read."""
    from payeasy import keywrap

    try:
        keywrap.keks()
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint="Give 64 hex digits or base64url of 32 bytes per key, comma-separated, the new key "
                "first (docs/operators.md, rotating the key-encryption key).",
                id="payeasy.E001",
            )
        ]
    return []
