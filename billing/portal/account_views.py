"""The customer portal's accounts pages: log in (with TOTP), log out, self-registration, invitations,
password reset and the account's two-step verification."""

from __future__ import annotations

import time
from typing import Any

from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.views import PasswordResetConfirmView as DjangoPasswordResetConfirmView
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from billing.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from billing.forms import form_errors_add
from billing.login_forms import LoginForm, TotpForm
from billing.models import CustomerAccount, User, customer_login
from billing.portal import services, throttling
from billing.portal.forms import (
    NewAccountForm,
    PasswordResetRequestForm,
    PortalSetPasswordForm,
    RegistrationForm,
)
from billing.portal.views import PortalPublicView, PortalView
from billing.qr import qr_svg
from billing.tenancy import TenantRequest

TOTP_PENDING = "portal_totp_pending"
TOTP_PENDING_SECONDS = 300
BACKEND = "django.contrib.auth.backends.ModelBackend"


def _safe_next(request: TenantRequest, value: str) -> str:
    if value and url_has_allowed_host_and_scheme(value, {request.get_host()}, request.is_secure()):
        return value
    return ""


def _lock_message(lock: throttling.Lock) -> str:
    return _(
        "Too many failed attempts. For your security, logging in is paused: try again in %(minutes)d minutes."
    ) % {"minutes": lock.minutes}


# --- log in, TOTP, log out -----------------------------------------------------------------------------


class LoginView(PortalPublicView):
    template_name = "billing/portal/login.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        next_url = _safe_next(request, request.GET.get("next", ""))
        if self.account is not None:
            return redirect(next_url or reverse("portal:home"))
        return self.render(request, self.template_name, {"form": LoginForm(), "next": next_url})

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = LoginForm(request.POST)
        next_url = _safe_next(request, request.POST.get("next", ""))
        context = {"form": form, "next": next_url}
        if not form.is_valid():
            return self.render(request, self.template_name, context, status=400)
        email, ip = form.cleaned_data["email"], throttling.client_ip(request)
        lock = throttling.lock_for(biller=self.biller, login=email, ip=ip)
        if lock is not None:
            form.add_error(None, _lock_message(lock))
            return self.render(request, self.template_name, context, status=429)
        user = authenticate(
            request, username=customer_login(self.biller, email), password=form.cleaned_data["password"]
        )
        account = services.account_of(user, self.biller) if user is not None else None
        if account is None:
            throttling.record(biller=self.biller, login=email, ip=ip, succeeded=False)
            form.add_error(None, _("The e-mail or password is not correct."))
            return self.render(request, self.template_name, context, status=400)
        if account.totp_enabled:
            request.session[TOTP_PENDING] = {
                "user": account.user_id,
                "biller": self.biller.pk,
                "at": int(time.time()),
                "next": next_url,
            }
            return redirect("portal:login_totp")
        throttling.record(biller=self.biller, login=email, ip=ip, succeeded=True)
        auth_login(request, account.user, backend=BACKEND)
        return redirect(next_url or reverse("portal:home"))


