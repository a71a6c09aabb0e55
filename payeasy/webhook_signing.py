"""Signing outbound webhooks, and checking a signature the way a receiver does.

Every request carries ``Payeasy-Signature: t=<unix time>,v1=<hex>[,v1=<hex>]``: one ``v1`` per secret
in use (two while a rotated secret overlaps the new one), each the HMAC-SHA256, keyed with the secret
(its UTF-8 bytes), of ``f"{t}.".encode() + body`` — the raw body bytes as received.

``verify_signature`` is what a receiver runs; it needs only the standard library and may be copied as
it is (docs/webhooks.md shows it).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

SIGNATURE_HEADER = "Payeasy-Signature"
EVENT_ID_HEADER = "Payeasy-Event-Id"
EVENT_TYPE_HEADER = "Payeasy-Event-Type"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secrets: Iterable[str], body: bytes, timestamp: int) -> str:
    """The ``Payeasy-Signature`` header value for ``body`` sent at ``timestamp``, signed by each secret."""
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets)])


def verify_signature(
    secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None
) -> bool:
    """True when ``header`` (the Payeasy-Signature value) signs ``body`` with ``secret`` and its time is
    within ``tolerance`` seconds of now (a replayed old request fails)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _sep, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
