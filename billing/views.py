"""The tenant admin console's base (``TenantConsoleView``) and its own pages: who and what may reach the
tenant (members, the operators' login rule, API keys). Also the accounts pages around the
login: choose a biller, accept an invitation, log out (the login itself is ``billing.login_views``)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views import View

from billing import selectors, services
from billing.console_forms import ApiKeyForm
from billing.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from billing.forms import InvitationAcceptForm, InviteForm, form_errors_add
from billing.login_forms import OperatorTotpForm
from billing.models import ApiKey, ConsoleTwoFactor, Membership
from billing.scoping import TenantScopedMixin
from billing.services import two_factor
from billing.tenancy import TenantRequest, root_reverse, tenant_reverse

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


# --- the one base every tenant page inherits ---------------------------------------------------------


class TenantConsoleView(TenantScopedMixin, LoginRequiredMixin, View):
    """Base of every tenant console page.

    It requires a tenant request and a membership of the logged-in user at
    that biller (otherwise 404, the same as a biller that does not exist);
    operators are read-only. ``get_queryset``/``get_object`` (``TenantScopedMixin``) are the only way
    to reach ``model``'s rows, and ``Model.objects.for_biller(self.biller)`` any other tenant rows:
    another tenant's object answers 404 exactly like a missing one.
    """

    write_roles = frozenset({Membership.Role.ADMIN})

    def dispatch(self, request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if request.biller is None:
            raise Http404
        membership = selectors.membership_for(user=request.user, biller=request.biller)
        if membership is None:
            raise Http404
        if request.method not in SAFE_METHODS and membership.role not in self.write_roles:
            raise PermissionDenied(_("Your role is read-only."))
        self.membership = membership
        self.biller = request.biller
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("view", self)
        kwargs.setdefault("membership", self.membership)
        kwargs.setdefault("biller", self.biller)
        return kwargs


class MembersView(TenantConsoleView):
    template_name = "billing/console/members.html"

    def get(self, request: TenantRequest, form: InviteForm | None = None) -> HttpResponse:
        context = self.get_context_data(
            members=selectors.member_list(biller=self.biller),
            invitations=selectors.invitation_list(biller=self.biller),
            form=form or InviteForm(),
        )
        return render(request, self.template_name, context)

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = InviteForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form)
        try:
            services.invitation_create(
                actor=request.user,
                biller=self.biller,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except ValidationFailed as exc:
            form_errors_add(form, exc)
            return self.get(request, form=form)
        messages.success(request, _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]})
        return redirect("console:members")


# --- the biller's rule for operators (tenant console) ------------------------------------------------


class LoginSecurityView(TenantConsoleView):
    """Whether the biller's operators must use two-step verification (administrators always must)."""

    template_name = "billing/console/login_security.html"
    nav_section = "login_security"

    def get(self, request: TenantRequest, form: OperatorTotpForm | None = None) -> HttpResponse:
        members = list(
            Membership.objects.for_biller(self.biller).select_related("user").order_by("role", "user__email")
        )
        enrolled = set(
            ConsoleTwoFactor.objects.filter(
                user__in=[m.user for m in members], enabled_at__isnull=False
            ).values_list("user_id", flat=True)
        )
        rows = [(m, m.user_id in enrolled) for m in members]
        form = form or OperatorTotpForm(initial={"required": self.biller.console_totp_for_operators})
        return render(request, self.template_name, self.get_context_data(form=form, rows=rows))

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = OperatorTotpForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form)
        required = form.cleaned_data["required"]
        self.biller = two_factor.biller_set_operator_totp(
            actor=request.user, biller=self.biller, required=required
        )
        messages.success(
            request,
            _("Operators must now use two-step verification.")
            if required
            else _("Operators may now log in with their password alone."),
        )
        return redirect("console:login_security")


# --- API keys ------------------------------------------------------------------------------------------


