"""The iDC staff console: billers, their contracted banks and admins, the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.forms import BaseForm, BaseFormSet, Form
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.errors import InvalidTransition, ValidationFailed
from billing.forms import BillerForm, InviteForm, form_errors_add
from billing.models import Biller
from billing.tenancy import TenantRequest, tenant_reverse
from payeasy import selectors
from payeasy.banks import bank_all
from payeasy.services.contracts import biller_onboard, contracted_bank_add, contracted_bank_update
from payeasy.staff.forms import ContractForm, ContractFormSet, StatusForm


class StaffView(LoginRequiredMixin, View):
    def dispatch(self, request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        if request.user.is_authenticated and not request.user.is_idc_staff:
            raise PermissionDenied(_("The staff console is for iDC staff."))
        return super().dispatch(request, *args, **kwargs)


def _contract_errors_add(errors: dict[str, list[str]], form: BaseForm, formset: BaseFormSet) -> None:
    """A service's errors onto the contract formset rows they name (``contracts.<row>.<field>``), the
    rest onto the form (``form_errors_add``)."""
    main: dict[str, list[str]] = {}
    for key, errs in errors.items():
        if key.startswith("contracts."):
            index, field = key.split(".", 2)[1:]
            form_errors_add(formset.forms[int(index)], {field: errs})
        else:
            main[key] = errs
    form_errors_add(form, main)


def _changed_forms(formset: BaseFormSet) -> list[tuple[int, ContractForm]]:
    return [(i, f) for i, f in enumerate(formset.forms) if f.has_changed()]


class BillerListView(StaffView):
    def get(self, request: TenantRequest) -> HttpResponse:
        query = request.GET.get("q", "")
        status = request.GET.get("status", "")
        if status not in Biller.Status.values:
            status = ""
        page = Paginator(billing_selectors.biller_list(query=query, status=status), 50).get_page(
            request.GET.get("page")
        )
        return render(
            request,
            "payeasy/staff/biller_list.html",
            {"page": page, "q": query, "status": status, "statuses": Biller.Status.choices},
        )


class BillerOnboardView(StaffView):
    template = "payeasy/staff/biller_onboard.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        return self.render(request, BillerForm(), ContractFormSet(prefix="contracts"))

    def render(
        self, request: TenantRequest, form: BaseForm, formset: BaseFormSet, status: int = 200
    ) -> HttpResponse:
        return render(
            request, self.template, {"form": form, "formset": formset, "banks": bank_all()}, status=status
        )

    def post(self, request: TenantRequest) -> HttpResponse:
        form = BillerForm(request.POST)
        formset = ContractFormSet(request.POST, prefix="contracts")
        if not (form.is_valid() and formset.is_valid()):
            return self.render(request, form, formset, status=400)
        rows = _changed_forms(formset)
        try:
            biller = biller_onboard(
                actor=request.user,
                biller_data={k: form.cleaned_data[k] for k in billing_services.BILLER_FIELDS},
                contracts=[f.to_input() for _i, f in rows],
            )
        except ValidationFailed as exc:
            # the service numbers contracts among the filled rows; map back to formset rows
            remapped = {}
            for key, errs in exc.errors.items():
                if key.startswith("contracts."):
                    n, field = key.split(".", 2)[1:]
                    key = f"contracts.{rows[int(n)][0]}.{field}"
                remapped[key] = errs
            _contract_errors_add(remapped, form, formset)
            return self.render(request, form, formset, status=400)
        messages.success(
            request, _("Biller %(name)s was created (status: onboarding).") % {"name": biller.legal_name}
        )
        return redirect("staff:biller_detail", pk=biller.pk)


class BillerDetailView(StaffView):
    def get(self, request: TenantRequest, pk: int, invite_form: InviteForm | None = None) -> HttpResponse:
        biller = get_object_or_404(Biller, pk=pk)
        return render(
            request,
            "payeasy/staff/biller_detail.html",
            {
                "biller": biller,
                "contracts": selectors.contracted_bank_list(biller=biller),
                "members": billing_selectors.member_list(biller=biller),
                "invitations": billing_selectors.invitation_list(biller=biller)[:20],
                "audit": billing_selectors.audit_list(biller=biller)[:50],
                "invite_form": invite_form or InviteForm(),
                "console_url": tenant_reverse(biller, "console:home"),
            },
            status=400 if invite_form is not None and invite_form.errors else 200,
        )


class BillerEditView(StaffView):
    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        biller = get_object_or_404(Biller, pk=pk)
        return render(
            request, "payeasy/staff/biller_edit.html", {"biller": biller, "form": BillerForm(instance=biller)}
        )

    def post(self, request: TenantRequest, pk: int) -> HttpResponse:
        biller = get_object_or_404(Biller, pk=pk)
        form = BillerForm(request.POST, instance=Biller.objects.get(pk=pk))
        if form.is_valid():
            try:
                billing_services.biller_update(
                    actor=request.user,
                    biller=biller,
                    data={k: form.cleaned_data[k] for k in billing_services.BILLER_FIELDS},
                )
            except ValidationFailed as exc:
                form_errors_add(form, exc)
            else:
                messages.success(request, _("Saved."))
                return redirect("staff:biller_detail", pk=pk)
        return render(request, "payeasy/staff/biller_edit.html", {"biller": biller, "form": form}, status=400)


class ContractsEditView(StaffView):
    template = "payeasy/staff/contracts_edit.html"

    def _formset(self, biller: Biller, data: Any = None) -> BaseFormSet:
        initial = [ContractForm.initial_for(row) for row in selectors.contracted_bank_list(biller=biller)]
        return ContractFormSet(data, initial=initial, prefix="contracts")

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        biller = get_object_or_404(Biller, pk=pk)
        return render(
            request, self.template, {"biller": biller, "formset": self._formset(biller), "banks": bank_all()}
        )

    def post(self, request: TenantRequest, pk: int) -> HttpResponse:
        biller = get_object_or_404(Biller, pk=pk)
        formset = self._formset(biller, request.POST)
        if formset.is_valid():
            try:
                with transaction.atomic():
                    for i, form in _changed_forms(formset):
                        contract_id = form.cleaned_data.get("contract_id")
                        if contract_id:
                            contracted_bank_update(
                                actor=request.user,
                                biller=biller,
                                contract_id=contract_id,
                                contract=form.to_input(),
                            )
                        else:
                            contracted_bank_add(
                                actor=request.user,
                                biller=biller,
                                contract=form.to_input(),
                                prefix=f"contracts.{i}.",
                            )
            except ValidationFailed as exc:
                errors = {
                    k if k.startswith("contracts.") else f"contracts.{i}.{k}": v
                    for k, v in exc.errors.items()
                }
                _contract_errors_add(errors, Form(), formset)
            else:
                messages.success(request, _("Contracted banks saved."))
                return redirect("staff:biller_detail", pk=pk)
        return render(
            request, self.template, {"biller": biller, "formset": formset, "banks": bank_all()}, status=400
        )


class BillerStatusView(StaffView):
    def post(self, request: TenantRequest, pk: int) -> HttpResponse:
        biller = get_object_or_404(Biller, pk=pk)
        form = StatusForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Unknown status."))
            return redirect("staff:biller_detail", pk=pk)
        try:
            billing_services.biller_set_status(
                actor=request.user,
                biller=biller,
                status=form.cleaned_data["status"],
                reason=form.cleaned_data["reason"],
            )
        except InvalidTransition as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                _("Status changed to %(status)s.")
                % {"status": Biller.Status(form.cleaned_data["status"]).label},
            )
        return redirect("staff:biller_detail", pk=pk)


class BillerInviteView(StaffView):
    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        biller = get_object_or_404(Biller, pk=pk)
        form = InviteForm(request.POST)
        if form.is_valid():
            try:
                billing_services.invitation_create(
                    actor=request.user,
                    biller=biller,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                )
            except (ValidationFailed, InvalidTransition) as exc:
                if isinstance(exc, ValidationFailed):
                    form_errors_add(form, exc)
                else:
                    form.add_error(None, exc.message)
            else:
                messages.success(
                    request, _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]}
                )
                return redirect("staff:biller_detail", pk=pk)
        return BillerDetailView.as_view()(request, pk=pk, invite_form=form)


class AuditListView(StaffView):
    def get(self, request: TenantRequest) -> HttpResponse:
        code = request.GET.get("biller", "").strip()
        biller = Biller.objects.filter(biller_code=code).first() if code else None
        entries = billing_selectors.audit_list(
            biller=biller,
            action=request.GET.get("action", "").strip(),
            actor=request.GET.get("actor", "").strip(),
        )
        if code and biller is None:
            entries = entries.none()
        page = Paginator(entries, 100).get_page(request.GET.get("page"))
        return render(request, "payeasy/staff/audit_list.html", {"page": page, "filters": request.GET})
