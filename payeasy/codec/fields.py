"""The field types N, X, K and J (spec §2): one fixed-width field's bytes <-> its value, checked.

Shared by the messages (:mod:`payeasy.codec.messages`) and the teller batch files
(:mod:`payeasy.codec.batch`): :class:`Field` describes a field, :func:`field_read` /
:func:`field_read_text` read and check it, :func:`field_write` builds its bytes; :func:`fit_kana` and
:func:`fit_double_byte` make display text fit a K or J field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from typing import Final, Literal

from billing.kana import (
    ZENGIN_KANA_CHARS,
    double_byte_errors,
    to_double_byte,
    to_zengin_kana,
    zengin_kana_errors,
)
from payeasy.codec.errors import CodecError

__all__ = [
    "DIGIT_BYTES",
    "MAX_AMOUNT",
    "Check",
    "ElementValue",
    "Field",
    "Kind",
    "field_read",
    "field_read_text",
    "field_write",
    "fit_double_byte",
    "fit_kana",
    "is_digits",
]

ElementValue = str | int
"""An element's value: ``int`` for elements 4, 16–20, ``str`` for all others."""

MAX_AMOUNT: Final = 99_999_999_999
"""The largest amount: element 4 and the batch file's 金額 are 1–99,999,999,999 yen."""

Kind = Literal["N", "X", "K", "J"]
Check = Literal[
    "int", "code", "date", "datetime", "time", "digits", "key", "nonblank", "text", "raw", "bitmap"
]


@dataclass(frozen=True)
class Field:
    """One fixed-width field: its type and width, and what its content must be."""

    name: str
    kind: Kind
    width: int
    check: Check = "text"
    lo: int = 0
    hi: int = 0
    choices: frozenset[str] = frozenset()


DIGIT_BYTES: Final = frozenset(b"0123456789")
_X_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ")
_X_BYTES: Final = frozenset(ch.encode("ascii")[0] for ch in _X_CHARS)
_K_BYTES: Final[dict[int, str]] = {ch.encode("cp932")[0]: ch for ch in ZENGIN_KANA_CHARS}
_HEX: Final = frozenset("0123456789ABCDEF")
# the bytes each type admits, as deletion tables: ``raw.translate(None, table)`` is empty when every byte of
# ``raw`` is admitted, checked in C; the byte-by-byte loops below only run to name the offending byte
_ADMITTED_X: Final = bytes(sorted(_X_BYTES))
_ADMITTED_K: Final = bytes(sorted(_K_BYTES))
_IDEOGRAPHIC_SPACE: Final = "\u3000"

if any(len(ch.encode("cp932")) != 1 for ch in ZENGIN_KANA_CHARS):  # pragma: no cover - guards billing.kana
    raise RuntimeError("billing.kana.ZENGIN_KANA_CHARS has a character that is not one byte in cp932")


def is_digits(text: str, width: int | None = None) -> bool:
    """True when ``text`` is ASCII digits only (and exactly ``width`` of them, if given); False for ""."""
    return (width is None or len(text) == width) and text.isascii() and text.isdigit()


def _valid_date(text: str) -> bool:
    if not is_digits(text, 8):
        return False
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return True


