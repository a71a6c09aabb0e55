"""Outbound webhooks, the deliveries: telling a biller's own systems what happened to its books.

A transactional outbox. ``events_record`` writes one WebhookDelivery per event and subscribed endpoint
inside the transaction that applied the payments (``payeasy.services.payments``), so a crash between
commit and delivery loses nothing and a batch that rolls back sends nothing; after commit it wakes a
task (by name, ``billing.events``). Beat runs the same delivery every 15 s for the retries and for
anything a lost wake-up left.

``deliver_due`` claims due deliveries (``SELECT … FOR UPDATE SKIP LOCKED``), leases them by moving
``next_attempt_at`` ahead, and commits; then it posts them, a few at a time, with no transaction open;
then it records every attempt in one short transaction. A 2xx answer is success. Anything else is
retried after 30 s, 1 min, 2 min, … (doubling, at most 4 h apart, ±10 %) until three days after the
event, with a last attempt at the three-day mark; then the delivery has failed. A worker that dies
while posting leaves its lease to expire and the delivery is posted again: at least once, with the
same event id, which the receiver uses to drop duplicates.

The endpoints, their secrets and the rules of where a request may go are
``payeasy.services.webhook_endpoints``'; every request is checked again right before it is made and
connects to the addresses that were checked (``payeasy.outbound``). The delivery log keeps the status,
a few response headers and, of a 2xx answer only, the first 200 characters of the body: never what an
arbitrary host answered to a failure.
"""

from __future__ import annotations

import datetime
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

import httpx
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import events
from billing.errors import InvalidTransition, NotFound
from billing.models import Biller, User
from billing.services import audit_record
from payeasy import outbound
from payeasy.models import WEBHOOK_TEST_EVENT, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from payeasy.services.webhook_endpoints import (
    SecretUnreadable,
    signing_secrets,
    url_form_problem,
    webhook_endpoint_lock,
)
from payeasy.webhook_signing import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign

if TYPE_CHECKING:
    from payeasy.events import Event

log = logging.getLogger("payeasy.webhooks")

RETRY_FOR = datetime.timedelta(days=3)
FIRST_RETRY_SECONDS = 30
MAX_BACKOFF_SECONDS = 4 * 3600
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


def events_record(announced: Sequence[Event]) -> int:
    """Write the deliveries of ``announced``: one per event and active endpoint of its biller subscribed to
    its type. Call inside the transaction that wrote the ledger entries behind the events.

    One query when no biller of the batch has an endpoint; two when one has (load, bulk insert).
    """
    if not announced:
        return 0
    endpoints: dict[int, list[WebhookEndpoint]] = defaultdict(list)
    for endpoint in WebhookEndpoint.objects.filter(
        biller_id__in={e.biller_id for e in announced}, active=True
    ).select_related("biller"):
        endpoints[endpoint.biller_id].append(endpoint)
    if not endpoints:
        return 0
    now = timezone.now()
    rows: list[WebhookDelivery] = []
    for event in announced:
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
        # after commit: post now. A lost wake-up loses nothing: beat posts what is due within 15 s
        events.after_commit("payeasy.tasks.webhooks_deliver", None)
    return len(rows)


def webhook_test_send(*, actor: User | None, biller: Biller, endpoint_id: int) -> WebhookDelivery:
    """Send a ``webhook.test`` event to one endpoint now: one attempt, no retries."""
    with transaction.atomic():
        endpoint = webhook_endpoint_lock(biller=biller, endpoint_id=endpoint_id)
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
        events.after_commit("payeasy.tasks.webhooks_deliver", [delivery.pk])
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
        events.after_commit("payeasy.tasks.webhooks_deliver", [delivery.pk])
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
        if url_form_problem(endpoint.url):  # the rules may have tightened since it was saved
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
    "backoff",
    "deliver_due",
    "events_record",
    "webhook_delivery_resend",
    "webhook_test_send",
]
