"""Live status of an invoice for an open browser page: server-sent events fed by Redis, or polling.

A payment is applied by a worker; on commit :mod:`payeasy.events` hands ``invoice.paid`` (and the other
updates) to :func:`updates_publish`, which publishes them on ``payeasy:invoice:<id>`` and
``payeasy:biller:<id>`` (Redis pub/sub). The page's script listens:

- with Redis (``REDIS_URL``), to ``events`` — a ``text/event-stream`` that sends the invoice's status
  at once and again whenever an event for it arrives, read back from the database (the event only
  says *when* to look; the books say *what*), and ends once the invoice is paid or after
  :data:`STREAM_SECONDS` (the browser reconnects);
- on the embedded default (no Redis), to ``status`` once a second.

Under WSGI (runserver, gunicorn) the stream is a generator that blocks one thread per open page on
Redis; under ASGI (uvicorn: payeasy-events.service) it is an async generator waiting on Redis, which holds
no worker and, between its reads, no database connection (only the idle thread Django keeps for a
request's sync middleware). Either way each read runs in the invoice's tenant (row-level security).

Who may watch: :func:`can_watch` — the invoice's own customer in the portal, or the biller's console
members and iDC staff.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.utils import translation
from django.utils.timezone import localtime
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from billing.models import Biller, Invoice, User
from billing.portal.services import customer_of

log = logging.getLogger("payeasy.events")  # the name the live publishing has always logged under

STREAM_SECONDS = 300.0  # a stream ends after this; EventSource reconnects by itself
KEEPALIVE_SECONDS = 15.0  # a comment line now and then keeps proxies from closing an idle stream


class Update(Protocol):
    """What an open page is told: an event of the books (``payeasy.events.Event`` is one)."""

    type: str
    biller_id: int
    invoice_id: int | None
    data: dict[str, Any]


def invoice_channel(invoice_id: int) -> str:
    return f"payeasy:invoice:{invoice_id}"


def biller_channel(biller_id: int) -> str:
    return f"payeasy:biller:{biller_id}"


@cache
def _redis() -> Any:
    import redis

    return redis.Redis.from_url(str(settings.REDIS_URL))


def updates_publish(*, updates: Sequence[Update]) -> None:
    """Publish ``updates`` on their invoice's and biller's channels; nothing without Redis (pages poll).
    Never raises: a page that misses an update refreshes, and the books are committed."""
    if not settings.REDIS_URL:
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for update in updates:
            payload = json.dumps({"type": update.type, "invoice": update.invoice_id, **update.data})
            if update.invoice_id is not None:
                pipe.publish(invoice_channel(update.invoice_id), payload)
            pipe.publish(biller_channel(update.biller_id), payload)
        pipe.execute()
    except Exception:  # a page that misses an event refreshes; the books are committed
        log.exception("live events not published")


def can_watch(user: Any, invoice: Invoice) -> bool:
    """The invoice's customer (portal account of that customer at that biller), a console member of the
    biller, or iDC staff."""
    if not getattr(user, "is_authenticated", False):
        return False
    assert isinstance(user, User)
    if user.realm == User.Realm.CUSTOMER:
        customer = customer_of(user, invoice.biller)
        return customer is not None and invoice.customer_id == customer.pk
    return bool(user.is_idc_staff or user.memberships.filter(biller_id=invoice.biller_id).exists())


def status_of(invoice_id: int) -> dict[str, Any]:
    """:func:`status_dict` of the invoice as stored now (the event streams read it on each event)."""
    return status_dict(Invoice.objects.only("status", "paid_at").get(pk=invoice_id))


def status_dict(invoice: Invoice) -> dict[str, Any]:
    """What the page shows: the status, its label in the active language, and when it was paid."""
    paid_at = localtime(invoice.paid_at) if invoice.paid_at else None
    message = ""
    if paid_at is not None and invoice.status == Invoice.Status.PAID:
        message = gettext("payment received %(when)s") % {"when": paid_at.strftime("%Y-%m-%d %H:%M")}
    return {
        "invoice": invoice.pk,
        "status": invoice.status,
        "label": str(invoice.get_status_display()),
        "message": message,
        "paid_at": paid_at.isoformat() if paid_at else None,
    }


def _invoice_for(request: HttpRequest, pk: int) -> Invoice:
    biller = getattr(request, "biller", None)
    if biller is None:
        raise Http404
    invoice = get_object_or_404(
        Invoice.objects.exclude(status=Invoice.Status.DRAFT).select_related("biller"), pk=pk, biller=biller
    )
    if not can_watch(request.user, invoice):
        raise Http404  # another customer's invoice does not exist, as far as this user can tell
    return invoice


@never_cache
@require_GET
def invoice_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The invoice's status as JSON: what the page polls on the embedded default."""
    return JsonResponse(status_dict(_invoice_for(request, pk)))


