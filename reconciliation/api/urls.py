"""Reconciliation's API operations, under /api/v1/ beside billing's (config.urls_tenant)."""

from reconciliation.api import payments, records

app_name = "reconciliation_api"

urlpatterns = [*payments.urlpatterns, *records.urlpatterns]
