"""The base of every reconciliation page of the tenant console: billing's console base (membership, the
tenant filter, operators read-only), with the section the navigation marks."""

from __future__ import annotations

from billing.views import TenantConsoleView


class ReconciliationConsoleView(TenantConsoleView):
    nav_section = "money"
