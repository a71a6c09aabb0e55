"""The customer portal's URLs, mounted at ``my/`` in the tenant URLconf with the namespace ``portal``.

The pages that speak Pay-easy (the 情報リンク chooser and hand-off, the live status) are payeasy's:
config/urls_tenant.py joins their patterns to these in the one ``portal`` namespace, so billing does
not import payeasy.
"""

from django.urls import URLPattern, URLResolver, path

from billing.portal import account_views, console_views, payment_views, views

app_name = "portal"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.HomeView.as_view(), name="home"),
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("login/code/", account_views.LoginTotpView.as_view(), name="login_totp"),
    path("logout/", account_views.LogoutView.as_view(), name="logout"),
    path("register/", account_views.RegisterView.as_view(), name="register"),
    path("invitations/<str:token>/", account_views.InvitationAcceptView.as_view(), name="invitation_accept"),
    path("password-reset/", account_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", account_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("reset/done/", account_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("security/", account_views.SecurityView.as_view(), name="security"),
    path("invoices/", views.InvoiceListView.as_view(), name="invoice_list"),
    path("invoices/download/", views.InvoiceDownloadView.as_view(), name="invoice_download"),
    path("invoices/<int:pk>/", views.InvoiceDetailView.as_view(), name="invoice_detail"),
    path("invoices/<int:pk>/pdf/", views.InvoicePdfView.as_view(), name="invoice_pdf"),
    path("invoices/<int:pk>/decision/", views.InvoiceDecisionView.as_view(), name="invoice_decide"),
    path("approvals/", views.ApprovalListView.as_view(), name="approval_list"),
    path("payments/", payment_views.PaymentHistoryView.as_view(), name="payment_list"),
    path("receipts/", payment_views.ReceiptListView.as_view(), name="receipt_list"),
    path("receipts/<int:pk>/", payment_views.ReceiptDetailView.as_view(), name="receipt_detail"),
    path("receipts/<int:pk>/pdf/", payment_views.ReceiptPdfView.as_view(), name="receipt_pdf"),
    path("balance/", payment_views.BalanceView.as_view(), name="balance"),
]

# The tenant console's customer-account actions (mounted in the console namespace by config/urls_tenant).
console_patterns = [
    path(
        "invoices/<int:pk>/receipts/<int:receipt_pk>/pdf/",
        payment_views.ConsoleReceiptPdfView.as_view(),
        name="invoice_receipt_pdf",
    ),
    path(
        "customers/<int:pk>/portal/invite/",
        console_views.CustomerPortalInviteView.as_view(),
        name="customer_portal_invite",
    ),
    path(
        "customers/<int:pk>/portal/code/",
        console_views.CustomerRegistrationCodeView.as_view(),
        name="customer_registration_code",
    ),
    path(
        "customers/<int:pk>/portal/accounts/<int:account_pk>/",
        console_views.CustomerAccountUpdateView.as_view(),
        name="customer_account_update",
    ),
    path(
        "customers/<int:pk>/portal/invitations/<int:invitation_pk>/revoke/",
        console_views.CustomerInvitationRevokeView.as_view(),
        name="customer_invitation_revoke",
    ),
]
