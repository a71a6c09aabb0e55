"""``manage.py check --deploy``: a production installation with the sandbox bank mounted (PAYEASY_DEMO=1)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security, deploy=True)
def sandbox_bank_in_production_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """PAYEASY_DEMO=1 turns the sandbox bank on without DJANGO_DEBUG: fine for a demo installation, a
    hole in a real one. Production settings start with it (config/settings/product.py), so say it here."""
    if settings.DEBUG or not getattr(settings, "PAYEASY_SANDBOX_BANK", False):
        return []
    return [
        Warning(
            "PAYEASY_DEMO=1 mounts the sandbox bank at /sandbox-bank/ on production settings: anyone can "
            "pay any invoice there without money (its internet banking and ATM send real payment "
            "messages to the communication server, which marks the invoices paid), and a 情報リンク "
            "entry URL may be a path on this site.",
            hint="Unset PAYEASY_DEMO (and PAYEASY_SANDBOX_BANK) unless this is a demo installation "
            "(docs/demo.md).",
            id="payeasy.W010",
        )
    ]
