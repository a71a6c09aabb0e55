"""The tenant console's webhook pages: endpoints (add, edit, deactivate, rotate the secret, send a test
event) and the delivery log, with every attempt's request and response, and resend.

They live in payeasy, not billing, because billing imports nothing of payeasy. Administrators only,
reading included: operators get 403. Every view inherits ``TenantConsoleView``, whose
``get_queryset`` filters by the biller (and other rows are reached with ``for_biller``), so another
tenant's endpoint or delivery answers 404. Every
write goes through ``payeasy.services.webhooks``.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views import View

from billing.errors import InvalidTransition, NotFound, ValidationFailed
from billing.forms import form_errors_add
from billing.tenancy import TenantRequest
from billing.views import TenantConsoleView
from payeasy.console_forms import WebhookDeliveryFilterForm, WebhookEndpointForm
from payeasy.models import WebhookDelivery, WebhookEndpoint
from payeasy.services import webhook_endpoints, webhooks

DELIVERY_PAGE_SIZE = 50
RECENT_DELIVERIES = 10


class _AdminsOnly(View):
    """After ``TenantConsoleView`` in the MRO: runs once the membership is known, for reads too."""

    def dispatch(self, request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        membership = getattr(self, "membership", None)
        if membership is None or not membership.can_write:
            raise PermissionDenied(_("Webhooks are for administrators."))
        return super().dispatch(request, *args, **kwargs)


class WebhookConsoleView(TenantConsoleView, _AdminsOnly):
    nav_section = "webhooks"

    def endpoints(self) -> QuerySet[WebhookEndpoint]:
        return WebhookEndpoint.objects.for_biller(self.biller).order_by("-created_at", "-id")

    def secret_page(
        self, request: TenantRequest, endpoint: WebhookEndpoint, secret: str, *, created: bool
    ) -> HttpResponse:
        """The one response that shows a secret: rendered, never redirected or cached."""
        context = self.get_context_data(endpoint=endpoint, secret=secret, created=created)
        response = render(request, "payeasy/console/webhook_secret.html", context)
        add_never_cache_headers(response)
        return response


# --- endpoints -------------------------------------------------------------------------------------------


class WebhookListView(WebhookConsoleView):
    model = WebhookEndpoint

    def get(self, request: TenantRequest) -> HttpResponse:
        context = self.get_context_data(endpoints=self.endpoints(), now=timezone.now())
        return render(request, "payeasy/console/webhook_list.html", context)


class WebhookCreateView(WebhookConsoleView):
    model = WebhookEndpoint

    def get(
        self, request: TenantRequest, form: WebhookEndpointForm | None = None, status: int = 200
    ) -> HttpResponse:
        form = form or WebhookEndpointForm(initial={"event_types": ["payment.received", "invoice.paid"]})
        context = self.get_context_data(form=form, endpoint=None)
        return render(request, "payeasy/console/webhook_form.html", context, status=status)

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = WebhookEndpointForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form, status=400)
        try:
            endpoint, secret = webhook_endpoints.webhook_endpoint_create(
                actor=request.user, biller=self.biller, **form.cleaned_data
            )
        except ValidationFailed as exc:
            form_errors_add(form, exc, named=True)
            return self.get(request, form=form, status=400)
        except webhook_endpoints.SecretUnreadable as exc:  # the key-encryption key setting is broken
            form.add_error(None, exc.message)
            return self.get(request, form=form, status=503)
        return self.secret_page(request, endpoint, secret, created=True)


class WebhookEditView(WebhookConsoleView):
    """An endpoint: its settings form, its secret's state, its actions and its latest deliveries."""

    model = WebhookEndpoint

    def get(
        self, request: TenantRequest, pk: int, form: WebhookEndpointForm | None = None, status: int = 200
    ) -> HttpResponse:
        endpoint: WebhookEndpoint = self.get_object(pk)
        recent = WebhookDelivery.objects.for_biller(self.biller).filter(endpoint=endpoint).order_by("-id")
        context = self.get_context_data(
            endpoint=endpoint,
            form=form or WebhookEndpointForm(initial=WebhookEndpointForm.initial_for(endpoint)),
            recent=recent[:RECENT_DELIVERIES],
            now=timezone.now(),
            secret_unreadable=not webhook_endpoints.secret_readable(endpoint),
        )
        return render(request, "payeasy/console/webhook_form.html", context, status=status)

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        endpoint: WebhookEndpoint = self.get_object(pk)
        form = WebhookEndpointForm(request.POST)
        if not form.is_valid():
            return self.get(request, pk, form=form, status=400)
        try:
            webhook_endpoints.webhook_endpoint_update(
                actor=request.user, biller=self.biller, endpoint_id=endpoint.pk, **form.cleaned_data
            )
        except ValidationFailed as exc:
            form_errors_add(form, exc, named=True)
            return self.get(request, pk, form=form, status=400)
        except NotFound as exc:
            raise Http404 from exc
        messages.success(request, _("The endpoint was saved."))
        return redirect("console:webhook_edit", pk=endpoint.pk)


