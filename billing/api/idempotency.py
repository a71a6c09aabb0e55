"""``Idempotency-Key`` for every POST of the tenant API.

- same key, same body → the stored response (with ``Idempotent-Replayed: true``);
- same key, another body → 422;
- the same key sent concurrently → one effect: the record is inserted in the
  transaction that does the work, so a second request waits on the unique
  index until the first commits, then replays its response;
- keys are scoped per tenant and expire after 24 hours.

An error response is not stored (the transaction that would have stored it
rolled back with the effect), so a request that failed may be retried with
its key.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.errors import error_body
from billing.models import IdempotencyRecord

HEADER = "Idempotency-Key"
TTL = datetime.timedelta(hours=24)


class _DoNotStore(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _request_hash(request: Request) -> str:
    raw = request._request
    digest = hashlib.sha256()
    for part in (raw.method or "", raw.path, raw.META.get("CONTENT_TYPE", "")):
        digest.update(part.encode() + b"\0")
    digest.update(raw.body)
    return digest.hexdigest()


def idempotent(handler: Callable[..., Response]) -> Callable[..., Response]:
    @functools.wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not 1 <= len(key) <= 255 or not key.isprintable():
            return Response(
                error_body("invalid_idempotency_key", f"{HEADER} must be 1–255 printable characters."),
                status=400,
            )
        biller = request._request.biller  # type: ignore[attr-defined]
        records = IdempotencyRecord.objects.for_biller(biller)
        request_hash = _request_hash(request)
        for _attempt in range(2):
            try:
                with transaction.atomic():
                    record = records.create(
                        biller=biller,
                        key=key,
                        method=request.method or "POST",
                        path=request._request.path,
                        request_hash=request_hash,
                        expires_at=timezone.now() + TTL,
                    )
                    response = handler(view, request, *args, **kwargs)
                    if response.status_code >= 400:
                        raise _DoNotStore(response)
                    record.status_code = response.status_code
                    record.response_body = json.dumps(
                        response.data, ensure_ascii=False, cls=DjangoJSONEncoder
                    )
                    record.save(update_fields=["status_code", "response_body"])
                    return response
            except _DoNotStore as exc:
                return exc.response
            except IntegrityError:
                existing = records.filter(key=key).first()
                if existing is None:
                    continue
                if existing.expires_at <= timezone.now():
                    records.filter(pk=existing.pk).delete()
                    continue
                if existing.request_hash != request_hash:
                    return Response(
                        error_body(
                            "idempotency_key_reused",
                            f"{HEADER} {key!r} was used for another request in the last 24 hours.",
                        ),
                        status=422,
                    )
                if existing.status_code is None:
                    return Response(
                        error_body("in_progress", "A request with this key is still in progress."), status=409
                    )
                return Response(
                    json.loads(existing.response_body or "null"),
                    status=existing.status_code,
                    headers={"Idempotent-Replayed": "true"},
                )
        return Response(error_body("conflict", "Could not record the idempotency key; retry."), status=409)

    return wrapper


def idempotency_purge() -> int:
    """Delete every tenant's expired records (a worker's cleanup)."""
    expired = IdempotencyRecord.objects.cross_tenant("worker").filter(expires_at__lte=timezone.now())
    deleted, _ = expired.delete()
    return deleted
