"""The staff console's reconciliation pages, included by the root URLconf by name (config.urls:
``staff/reconciliation/``): nothing imports reconciliation."""

from django.urls import path

from reconciliation.staff_views import ReconciliationSummaryView

app_name = "staff_reconciliation"

urlpatterns = [
    path("", ReconciliationSummaryView.as_view(), name="summary"),
]
