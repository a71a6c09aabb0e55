"""The 情報リンク hand-off envelope: the bill, sealed for one bank with AES-256-GCM (docs/handoff.md).

An envelope is one ASCII string of four parts joined by ".":

    v1.<kid>.<base64url(IV, 12 bytes)>.<base64url(ciphertext + 16-byte GCM tag)>

base64url without padding. The plaintext is a UTF-8 JSON object (:class:`Payload`); the additional
authenticated data is the ASCII text ``v1.<kid>.<bank code>``, so an envelope opens only with the key it
names and only for the bank it was sealed for. It expires 30 minutes after it was issued and opens once:
its nonce is recorded (a unique constraint) when it is opened.

Each bank has keys named by a key id (kid): one active key seals, keys being retired still open until
they are retired (rotation without a moment when envelopes in flight are refused). Keys are generated
with ``os.urandom(32)``, shown once, and stored wrapped (AES-256-GCM, ``payeasy.keywrap``) under the
key-encryption keys (``settings.PAYEASY_HANDOFF_KEK``, or one derived from the secret key).

The functions at the top (:func:`seal`, :func:`unseal`) are pure; :func:`handoff_seal`,
:func:`handoff_open` and :func:`nonces_prune` use the database.
"""

from __future__ import annotations

import binascii
import datetime
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from billing.errors import ProductError
from billing.models import Invoice
from payeasy import keywrap
from payeasy.codec import JST
from payeasy.keywrap import b64d, b64e
from payeasy.models import HandoffEndpoint, HandoffKey, HandoffNonce

VERSION = "v1"
TTL = datetime.timedelta(minutes=30)
CLOCK_SKEW = datetime.timedelta(seconds=60)  # an envelope issued this far in the future still opens
KEY_BYTES = 32
IV_BYTES = 12
TAG_BYTES = 16
NONCE_BYTES = 16
MAX_ENVELOPE_CHARS = 8192
KID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


# --- errors: one class per reason an envelope is refused --------------------------------------------------


class HandoffError(ProductError):
    """An envelope was refused, or a hand-off cannot be made. ``code`` names the reason."""

    code = "handoff"
    default_message: str | Promise = _("The hand-off failed.")

    def __init__(self, message: str | Promise | None = None) -> None:
        super().__init__(str(message or self.default_message), code=self.code)


class HandoffUnavailable(HandoffError):
    code = "unavailable"
    default_message = _(
        "This bank does not take 情報リンク hand-offs (no enabled endpoint with an active key)."
    )


class EnvelopeMalformed(HandoffError):
    code = "malformed"
    default_message = _("The payment data is not a hand-off envelope (damaged or cut short).")


class UnknownKey(HandoffError):
    code = "unknown_key"
    default_message = _("The payment data names a key this bank does not have.")


class KeyRetired(UnknownKey):
    code = "key_retired"
    default_message = _("The payment data was sealed with a key that has been retired.")


class KeyUnreadable(HandoffError):
    code = "key_unreadable"
    default_message = _(
        "The stored key cannot be decrypted: the key-encryption key or the secret key was changed."
    )


class EnvelopeTampered(HandoffError):
    code = "tampered"
    default_message = _(
        "The payment data was altered on the way (or sealed for another bank): it failed authentication."
    )


class EnvelopeExpired(HandoffError):
    code = "expired"
    default_message = _("The payment data has expired: hand-offs are valid for 30 minutes.")


class EnvelopeReplayed(HandoffError):
    code = "replayed"
    default_message = _("The payment data was already used: every hand-off opens once.")


# --- the payload ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    """The JSON object inside an envelope (docs/handoff.md lists the fields, their types and limits)."""

    payee_number: str  # 収納機関番号, 5 digits
    biller_code: str  # 収納機関コード, 8 digits (H6 of the bank's 1200)
    customer_number: str  # お客様番号, 1–20 digits
    confirmation_number: str  # 確認番号, 1–6 digits
    amount: int  # yen
    due_date: str  # YYYY-MM-DD
    biller_name: str  # 収納機関名漢字 (full-width, as on the line)
    biller_name_kana: str  # 収納機関名カナ (half-width 全銀 kana)
    description: str  # 料金名
    return_url: str  # where the bank sends the payer back (changes nothing on our side)
    issued_at: int  # Unix time, seconds
    expires_at: int  # Unix time, seconds; issued_at + 1800
    nonce: str  # base64url of 16 random bytes; single-use

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def due(self) -> datetime.date:
        return datetime.date.fromisoformat(self.due_date)

    @property
    def expires(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.expires_at, tz=datetime.UTC)

    @classmethod
    def from_dict(cls, data: Any) -> Payload:
        """Check every field's type and form; unknown fields are ignored (later versions may add some)."""
        if not isinstance(data, dict):
            raise EnvelopeMalformed(_("The payment data is not a JSON object."))
        digits = {
            "payee_number": (5, 5),
            "biller_code": (8, 8),
            "customer_number": (1, 20),
            "confirmation_number": (1, 6),
        }
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name not in data:
                raise EnvelopeMalformed(_("The payment data has no field %(name)s.") % {"name": name})
            value = data[name]
            if name in {"amount", "issued_at", "expires_at"}:
                ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
            else:
                ok = isinstance(value, str)
                if ok and name in digits:
                    low, high = digits[name]
                    ok = value.isascii() and value.isdigit() and low <= len(value) <= high
            if not ok:
                raise EnvelopeMalformed(_("The payment data field %(name)s is not valid.") % {"name": name})
            values[name] = value
        try:
            datetime.date.fromisoformat(values["due_date"])
        except ValueError:
            raise EnvelopeMalformed(_("The payment data field due_date is not a date.")) from None
        return cls(**values)


