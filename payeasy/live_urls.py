"""The live status of an invoice (payeasy.live), in the customer portal's namespace (config/urls_tenant)."""

from django.urls import path

from payeasy import live

urlpatterns = [
    path("invoices/<int:pk>/status/", live.invoice_status, name="invoice_status"),
    path("invoices/<int:pk>/events/", live.invoice_events, name="invoice_events"),
]
