"""Root URLconf: accounts, the iDC staff console, the Django admin. Tenants live in urls_tenant."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from billing import login_views
from billing import views as billing_views
from config import urls_accounts

urlpatterns = [
    path("", billing_views.home, name="home"),
    *urls_accounts.urlpatterns,
    path("accounts/invitations/<str:token>/", billing_views.invitation_accept, name="invitation_accept"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("staff/reconciliation/", include("reconciliation.staff_urls")),
    path("staff/", include("payeasy.staff.urls")),
    path("admin/login/", login_views.admin_login),  # the console's login: lockout and second factor
    path("admin/", admin.site.urls),
    *([path("sandbox-bank/", include("payeasy.sandbox.urls"))] if settings.PAYEASY_SANDBOX_BANK else []),
]
