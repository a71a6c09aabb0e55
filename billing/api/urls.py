from django.conf import settings
from django.urls import path, re_path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing.api import payment_requests, views

app_name = "api"

# Swagger UI (drf-spectacular-sidecar's static files; its inline style and script carry the nonce, see
# templates/drf_spectacular/swagger_ui.html) draws its icons as data: images: the site-wide
# Content-Security-Policy with data: images, on this page only.
API_DOCS = csp_override({**settings.SECURE_CSP, "img-src": [CSP.SELF, "data:"]})(
    SpectacularSwaggerView.as_view(url_name="api:schema")
)

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
    path("docs/", API_DOCS, name="docs"),
    # anything else under the API ending in / (an id that is not a number, a path that does not exist):
    # the API's 404 in its error shape, not the site's HTML page (without the /, APPEND_SLASH goes first)
    re_path(r"^(?:[\s\S]*/)?$", views.NotFoundApi.as_view(), name="not_found"),
]
