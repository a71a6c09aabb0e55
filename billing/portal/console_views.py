"""The tenant console's part of customer accounts: invite people to a customer's portal account,
change their role, block them, and show or renew the registration code printed on the bill.

The customer page (``billing.console_customers.CustomerEditView``) shows this section; the actions
post here. Every view inherits ``TenantConsoleView`` (membership, admins write, the tenant filter).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from billing.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from billing.models import Biller, Customer, CustomerAccount, CustomerInvitation
from billing.portal import services
from billing.portal.forms import AccountRoleForm, PortalInviteForm
from billing.tenancy import TenantRequest
from billing.views import TenantConsoleView


def customer_portal_context(
    *, biller: Biller, customer: Customer, invite_form: PortalInviteForm | None = None
) -> dict[str, Any]:
    """What the console's customer page shows about the customer's portal accounts."""
    accounts = [
        (account, AccountRoleForm(initial={"role": account.role}))
        for account in CustomerAccount.objects.for_biller(biller)
        .filter(customer=customer)
        .select_related("user")
        .order_by("id")
    ]
    return {
        "accounts": accounts,
        "invitations": CustomerInvitation.objects.for_biller(biller)
        .filter(customer=customer)
        .select_related("created_by")[:20],
        "invite_form": invite_form or PortalInviteForm(customer=customer),
        "registration_code": customer.registration_code_display,
        "register_url": services.portal_url(biller, "portal:register"),
        "can_invite": customer.is_corporate or not accounts,
    }


def _error_messages(request: TenantRequest, exc: ValidationFailed) -> None:
    """A service's errors as messages on the customer page these actions return to."""
    for errs in exc.errors.values():
        for message in errs:
            messages.error(request, message)


class CustomerPortalView(TenantConsoleView):
    model = Customer
    nav_section = "customers"

    def customer(self, pk: int) -> Customer:
        customer: Customer = self.get_object(pk)
        return customer

    def back(self, pk: int) -> HttpResponseBase:
        return redirect("console:customer_edit", pk=pk)


class CustomerPortalInviteView(CustomerPortalView):
    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        customer = self.customer(pk)
        form = PortalInviteForm(request.POST, customer=customer)
        if not form.is_valid():
            for field_errors in form.errors.values():
                for text in field_errors:
                    messages.error(request, str(text))
            return self.back(pk)
        try:
            services.customer_invitation_create(
                actor=request.user,
                biller=self.biller,
                customer=customer,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except ValidationFailed as exc:
            _error_messages(request, exc)
        except (Conflict, InvalidTransition, NotFound) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                _("A portal invitation was sent to %(email)s.") % {"email": form.cleaned_data["email"]},
            )
        return self.back(pk)


class CustomerRegistrationCodeView(CustomerPortalView):
    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        customer = self.customer(pk)
        customer = services.customer_registration_code_regenerate(
            actor=request.user, biller=self.biller, customer=customer
        )
        messages.success(
            request,
            _(
                "The registration code of %(code)s is now %(registration_code)s. "
                "Bills printed from now on show it."
            )
            % {"code": customer.code, "registration_code": customer.registration_code_display},
        )
        return self.back(pk)


class CustomerAccountUpdateView(CustomerPortalView):
    """Change an account's role, or block / unblock its login."""

    def post(self, request: TenantRequest, pk: int, account_pk: int) -> HttpResponseBase:
        customer = self.customer(pk)
        account = (
            CustomerAccount.objects.for_biller(self.biller).filter(pk=account_pk, customer=customer).first()
        )
        if account is None:
            raise Http404
        action = request.POST.get("action", "role")
        try:
            if action in {"block", "unblock"}:
                services.customer_account_set_active(
                    actor=request.user, biller=self.biller, account=account, active=action == "unblock"
                )
                messages.success(request, _("The account was updated."))
            else:
                form = AccountRoleForm(request.POST)
                if not form.is_valid():
                    messages.error(request, _("Choose a role."))
                    return self.back(pk)
                services.customer_account_set_role(
                    actor=request.user, biller=self.biller, account=account, role=form.cleaned_data["role"]
                )
                messages.success(request, _("The role was changed."))
        except ValidationFailed as exc:
            _error_messages(request, exc)
        except NotFound as exc:
            raise Http404 from exc
        return self.back(pk)


class CustomerInvitationRevokeView(CustomerPortalView):
    def post(self, request: TenantRequest, pk: int, invitation_pk: int) -> HttpResponseBase:
        customer = self.customer(pk)
        invitation = (
            CustomerInvitation.objects.for_biller(self.biller)
            .filter(pk=invitation_pk, customer=customer)
            .first()
        )
        if invitation is None:
            raise Http404
        try:
            services.customer_invitation_revoke(actor=request.user, biller=self.biller, invitation=invitation)
        except (InvalidTransition, NotFound) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The invitation was revoked."))
        return self.back(pk)
