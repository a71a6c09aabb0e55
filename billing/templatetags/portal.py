"""The customer portal's page frame: the logged-in portal account, also on pages other apps render
with ``billing/portal/base.html`` (payeasy's 情報リンク pages) that do not put it in their context."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()

_UNSET = object()


@register.simple_tag(takes_context=True)
def current_portal_account(context: Any) -> Any:
    account = context.get("portal_account")
    if account is not None:
        return account
    request = context.get("request")
    biller = getattr(request, "biller", None)
    if request is None or biller is None:
        return None
    cached = getattr(request, "_portal_account", _UNSET)
    if cached is _UNSET:
        from billing.portal.services import account_of

        cached = account_of(getattr(request, "user", None), biller)
        request._portal_account = cached
    return cached