# --- encoding ---------------------------------------------------------------------------------------------


def aad_for(kid: str, bank_code: str) -> bytes:
    """The additional authenticated data: ``v1.<kid>.<bank code>`` in ASCII."""
    return f"{VERSION}.{kid}.{bank_code}".encode("ascii")


@dataclass(frozen=True)
class Parts:
    version: str
    kid: str
    iv: bytes
    ciphertext: bytes  # with the 16-byte tag at its end


def parse(envelope: str) -> Parts:
    """Split an envelope into its parts; a wrong version or shape is EnvelopeMalformed."""
    if not isinstance(envelope, str) or len(envelope) > MAX_ENVELOPE_CHARS or not envelope.isascii():
        raise EnvelopeMalformed()
    pieces = envelope.strip().split(".")
    if len(pieces) != 4:
        raise EnvelopeMalformed()
    version, kid, iv_text, ct_text = pieces
    if version != VERSION:
        raise EnvelopeMalformed(
            _("The payment data has version %(version)s; this bank reads %(expected)s.")
            % {"version": version[:10], "expected": VERSION}
        )
    if not KID_PATTERN.match(kid):
        raise EnvelopeMalformed()
    try:
        iv, ciphertext = b64d(iv_text), b64d(ct_text)
    except (ValueError, binascii.Error):
        raise EnvelopeMalformed() from None
    if len(iv) != IV_BYTES or len(ciphertext) <= TAG_BYTES:
        raise EnvelopeMalformed()
    return Parts(version, kid, iv, ciphertext)


def seal(
    payload: Mapping[str, Any] | Payload, *, key: bytes, kid: str, bank_code: str, iv: bytes | None = None
) -> str:
    """The envelope of ``payload`` for ``bank_code`` under ``key`` named ``kid``. ``iv`` is random
    (12 bytes from os.urandom) unless given — give one only in tests: an IV must never repeat."""
    if not KID_PATTERN.match(kid):
        raise ValueError(f"bad key id {kid!r}")
    data = payload.as_dict() if isinstance(payload, Payload) else dict(payload)
    plaintext = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    iv = iv if iv is not None else os.urandom(IV_BYTES)
    ciphertext = AESGCM(key).encrypt(iv, plaintext, aad_for(kid, bank_code))
    return f"{VERSION}.{kid}.{b64e(iv)}.{b64e(ciphertext)}"


def unseal(envelope: str, *, key: bytes, bank_code: str) -> Payload:
    """Decrypt and check an envelope with ``key``: EnvelopeMalformed or EnvelopeTampered when it does
    not open. Neither expiry nor replay is checked here (see :func:`handoff_open`)."""
    return _decrypt(parse(envelope), key=key, bank_code=bank_code)


def _decrypt(parts: Parts, *, key: bytes, bank_code: str) -> Payload:
    try:
        plaintext = AESGCM(key).decrypt(parts.iv, parts.ciphertext, aad_for(parts.kid, bank_code))
    except InvalidTag:
        raise EnvelopeTampered() from None
    try:
        data = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise EnvelopeMalformed() from None
    return Payload.from_dict(data)


def check_time(payload: Payload, now: datetime.datetime) -> None:
    """EnvelopeExpired at or after ``expires_at``; a lifetime over 30 minutes or an issue time in the
    future (beyond a minute of clock skew) is EnvelopeMalformed."""
    ts = int(now.timestamp())
    if payload.expires_at - payload.issued_at > TTL.total_seconds():
        raise EnvelopeMalformed(_("The payment data claims a lifetime longer than 30 minutes."))
    if payload.issued_at > ts + CLOCK_SKEW.total_seconds():
        raise EnvelopeMalformed(_("The payment data was issued in the future."))
    if ts >= payload.expires_at:
        raise EnvelopeExpired()


# --- keys at rest -----------------------------------------------------------------------------------------


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def new_kid(bank_code: str, now: datetime.datetime | None = None) -> str:
    """``<bank code>-<YYYYMMDD>-<6 hex>``: unique, and says whose and how old."""
    day = (now or timezone.now()).astimezone(JST).strftime("%Y%m%d")
    return f"{bank_code}-{day}-{secrets.token_hex(3)}"