@never_cache
@require_GET
def invoice_events(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The invoice's status as server-sent events (``event: status``); 404 without Redis."""
    invoice = _invoice_for(request, pk)
    return events_response(request, invoice.pk)


def events_response(request: HttpRequest, invoice_id: int) -> HttpResponseBase:
    """The stream of an invoice the caller has already found and checked (also the pay-later page's)."""
    if not settings.REDIS_URL:
        raise Http404("live events need Redis; the page polls the status instead")
    language = translation.get_language()
    if isinstance(request, ASGIRequest):
        content: Iterator[bytes] | AsyncIterator[bytes] = _async_stream(
            invoice_id, language, getattr(request, "biller", None)
        )
    else:
        content = _sync_stream(invoice_id, language, getattr(request, "biller", None))
    response = StreamingHttpResponse(content, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on as it comes
    return response


def _event(status: dict[str, Any]) -> bytes:
    return f"event: status\ndata: {json.dumps(status, ensure_ascii=False)}\n\n".encode()


def _status(invoice_id: int, language: str | None, biller: Biller | None) -> dict[str, Any]:
    """The status read in the invoice's tenant: a stream's reads come after the request's transaction (and
    its tenant) ended, and on PostgreSQL row-level security shows no row outside a tenant."""
    from billing.tenancy import tenant_session

    with translation.override(language), tenant_session(biller):
        return status_of(invoice_id)


def _status_released(invoice_id: int, language: str | None, biller: Biller | None) -> dict[str, Any]:
    """:func:`_status`, then the connection closed: under ASGI each open stream has a database connection
    of its own (Django's connections belong to the request's context), and a stream waits minutes between
    reads; kept open, 100 streams would take every connection PostgreSQL allows."""
    from django.db import connection

    try:
        return _status(invoice_id, language, biller)
    finally:
        connection.close()


def _sync_stream(invoice_id: int, language: str | None, biller: Biller | None) -> Iterator[bytes]:
    import redis

    client = redis.Redis.from_url(str(settings.REDIS_URL))
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(invoice_channel(invoice_id))
        # read after subscribing: a payment committed in between is then seen one way or the other
        current = _status(invoice_id, language, biller)
        yield b"retry: 2000\n\n" + _event(current)
        deadline = time.monotonic() + STREAM_SECONDS
        while current["status"] != Invoice.Status.PAID and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=KEEPALIVE_SECONDS)
            if message is None:
                yield b": keep-alive\n\n"
                continue
            latest = _status(invoice_id, language, biller)
            if latest != current:
                current = latest
                yield _event(current)
    finally:
        pubsub.close()
        client.close()


async def _async_stream(invoice_id: int, language: str | None, biller: Biller | None) -> AsyncIterator[bytes]:
    import redis.asyncio
    from asgiref.sync import sync_to_async

    status = sync_to_async(_status_released)
    client = redis.asyncio.Redis.from_url(str(settings.REDIS_URL))
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(invoice_channel(invoice_id))
        current = await status(invoice_id, language, biller)
        yield b"retry: 2000\n\n" + _event(current)
        deadline = time.monotonic() + STREAM_SECONDS
        while current["status"] != Invoice.Status.PAID and time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=KEEPALIVE_SECONDS)
            if message is None:
                yield b": keep-alive\n\n"
                continue
            latest = await status(invoice_id, language, biller)
            if latest != current:
                current = latest
                yield _event(current)
    finally:
        await pubsub.aclose()
        await client.aclose()
