"""URLs across the root and tenant URLconfs, whatever URLconf the current page uses."""

from __future__ import annotations

from typing import Any

from django import template

from billing.models import Biller
from billing.tenancy import root_reverse, tenant_reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def root_url(context: dict[str, Any], name: str, *args: Any) -> str:
    return root_reverse(name, request=context.get("request"), args=args or None)


@register.simple_tag
def tenant_url(biller: Biller, name: str, *args: Any) -> str:
    return tenant_reverse(biller, name, args=args or None)
