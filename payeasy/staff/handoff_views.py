"""情報リンク in the iDC staff console: the banks' entry URLs and their keys (create, shown once; retire)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from billing.errors import InvalidTransition, ValidationFailed
from billing.forms import form_errors_add
from billing.tenancy import TenantRequest
from payeasy import handoff
from payeasy.banks import bank_all
from payeasy.models import HandoffEndpoint, HandoffKey
from payeasy.services import handoff as services
from payeasy.staff.forms import HandoffEndpointForm
from payeasy.staff.views import StaffView


class HandoffListView(StaffView):
    def get(self, request: TenantRequest) -> HttpResponse:
        endpoints = HandoffEndpoint.objects.prefetch_related("keys").order_by("bank_code")
        return render(request, "payeasy/staff/handoff_list.html", {"endpoints": endpoints})


class HandoffCreateView(StaffView):
    template = "payeasy/staff/handoff_form.html"

    def get(
        self, request: TenantRequest, form: HandoffEndpointForm | None = None, status: int = 200
    ) -> HttpResponse:
        context = {"form": form or HandoffEndpointForm(), "endpoint": None, "banks": bank_all()}
        return render(request, self.template, context, status=status)

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = HandoffEndpointForm(request.POST)
        if not form.is_valid():
            return self.get(request, form, status=400)
        try:
            endpoint = services.handoff_endpoint_create(actor=request.user, **form.cleaned_data)
        except ValidationFailed as exc:
            form_errors_add(form, exc)
            return self.get(request, form, status=400)
        messages.success(
            request,
            _("情報リンク endpoint of bank %(bank)s saved. Create its key next.")
            % {"bank": endpoint.bank_code},
        )
        return redirect("staff:handoff_edit", pk=endpoint.pk)


class HandoffEditView(StaffView):
    template = "payeasy/staff/handoff_form.html"

    def get(
        self, request: TenantRequest, pk: int, form: HandoffEndpointForm | None = None, status: int = 200
    ) -> HttpResponse:
        endpoint = get_object_or_404(HandoffEndpoint, pk=pk)
        form = form or HandoffEndpointForm(
            initial={"entry_url": endpoint.entry_url, "enabled": endpoint.enabled}, editing=True
        )
        context = {"form": form, "endpoint": endpoint, "keys": endpoint.keys.order_by("-created_at", "-id")}
        return render(request, self.template, context, status=status)

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        endpoint = get_object_or_404(HandoffEndpoint, pk=pk)
        form = HandoffEndpointForm(request.POST, editing=True)
        if not form.is_valid():
            return self.get(request, pk, form, status=400)
        try:
            services.handoff_endpoint_update(actor=request.user, endpoint=endpoint, **form.cleaned_data)
        except ValidationFailed as exc:
            form_errors_add(form, exc)
            return self.get(request, pk, form, status=400)
        messages.success(request, _("Saved."))
        return redirect("staff:handoff_edit", pk=pk)


class HandoffKeyCreateView(StaffView):
    def post(self, request: TenantRequest, pk: int) -> HttpResponse:
        """The one response that shows a key: rendered, never redirected or cached."""
        endpoint = get_object_or_404(HandoffEndpoint, pk=pk)
        key, material = services.handoff_key_create(actor=request.user, endpoint=endpoint)
        response = render(
            request,
            "payeasy/staff/handoff_key.html",
            {
                "endpoint": endpoint,
                "key": key,
                "key_b64": handoff.b64e(material),
                "key_hex": material.hex(),
                "retiring": endpoint.keys.filter(status=HandoffKey.Status.RETIRING),
            },
        )
        add_never_cache_headers(response)
        return response


class HandoffKeyRetireView(StaffView):
    def post(self, request: TenantRequest, pk: int, key_pk: int) -> HttpResponseBase:
        key = get_object_or_404(HandoffKey, pk=key_pk, endpoint_id=pk)
        try:
            services.handoff_key_retire(actor=request.user, key=key)
        except InvalidTransition as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, _("Key %(kid)s retired: envelopes sealed with it no longer open.") % {"kid": key.kid}
            )
        return redirect("staff:handoff_edit", pk=pk)
