from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing.api import payment_requests, views

app_name = "api"

urlpatterns = [
    path("customers/", views.CustomerListApi.as_view(), name="customer_list"),
    path("customers/<int:pk>/", views.CustomerDetailApi.as_view(), name="customer_detail"),
    path("invoices/", views.InvoiceListApi.as_view(), name="invoice_list"),
    path("invoices/<int:pk>/", views.InvoiceDetailApi.as_view(), name="invoice_detail"),
    path("invoices/<int:pk>/publish/", views.InvoicePublishApi.as_view(), name="invoice_publish"),
    path("invoices/<int:pk>/cancel/", views.InvoiceCancelApi.as_view(), name="invoice_cancel"),
    path("invoices/<int:pk>/payments/", views.InvoicePaymentsApi.as_view(), name="invoice_payments"),
    path("payment-requests/", payment_requests.PaymentRequestListApi.as_view(), name="payment_request_list"),
    path(
        "payment-requests/<int:pk>/",
        payment_requests.PaymentRequestDetailApi.as_view(),
        name="payment_request_detail",
    ),
    path(
        "payment-requests/<int:pk>/cancel/",
        payment_requests.PaymentRequestCancelApi.as_view(),
        name="payment_request_cancel",
    ),
    path(
        "customers/<str:code>/balance/",
        payment_requests.CustomerBalanceApi.as_view(),
        name="customer_balance",
    ),
    path("schema/", SpectacularAPIView.as_view(urlconf="config.urls_tenant"), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
