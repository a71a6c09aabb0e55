"""Tenant URLconf: reached at /b/<slug>/… or at <slug>.<PORTAL_DOMAIN>/… (billing.tenancy)."""

from django.urls import include, path

from billing import views as billing_views

console_patterns = (
    [
        path("", billing_views.ConsoleHomeView.as_view(), name="home"),
        path("members/", billing_views.MembersView.as_view(), name="members"),
    ],
    "console",
)

urlpatterns = [
    path("console/", include(console_patterns)),
    path("api/v1/", include("billing.api.urls")),
    path("accounts/login/", billing_views.login_view, name="login"),
    path("accounts/logout/", billing_views.logout_view, name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
]
