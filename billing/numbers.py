"""Pay-easy payment numbers: お客様番号 (customer number) and 確認番号 (confirmation number).

The customer number of a payable document is a keyed permutation of the
document's id (its primary key), with the biller's key, so that

- it is unique by construction (a permutation of an id, and ids are never
  reused: a number is never issued twice, so no payment can ever find another
  bill), and looking it up is a primary-key lookup (number → id),
- neighbours are not sequential (n and n+1 map far apart), and
- it carries a check digit, so a mistyped number is refused before a lookup.

The permutation is a 4-round balanced Feistel network over 14 decimal digits
(two halves of 7 digits) keyed with the biller's secret. Two ISO 7064
MOD 97-10 check digits follow (they catch every single-digit error and every
swap of two neighbouring digits): 16 digits, within the 20 element 1 allows.

The confirmation number is 6 random digits from the OS's CSPRNG: knowing one
bill's numbers tells nothing about another's.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import struct

HALF = 10**7
DOMAIN = HALF * HALF  # 10**14 documents per biller
CUSTOMER_NUMBER_LENGTH = 16
CONFIRMATION_LENGTH = 6
ATM_CASH_LIMIT = 100_000  # yen: an ATM takes no more than this in cash for one Pay-easy payment
_MASK = (1 << 64) - 1


def new_number_key() -> str:
    return secrets.token_hex(16)


def _round_keys(key: str) -> tuple[int, ...]:
    digest = hashlib.sha256(bytes.fromhex(key)).digest()
    return tuple(int.from_bytes(digest[i : i + 8], "big") | 1 for i in range(0, 32, 8))


def permute(n: int, keys: tuple[int, ...]) -> int:
    """The round function is a keyed multiply-xorshift (one 64-bit multiply, one shift): cheap in Python."""
    if not 0 <= n < DOMAIN:
        raise ValueError(f"number counter {n} is outside 0..{DOMAIN - 1}")
    left, right = divmod(n, HALF)
    for k in keys:
        z = ((right ^ k) * 0x9E3779B97F4A7C15) & _MASK
        left, right = right, (left + ((z ^ (z >> 29)) % HALF)) % HALF
    return left * HALF + right


def unpermute(m: int, keys: tuple[int, ...]) -> int:
    left, right = divmod(m, HALF)
    for k in reversed(keys):
        z = ((left ^ k) * 0x9E3779B97F4A7C15) & _MASK
        left, right = (right - ((z ^ (z >> 29)) % HALF)) % HALF, left
    return left * HALF + right


def check_digits(value: int) -> int:
    """ISO 7064 MOD 97-10 over the digits of ``value``: two digits, 01–97."""
    return 98 - (value * 100) % 97


def check_digits_valid(number: str) -> bool:
    return len(number) > 2 and number.isdigit() and int(number) % 97 == 1


class NumberIssuer:
    """Issues a biller's customer numbers; the counter is the document's id."""

    def __init__(self, key: str) -> None:
        self._keys = _round_keys(key)

    def customer_number(self, counter: int) -> str:
        body = permute(counter, self._keys)
        return f"{body:014d}{check_digits(body):02d}"

    def counter_of(self, customer_number: str) -> int | None:
        if len(customer_number) != CUSTOMER_NUMBER_LENGTH or not check_digits_valid(customer_number):
            return None
        return unpermute(int(customer_number[:-2]), self._keys)


def confirmation_numbers(count: int) -> list[str]:
    """``count`` random 6-digit confirmation numbers (uniform over 000000–999999, from the OS's CSPRNG)."""
    limit = (1 << 32) - (1 << 32) % 10**6  # rejecting values at or above it keeps the digits uniform
    out: list[str] = []
    while len(out) < count:
        need = count - len(out)
        values = struct.unpack(f">{need + 16}I", secrets.token_bytes(4 * (need + 16)))
        out.extend(f"{v % 1000000:06d}" for v in values if v < limit)
    del out[count:]
    return out


@functools.lru_cache(maxsize=256)
def issuer_for(key: str) -> NumberIssuer:
    """The issuer of a biller's numbers, built once per key (deriving the round keys hashes the key)."""
    return NumberIssuer(key)


# Portal registration codes: printed on the paper bill beside お客様番号 to prove the reader received it.
# 12 characters from an alphabet without look-alikes (no 0/O, 1/I/L), about 60 bits from the CSPRNG.
REGISTRATION_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
REGISTRATION_CODE_LENGTH = 12


def new_registration_code() -> str:
    return "".join(secrets.choice(REGISTRATION_CODE_ALPHABET) for _ in range(REGISTRATION_CODE_LENGTH))


def normalise_registration_code(value: str) -> str:
    """What a person types (lower case, hyphens, spaces, full-width) as the stored form."""
    import unicodedata

    text = unicodedata.normalize("NFKC", value or "").upper()
    return "".join(ch for ch in text if ch.isalnum())


def format_registration_code(code: str) -> str:
    """ABCD-EFGH-JKMN: groups of four, easier to read off paper and type."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
