"""Root URLconf: accounts, the iDC staff console, the Django admin. Tenants live in urls_tenant."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from billing import login_views
from billing import views as billing_views

urlpatterns = [
    path("", billing_views.home, name="home"),
    path("accounts/login/", login_views.login_view, name="login"),
    path("accounts/login/code/", login_views.login_code_view, name="login_code"),
    path("accounts/two-step/setup/", login_views.two_factor_setup_view, name="two_factor_setup"),
    path("accounts/two-step/", login_views.account_security_view, name="account_security"),
    path("accounts/logout/", billing_views.logout_view, name="logout"),
    path("accounts/invitations/<str:token>/", billing_views.invitation_accept, name="invitation_accept"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("staff/", include("payeasy.staff.urls")),
    path("admin/login/", login_views.admin_login),  # the console's login: lockout and second factor
    path("admin/", admin.site.urls),
    *([path("sandbox-bank/", include("payeasy.sandbox.urls"))] if settings.PAYEASY_SANDBOX_BANK else []),
]