def _keks() -> list[bytes]:
    """The key-encryption keys, the one that wraps first (``payeasy.keywrap``, shared with the webhook
    signing secrets): those of PAYEASY_HANDOFF_KEK, or derived from the secret key and its fallbacks (so
    keys wrapped before a secret-key rotation still open)."""
    return keywrap.keks()


def _wrap_aad(kid: str) -> bytes:
    return keywrap.handoff_key_aad(kid)


def key_wrap(key: bytes, kid: str) -> str:
    """``w1.<base64url IV>.<base64url ciphertext+tag>``: the key encrypted under the first KEK, bound to its
    kid (a wrapped key copied to another row does not open)."""
    return keywrap.wrap(key, _wrap_aad(kid))


def key_unwrap(wrapped: str, kid: str) -> bytes:
    try:
        return keywrap.unwrap(wrapped, _wrap_aad(kid))
    except keywrap.Unreadable:
        raise KeyUnreadable() from None


# --- with the database ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sealed:
    envelope: str
    endpoint: HandoffEndpoint
    kid: str
    payload: Payload


def sealing_key(bank_code: str) -> HandoffKey:
    """The active key of the bank's enabled endpoint, or HandoffUnavailable."""
    key = (
        HandoffKey.objects.select_related("endpoint")
        .filter(endpoint__bank_code=bank_code, endpoint__enabled=True, status=HandoffKey.Status.ACTIVE)
        .first()
    )
    if key is None:
        raise HandoffUnavailable()
    return key


def payload_for(
    invoice: Invoice, *, return_url: str, now: datetime.datetime | None = None, nonce: str | None = None
) -> Payload:
    """The hand-off payload of a payable invoice (load it with its biller)."""
    if not invoice.is_payable or invoice.customer_number is None or invoice.confirmation_number is None:
        raise HandoffError(_("This invoice cannot be paid."))
    biller = invoice.biller
    issued = int((now or timezone.now()).timestamp())
    return Payload(
        payee_number=biller.payee_number,
        biller_code=biller.biller_code,
        customer_number=str(invoice.customer_number),
        confirmation_number=str(invoice.confirmation_number),
        amount=int(invoice.total),
        due_date=invoice.due_date.isoformat(),
        biller_name=biller.short_name,
        biller_name_kana=biller.name_kana,
        description=invoice.description,
        return_url=return_url,
        issued_at=issued,
        expires_at=issued + int(TTL.total_seconds()),
        nonce=nonce or b64e(os.urandom(NONCE_BYTES)),
    )


def handoff_seal(
    *, invoice: Invoice, bank_code: str, return_url: str, now: datetime.datetime | None = None
) -> Sealed:
    """A fresh envelope (new nonce, 30 minutes) of ``invoice`` for ``bank_code``. Writes nothing: the
    nonce is recorded when the bank opens the envelope."""
    key = sealing_key(bank_code)
    payload = payload_for(invoice, return_url=return_url, now=now)
    envelope = seal(payload, key=key_unwrap(key.wrapped_key, key.kid), kid=key.kid, bank_code=bank_code)
    return Sealed(envelope=envelope, endpoint=key.endpoint, kid=key.kid, payload=payload)


def handoff_open(
    envelope: str, *, bank_code: str, now: datetime.datetime | None = None, consume: bool = True
) -> Payload:
    """Open an envelope as bank ``bank_code`` does: the key its kid names (UnknownKey, KeyRetired), its
    authentication (EnvelopeTampered), its time (EnvelopeExpired), its nonce (EnvelopeReplayed —
    recorded here, once, unless ``consume`` is false). Expired nonces are pruned by beat (nonces_prune)."""
    now = now or timezone.now()
    parts = parse(envelope)
    row = HandoffKey.objects.filter(kid=parts.kid, endpoint__bank_code=bank_code).first()
    if row is None:
        raise UnknownKey()
    if row.status == HandoffKey.Status.RETIRED:
        raise KeyRetired()
    payload = _decrypt(parts, key=key_unwrap(row.wrapped_key, row.kid), bank_code=bank_code)
    check_time(payload, now)
    if consume:
        try:
            with transaction.atomic():
                HandoffNonce.objects.create(
                    nonce=payload.nonce,
                    bank_code=bank_code,
                    kid=parts.kid,
                    expires_at=payload.expires,
                    used_at=now,
                )
        except IntegrityError:
            raise EnvelopeReplayed() from None
    return payload


def nonces_prune(*, now: datetime.datetime | None = None) -> int:
    """Forget the nonces of envelopes that have expired (they are refused as expired anyway)."""
    cutoff = (now or timezone.now()) - CLOCK_SKEW
    deleted, _by_model = HandoffNonce.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