class LoginTotpView(PortalPublicView):
    """The second step for accounts with TOTP: a code from the authenticator app."""

    template_name = "billing/portal/login_totp.html"

    def pending(self, request: TenantRequest) -> tuple[CustomerAccount, dict[str, Any]] | None:
        data = request.session.get(TOTP_PENDING)
        if not isinstance(data, dict) or data.get("biller") != self.biller.pk:
            return None
        if int(time.time()) - int(data.get("at", 0)) > TOTP_PENDING_SECONDS:
            request.session.pop(TOTP_PENDING, None)
            return None
        user_id = data.get("user")
        user = User.objects.filter(pk=user_id).first() if isinstance(user_id, int) else None
        account = services.account_of(user, self.biller) if user is not None else None
        if account is None or not account.totp_enabled:
            return None
        return account, data

    def get(self, request: TenantRequest) -> HttpResponseBase:
        if self.pending(request) is None:
            return redirect("portal:login")
        return self.render(request, self.template_name, {"form": TotpForm()})

    def post(self, request: TenantRequest) -> HttpResponseBase:
        pending = self.pending(request)
        if pending is None:
            messages.error(request, _("The login took too long. Please log in again."))
            return redirect("portal:login")
        account, data = pending
        form = TotpForm(request.POST)
        context = {"form": form}
        if not form.is_valid():
            return self.render(request, self.template_name, context, status=400)
        email, ip = account.user.email, throttling.client_ip(request)
        lock = throttling.lock_for(biller=self.biller, login=email, ip=ip)
        if lock is not None:
            request.session.pop(TOTP_PENDING, None)
            form.add_error(None, _lock_message(lock))
            return self.render(request, self.template_name, context, status=429)
        if not services.totp_verify(account=account, code=form.cleaned_data["code"]):
            throttling.record(biller=self.biller, login=email, ip=ip, succeeded=False)
            form.add_error("code", _("The code is not correct. Check the time on your phone."))
            return self.render(request, self.template_name, context, status=400)
        throttling.record(biller=self.biller, login=email, ip=ip, succeeded=True)
        request.session.pop(TOTP_PENDING, None)
        auth_login(request, account.user, backend=BACKEND)
        return redirect(_safe_next(request, data.get("next", "")) or reverse("portal:home"))


class LogoutView(PortalPublicView):
    def get(self, request: TenantRequest) -> HttpResponseBase:
        return redirect("portal:login")

    def post(self, request: TenantRequest) -> HttpResponseBase:
        if self.account is not None:
            auth_logout(request)
            messages.success(request, _("You have logged out."))
        return redirect("portal:login")


# --- registration, invitations, password reset ---------------------------------------------------------


class RegisterView(PortalPublicView):
    """Self-registration with an お客様番号 and the registration code printed on the paper bill."""

    template_name = "billing/portal/register.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        return self.render(request, self.template_name, {"form": RegistrationForm()})

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = RegistrationForm(request.POST)
        context = {"form": form}
        if not form.is_valid():
            return self.render(request, self.template_name, context, status=400)
        data = form.cleaned_data
        key = "register:" + "".join(ch for ch in data["customer_number"] if ch.isdigit())
        ip = throttling.client_ip(request)
        lock = throttling.lock_for(biller=self.biller, login=key, ip=ip)
        if lock is not None:
            form.add_error(None, _lock_message(lock))
            return self.render(request, self.template_name, context, status=429)
        try:
            account = services.customer_register(
                biller=self.biller,
                customer_number=data["customer_number"],
                registration_code=data["registration_code"],
                email=data["email"],
                name=data["name"],
                password=data["password"],
            )
        except ValidationFailed as exc:
            if "registration_code" in exc.errors:
                throttling.record(biller=self.biller, login=key, ip=ip, succeeded=False)
            form_errors_add(form, exc)
            return self.render(request, self.template_name, context, status=400)
        except Conflict as exc:
            form.add_error(None, exc.message)
            return self.render(request, self.template_name, context, status=409)
        auth_login(request, account.user, backend=BACKEND)
        messages.success(request, _("Your account is ready. Welcome."))
        return redirect("portal:home")


class InvitationAcceptView(PortalPublicView):
    template_name = "billing/portal/invitation_accept.html"

    def invalid(self, request: TenantRequest, exc: NotFound) -> HttpResponse:
        return self.render(
            request,
            "billing/portal/invitation_invalid.html",
            {"reason": exc.message, "code": exc.code},
            status=404,
        )

    def get(self, request: TenantRequest, token: str) -> HttpResponse:
        try:
            invitation = services.customer_invitation_get_pending(biller=self.biller, token=token)
        except NotFound as exc:
            return self.invalid(request, exc)
        return self.render(request, self.template_name, {"invitation": invitation, "form": NewAccountForm()})

    def post(self, request: TenantRequest, token: str) -> HttpResponseBase:
        try:
            invitation = services.customer_invitation_get_pending(biller=self.biller, token=token)
        except NotFound as exc:
            return self.invalid(request, exc)
        form = NewAccountForm(request.POST)
        context = {"invitation": invitation, "form": form}
        if not form.is_valid():
            return self.render(request, self.template_name, context, status=400)
        try:
            account = services.customer_invitation_accept(
                biller=self.biller,
                token=token,
                name=form.cleaned_data["name"],
                password=form.cleaned_data["password"],
            )
        except ValidationFailed as exc:
            form_errors_add(form, exc)
            return self.render(request, self.template_name, context, status=400)
        except NotFound as exc:
            return self.invalid(request, exc)
        except Conflict as exc:
            form.add_error(None, exc.message)
            return self.render(request, self.template_name, context, status=409)
        auth_login(request, account.user, backend=BACKEND)
        messages.success(request, _("Your account is ready. Welcome."))
        return redirect("portal:home")


