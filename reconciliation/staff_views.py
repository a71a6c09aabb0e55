"""The iDC staff console's reconciliation summary: every tenant's open findings (count, yen, the oldest),
its last reconciliation run and today's payments, the tenants with the oldest open findings first.

A staff page crosses tenants on purpose, by name: the reads run under ``cross_tenant("staff")`` (the
database's row-level security) with the models' ``cross_tenant("staff")`` managers. Staff do not enter
tenant consoles: each tenant links to its page in the staff console."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from billing.tenancy import TenantRequest, cross_tenant
from payeasy.staff.views import StaffView
from reconciliation.selectors.dashboard import staff_summary


class ReconciliationSummaryView(StaffView):
    template_name = "reconciliation/staff/summary.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        now = timezone.now()
        with cross_tenant("staff"):
            today, rows = staff_summary(now=now)
        table = [(row, row.oldest_age_days(today)) for row in rows]
        context = {
            "today": today,
            "rows": table,
            "with_findings": sum(1 for row in rows if row.open_count),
            "open_count": sum(row.open_count for row in rows),
            "open_amount": sum(row.open_amount for row in rows),
        }
        return render(request, self.template_name, context)
