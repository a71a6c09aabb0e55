"""Outbound webhooks: telling a biller's own systems what happened to its books.

A transactional outbox. ``events_record`` writes one WebhookDelivery per event and subscribed endpoint
inside the transaction that applied the payments (``payments._claim_and_apply``), so a crash between
commit and delivery loses nothing and a batch that rolls back sends nothing; after commit it wakes a
task. Beat runs the same delivery every 15 s for the retries and for anything a lost wake-up left.

``deliver_due`` claims due deliveries (``SELECT … FOR UPDATE SKIP LOCKED``), leases them by moving
``next_attempt_at`` ahead, and commits; then it posts them, a few at a time, with no transaction open;
then it records every attempt in one short transaction. A 2xx answer is success. Anything else is
retried after 30 s, 1 min, 2 min, … (doubling, at most 4 h apart, ±10 %) until three days after the
event, with a last attempt at the three-day mark; then the delivery has failed. A worker that dies
while posting leaves its lease to expire and the delivery is posted again: at least once, with the
same event id, which the receiver uses to drop duplicates.

Where a request may go is ``payeasy.outbound``'s to decide: public internet addresses only, checked
when the URL is saved and again, resolved once, right before every request, which then connects to the
addresses that were checked. The delivery log keeps the status, a few response headers and, of a 2xx
answer only, the first 200 characters of the body: never what an arbitrary host answered to a failure.

Signing secrets are stored wrapped (AES-256-GCM under the key-encryption keys, ``payeasy.keywrap``,
bound to the endpoint's id); they are unwrapped only to sign, and shown once, when made.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.errors import InvalidTransition, NotFound, ProductError, ValidationFailed
from billing.models import Biller, User
from billing.services import audit_record, snapshot
from payeasy import keywrap, outbound
from payeasy.models import (
    WEBHOOK_TEST_EVENT,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from payeasy.webhook_signing import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign

if TYPE_CHECKING:
    from payeasy.services.payments import Event

log = logging.getLogger("payeasy.webhooks")

RETRY_FOR = datetime.timedelta(days=3)
FIRST_RETRY_SECONDS = 30
MAX_BACKOFF_SECONDS = 4 * 3600
SECRET_OVERLAP = datetime.timedelta(hours=24)
LEASE = datetime.timedelta(minutes=5)  # longer than a batch can take to post (batch / parallel × timeout)
TIMEOUT_SECONDS = 10.0
DELIVER_BATCH = 32
PARALLEL_POSTS = 8
BODY_EXCERPT = 200  # characters of a 2xx answer's body kept in the log; nothing of any other answer
TRUNCATED = " … [truncated]"  # ends an excerpt that was cut
KEPT_HEADERS = (  # the response headers kept in the log, each value cut at 200 characters
    "content-type",
    "content-length",
    "date",
    "location",
    "retry-after",
    "x-request-id",
    "request-id",
    "x-correlation-id",
)
USER_AGENT = "Payeasy-Webhooks/1"
SECRET_PREFIX = "whsec_"  # noqa: S105  (the prefix of every secret, not a secret)
ENDPOINT_FIELDS = ("url", "description", "event_types", "active")


# --- endpoints -----------------------------------------------------------------------------------------


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


def _locked_endpoint(biller: Biller, endpoint_id: int) -> WebhookEndpoint:
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
        endpoint = _locked_endpoint(biller, endpoint_id)
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
        endpoint = _locked_endpoint(biller, endpoint_id)
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
        endpoint = _locked_endpoint(biller, endpoint_id)
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


# --- deliveries: the outbox ------------------------------------------------------------------------------


def _payload(
    event_id: uuid.UUID, event_type: str, created: datetime.datetime, biller_code: str, data: Any
) -> str:
    body = {
        "id": str(event_id),
        "type": event_type,
        "created": created.isoformat(timespec="milliseconds"),
        "biller": biller_code,
        "data": data,
    }
    # default=str: an unexpected value in an event's data must never roll back the payments it tells of
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)


def _wake(delivery_ids: list[int] | None = None) -> None:
    """After commit: post now. A lost wake-up loses nothing; beat posts what is due within 15 s."""
    from payeasy import tasks

    try:
        tasks.webhooks_deliver.delay(delivery_ids)
    except Exception:  # the broker is away: the rows are committed, beat finds them
        log.exception("webhook delivery not woken; the periodic retry will send it")


def events_record(events: Sequence[Event]) -> int:
    """Write the deliveries of ``events``: one per event and active endpoint of its biller subscribed to
    its type. Call inside the transaction that wrote the ledger entries behind the events.

    One query when no biller of the batch has an endpoint; two when one has (load, bulk insert).
    """
    if not events:
        return 0
    endpoints: dict[int, list[WebhookEndpoint]] = defaultdict(list)
    for endpoint in WebhookEndpoint.objects.filter(
        biller_id__in={e.biller_id for e in events}, active=True
    ).select_related("biller"):
        endpoints[endpoint.biller_id].append(endpoint)
    if not endpoints:
        return 0
    now = timezone.now()
    rows: list[WebhookDelivery] = []
    for event in events:
        subscribed = [e for e in endpoints.get(event.biller_id, ()) if event.type in e.event_types]
        if not subscribed:
            continue
        event_id = uuid.uuid4()  # one event, one id, whichever endpoint and attempt
        data = {**event.data, "invoice_id": event.invoice_id}
        payload = _payload(event_id, event.type, now, subscribed[0].biller.biller_code, data)
        rows += [
            WebhookDelivery(
                endpoint=endpoint,
                biller_id=event.biller_id,
                event_id=event_id,
                event_type=event.type,
                payload=payload,
                next_attempt_at=now,
                give_up_at=now + RETRY_FOR,
                created_at=now,
            )
            for endpoint in subscribed
        ]
    if rows:
        WebhookDelivery.objects.bulk_create(rows, batch_size=1000)
        transaction.on_commit(_wake)
    return len(rows)


def webhook_test_send(*, actor: User | None, biller: Biller, endpoint_id: int) -> WebhookDelivery:
    """Send a ``webhook.test`` event to one endpoint now: one attempt, no retries."""
    with transaction.atomic():
        endpoint = _locked_endpoint(biller, endpoint_id)
        if not endpoint.active:
            raise InvalidTransition(_("The endpoint is inactive. Activate it first."))
        now = timezone.now()
        event_id = uuid.uuid4()
        data = {"message": "A test event from the Pay-easy billing portal.", "endpoint": endpoint.pk}
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            biller=biller,
            event_id=event_id,
            event_type=WEBHOOK_TEST_EVENT,
            payload=_payload(event_id, WEBHOOK_TEST_EVENT, now, biller.biller_code, data),
            next_attempt_at=now,
            give_up_at=now,
            created_at=now,
        )
        audit_record(
            actor=actor, action="webhook_endpoint.test", biller=biller, target=endpoint, summary=endpoint.url
        )
        transaction.on_commit(lambda: _wake([delivery.pk]))
    return delivery


def webhook_delivery_resend(*, actor: User | None, biller: Biller, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again now, whatever became of it, with the same event id and body (a new
    signature). Within its three days a failure goes on being retried; after them, it fails again."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id, biller=biller)
            .first()
        )
        if delivery is None:
            raise NotFound(_("No such delivery."))
        if not delivery.endpoint.active:
            raise InvalidTransition(_("The endpoint is inactive. Activate it before sending again."))
        now = timezone.now()
        delivery.status = WebhookDelivery.Status.PENDING
        delivery.next_attempt_at = now
        delivery.give_up_at = max(delivery.give_up_at, now)
        delivery.save(update_fields=["status", "next_attempt_at", "give_up_at"])
        audit_record(
            actor=actor,
            action="webhook_delivery.resend",
            biller=biller,
            target=delivery,
            summary=f"{delivery.event_type} {delivery.event_id}",
        )
        transaction.on_commit(lambda: _wake([delivery.pk]))
    return delivery


# --- deliveries: sending ---------------------------------------------------------------------------------


@dataclass
class Delivered:
    """What one ``deliver_due`` did."""

    attempted: int = 0
    succeeded: int = 0
    gave_up: int = 0


@dataclass
class _Outcome:
    started_at: datetime.datetime
    url: str
    request_headers: dict[str, str]
    duration_ms: int = 0
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.error


def backoff(attempt: int) -> datetime.timedelta:
    """How long after failed attempt number ``attempt`` (1, 2, …) to try again: 30 s doubling, at most
    4 h, ±10 % so that the retries of many deliveries spread out."""
    seconds = min(FIRST_RETRY_SECONDS * 2 ** max(attempt - 1, 0), MAX_BACKOFF_SECONDS)
    return datetime.timedelta(seconds=seconds * (900 + secrets.randbelow(201)) / 1000)


def _text(value: str, limit: int) -> str:
    return value[:limit].replace("\x00", "\ufffd")  # PostgreSQL text and jsonb refuse NUL


def _claim(limit: int, delivery_ids: Sequence[int] | None) -> list[WebhookDelivery]:
    now = timezone.now()
    with transaction.atomic():
        due = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        )
        if delivery_ids is not None:
            due = due.filter(pk__in=list(delivery_ids))
        rows = list(due.order_by("next_attempt_at", "id")[:limit])
        inactive = [d.pk for d in rows if not d.endpoint.active]
        if inactive:
            WebhookDelivery.objects.filter(pk__in=inactive).update(
                status=WebhookDelivery.Status.FAILED,
                next_attempt_at=None,
                last_error="not sent: the endpoint was deactivated",
            )
        claimed = [d for d in rows if d.endpoint.active]
        if claimed:  # the lease: nobody else takes them while they are being posted
            WebhookDelivery.objects.filter(pk__in=[d.pk for d in claimed]).update(next_attempt_at=now + LEASE)
    return claimed


def _excerpt(status: int, body: bytes) -> str:
    """What the log keeps of an answer's body: for 2xx, its first 200 characters (marked when cut);
    of anything else nothing (an arbitrary host's error page is no business of the tenant's log)."""
    if not 200 <= status < 300:
        return ""
    text = body.decode("utf-8", "replace")
    if len(text) > BODY_EXCERPT:
        text = text[:BODY_EXCERPT] + TRUNCATED
    return _text(text, BODY_EXCERPT + len(TRUNCATED))


def _kept_headers(headers: httpx.Headers) -> dict[str, str]:
    return {name: _text(headers[name], 200) for name in KEPT_HEADERS if name in headers}


def _post(delivery: WebhookDelivery, timeout: httpx.Timeout) -> _Outcome:
    endpoint = delivery.endpoint
    started = timezone.now()
    clock = time.monotonic()
    body = delivery.payload.encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: str(delivery.event_id),
        EVENT_TYPE_HEADER: delivery.event_type,
    }
    outcome = _Outcome(started_at=started, url=endpoint.url, request_headers=headers)
    try:
        if _form_problem(endpoint.url)[0]:  # the rules may have tightened since it was saved
            raise outbound.Refused("refused: the URL is not allowed (https only, no user name or password)")
        client = outbound.client(endpoint.url, timeout=timeout)  # resolved and checked once, here
        headers[SIGNATURE_HEADER] = sign(signing_secrets(endpoint, started), body, int(time.time()))
        with client, client.stream("POST", endpoint.url, content=body, headers=headers) as response:
            outcome.status = response.status_code
            outcome.response_headers = _kept_headers(response.headers)
            kept = bytearray()
            if 200 <= response.status_code < 300:  # the body of any other answer is not even read
                for chunk in response.iter_bytes():
                    kept += chunk
                    if len(kept) > 4 * BODY_EXCERPT or time.monotonic() - clock > 2 * TIMEOUT_SECONDS:
                        break
            outcome.response_body = _excerpt(response.status_code, bytes(kept))
    except outbound.Refused as exc:
        outcome.error = _text(str(exc), 500)
    except SecretUnreadable:
        outcome.error = (
            "not sent: the signing secret cannot be decrypted with the configured key-encryption keys "
            "(PAYEASY_HANDOFF_KEK)"
        )
    except httpx.HTTPError as exc:
        outcome.error = _text(f"{type(exc).__name__}: {exc}", 500)
    except Exception as exc:  # one delivery's surprise must not lose the batch's log
        log.exception("webhook delivery %s: unexpected error", delivery.pk)
        outcome.error = _text(f"{type(exc).__name__}: {exc}", 500)
    outcome.duration_ms = int((time.monotonic() - clock) * 1000)
    return outcome


def _record(claimed: list[WebhookDelivery], outcomes: list[_Outcome]) -> Delivered:
    result = Delivered(attempted=len(claimed))
    now = timezone.now()
    with transaction.atomic():
        WebhookAttempt.objects.bulk_create(
            [
                WebhookAttempt(
                    delivery=d,
                    biller_id=d.biller_id,
                    started_at=o.started_at,
                    duration_ms=o.duration_ms,
                    url=o.url[:500],
                    request_headers=o.request_headers,
                    response_status=o.status,
                    response_headers=o.response_headers,
                    response_body=o.response_body,
                    error=o.error,
                    succeeded=o.ok,
                )
                for d, o in zip(claimed, outcomes, strict=True)
            ]
        )
        for d, o in zip(claimed, outcomes, strict=True):
            last: dict[str, Any] = {
                "attempts": F("attempts") + 1,
                "last_attempt_at": o.started_at,
                "last_request_headers": o.request_headers,
                "last_response_status": o.status,
                "last_response_headers": o.response_headers,
                "last_response_body": o.response_body,
                "last_error": o.error or ("" if o.ok else f"HTTP {o.status}: not a 2xx answer"),
                "last_duration_ms": o.duration_ms,
            }
            rows = WebhookDelivery.objects.filter(pk=d.pk)
            if o.ok:
                rows.update(
                    status=WebhookDelivery.Status.SUCCEEDED, delivered_at=now, next_attempt_at=None, **last
                )
                result.succeeded += 1
            elif now >= d.give_up_at:
                rows.filter(status=WebhookDelivery.Status.PENDING).update(
                    status=WebhookDelivery.Status.FAILED, next_attempt_at=None, **last
                )
                result.gave_up += 1
            else:  # the last attempt is at the three-day mark itself
                retry_at = min(now + backoff(d.attempts + 1), d.give_up_at)
                rows.filter(status=WebhookDelivery.Status.PENDING).update(next_attempt_at=retry_at, **last)
    return result


def deliver_due(*, limit: int = DELIVER_BATCH, delivery_ids: Sequence[int] | None = None) -> Delivered:
    """Post up to ``limit`` due deliveries (only ``delivery_ids`` if given) and record the attempts.

    Safe in any number of workers at once. No transaction is open while posting.
    """
    claimed = _claim(limit, delivery_ids)
    if not claimed:
        return Delivered()
    timeout = httpx.Timeout(TIMEOUT_SECONDS, connect=5.0)
    if len(claimed) == 1:
        outcomes = [_post(claimed[0], timeout)]
    else:
        with ThreadPoolExecutor(max_workers=min(PARALLEL_POSTS, len(claimed))) as pool:
            outcomes = list(pool.map(lambda d: _post(d, timeout), claimed))
    return _record(claimed, outcomes)


__all__ = [
    "DELIVER_BATCH",
    "Delivered",
    "SecretUnreadable",
    "backoff",
    "deliver_due",
    "events_record",
    "secret_readable",
    "signing_secrets",
    "url_problem",
    "webhook_delivery_resend",
    "webhook_endpoint_create",
    "webhook_endpoint_set_active",
    "webhook_endpoint_update",
    "webhook_secret_rotate",
    "webhook_test_send",
]