class ApiKeyListView(TenantConsoleView):
    """The biller's API keys; a new key's secret is on the response to its creation and nowhere else."""

    model = ApiKey
    nav_section = "api_keys"
    template_name = "billing/console/api_keys.html"

    def scoped_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.select_related("created_by").order_by("-created_at", "-id")

    def get(
        self,
        request: TenantRequest,
        form: ApiKeyForm | None = None,
        new_key: ApiKey | None = None,
        token: str = "",
        status: int = 200,
    ) -> HttpResponse:
        context = self.get_context_data(
            keys=self.get_queryset(), form=form or ApiKeyForm(), new_key=new_key, token=token
        )
        response = render(request, self.template_name, context, status=status)
        if token:
            add_never_cache_headers(response)
        return response

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = ApiKeyForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form, status=400)
        try:
            key, token = services.api_key_create(
                actor=request.user, biller=self.biller, name=form.cleaned_data["name"]
            )
        except ValidationFailed as exc:
            form_errors_add(form, exc, named=True)
            return self.get(request, form=form, status=400)
        # rendered, not redirected: the secret must not travel through the session or a later page
        return self.get(request, new_key=key, token=token)


class ApiKeyRevokeView(TenantConsoleView):
    model = ApiKey
    nav_section = "api_keys"

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        key: ApiKey = self.get_object(pk)
        try:
            services.api_key_revoke(actor=request.user, biller=self.biller, key_id=key.pk)
        except NotFound as exc:
            raise Http404 from exc
        messages.success(request, _("API key %(name)s was revoked.") % {"name": key.name})
        return redirect("console:api_key_list")


# --- accounts --------------------------------------------------------------------------------------------


def logout_view(request: TenantRequest) -> HttpResponseBase:
    if request.method == "POST":
        auth_logout(request)
    return redirect(root_reverse("login", request=request))


def home(request: TenantRequest) -> HttpResponseBase:
    """Where a console user lands: the staff console, their one biller, or a choice of billers."""
    if not request.user.is_authenticated:
        return redirect(root_reverse("login", request=request))
    memberships = selectors.memberships_of(user=request.user)
    if request.user.is_idc_staff and not memberships:
        return redirect(root_reverse("staff:biller_list", request=request))
    if len(memberships) == 1 and not request.user.is_idc_staff:
        return redirect(tenant_reverse(memberships[0].biller, "console:home"))
    return render(request, "billing/choose_biller.html", {"memberships": memberships})


def invitation_accept(request: TenantRequest, token: str) -> HttpResponseBase:
    try:
        invitation = services.invitation_get_pending(token=token)
    except NotFound as exc:
        return render(request, "billing/invitation_invalid.html", {"reason": exc.code}, status=404)
    user = request.user if request.user.is_authenticated else None
    form = InvitationAcceptForm(request.POST or None) if user is None else None
    error = None
    if request.method == "POST":
        try:
            if user is not None:
                membership = services.invitation_accept(token=token, user=user)
            elif form is not None and form.is_valid():
                membership = services.invitation_accept(
                    token=token, name=form.cleaned_data["name"], password=form.cleaned_data["password"]
                )
                # a new administrator sets up two-step verification before the console opens
                from billing.login_views import password_passed

                console = tenant_reverse(membership.biller, "console:home")
                response = password_passed(request, membership.user, next_url=console, via="invitation")
                if not request.user.is_authenticated:
                    messages.success(
                        request, _("Welcome to %(name)s.") % {"name": membership.biller.legal_name}
                    )
                    return response
            else:
                membership = None
        except ValidationFailed as exc:
            membership = None
            if form is not None:
                form_errors_add(form, exc)
        except (Conflict, NotFound, InvalidTransition) as exc:
            membership = None
            error = exc.message
        if membership is not None:
            messages.success(request, _("Welcome to %(name)s.") % {"name": membership.biller.legal_name})
            return redirect(tenant_reverse(membership.biller, "console:home"))
    return render(
        request,
        "billing/invitation_accept.html",
        {"invitation": invitation, "form": form, "error": error, "existing_user": user},
    )
