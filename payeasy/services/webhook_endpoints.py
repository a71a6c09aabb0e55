"""Outbound webhooks, the endpoints: where a biller's own systems want to hear about its books.

An endpoint is a URL, the event types it is subscribed to, and a signing secret. This module holds the
endpoint writes of the tenant console (create, update, activate, rotate the secret), the rules of where a
request may go, and the secrets; the deliveries themselves are ``payeasy.services.webhooks``'.

Where a request may go is ``payeasy.outbound``'s to decide: public internet addresses only, checked
when the URL is saved (:func:`url_problem`) and again, resolved once, right before every request.

Signing secrets are stored wrapped (AES-256-GCM under the key-encryption keys, ``payeasy.keywrap``,
bound to the endpoint's id); they are unwrapped only to sign, and shown once, when made.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.errors import NotFound, ProductError, ValidationFailed
from billing.models import Biller, User
from billing.services import audit_record, snapshot
from payeasy import keywrap, outbound
from payeasy.models import WebhookEndpoint, WebhookEventType

SECRET_OVERLAP = datetime.timedelta(hours=24)
SECRET_PREFIX = "whsec_"  # noqa: S105  (the prefix of every secret, not a secret)
ENDPOINT_FIELDS = ("url", "description", "event_types", "active")


# --- secrets ---------------------------------------------------------------------------------------------


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class SecretUnreadable(ProductError):
    """A stored signing secret cannot be unwrapped, or none can be stored: the key-encryption keys
    (PAYEASY_HANDOFF_KEK) are missing, wrong or not keys. Nothing is signed or sent with it."""

    code = "secret_unreadable"


def secret_wrap(endpoint_id: int, secret: str) -> str:
    """The stored form of a signing secret of endpoint ``endpoint_id``."""
    try:
        return keywrap.wrap(secret.encode("utf-8"), keywrap.webhook_secret_aad(endpoint_id))
    except ImproperlyConfigured as exc:
        raise SecretUnreadable(
            _("Signing secrets cannot be stored: %(reason)s. Ask the operator to fix the setting.")
            % {"reason": str(exc)}
        ) from None


def secret_unwrap(endpoint_id: int, stored: str) -> str:
    try:
        return keywrap.unwrap(stored, keywrap.webhook_secret_aad(endpoint_id)).decode("utf-8")
    except (keywrap.Unreadable, ImproperlyConfigured, UnicodeDecodeError):
        raise SecretUnreadable(
            _(
                "The signing secret cannot be decrypted with the configured key-encryption keys "
                "(PAYEASY_HANDOFF_KEK): the key was changed without re-wrapping the secrets. "
                "Ask the operator to configure the previous key-encryption key again."
            )
        ) from None


def signing_secrets(endpoint: WebhookEndpoint, now: datetime.datetime) -> list[str]:
    """The secrets that sign a request sent at ``now``: the current one, and the previous one while it
    is still valid. SecretUnreadable when the key-encryption keys do not open them."""
    wrapped = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires and now < expires:
        wrapped.append(endpoint.previous_secret)
    return [secret_unwrap(endpoint.pk, w) for w in wrapped]


def secret_readable(endpoint: WebhookEndpoint) -> bool:
    try:
        secret_unwrap(endpoint.pk, endpoint.secret)
    except SecretUnreadable:
        return False
    return True


def _form_problem(url: str) -> tuple[str, str, int]:
    """What is wrong with ``url`` itself (scheme, https, user name): ``(problem, host, port)``."""
    https_only = settings.PAYEASY_WEBHOOK_REQUIRE_HTTPS
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        host = None
    if host is None or parts.scheme not in {"http", "https"}:
        if https_only:
            return _("Enter a URL that starts with https://."), "", 0
        return _("Enter a URL that starts with https:// or http://."), "", 0
    if https_only and parts.scheme != "https":
        return _("The URL must start with https://: events carry payment data."), host, port
    if parts.username is not None or parts.password is not None:
        return _("Leave the user name and password out of the URL; check the signature instead."), host, port
    return "", host, port


def _host_problem(host: str, port: int) -> str:
    """Why webhooks may not go to ``host`` (as the URL names it), or "". A name is resolved and every
    address must pass. A name that does not resolve now passes: it is resolved and checked again
    before every request."""
    if outbound.local_name(host) and not settings.PAYEASY_WEBHOOK_ALLOW_PRIVATE:
        return _("The URL must not name this server.")
    ip = outbound.literal(host)
    try:
        addresses = (
            [ip] if ip is not None else [ipaddress.ip_address(a) for a in outbound.resolve(host, port)]
        )
    except (OSError, UnicodeError):
        return ""
    for address in addresses:
        problem = outbound.address_problem(address, host if ip is None else "")
        if problem is not None:
            return problem.message()
    return ""


def url_form_problem(url: str) -> str:
    """What is wrong with ``url`` itself (scheme, https, user name), or "": checked again before every
    request, as the rules may have tightened since the URL was saved."""
    return _form_problem(url)[0]


def url_problem(url: str) -> str:
    """Why ``url`` may not receive webhooks, or "" when it may."""
    problem, host, port = _form_problem(url)
    return problem or _host_problem(host, port)


def _endpoint_input(url: str, description: str, event_types: Sequence[str]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    url = (url or "").strip()
    if not url:
        errors["url"] = [_("Enter the URL.")]
    elif len(url) > 500:
        errors["url"] = [_("The URL is longer than 500 characters.")]
    elif problem := url_problem(url):
        errors["url"] = [problem]
    description = (description or "").strip()
    if len(description) > 200:
        errors["description"] = [_("Keep the description to 200 characters.")]
    wanted = set(event_types)
    unknown = sorted(wanted - set(WebhookEventType.values))
    if unknown:
        errors["event_types"] = [_("Unknown event: %(type)s") % {"type": ", ".join(unknown)}]
    elif not wanted:
        errors["event_types"] = [_("Choose at least one event.")]
    if errors:
        raise ValidationFailed(errors)
    return {
        "url": url,
        "description": description,
        "event_types": [t for t in WebhookEventType.values if t in wanted],
    }


def webhook_endpoint_lock(*, biller: Biller, endpoint_id: int) -> WebhookEndpoint:
    """The biller's endpoint, locked for this transaction; NotFound for another biller's or none."""
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id, biller=biller).first()
    if endpoint is None:
        raise NotFound(_("No such webhook endpoint."))
    return endpoint


def webhook_endpoint_create(
    *, actor: User | None, biller: Biller, url: str, description: str = "", event_types: Sequence[str]
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it with its signing secret, for the console to show once."""
    data = _endpoint_input(url, description, event_types)
    secret = _new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(biller=biller, secret="", **data)
        endpoint.secret = secret_wrap(endpoint.pk, secret)  # bound to the id, known only now
        endpoint.save(update_fields=["secret"])
        audit_record(
            actor=actor,
            action="webhook_endpoint.create",
            biller=biller,
            target=endpoint,
            summary=endpoint.url,
            after=snapshot(endpoint, ENDPOINT_FIELDS),
        )
    return endpoint, secret


