"""The console login (iDC staff, tenant admins and operators; the Django admin's login too).

1. Password: refused without looking at it while the login or the address is locked
   (billing.throttling, policy ``CONSOLE``); a wrong one is counted and audited.
2. Second factor: a user who has one gives a code (TOTP, or a recovery code); a user who must have
   one (billing.services.two_factor.totp_required) and has none sets it up first. Until then the
   session holds only a short-lived "pending" mark, not a login. Wrong codes count toward the lock.
3. Only then ``auth_login``: the success is counted (it resets the login's count) and audited.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters

from billing import throttling, totp
from billing.errors import InvalidTransition, ValidationFailed
from billing.forms import form_errors_add
from billing.login_forms import LoginForm, RecoveryCodeForm, TotpForm
from billing.models import User, console_login
from billing.qr import qr_svg
from billing.services import two_factor
from billing.tenancy import TenantRequest, root_reverse
from billing.two_factor import PENDING, VERIFIED

BACKEND = "django.contrib.auth.backends.ModelBackend"
PENDING_SECONDS = 600
POLICY = throttling.CONSOLE


def _safe_next(request: HttpRequest, value: str) -> str:
    if value and url_has_allowed_host_and_scheme(value, {request.get_host()}, request.is_secure()):
        return value
    return ""


def _home(request: HttpRequest) -> str:
    return root_reverse("home", request=request)


def _lock_message(lock: throttling.Lock) -> str:
    return _(
        "Too many failed attempts. For your security, logging in is paused: try again in %(minutes)d minutes."
    ) % {"minutes": lock.minutes}


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, template, context, status=status)
    add_never_cache_headers(response)
    return response


def _fail(request: HttpRequest, *, login: str, ip: str, user: User | None, via: str, step: str) -> None:
    """Count a failure, audit it, and audit the lock it starts."""
    throttling.record(policy=POLICY, biller=None, login=login, ip=ip, succeeded=False)
    two_factor.login_audit(action="console.login_failed", login=login, ip=ip, user=user, via=via, step=step)
    if throttling.lock_for(policy=POLICY, biller=None, login=login, ip=ip) is not None:
        two_factor.login_audit(
            action="console.login_locked", login=login, ip=ip, user=user, via=via, step=step
        )


def _complete(request: HttpRequest, user: User, *, via: str, step: str) -> None:
    ip = throttling.client_ip(request)
    throttling.record(policy=POLICY, biller=None, login=user.login, ip=ip, succeeded=True)
    two_factor.login_audit(action="console.login", login=user.login, ip=ip, user=user, via=via, step=step)
    request.session.pop(PENDING, None)
    auth_login(request, user, backend=BACKEND)
    request.session[VERIFIED] = user.pk


def password_passed(request: HttpRequest, user: User, *, next_url: str, via: str) -> HttpResponseBase:
    """The password (or an accepted invitation) is good: log in, or ask for the second factor first."""
    has_factor = two_factor.two_factor_of(user) is not None
    if has_factor or two_factor.totp_required(user):
        request.session.cycle_key()
        request.session[PENDING] = {"user": user.pk, "at": int(time.time()), "next": next_url, "via": via}
        return redirect("login_code" if has_factor else "two_factor_setup")
    _complete(request, user, via=via, step="password")
    return HttpResponseRedirect(_safe_next(request, next_url) or _home(request))


def _pending(request: HttpRequest) -> tuple[User, dict[str, Any]] | None:
    data = request.session.get(PENDING)
    if not isinstance(data, dict):
        return None
    if int(time.time()) - int(data.get("at", 0)) > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return None
    user_id = data.get("user")
    if not isinstance(user_id, int):
        return None
    user = User.objects.filter(pk=user_id, is_active=True, realm=User.Realm.CONSOLE).first()
    if user is None:
        return None
    return user, data


# --- step 1: the password --------------------------------------------------------------------------


@sensitive_post_parameters("password")
def login_view(request: TenantRequest, *, via: str = "console", default_next: str = "") -> HttpResponseBase:
    template = "billing/login.html"
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next") or default_next)
    if request.method != "POST":
        return _page(request, template, {"form": LoginForm(), "next": next_url})
    data = request.POST.copy()
    if via == "admin" and "email" not in data:  # the Django admin's own form says "username"
        data["email"] = data.get("username", "")
    form = LoginForm(data)
    context = {"form": form, "next": next_url}
    if not form.is_valid():
        return _page(request, template, context, status=400)
    login, ip = console_login(form.cleaned_data["email"]), throttling.client_ip(request)
    lock = throttling.lock_for(policy=POLICY, biller=None, login=login, ip=ip)
    if lock is not None:
        form.add_error(None, _lock_message(lock))
        return _page(request, template, context, status=429)
    user = authenticate(request, username=login, password=form.cleaned_data["password"])
    if user is None or not user.is_active or user.realm != User.Realm.CONSOLE:
        known = User.objects.filter(login=login, realm=User.Realm.CONSOLE).first()
        _fail(request, login=login, ip=ip, user=known, via=via, step="password")
        form.add_error(None, _("The e-mail or password is not correct."))
        return _page(request, template, context, status=400)
    return password_passed(request, user, next_url=next_url, via=via)


@sensitive_post_parameters("password")
def admin_login(request: TenantRequest) -> HttpResponseBase:
    """The Django admin's login page: the console's, with the same lockout and second factor."""
    if request.method == "POST":
        return login_view(request, via="admin", default_next=reverse("admin:index"))
    next_url = _safe_next(request, request.GET.get("next", "")) or reverse("admin:index")
    return HttpResponseRedirect(f"{reverse('login')}?{urlencode({'next': next_url})}")


# --- step 2: the code --------------------------------------------------------------------------------


def login_code_view(request: TenantRequest) -> HttpResponseBase:
    template = "billing/login_code.html"
    pending = _pending(request)
    if pending is None or two_factor.two_factor_of(pending[0]) is None:
        if request.method == "POST":
            messages.error(request, _("The login took too long. Please log in again."))
        return redirect("login")
    user, data = pending
    use_recovery = "recovery_code" in request.POST
    form = TotpForm(request.POST if request.method == "POST" and not use_recovery else None)
    recovery = RecoveryCodeForm(request.POST if use_recovery else None)
    context = {"form": recovery if use_recovery else form, "totp_form": form, "recovery_form": recovery}
    if request.method != "POST":
        return _page(request, template, context)
    active = recovery if use_recovery else form
    if not active.is_valid():
        return _page(request, template, context, status=400)
    ip, via = throttling.client_ip(request), str(data.get("via", "console"))
    lock = throttling.lock_for(policy=POLICY, biller=None, login=user.login, ip=ip)
    if lock is not None:
        request.session.pop(PENDING, None)
        active.add_error(None, _lock_message(lock))
        return _page(request, template, context, status=429)
    step = "recovery_code" if use_recovery else "totp"
    ok = two_factor.verify(
        user=user,
        code=form.cleaned_data.get("code", "") if not use_recovery else "",
        recovery_code=recovery.cleaned_data.get("recovery_code", "") if use_recovery else "",
        ip=ip,
    )
    if not ok:
        _fail(request, login=user.login, ip=ip, user=user, via=via, step=step)
        if use_recovery:
            recovery.add_error("recovery_code", _("This recovery code is not correct or has been used."))
        else:
            form.add_error("code", _("The code is not correct. Check the time on your phone."))
        return _page(request, template, context, status=400)
    _complete(request, user, via=via, step=step)
    if use_recovery:
        messages.warning(
            request,
            _("You used a recovery code. %(n)d are left; make new ones under Two-step verification.")
            % {"n": two_factor.recovery_codes_left(user)},
        )
    return HttpResponseRedirect(_safe_next(request, str(data.get("next", ""))) or _home(request))


# --- setting up the second factor --------------------------------------------------------------------


def two_factor_setup_view(request: TenantRequest) -> HttpResponseBase:
    """Set up TOTP: during a login (forced for those who must have it) or when logged in."""
    template = "billing/two_factor_setup.html"
    pending = None if request.user.is_authenticated else _pending(request)
    if request.user.is_authenticated and request.user.realm == User.Realm.CONSOLE:
        user: User = request.user
    elif pending is not None:
        user = pending[0]
    else:
        return redirect("login")
    if two_factor.two_factor_of(user) is not None:
        if pending is not None:
            return redirect("login_code")
        return redirect("account_security")
    factor = two_factor.enrolment_begin(user=user)
    form = TotpForm(request.POST if request.method == "POST" else None)
    context = {
        "form": form,
        "secret": factor.secret,
        "secret_grouped": totp.grouped(factor.secret),
        "provisioning_uri": two_factor.provisioning_uri(factor),
        "qr": qr_svg(two_factor.provisioning_uri(factor), title=_("QR code for the authenticator app")),
        "required": two_factor.totp_required(user),
        "during_login": pending is not None,
    }
    if request.method != "POST":
        return _page(request, template, context)
    if not form.is_valid():
        return _page(request, template, context, status=400)
    ip = throttling.client_ip(request)
    via = str(pending[1].get("via", "console")) if pending is not None else "console"
    lock = throttling.lock_for(policy=POLICY, biller=None, login=user.login, ip=ip)
    if lock is not None:
        request.session.pop(PENDING, None)
        form.add_error(None, _lock_message(lock))
        return _page(request, template, context, status=429)
    try:
        codes = two_factor.enrolment_confirm(user=user, code=form.cleaned_data["code"], ip=ip)
    except ValidationFailed as exc:
        _fail(request, login=user.login, ip=ip, user=user, via=via, step="totp_setup")
        form_errors_add(form, exc)
        return _page(request, template, context, status=400)
    except InvalidTransition as exc:
        messages.error(request, exc.message)
        return redirect("login")
    next_url = ""
    if pending is not None:
        next_url = _safe_next(request, str(pending[1].get("next", "")))
        _complete(request, user, via=via, step="totp_setup")
    return _page(
        request,
        "billing/recovery_codes.html",
        {"codes": codes, "continue_url": next_url or _home(request), "just_enrolled": True},
    )


def account_security_view(request: TenantRequest) -> HttpResponseBase:
    """A console user's own two-step verification: its state, and new recovery codes."""
    if not request.user.is_authenticated or request.user.realm != User.Realm.CONSOLE:
        return HttpResponseRedirect(f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}")
    user: User = request.user
    factor = two_factor.two_factor_of(user)
    form = TotpForm(request.POST if request.method == "POST" else None)
    context = {
        "factor": factor,
        "form": form,
        "codes_left": len(factor.recovery_hashes) if factor is not None else 0,
        "required": two_factor.totp_required(user),
    }
    if request.method == "POST" and factor is not None:
        if not form.is_valid():
            return _page(request, "billing/account_security.html", context, status=400)
        ip = throttling.client_ip(request)
        try:
            codes = two_factor.recovery_codes_regenerate(user=user, code=form.cleaned_data["code"], ip=ip)
        except ValidationFailed as exc:
            form_errors_add(form, exc)
            return _page(request, "billing/account_security.html", context, status=400)
        return _page(
            request,
            "billing/recovery_codes.html",
            {"codes": codes, "continue_url": reverse("account_security"), "just_enrolled": False},
        )
    return _page(request, "billing/account_security.html", context)
