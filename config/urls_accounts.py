"""The account URLs (log in, the second step, log out) that both URLconfs serve at ``accounts/``."""

from django.urls import path

from billing import login_views
from billing import views as billing_views

urlpatterns = [
    path("accounts/login/", login_views.login_view, name="login"),
    path("accounts/login/code/", login_views.login_code_view, name="login_code"),
    path("accounts/two-step/setup/", login_views.two_factor_setup_view, name="two_factor_setup"),
    path("accounts/two-step/", login_views.account_security_view, name="account_security"),
    path("accounts/logout/", billing_views.logout_view, name="logout"),
]
