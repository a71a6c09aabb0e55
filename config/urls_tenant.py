"""Tenant URLconf: reached at /b/<slug>/… or at <slug>.<PORTAL_DOMAIN>/… (billing.tenancy)."""

from django.urls import URLPattern, URLResolver, include, path

from billing import console_customers, console_imports, console_payment_requests, console_views
from billing import views as billing_views
from billing.portal import urls as portal_urls
from config import urls_accounts
from config.urls import favicon
from payeasy import console_views as payeasy_console
from payeasy import live_urls, paying_urls

console_patterns: tuple[list[URLPattern | URLResolver], str] = (
    [
        path("members/", billing_views.MembersView.as_view(), name="members"),
        path("login-security/", billing_views.LoginSecurityView.as_view(), name="login_security"),
        path("invoices/", console_views.InvoiceListView.as_view(), name="invoice_list"),
        path("invoices/new/", console_views.InvoiceCreateView.as_view(), name="invoice_create"),
        path("invoices/bulk/", console_views.InvoiceBulkView.as_view(), name="invoice_bulk"),
        path("invoices/<int:pk>/", console_views.InvoiceDetailView.as_view(), name="invoice_detail"),
        path("invoices/<int:pk>/edit/", console_views.InvoiceEditView.as_view(), name="invoice_edit"),
        path(
            "invoices/<int:pk>/publish/", console_views.InvoicePublishView.as_view(), name="invoice_publish"
        ),
        path("invoices/<int:pk>/cancel/", console_views.InvoiceCancelView.as_view(), name="invoice_cancel"),
        path("invoices/<int:pk>/pdf/", console_views.InvoicePdfView.as_view(), name="invoice_pdf"),
        path("settings/invoices/", console_views.InvoiceSettingsView.as_view(), name="invoice_settings"),
        path("customers/", console_customers.CustomerListView.as_view(), name="customer_list"),
        path("customers/new/", console_customers.CustomerCreateView.as_view(), name="customer_create"),
        path("customers/<int:pk>/edit/", console_customers.CustomerEditView.as_view(), name="customer_edit"),
        path(
            "customers/<int:pk>/balance/",
            console_payment_requests.CustomerBalanceView.as_view(),
            name="customer_balance",
        ),
        path(
            "payment-requests/",
            console_payment_requests.PaymentRequestListView.as_view(),
            name="payment_request_list",
        ),
        path(
            "payment-requests/new/",
            console_payment_requests.PaymentRequestCreateView.as_view(),
            name="payment_request_create",
        ),
        path(
            "payment-requests/<int:pk>/",
            console_payment_requests.PaymentRequestDetailView.as_view(),
            name="payment_request_detail",
        ),
        path(
            "payment-requests/<int:pk>/cancel/",
            console_payment_requests.PaymentRequestCancelView.as_view(),
            name="payment_request_cancel",
        ),
        *portal_urls.console_patterns,
        path("imports/", console_imports.ImportListView.as_view(), name="import_list"),
        path("imports/<int:pk>/", console_imports.ImportDetailView.as_view(), name="import_detail"),
        path("imports/<int:pk>/import/", console_imports.ImportConfirmView.as_view(), name="import_confirm"),
        path("imports/<int:pk>/errors.csv", console_imports.ImportErrorsView.as_view(), name="import_errors"),
        path("help/csv-import/", console_imports.ImportHelpView.as_view(), name="import_help"),
        path(
            "help/csv-import/invoices-sample.csv",
            console_imports.ImportSampleView.as_view(),
            name="import_sample",
        ),
        path("api-keys/", billing_views.ApiKeyListView.as_view(), name="api_key_list"),
        path("api-keys/<int:pk>/revoke/", billing_views.ApiKeyRevokeView.as_view(), name="api_key_revoke"),
        path("webhooks/", payeasy_console.WebhookListView.as_view(), name="webhook_list"),
        path("webhooks/new/", payeasy_console.WebhookCreateView.as_view(), name="webhook_create"),
        path("webhooks/<int:pk>/", payeasy_console.WebhookEditView.as_view(), name="webhook_edit"),
        path("webhooks/<int:pk>/active/", payeasy_console.WebhookActiveView.as_view(), name="webhook_active"),
        path("webhooks/<int:pk>/rotate/", payeasy_console.WebhookRotateView.as_view(), name="webhook_rotate"),
        path("webhooks/<int:pk>/test/", payeasy_console.WebhookTestView.as_view(), name="webhook_test"),
        path(
            "webhooks/deliveries/",
            payeasy_console.WebhookDeliveryListView.as_view(),
            name="webhook_delivery_list",
        ),
        path(
            "webhooks/deliveries/<int:pk>/",
            payeasy_console.WebhookDeliveryDetailView.as_view(),
            name="webhook_delivery_detail",
        ),
        path(
            "webhooks/deliveries/<int:pk>/resend/",
            payeasy_console.WebhookDeliveryResendView.as_view(),
            name="webhook_delivery_resend",
        ),
        # reconciliation's pages (the money: payments, findings, refunds, deposits, reports), included by
        # name: nothing imports reconciliation
        path("", include("reconciliation.urls")),
    ],
    "console",
)

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),  # a tenant host's browser asks for it too
    path("console/", include(console_patterns)),
    # reconciliation's operations first: billing's API ends with a catch-all that answers 404 in its shape
    path("api/v1/", include("reconciliation.api.urls")),
    path("api/v1/", include("billing.api.urls")),
    # the customer portal: billing's pages and payeasy's (paying, live status) in one namespace
    path(
        "my/",
        include(
            (
                [*portal_urls.urlpatterns, *paying_urls.urlpatterns, *live_urls.urlpatterns],
                portal_urls.app_name,
            )
        ),
    ),
    # a payment request's numbers behind a signed link, no account needed (ATM後払い)
    path("pay/", include("payeasy.paylater_urls")),
    *urls_accounts.urlpatterns,
    path("i18n/", include("django.conf.urls.i18n")),
]

handler500 = "config.errors.server_error"  # as the root URLconf's (config.errors)
