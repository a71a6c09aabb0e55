"""The console's second factor in the request cycle: the session marks and the middleware.

A console session is logged in (``auth_login``) only after the password and, for a user who must
have it or has it, the second factor (billing.login_views). Logging in marks the session with the
user's id (``VERIFIED``); the middleware then keeps every console page — the staff console, the
tenant console and the Django admin — closed to:

- a logged-in console user whose session has no mark (logged in before the second factor was
  introduced) and who needs or has a second factor: logged out, back to the login page;
- a logged-in user who must have a second factor and has none (an operator made administrator,
  a biller that starts requiring it, a factor reset by the iDC): only the set-up page answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import logout as auth_logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from billing.models import User
from billing.services import two_factor

VERIFIED = "console_second_factor"
PENDING = "console_login_pending"
# Paths a user who must still set up the second factor may reach (suffixes: tenant paths too).
OPEN_WHILE_ENROLLING = ("/accounts/two-step/setup/", "/accounts/logout/", "/i18n/setlang/")


@receiver(user_logged_in)
def _mark_session(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Every login of a console user goes through the second factor first (billing.login_views):
    the session is marked as such."""
    if request is not None and getattr(user, "realm", None) == User.Realm.CONSOLE:
        request.session[VERIFIED] = user.pk


def _url(request: HttpRequest, name: str) -> str:
    return reverse(name, urlconf=getattr(request, "urlconf", None))


class SecondFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.realm != User.Realm.CONSOLE:
            return self.get_response(request)
        path = request.path_info
        if path.startswith("/static/"):
            return self.get_response(request)
        factor = two_factor.two_factor_of(user)
        required = factor is None and two_factor.totp_required(user)
        if request.session.get(VERIFIED) != user.pk and (factor is not None or required):
            auth_logout(request)
            login = _url(request, "login")
            return HttpResponseRedirect(f"{login}?{urlencode({'next': request.get_full_path()})}")
        if required and not path.endswith(OPEN_WHILE_ENROLLING):
            return HttpResponseRedirect(_url(request, "two_factor_setup"))
        return self.get_response(request)
