"""Time-based one-time codes (RFC 6238): the one implementation for the portal and the console.

A code is checked against the time steps now−1, now and now+1 (a phone's clock may be off by
one step) and accepted only for a step newer than the last one accepted for that secret, so a
code seen once (over a shoulder, in a proxy log) cannot be used again.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.utils import timezone

INTERVAL = 30


def totp(secret: str) -> Any:
    import pyotp

    return pyotp.TOTP(secret, interval=INTERVAL)


def new_secret() -> str:
    import pyotp

    return str(pyotp.random_base32())


def provisioning_uri(secret: str, *, name: str, issuer: str) -> str:
    """The ``otpauth://`` link an authenticator app reads (from a QR code or a tap)."""
    return str(totp(secret).provisioning_uri(name=name, issuer_name=issuer))


def grouped(secret: str) -> str:
    """The secret in groups of four, easier to type by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def matching_step(secret: str, code: str, *, after: int | None) -> int | None:
    """The time step (now ±1) whose code is ``code`` and that is newer than ``after``; else None."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if len(code) != 6 or not secret:
        return None
    generator = totp(secret)
    current = int(timezone.now().timestamp() // INTERVAL)
    found = None
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(str(generator.at(step * INTERVAL)), code) and (after is None or step > after):
            found = step
    return found