class WebhookActiveView(WebhookConsoleView):
    model = WebhookEndpoint

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        endpoint: WebhookEndpoint = self.get_object(pk)
        active = request.POST.get("active") == "1"
        try:
            webhook_endpoints.webhook_endpoint_set_active(
                actor=request.user, biller=self.biller, endpoint_id=endpoint.pk, active=active
            )
        except NotFound as exc:
            raise Http404 from exc
        if active:
            messages.success(request, _("The endpoint was activated."))
        else:
            messages.success(request, _("The endpoint was deactivated: no more events are sent to it."))
        return redirect("console:webhook_edit", pk=endpoint.pk)


class WebhookRotateView(WebhookConsoleView):
    model = WebhookEndpoint

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        endpoint: WebhookEndpoint = self.get_object(pk)
        try:
            endpoint, secret = webhook_endpoints.webhook_secret_rotate(
                actor=request.user, biller=self.biller, endpoint_id=endpoint.pk
            )
        except NotFound as exc:
            raise Http404 from exc
        except webhook_endpoints.SecretUnreadable as exc:
            messages.error(request, exc.message)
            return redirect("console:webhook_edit", pk=endpoint.pk)
        return self.secret_page(request, endpoint, secret, created=False)


class WebhookTestView(WebhookConsoleView):
    model = WebhookEndpoint

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        endpoint: WebhookEndpoint = self.get_object(pk)
        try:
            delivery = webhooks.webhook_test_send(
                actor=request.user, biller=self.biller, endpoint_id=endpoint.pk
            )
        except NotFound as exc:
            raise Http404 from exc
        except InvalidTransition as exc:
            messages.error(request, exc.message)
            return redirect("console:webhook_edit", pk=endpoint.pk)
        messages.success(request, _("A test event is being sent. Reload this page to see the answer."))
        return redirect("console:webhook_delivery_detail", pk=delivery.pk)


# --- the delivery log ------------------------------------------------------------------------------------


class WebhookDeliveryListView(WebhookConsoleView):
    """Newest first, filtered; pages by id (``before``), without counting a table that only grows."""

    model = WebhookDelivery

    def get(self, request: TenantRequest) -> HttpResponse:
        endpoints = self.endpoints()
        form = WebhookDeliveryFilterForm(request.GET or None, endpoints=endpoints)
        rows: list[WebhookDelivery] = []
        next_url = ""
        status = 200
        if form.is_bound and not form.is_valid():
            status = 400
        else:
            qs = self.get_queryset().select_related("endpoint")
            filters = form.cleaned_data if form.is_bound else {}
            if filters.get("status"):
                qs = qs.filter(status=filters["status"])
            if filters.get("event_type"):
                qs = qs.filter(event_type=filters["event_type"])
            if filters.get("endpoint") is not None:
                qs = qs.filter(endpoint_id=filters["endpoint"])
            before = request.GET.get("before", "")
            if before.isdigit() and len(before) < 19:
                qs = qs.filter(pk__lt=int(before))
            rows = list(qs.order_by("-id")[: DELIVERY_PAGE_SIZE + 1])
            if len(rows) > DELIVERY_PAGE_SIZE:
                rows = rows[:DELIVERY_PAGE_SIZE]
                params = request.GET.copy()
                params["before"] = str(rows[-1].pk)
                next_url = f"{reverse('console:webhook_delivery_list')}?{params.urlencode()}"
        params = request.GET.copy()
        params.pop("before", None)
        first_url = (
            f"{reverse('console:webhook_delivery_list')}?{params.urlencode()}"
            if "before" in request.GET
            else ""
        )
        context = self.get_context_data(form=form, deliveries=rows, next_url=next_url, first_url=first_url)
        return render(request, "payeasy/console/webhook_delivery_list.html", context, status=status)


def _pretty(payload: str) -> str:
    try:
        return json.dumps(json.loads(payload), ensure_ascii=False, indent=2)
    except ValueError:
        return payload


class WebhookDeliveryDetailView(WebhookConsoleView):
    model = WebhookDelivery

    def scoped_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.select_related("endpoint")

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        delivery: WebhookDelivery = self.get_object(pk)
        attempts = delivery.attempt_log.for_biller(self.biller).order_by("id")
        context = self.get_context_data(
            delivery=delivery, attempts=attempts, payload_pretty=_pretty(delivery.payload)
        )
        return render(request, "payeasy/console/webhook_delivery_detail.html", context)


class WebhookDeliveryResendView(WebhookConsoleView):
    model = WebhookDelivery

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        delivery: WebhookDelivery = self.get_object(pk)
        try:
            webhooks.webhook_delivery_resend(actor=request.user, biller=self.biller, delivery_id=delivery.pk)
        except NotFound as exc:
            raise Http404 from exc
        except InvalidTransition as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                _("The event is being sent again, with the same event id. Reload to see the answer."),
            )
        return redirect("console:webhook_delivery_detail", pk=delivery.pk)
