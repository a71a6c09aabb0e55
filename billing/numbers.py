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

Invoice numbers (請求書番号) are the biller's own: typed, or made from the biller's pattern
(``InvoiceNumberPattern``, section at the end).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import re
import secrets
import struct

from django.utils.translation import gettext as _

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


# --- invoice numbers (請求書番号): the biller's automatic numbering pattern ---------------------------------
#
# A pattern is literal text with placeholders: {yyyy} {yy} {mm} {dd} (the invoice's issue date) and exactly
# one {seq} or {seq:0N} (a sequence number, zero-padded to N digits; it grows past N when it must).
# The sequence counts per biller within one *period*: the invoices whose numbers have the same text around
# the sequence, i.e. the pattern with its date placeholders filled in. So {yyyy}-{mm}-{seq:06} restarts
# at 000001 every month, {yyyy}-{seq:05} every year, INV-{seq:06} never. The next number is one more
# than the highest such number stored (billing.invoicing.invoice_number_next): gaps are tolerated
# (a number typed by hand, a rolled-back create), duplicates never (the unique constraint decides, and
# the creation retries with the next number: billing.invoicing.invoice_create_numbered).

INVOICE_NUMBER_PATTERN_DEFAULT = "{yyyy}-{mm}-{seq:06}"
INVOICE_NUMBER_PATTERN_MAX_LENGTH = 64
INVOICE_NUMBER_MAX_LENGTH = 32  # billing.models.Invoice.number
MAX_SEQ_WIDTH = 12
DATE_PLACEHOLDERS = {"yyyy": "%Y", "yy": "%y", "mm": "%m", "dd": "%d"}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_SEQ_PLACEHOLDER = re.compile(r"seq(?::0(\d+))?")
_LITERAL_CHARACTERS = re.compile(r"[A-Za-z0-9\-_/.]*")
_NUMBER_START = re.compile(r"[A-Za-z0-9]")


def _pattern_parts(text: str) -> tuple[list[tuple[str, str | int]], list[str]]:
    """The pattern as (kind, value) parts — ("text", "INV-"), ("date", "%Y"), ("seq", width) — and the
    problems found, each a sentence naming what is wrong."""
    parts: list[tuple[str, str | int]] = []
    problems: list[str] = []
    position = 0
    for match in [*_PLACEHOLDER.finditer(text), None]:
        literal = text[position : match.start() if match else len(text)]
        if literal:
            parts.append(("text", literal))
        if match is None:
            break
        position = match.end()
        name = match[1]
        seq = _SEQ_PLACEHOLDER.fullmatch(name)
        if name in DATE_PLACEHOLDERS:
            parts.append(("date", DATE_PLACEHOLDERS[name]))
        elif seq:
            width = int(seq[1]) if seq[1] is not None else 1
            if not 1 <= width <= MAX_SEQ_WIDTH:
                problems.append(
                    _("{%(name)s}: the sequence can be padded to 1 to %(max)d digits.")
                    % {"name": name, "max": MAX_SEQ_WIDTH}
                )
            parts.append(("seq", width))
        else:
            parts.append(("unknown", name))
            problems.append(
                _("Unknown placeholder {%(name)s}: use {yyyy}, {yy}, {mm}, {dd} and {seq} or {seq:06}.")
                % {"name": name}
            )
    literals = "".join(str(v) for kind, v in parts if kind == "text")
    if "{" in literals or "}" in literals:
        problems.append(_("Every { needs its closing } (and a placeholder cannot contain another)."))
    bad = dict.fromkeys(_LITERAL_CHARACTERS.sub("", literals.replace("{", "").replace("}", "")))
    if bad:
        problems.append(
            _("“%(characters)s” cannot be part of an invoice number: use letters, digits and - _ / .")
            % {"characters": "".join(bad)}
        )
    seqs = sum(1 for kind, _v in parts if kind == "seq")
    if seqs == 0:
        problems.append(_("The pattern needs a sequence number: {seq} or {seq:06} (6 digits)."))
    elif seqs > 1:
        problems.append(_("The pattern can have only one sequence number ({seq…})."))
    if not problems and parts[0][0] == "text" and not _NUMBER_START.match(str(parts[0][1])):
        problems.append(_("An invoice number starts with a letter or a digit."))
    return parts, problems


def invoice_number_pattern_errors(text: str) -> list[str]:
    """What is wrong with an invoice number pattern ([] when it can be used)."""
    parts, problems = _pattern_parts(text)
    if not problems:
        longest = sum(
            len(str(v)) if kind == "text" else (4 if v == "%Y" else 2) if kind == "date" else int(v)
            for kind, v in parts
        )
        if longest > INVOICE_NUMBER_MAX_LENGTH:
            problems.append(
                _("Its numbers would be %(length)d characters long; an invoice number has at most %(max)d.")
                % {"length": longest, "max": INVOICE_NUMBER_MAX_LENGTH}
            )
    return problems


def validate_invoice_number_pattern(value: str) -> None:
    """The model field's validator (billing.models.Biller.invoice_number_pattern)."""
    from django.core.exceptions import ValidationError

    problems = invoice_number_pattern_errors(value)
    if problems:
        raise ValidationError(problems, code="invoice_number_pattern")


class InvoiceNumberPattern:
    """A valid pattern, filled in for one issue date: the period's text around the sequence."""

    def __init__(self, text: str) -> None:
        parts, problems = _pattern_parts(text)
        if problems or not parts:
            raise ValueError(f"invalid invoice number pattern {text!r}: {' '.join(problems)}")
        self.text = text
        self._parts = parts
        self.width = next(int(v) for kind, v in parts if kind == "seq")

    def around(self, on: datetime.date) -> tuple[str, str]:
        """The text before and after the sequence for an invoice issued ``on`` (the period's key)."""
        rendered: list[str] = []
        head = ""
        for kind, value in self._parts:
            if kind == "seq":
                head, rendered = "".join(rendered), []
            elif kind == "date":
                rendered.append(on.strftime(str(value)))
            else:
                rendered.append(str(value))
        return head, "".join(rendered)

    def number(self, on: datetime.date, seq: int) -> str:
        head, tail = self.around(on)
        return f"{head}{seq:0{self.width}d}{tail}"

    def regex(self, on: datetime.date) -> str:
        """A regular expression (Python's and PostgreSQL's alike) matching the period's numbers, the
        sequence as group 1: exactly N digits, or more without a leading zero (no 0000042 beside 000042)."""
        head, tail = self.around(on)
        digits = rf"\d{{{self.width}}}|[1-9]\d{{{self.width},}}" if self.width > 1 else r"[1-9]\d*"
        return f"^{re.escape(head)}({digits}){re.escape(tail)}$"

    def seq_of(self, number: str, on: datetime.date) -> int | None:
        match = re.match(self.regex(on), number)
        return int(match[1]) if match else None
