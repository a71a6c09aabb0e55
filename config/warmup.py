"""What a web worker loads before its first request (config/gunicorn.conf.py ``post_worker_init``)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# The pages every customer and tenant user sees: their templates are compiled (and kept by Django's
# cached loader) before the first request instead of during it.
TEMPLATES = (
    "base.html",
    "billing/portal/base.html",
    "billing/portal/invoice_list.html",
    "billing/portal/invoice_detail.html",
    "billing/console/base.html",
    "billing/console/invoice_list.html",
)


def warm_up() -> None:
    """Import both URLconfs and compile the common templates; a failure is logged, never fatal (the
    first request would then do the same work and report the same error as a page)."""
    from django.conf import settings
    from django.template.loader import get_template
    from django.urls import get_resolver

    try:
        for urlconf in (settings.ROOT_URLCONF, getattr(settings, "TENANT_URLCONF", None)):
            if urlconf:
                get_resolver(urlconf).url_patterns  # noqa: B018  (imports every view module)
        for name in TEMPLATES:
            get_template(name)
    except Exception:
        logger.exception("warm-up of a web worker failed")