def webhook_endpoint_update(
    *,
    actor: User | None,
    biller: Biller,
    endpoint_id: int,
    url: str,
    description: str = "",
    event_types: Sequence[str],
) -> WebhookEndpoint:
    data = _endpoint_input(url, description, event_types)
    with transaction.atomic():
        endpoint = webhook_endpoint_lock(biller=biller, endpoint_id=endpoint_id)
        before = snapshot(endpoint, ENDPOINT_FIELDS)
        for name, value in data.items():
            setattr(endpoint, name, value)
        endpoint.save(update_fields=[*data, "updated_at"])
        audit_record(
            actor=actor,
            action="webhook_endpoint.update",
            biller=biller,
            target=endpoint,
            summary=endpoint.url,
            before=before,
            after=snapshot(endpoint, ENDPOINT_FIELDS),
        )
    return endpoint


def webhook_endpoint_set_active(
    *, actor: User | None, biller: Biller, endpoint_id: int, active: bool
) -> WebhookEndpoint:
    """Deactivate (nothing more is recorded or sent; what was waiting fails) or activate again."""
    with transaction.atomic():
        endpoint = webhook_endpoint_lock(biller=biller, endpoint_id=endpoint_id)
        if endpoint.active != active:
            endpoint.active = active
            endpoint.save(update_fields=["active", "updated_at"])
            audit_record(
                actor=actor,
                action="webhook_endpoint.activate" if active else "webhook_endpoint.deactivate",
                biller=biller,
                target=endpoint,
                summary=endpoint.url,
            )
    return endpoint


def webhook_secret_rotate(
    *, actor: User | None, biller: Biller, endpoint_id: int
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret; the one it replaces keeps signing too for 24 hours (two signatures per
    request), so the receiver can switch without refusing anything. Returns the new secret. The
    current one becomes the previous one still wrapped: both are bound to the endpoint, not the field."""
    secret = _new_secret()
    with transaction.atomic():
        endpoint = webhook_endpoint_lock(biller=biller, endpoint_id=endpoint_id)
        overlap = secret_readable(endpoint)  # one the key-encryption keys do not open cannot sign on
        endpoint.previous_secret = endpoint.secret if overlap else ""
        endpoint.previous_secret_expires_at = timezone.now() + SECRET_OVERLAP if overlap else None
        endpoint.secret = secret_wrap(endpoint.pk, secret)
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
        audit_record(
            actor=actor,
            action="webhook_endpoint.rotate_secret",
            biller=biller,
            target=endpoint,
            summary=endpoint.url,
        )
    return endpoint, secret


__all__ = [
    "SecretUnreadable",
    "secret_readable",
    "secret_unwrap",
    "secret_wrap",
    "signing_secrets",
    "url_form_problem",
    "url_problem",
    "webhook_endpoint_create",
    "webhook_endpoint_lock",
    "webhook_endpoint_set_active",
    "webhook_endpoint_update",
    "webhook_secret_rotate",
]
