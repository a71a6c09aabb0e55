from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def tenancy(request: HttpRequest) -> dict[str, Any]:
    """The current biller and, for console users, the billers they can switch to."""
    user = getattr(request, "user", None)
    memberships = []
    if user is not None and user.is_authenticated:
        from billing.tenancy import cross_tenant

        with cross_tenant("accounts"):  # the user's own memberships, of every biller
            memberships = list(user.memberships.select_related("biller").exclude(biller__status="suspended"))
    return {"current_biller": getattr(request, "biller", None), "my_memberships": memberships}
