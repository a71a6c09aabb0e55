from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing.api import views

app_name = "api"

urlpatterns = [
    path("customers/", views.CustomerListApi.as_view(), name="customer_list"),
    path("customers/<int:pk>/", views.CustomerDetailApi.as_view(), name="customer_detail"),
    path("invoices/", views.InvoiceListApi.as_view(), name="invoice_list"),
    path("invoices/<int:pk>/", views.InvoiceDetailApi.as_view(), name="invoice_detail"),
    path("invoices/<int:pk>/publish/", views.InvoicePublishApi.as_view(), name="invoice_publish"),
    path("invoices/<int:pk>/cancel/", views.InvoiceCancelApi.as_view(), name="invoice_cancel"),
    path("invoices/<int:pk>/payments/", views.InvoicePaymentsApi.as_view(), name="invoice_payments"),
    path("schema/", SpectacularAPIView.as_view(urlconf="config.urls_tenant"), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