def _valid_time(text: str) -> bool:
    if not is_digits(text, 6):
        return False
    try:
        time(int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        return False
    return True


def _valid_datetime(text: str) -> bool:
    return len(text) == 14 and _valid_date(text[:8]) and _valid_time(text[8:])


def _byte_error(f: Field, offset: int, i: int, byte: int, what: str, record: int | None) -> CodecError:
    return CodecError(
        f.name, offset, f"byte 0x{byte:02X} at offset {offset + i} is not {what}", record=record
    )


def _decode(f: Field, raw: bytes, offset: int, record: int | None) -> str:
    """Bytes of one field -> its text (fill removed), checking only the field type."""
    if f.kind == "N":
        if not raw.isdigit():  # bytes.isdigit: ASCII digits only, and False for b""
            for i, byte in enumerate(raw):
                if byte not in DIGIT_BYTES:
                    raise _byte_error(f, offset, i, byte, "an ASCII digit (N field)", record)
        return raw.decode("ascii")
    if f.kind == "X":
        if raw.translate(None, _ADMITTED_X):
            for i, byte in enumerate(raw):
                if byte not in _X_BYTES:
                    raise _byte_error(f, offset, i, byte, "an ASCII letter, digit or space (X field)", record)
        text = raw.decode("ascii")
        return text if f.check == "raw" else text.rstrip(" ")
    if f.kind == "K":
        if not raw.translate(None, _ADMITTED_K):
            return "".join([_K_BYTES[byte] for byte in raw]).rstrip(" ")
        chars = []
        for i, byte in enumerate(raw):
            ch = _K_BYTES.get(byte)
            if ch is None:
                raise _byte_error(
                    f, offset, i, byte, "a 全銀 half-width kana, A-Z, 0-9, space or ( ) . - /", record
                )
            chars.append(ch)
        return "".join(chars).rstrip(" ")
    # J: every two bytes are one double-byte cp932 character, in cp932's own encoding of it. cp932 has
    # characters of one and two bytes only, so half as many characters as bytes, encoded back to the same
    # bytes, means every character is one double-byte pair.
    try:
        text = raw.decode("cp932")
        if len(text) * 2 == len(raw) and text.encode("cp932") == raw:
            return text.rstrip(_IDEOGRAPHIC_SPACE)
    except UnicodeError:
        pass
    chars = []
    for i in range(0, len(raw), 2):
        pair = raw[i : i + 2]
        try:
            ch = pair.decode("cp932")
            canonical = ch.encode("cp932")
        except UnicodeError:
            ch, canonical = "", b""
        if len(ch) != 1 or canonical != pair:
            raise CodecError(
                f.name,
                offset,
                f"bytes {pair.hex().upper()} at offset {offset + i} are not one double-byte cp932 character",
                record=record,
            )
        chars.append(ch)
    return "".join(chars).rstrip(_IDEOGRAPHIC_SPACE)


def _validate(f: Field, text: str, offset: int, record: int | None) -> None:
    """Check the content of a field's text beyond its type (dates, ranges, code lists)."""
    problem = ""
    if f.check == "int":
        if not is_digits(text):
            problem = "is not a number"
        elif not f.lo <= int(text) <= f.hi:
            problem = f"{int(text)} is outside {f.lo:,}–{f.hi:,}"
    elif f.check == "code":
        if f.choices and text not in f.choices:
            problem = f"{text!r} is not one of {', '.join(sorted(f.choices))}"
    elif f.check == "date":
        if not _valid_date(text):
            problem = f"{text!r} is not a date YYYYMMDD"
    elif f.check == "datetime":
        if not _valid_datetime(text):
            problem = f"{text!r} is not a date and time YYYYMMDDhhmmss"
    elif f.check == "time":
        if not _valid_time(text):
            problem = f"{text!r} is not a time hhmmss"
    elif f.check == "digits":
        if not is_digits(text) or len(text) > f.width:
            problem = f"{text!r} is not 1–{f.width} digits"
    elif f.check == "key":
        if (
            len(text) != 26
            or not text[:10].strip(" ")
            or not _valid_date(text[10:18])
            or not is_digits(text[18:], 8)
        ):
            problem = f"{text!r} is not a transaction key (centre X(10) + date YYYYMMDD + serial N(8))"
    elif f.check == "nonblank":
        if not text.strip(" "):
            problem = "is blank"
    elif f.check == "bitmap" and (len(text) != 16 or not set(text) <= _HEX):
        problem = f"{text!r} is not 16 upper-case hex digits"
    if problem:
        raise CodecError(f.name, offset, problem, record=record)


def field_read_text(data: bytes, pos: int, f: Field, base: int = 0, record: int | None = None) -> str:
    """Read and check one field at ``pos``; ``base + pos`` is the offset reported in errors."""
    offset = base + pos
    if pos + f.width > len(data):
        left = max(0, len(data) - pos)
        raise CodecError(f.name, offset, f"truncated: needs {f.width} bytes, {left} left", record=record)
    text = _decode(f, data[pos : pos + f.width], offset, record)
    _validate(f, text, offset, record)
    return text


def field_read(data: bytes, pos: int, f: Field, base: int = 0, record: int | None = None) -> ElementValue:
    """As :func:`field_read_text`, with the value of an ``int`` field as an ``int``."""
    text = field_read_text(data, pos, f, base, record)
    return int(text) if f.check == "int" else text


def _encode(f: Field, text: str, offset: int, record: int | None) -> bytes:
    """Text of one field -> exactly ``f.width`` bytes with the fill of its type."""
    if f.kind == "N":
        if not is_digits(text, f.width):
            raise CodecError(f.name, offset, f"{text!r} is not exactly {f.width} digits", record=record)
        return text.encode("ascii")
    if len(text) > f.width and f.kind != "J":
        raise CodecError(f.name, offset, f"{text!r} is longer than {f.width} characters", record=record)
    if f.kind == "X":
        bad = [] if _X_CHARS.issuperset(text) else [ch for ch in text if ch not in _X_CHARS]
        if bad:
            raise CodecError(
                f.name, offset, f"{bad[0]!r} is not an ASCII letter, digit or space", record=record
            )
        return text.ljust(f.width).encode("ascii")
    if f.kind == "K":
        errors = zengin_kana_errors(text)
        if errors:
            pos, ch = errors[0]
            raise CodecError(
                f.name,
                offset,
                f"{ch!r} (character {pos + 1}) is not a 全銀 half-width kana, A-Z, 0-9, space or ( ) . - /",
                record=record,
            )
        return text.ljust(f.width).encode("cp932")
    try:
        encoded = text.encode("cp932")
    except UnicodeEncodeError:
        encoded = b""
    # cp932 characters are one or two bytes: twice as many bytes as characters means all are two
    errors = [] if len(encoded) == 2 * len(text) else double_byte_errors(text)
    if errors:
        pos, ch = errors[0]
        raise CodecError(
            f.name,
            offset,
            f"{ch!r} (character {pos + 1}) is not a double-byte cp932 character",
            record=record,
        )
    if len(encoded) > f.width:
        raise CodecError(
            f.name,
            offset,
            f"{text!r} is {len(encoded)} bytes, longer than {f.width} ({f.width // 2} characters)",
            record=record,
        )
    return encoded + _IDEOGRAPHIC_SPACE.encode("cp932") * ((f.width - len(encoded)) // 2)


def field_write(f: Field, value: object, offset: int, record: int | None = None) -> bytes:
    """A value -> the bytes of its field, or CodecError naming the field."""
    if f.check == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise CodecError(f.name, offset, f"{value!r} is not an int", record=record)
        if not f.lo <= value <= f.hi:
            raise CodecError(f.name, offset, f"{value:,} is outside {f.lo:,}–{f.hi:,}", record=record)
        return f"{value:0{f.width}d}".encode("ascii")
    if not isinstance(value, str):
        raise CodecError(f.name, offset, f"{value!r} is not a str", record=record)
    encoded = _encode(f, value, offset, record)
    text = value if f.check == "raw" else value.rstrip(_IDEOGRAPHIC_SPACE if f.kind == "J" else " ")
    _validate(f, text, offset, record)
    return encoded


def fit_kana(value: str, width: int, field: str = "kana") -> str:
    """Make display text fit a ``K(width)`` field: 全銀 half-width kana, cut to ``width``.

    Uses :func:`billing.kana.to_zengin_kana`; raises :class:`CodecError` (offset 0)
    if characters without a 全銀 form remain. For names the server sends (element 11).
    """
    text = to_zengin_kana(value)
    errors = zengin_kana_errors(text)
    if errors:
        raise CodecError(field, 0, f"{errors[0][1]!r} has no 全銀 half-width kana form")
    return text[:width].rstrip(" ")


def fit_double_byte(value: str, width: int, field: str = "kanji") -> str:
    """Make display text fit a ``J(width)`` field: full-width, cut to ``width // 2`` characters.

    Uses :func:`billing.kana.to_double_byte`; raises :class:`CodecError` (offset 0)
    if characters that are not double-byte cp932 remain. For elements 12 and 13.
    """
    text = to_double_byte(value)
    errors = double_byte_errors(text)
    if errors:
        raise CodecError(field, 0, f"{errors[0][1]!r} is not a double-byte cp932 character")
    return text[: width // 2].rstrip(_IDEOGRAPHIC_SPACE)
