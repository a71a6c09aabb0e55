"""The tenant console's reconciliation pages, included in the console namespace (config.urls_tenant)."""

from reconciliation.views import dashboard, deposits, exports, payments, queue, refunds, reports

urlpatterns = [
    *dashboard.urlpatterns,
    *payments.urlpatterns,
    *exports.urlpatterns,
    *queue.urlpatterns,
    *refunds.urlpatterns,
    *reports.urlpatterns,
    *deposits.urlpatterns,
]