class PasswordResetView(PortalPublicView):
    template_name = "billing/portal/password_reset.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        return self.render(request, self.template_name, {"form": PasswordResetRequestForm()})

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = PasswordResetRequestForm(request.POST)
        if not form.is_valid():
            return self.render(request, self.template_name, {"form": form}, status=400)
        # The same answer whether or not the address has an account here.
        services.password_reset_request(biller=self.biller, email=form.cleaned_data["email"])
        return redirect("portal:password_reset_done")


class PasswordResetDoneView(PortalPublicView):
    def get(self, request: TenantRequest) -> HttpResponse:
        return self.render(request, "billing/portal/password_reset_done.html", {})


class PasswordResetConfirmView(DjangoPasswordResetConfirmView):
    """Django's view, for this biller's customer accounts only."""

    template_name = "billing/portal/password_reset_confirm.html"
    form_class = PortalSetPasswordForm
    success_url = reverse_lazy("portal:password_reset_complete")

    def dispatch(self, request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        if request.biller is None:
            raise Http404
        self.biller = request.biller
        return super().dispatch(request, *args, **kwargs)

    def get_user(self, uidb64: str) -> Any:
        user = super().get_user(uidb64)
        if user is None or user.realm != User.Realm.CUSTOMER or user.customer_biller_id != self.biller.pk:
            return None
        return user

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["biller"] = self.biller
        return context


class PasswordResetCompleteView(PortalPublicView):
    def get(self, request: TenantRequest) -> HttpResponse:
        return self.render(request, "billing/portal/password_reset_complete.html", {})


# --- account security (TOTP) ---------------------------------------------------------------------------


class SecurityView(PortalView):
    nav_section = "security"
    template_name = "billing/portal/security.html"

    def page(self, request: TenantRequest, form: TotpForm | None = None, status: int = 200) -> HttpResponse:
        account = self.account
        enrolling = bool(account.totp_secret) and not account.totp_enabled
        uri = services.totp_provisioning_uri(account) if enrolling else ""
        context = {
            "account": account,
            "enrolling": enrolling,
            "secret": account.totp_secret if enrolling else "",
            "secret_grouped": " ".join(
                account.totp_secret[i : i + 4] for i in range(0, len(account.totp_secret), 4)
            )
            if enrolling
            else "",
            "provisioning_uri": uri,
            "qr": qr_svg(uri, title=_("QR code for the authenticator app")) if enrolling else "",
            "form": form or TotpForm(),
        }
        return self.render(request, self.template_name, context, status=status)

    def get(self, request: TenantRequest) -> HttpResponse:
        return self.page(request)

    def post(self, request: TenantRequest) -> HttpResponseBase:
        action = request.POST.get("action", "")
        try:
            if action == "begin":
                self.account = services.totp_enrol_begin(account=self.account)
                return self.page(request)
            form = TotpForm(request.POST)
            if action not in {"confirm", "disable"} or not form.is_valid():
                return self.page(request, form=form, status=400)
            if action == "confirm":
                services.totp_enrol_confirm(account=self.account, code=form.cleaned_data["code"])
                messages.success(
                    request, _("Two-step verification is on. You will need a code at every login.")
                )
            else:
                services.totp_disable(account=self.account, code=form.cleaned_data["code"])
                messages.success(request, _("Two-step verification is off."))
        except ValidationFailed as exc:
            form_errors_add(form, exc)
            self.account.refresh_from_db()
            return self.page(request, form=form, status=400)
        except InvalidTransition as exc:
            messages.error(request, exc.message)
        return redirect("portal:security")
