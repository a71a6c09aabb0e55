"""Forms of the tenant console's webhook pages. They shape what people type; the rules are the service's."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from payeasy.models import WEBHOOK_TEST_EVENT, WebhookDelivery, WebhookEndpoint, WebhookEventType


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        assume_scheme="https",
        help_text=_(
            "Your system's address that receives the events (HTTP POST). It must start with https://."
        ),
    )
    description = forms.CharField(
        label=pgettext_lazy("webhook endpoint", "Description"),
        max_length=200,
        required=False,
        help_text=_("For your own reference, for example “accounting system (production)”."),
    )
    event_types = forms.MultipleChoiceField(
        label=_("Events to send"),
        choices=WebhookEventType.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one event.")},
    )

    @staticmethod
    def initial_for(endpoint: WebhookEndpoint) -> dict[str, Any]:
        return {"url": endpoint.url, "description": endpoint.description, "event_types": endpoint.event_types}


EVENT_FILTER_CHOICES = [("", _("All")), *WebhookEventType.choices, (WEBHOOK_TEST_EVENT, _("Test event"))]


class WebhookDeliveryFilterForm(forms.Form):
    """The delivery log's GET filters."""

    use_required_attribute = False

    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All")), *WebhookDelivery.Status.choices]
    )
    event_type = forms.ChoiceField(label=_("Event"), required=False, choices=EVENT_FILTER_CHOICES)
    endpoint = forms.TypedChoiceField(label=_("Endpoint"), required=False, coerce=int, empty_value=None)

    def __init__(self, *args: Any, endpoints: QuerySet[WebhookEndpoint], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].choices = [("", _("All")), *((e.pk, e.url) for e in endpoints)]  # type: ignore[attr-defined]
