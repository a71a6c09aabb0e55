"""Secrets at rest: AES-256-GCM under the product's key-encryption keys (KEKs).

What it keeps: the 情報リンク banks' AES keys (``payeasy.handoff``) and the webhook signing secrets
(``payeasy.services.webhooks``). A wrapped value is one ASCII string::

    w1.<base64url(IV, 12 bytes)>.<base64url(ciphertext + 16-byte GCM tag)>

base64url without padding. The additional authenticated data names what the value belongs to (a bank
key's kid, a webhook endpoint's id), so a wrapped value copied to another row does not open.

The KEKs are ``settings.PAYEASY_HANDOFF_KEK``: one or more keys, comma-separated, the one that wraps
first, the others only read (a rotation: the new key first, the old one after, until
``manage.py rewrap_secrets`` has re-wrapped everything under the new one — docs/operators.md). Each is
32 bytes as 64 hex digits or base64url; the word ``secret-key`` stands for the keys derived from
``DJANGO_SECRET_KEY`` and its fallbacks, which are also what an empty setting means.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

FORMAT = "w1"
KEY_BYTES = 32
IV_BYTES = 12
DERIVED = "secret-key"  # in PAYEASY_HANDOFF_KEK: the keys derived from the secret key
SETTING = "PAYEASY_HANDOFF_KEK"
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class Unreadable(Exception):
    """No configured key-encryption key opens the value, or it is not a wrapped value."""


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Strict base64url without padding: any other character is an error (never silently skipped)."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_kek(text: str) -> bytes:
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 2 * KEY_BYTES else b64d(text)
    except ValueError:
        raw = b""
    if len(raw) != KEY_BYTES:
        raise ImproperlyConfigured(f"{SETTING} must be 32 bytes: 64 hex digits or base64url")
    return raw


def _derived() -> list[bytes]:
    secrets_ = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [
        HKDF(
            algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"payeasy handoff key wrap v1"
        ).derive(str(s).encode("utf-8"))
        for s in secrets_
    ]


def _entries(value: str | Iterable[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


def keks() -> list[bytes]:
    """The key-encryption keys, the one that wraps first. ImproperlyConfigured when one is not a key."""
    entries = _entries(getattr(settings, SETTING, "") or "")
    if not entries:
        return _derived()
    keys: list[bytes] = []
    for entry in entries:
        keys += _derived() if entry == DERIVED else [parse_kek(entry)]
    return keys


def is_wrapped(value: str) -> bool:
    return value.startswith(FORMAT + ".")


def wrap(plaintext: bytes, aad: bytes) -> str:
    """``plaintext`` encrypted under the first KEK, bound to ``aad``."""
    iv = os.urandom(IV_BYTES)
    return f"{FORMAT}.{b64e(iv)}.{b64e(AESGCM(keks()[0]).encrypt(iv, plaintext, aad))}"


def opened_by(wrapped: str, aad: bytes) -> tuple[bytes, int]:
    """The plaintext and the position of the KEK that opened it (0: the one that wraps now)."""
    try:
        tag, iv_text, ct_text = wrapped.split(".")
        iv, ciphertext = b64d(iv_text), b64d(ct_text)
    except ValueError:
        raise Unreadable("not a wrapped value") from None
    if tag != FORMAT or len(iv) != IV_BYTES:
        raise Unreadable("not a wrapped value")
    for position, kek in enumerate(keks()):
        try:
            return AESGCM(kek).decrypt(iv, ciphertext, aad), position
        except InvalidTag:
            continue
    raise Unreadable("no configured key-encryption key opens it")


def unwrap(wrapped: str, aad: bytes) -> bytes:
    return opened_by(wrapped, aad)[0]


def handoff_key_aad(kid: str) -> bytes:
    """What a 情報リンク bank key is bound to: its kid."""
    return f"payeasy-handoff-key.{kid}".encode("ascii")


def webhook_secret_aad(endpoint_id: int) -> bytes:
    """What a webhook endpoint's signing secret (current or previous) is bound to: the endpoint."""
    return f"payeasy-webhook-secret.{endpoint_id}".encode("ascii")
