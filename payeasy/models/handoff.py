"""情報リンク hand-off (payeasy.handoff, docs/handoff.md): the banks' entry URLs, their keys, used nonces."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payeasy.models.contracts import validate_known_bank


def validate_entry_url(value: str) -> None:
    """An absolute http(s) URL, or a path on this site starting with "/" (the sandbox bank). Whether
    plain http and paths are allowed is a deployment rule, checked by the service."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if value.startswith("/") and not value.startswith("//") and not parts.scheme:
        return
    if parts.scheme in {"http", "https"} and parts.netloc and not parts.username and not parts.password:
        return
    raise ValidationError(
        _("Give an https:// URL of the bank (or a path on this site starting with /)."), code="entry_url"
    )


class HandoffEndpoint(models.Model):
    """A bank's 情報リンク entry: where the hand-off page POSTs the envelope. Configured by iDC staff.

    A bank supports 情報リンク when it has an enabled endpoint (and an active key to seal with).
    """

    bank_code = models.CharField(
        _("bank code"),
        max_length=4,
        unique=True,
        validators=[validate_known_bank],
        error_messages={"unique": _("This bank already has a 情報リンク endpoint.")},
    )
    entry_url = models.CharField(_("entry URL"), max_length=500, validators=[validate_entry_url])
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["bank_code"]

    def __str__(self) -> str:
        return f"{self.bank_code} {self.entry_url}"

    @property
    def bank(self):
        from payeasy.banks import bank_get

        return bank_get(self.bank_code)


class HandoffKey(models.Model):
    """An AES-256 key shared with one bank, named by ``kid``. One key per bank is active (it seals new
    envelopes); retiring ones still open envelopes; retired ones open nothing. The key material is kept
    encrypted (``payeasy.handoff.key_wrap``) and shown once, when it is created."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active (seals and opens)")
        RETIRING = "retiring", _("Retiring (opens only)")
        RETIRED = "retired", _("Retired")

    endpoint = models.ForeignKey(HandoffEndpoint, on_delete=models.PROTECT, related_name="keys")
    kid = models.CharField(_("key id"), max_length=40, unique=True)
    wrapped_key = models.CharField(max_length=200)
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.ACTIVE)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    retired_at = models.DateTimeField(_("retired"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint"], condition=Q(status="active"), name="handoff_key_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.status})"


class HandoffNonce(models.Model):
    """A hand-off nonce already opened: the unique constraint makes an envelope single-use. Rows are
    pruned once their envelope has expired (an expired envelope is refused anyway)."""

    nonce = models.CharField(max_length=64, unique=True)
    bank_code = models.CharField(max_length=4)
    kid = models.CharField(max_length=40)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="handoff_nonce_expiry")]

    def __str__(self) -> str:
        return self.nonce
