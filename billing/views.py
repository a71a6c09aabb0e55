"""Accounts (log in, choose a biller, accept an invitation) and the tenant admin console."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from billing import selectors, services
from billing.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from billing.forms import InvitationAcceptForm, InviteForm
from billing.models import Membership
from billing.tenancy import TenantRequest, root_reverse, tenant_reverse

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


# --- the one base every tenant page inherits ---------------------------------------------------------


class TenantConsoleView(LoginRequiredMixin, View):
    """Base of every tenant console page.

    It requires a tenant request and a membership of the logged-in user at
    that biller (otherwise 404, the same as a biller that does not exist);
    operators are read-only. ``get_queryset`` is the only way to reach rows:
    it filters by ``request.biller``, so another tenant's object answers 404
    exactly like a missing one.
    """

    model: type[Model] | None = None
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

    def get_queryset(self) -> QuerySet:
        if self.model is None:
            raise NotImplementedError("set model or override get_queryset")
        return self.model._default_manager.filter(biller=self.biller)

    def get_object(self, pk: Any) -> Model:
        try:
            return self.get_queryset().get(pk=pk)
        except (self.model.DoesNotExist, ValueError, TypeError) as exc:  # type: ignore[union-attr]
            raise Http404 from exc

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("view", self)
        kwargs.setdefault("membership", self.membership)
        kwargs.setdefault("biller", self.biller)
        return kwargs


class ConsoleHomeView(TenantConsoleView, TemplateView):
    template_name = "billing/console/home.html"

    def get(self, request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponse:  # type: ignore[override]
        context = self.get_context_data(counts=selectors.biller_counts(biller=self.biller))
        return self.render_to_response(context)


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
            for field, errs in exc.errors.items():
                form.add_error(field if field in form.fields else None, errs)
            return self.get(request, form=form)
        messages.success(request, _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]})
        return redirect("console:members")


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
            for field, errs in exc.errors.items():
                if form is not None:
                    form.add_error(field if field in form.fields else None, errs)
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
