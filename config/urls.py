"""Root URLconf: accounts, the iDC staff console, the Django admin. Tenants live in urls_tenant."""

from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from billing import login_views
from billing import views as billing_views
from config import urls_accounts

# Browsers ask for /favicon.ico on their own: send them to the static icon (templates/base.html links the
# SVG and this ICO). Resolved per request, after STATIC_URL has its script prefix (billing.tenancy).
favicon = RedirectView.as_view(url=lazy(static, str)("favicon.ico"), permanent=True)

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
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

# a database outage answers 503 with Retry-After, anything else a 500; both without the database
handler500 = "config.errors.server_error"
