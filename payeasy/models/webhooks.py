"""Outbound webhooks (payeasy.services.webhooks): the biller's own systems told what happened to its books."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import Biller
from billing.scoping import TenantManager


class WebhookEventType(models.TextChoices):
    """The events an endpoint may subscribe to: those of payeasy.services.payments."""

    PAYMENT_RECEIVED = "payment.received", _("Payment received")
    PAYMENT_PROVISIONAL = "payment.provisional", _("Payment held as provisional (仮消込)")
    PAYMENT_DOUBLE = "payment.double", _("Double payment (二重支払)")
    PAYMENT_REVERSED = "payment.reversed", _("Payment reversed (取消)")
    INVOICE_PAID = "invoice.paid", _("Invoice paid")
    INVOICE_PAYABLE_AGAIN = "invoice.payable_again", _("Invoice payable again")


WEBHOOK_TEST_EVENT = "webhook.test"  # sent on demand from the console; nobody subscribes to it


class WebhookEndpoint(models.Model):
    """A URL of the biller's own system, sent the events it subscribes to, signed with HMAC-SHA256.

    After a rotation the previous secret signs too, until ``previous_secret_expires_at``, so the
    receiver can switch over without refusing a request. Both secrets are stored wrapped (AES-256-GCM
    under the key-encryption keys, bound to the endpoint's id: ``payeasy.keywrap``); signing unwraps
    them (``payeasy.services.webhook_endpoints.signing_secrets``); the console shows a new one once.
    """

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(_("events"), default=list)  # WebhookEventType values
    active = models.BooleanField(_("active"), default=True)
    secret = models.CharField(max_length=200)  # wrapped: "w1.<iv>.<ciphertext>"
    previous_secret = models.CharField(max_length=200, blank=True)  # wrapped too
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url

    def get_event_type_labels(self) -> list[str]:
        labels = dict(WebhookEventType.choices)
        return [str(labels.get(t, t)) for t in self.event_types]


class WebhookDelivery(models.Model):
    """One event for one endpoint: the outbox row, written in the transaction that changed the books,
    then posted until the endpoint answers 2xx or ``give_up_at`` (three days) has passed.

    ``payload`` is the JSON body exactly as sent on every attempt (text, not jsonb, which would reorder
    its keys); ``event_id`` is in it and in a header, the same on every attempt and resend, so the
    receiver can drop duplicates. The ``last_*`` fields repeat the latest attempt; every attempt is a
    WebhookAttempt.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed (gave up)")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    event_id = models.UUIDField(_("event id"))
    event_type = models.CharField(_("event"), max_length=40)
    payload = models.TextField(_("payload (JSON)"))
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    give_up_at = models.DateTimeField(_("retried until"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_request_headers = models.JSONField(default=dict, blank=True)
    last_response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    last_response_headers = models.JSONField(default=dict, blank=True)
    last_response_body = models.TextField(blank=True)
    last_error = models.CharField(_("error"), max_length=500, blank=True)
    last_duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_delivery_due"
            ),
            models.Index(fields=["biller", "-id"], name="webhook_delivery_biller"),
            models.Index(fields=["biller", "status", "-id"], name="webhook_delivery_biller_status"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → {self.endpoint_id} ({self.status})"

    @property
    def request_body(self) -> str:
        return self.payload


class WebhookAttempt(models.Model):
    """The delivery log: one HTTP request of a delivery and what came back (or why nothing did)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.PROTECT, related_name="attempt_log")
    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    started_at = models.DateTimeField(_("sent at"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    url = models.CharField(_("URL"), max_length=500)
    request_headers = models.JSONField(default=dict)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)  # of a 2xx answer only: its first 200 characters
    error = models.CharField(_("error"), max_length=500, blank=True)
    succeeded = models.BooleanField(_("succeeded"), default=False)

    objects = TenantManager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        outcome = self.response_status or self.error
        return f"{self.delivery_id} at {self.started_at:%Y-%m-%d %H:%M:%S}: {outcome}"

    @property
    def body_excerpt(self) -> str:
        """What the log shows of the answer's body: nothing unless the answer was 2xx."""
        if self.response_status is None or not 200 <= self.response_status < 300:
            return ""
        return self.response_body
