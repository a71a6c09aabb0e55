"""The MPN line protocol codec: frames, messages and teller batch files, as bytes.

This module is the whole byte layout of ``mpn-line-protocol.md`` (version 1) and
nothing else: no Django, no database, no business rules beyond what the spec
calls a *format error*. A deployment that needs another byte layout swaps this
module; the communication server and the MPN simulator only see the dataclasses
and functions below.

Messages (spec §1–§3)::

    msg = parse_frame(frame)           # 4-digit length + body -> Message
    msg = parse_body(body)             # body -> Message
    body = build_body(msg)             # Message -> body
    frame = build_frame(msg)           # Message -> 4-digit length + body
    reply = make_response(msg, "0000", {15: "20261126", ...})
    FrameDecoder().feed(chunk)         # TCP stream -> complete bodies
    peek_header(body)                  # header of an unparseable body, for a 9001 answer
    build_format_error(header)         # that 9001 answer (also to a message type the profile lacks)

Teller batch files (spec §6)::

    batch = parse_batch_file("01_00009_58191_1126_001", data)
    data = build_batch_file(batch)
    batch = make_batch_file(header, records, serial=1, crlf=True)   # trailer computed

Values. ``N`` elements that are amounts or counts (4, 16, 17, 18, 19) and the
close kind (20) are ``int``; every other ``N`` field is a ``str`` of exactly its
width in digits (codes, dates, serials keep their leading zeros: ``"0001"``).
``X`` and ``K`` values have their trailing spaces removed, ``J`` values their
trailing U+3000; the builder puts the fill back. Parsing is strict enough that
every body or file it accepts builds back to the same bytes.

Errors. Every problem with bytes or values raises :class:`CodecError`, which
names the field and the byte offset where that field starts (in the body for
messages, in the file for batch files, plus the 1-based record number).

Decisions where the spec leaves room (all of them are "format error" = 9001):

- A response with ``0000`` carries exactly its §3 elements; a response with any
  other code needs none and may carry only elements from that same list.
- Content is checked, not only the field type: dates/times are real calendar
  values; element 4 and 金額 are 1–99,999,999,999; element 7 is 01–06; element 20
  is 1 or 2; お客様番号/確認番号 are 1–20/1–6 digits, left-aligned; element 9 is
  X(10) + date + 8 digits; H2 is not blank; H1 is one of the 14 types; H7 is four
  spaces in requests and a §4 code in responses.
- ``J`` bytes must be cp932's own encoding of each character (the NEC/IBM
  duplicate codes are refused), so that every accepted body builds back unchanged.
- Batch files: fillers are spaces; a CR LF file has CR LF after every record,
  the last included; one 取引通番 per record within a file (it is the key).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import PurePath
from typing import Final, Literal

from billing.kana import (
    ZENGIN_KANA_CHARS,
    double_byte_errors,
    to_double_byte,
    to_zengin_kana,
    zengin_kana_errors,
)

__all__ = [
    "BATCH_RECORD_LENGTH",
    "BITMAP_OFFSET",
    "ELEMENT_NAMES",
    "ELEMENT_WIDTHS",
    "HEADER_LENGTH",
    "MAX_BODY_LENGTH",
    "MESSAGE_TYPES",
    "REQUEST_TYPES",
    "RESPONSE_CODES",
    "BatchData",
    "BatchEnd",
    "BatchFile",
    "BatchHeader",
    "BatchTrailer",
    "CodecError",
    "ElementValue",
    "FrameDecoder",
    "Header",
    "Message",
    "allowed_elements",
    "batch_data_offset",
    "batch_file_name",
    "build_batch_file",
    "build_body",
    "build_format_error",
    "build_frame",
    "fit_double_byte",
    "fit_kana",
    "make_batch_file",
    "make_response",
    "parse_batch_file",
    "parse_body",
    "parse_frame",
    "peek_header",
]

ElementValue = str | int
"""An element's value: ``int`` for elements 4, 16–20, ``str`` for all others."""

HEADER_LENGTH: Final = 72
MAX_BODY_LENGTH: Final = 5297
FRAME_PREFIX_LENGTH: Final = 4
BITMAP_OFFSET: Final = 56
RESPONSE_CODE_OFFSET: Final = 52
BATCH_RECORD_LENGTH: Final = 120
JST: Final = timezone(timedelta(hours=9), "JST")


# ---------------------------------------------------------------------------------------------------------
# The error
# ---------------------------------------------------------------------------------------------------------


class CodecError(ValueError):
    """Bytes or values that do not follow the line protocol.

    ``field`` names the field (``"H1 message type"``, ``"element 4 amount"``,
    ``"trailer 合計金額"``), ``offset`` is the byte offset where that field starts
    (in the body for messages, in the file for batch files, in the stream for
    :class:`FrameDecoder`), ``record`` is the 1-based record number in a batch
    file (``None`` elsewhere), ``message`` says what is wrong.
    """

    def __init__(self, field: str, offset: int, message: str, *, record: int | None = None) -> None:
        self.field = field
        self.offset = offset
        self.message = message
        self.record = record
        super().__init__(field, offset, message)

    def __str__(self) -> str:
        where = f"record {self.record}, " if self.record is not None else ""
        return f"{where}{self.field} at byte offset {self.offset}: {self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_error, (self.field, self.offset, self.message, self.record))


def _rebuild_error(field: str, offset: int, message: str, record: int | None) -> CodecError:
    return CodecError(field, offset, message, record=record)


# ---------------------------------------------------------------------------------------------------------
# Field types N, X, K, J
# ---------------------------------------------------------------------------------------------------------

Kind = Literal["N", "X", "K", "J"]
Check = Literal[
    "int", "code", "date", "datetime", "time", "digits", "key", "nonblank", "text", "raw", "bitmap"
]


@dataclass(frozen=True)
class _Field:
    """One fixed-width field: its type and width, and what its content must be."""

    name: str
    kind: Kind
    width: int
    check: Check = "text"
    lo: int = 0
    hi: int = 0
    choices: frozenset[str] = frozenset()


_DIGIT_BYTES: Final = frozenset(b"0123456789")
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


def _is_digits(text: str, width: int | None = None) -> bool:
    return (width is None or len(text) == width) and text.isascii() and text.isdigit()


def _valid_date(text: str) -> bool:
    if not _is_digits(text, 8):
        return False
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return True


def _valid_time(text: str) -> bool:
    if not _is_digits(text, 6):
        return False
    try:
        time(int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        return False
    return True


def _valid_datetime(text: str) -> bool:
    return len(text) == 14 and _valid_date(text[:8]) and _valid_time(text[8:])


def _byte_error(f: _Field, offset: int, i: int, byte: int, what: str, record: int | None) -> CodecError:
    return CodecError(
        f.name, offset, f"byte 0x{byte:02X} at offset {offset + i} is not {what}", record=record
    )


def _decode(f: _Field, raw: bytes, offset: int, record: int | None) -> str:
    """Bytes of one field -> its text (fill removed), checking only the field type."""
    if f.kind == "N":
        if not raw.isdigit():  # bytes.isdigit: ASCII digits only, and False for b""
            for i, byte in enumerate(raw):
                if byte not in _DIGIT_BYTES:
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


def _validate(f: _Field, text: str, offset: int, record: int | None) -> None:
    """Check the content of a field's text beyond its type (dates, ranges, code lists)."""
    problem = ""
    if f.check == "int":
        if not _is_digits(text):
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
        if not _is_digits(text) or len(text) > f.width:
            problem = f"{text!r} is not 1–{f.width} digits"
    elif f.check == "key":
        if (
            len(text) != 26
            or not text[:10].strip(" ")
            or not _valid_date(text[10:18])
            or not _is_digits(text[18:], 8)
        ):
            problem = f"{text!r} is not a transaction key (centre X(10) + date YYYYMMDD + serial N(8))"
    elif f.check == "nonblank":
        if not text.strip(" "):
            problem = "is blank"
    elif f.check == "bitmap" and (len(text) != 16 or not set(text) <= _HEX):
        problem = f"{text!r} is not 16 upper-case hex digits"
    if problem:
        raise CodecError(f.name, offset, problem, record=record)


def _read_text(data: bytes, pos: int, f: _Field, base: int = 0, record: int | None = None) -> str:
    """Read and check one field at ``pos``; ``base + pos`` is the offset reported in errors."""
    offset = base + pos
    if pos + f.width > len(data):
        left = max(0, len(data) - pos)
        raise CodecError(f.name, offset, f"truncated: needs {f.width} bytes, {left} left", record=record)
    text = _decode(f, data[pos : pos + f.width], offset, record)
    _validate(f, text, offset, record)
    return text


def _read(data: bytes, pos: int, f: _Field, base: int = 0, record: int | None = None) -> ElementValue:
    text = _read_text(data, pos, f, base, record)
    return int(text) if f.check == "int" else text


def _encode(f: _Field, text: str, offset: int, record: int | None) -> bytes:
    """Text of one field -> exactly ``f.width`` bytes with the fill of its type."""
    if f.kind == "N":
        if not _is_digits(text, f.width):
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


def _write(f: _Field, value: object, offset: int, record: int | None = None) -> bytes:
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


# ---------------------------------------------------------------------------------------------------------
# Message layout (spec §2) and message types (§3, §4)
# ---------------------------------------------------------------------------------------------------------

_HEADER_FIELDS: Final[tuple[tuple[str, int, _Field], ...]] = (
    ("message_type", 0, _Field("H1 message type", "N", 4, "code")),  # choices checked separately
    ("centre", 4, _Field("H2 sending centre code", "X", 10, "nonblank")),
    ("processing_date", 14, _Field("H3 processing date", "N", 8, "date")),
    ("serial", 22, _Field("H4 processing serial", "N", 8, "code")),
    ("sent_at", 30, _Field("H5 sent at", "N", 14, "datetime")),
    ("biller_code", 44, _Field("H6 biller code", "N", 8, "code")),
    ("response_code", RESPONSE_CODE_OFFSET, _Field("H7 response code", "X", 4, "raw")),
    ("bitmap", BITMAP_OFFSET, _Field("H8 bitmap", "X", 16, "bitmap")),
)
_HEADER_FIELD: Final = {name: (offset, f) for name, offset, f in _HEADER_FIELDS}

_MAX_AMOUNT: Final = 99_999_999_999
_ELEMENTS: Final[dict[int, _Field]] = {
    1: _Field("element 1 customer number", "X", 20, "digits"),
    2: _Field("element 2 confirmation number", "X", 6, "digits"),
    3: _Field("element 3 納付区分", "X", 16),
    4: _Field("element 4 amount", "N", 11, "int", 1, _MAX_AMOUNT),
    5: _Field("element 5 bank code", "N", 4, "code"),
    6: _Field("element 6 branch code", "N", 3, "code"),
    7: _Field("element 7 channel", "N", 2, "code", choices=frozenset({"01", "02", "03", "04", "05", "06"})),
    8: _Field("element 8 paid at", "N", 14, "datetime"),
    9: _Field("element 9 original transaction key", "X", 26, "key"),
    10: _Field("element 10 due date", "N", 8, "date"),
    11: _Field("element 11 biller name kana", "K", 24),
    12: _Field("element 12 biller name kanji", "J", 24),
    13: _Field("element 13 bill description", "J", 40),
    14: _Field("element 14 payer name kana", "K", 30),
    15: _Field("element 15 counter date", "N", 8, "date"),
    16: _Field("element 16 count for the counter date", "N", 8, "int", 0, 10**8 - 1),
    17: _Field("element 17 amount for the counter date", "N", 15, "int", 0, 10**15 - 1),
    18: _Field("element 18 count for the day before", "N", 8, "int", 0, 10**8 - 1),
    19: _Field("element 19 amount for the day before", "N", 15, "int", 0, 10**15 - 1),
    20: _Field("element 20 close kind", "N", 1, "int", 1, 2),
}
ELEMENT_WIDTHS: Final[dict[int, int]] = {n: f.width for n, f in _ELEMENTS.items()}
ELEMENT_NAMES: Final[dict[int, str]] = {n: f.name for n, f in _ELEMENTS.items()}

# request type -> (required elements, optional elements)
_REQUESTS: Final[dict[str, tuple[frozenset[int], frozenset[int]]]] = {
    "0800": (frozenset(), frozenset()),
    "0820": (frozenset({20}), frozenset()),
    "1100": (frozenset({1, 2, 5, 6, 7}), frozenset()),
    "1200": (frozenset({1, 2, 4, 5, 6, 7, 8}), frozenset({14})),
    "1300": (frozenset({1, 2, 4, 5, 6, 7, 8, 9}), frozenset()),
    "1600": (frozenset({15, 16, 17, 18, 19}), frozenset()),
    "1700": (frozenset({1, 2, 4, 5, 6, 7, 8}), frozenset({14})),
}
# response type -> the elements it carries on 0000
_RESPONSES: Final[dict[str, frozenset[int]]] = {
    "0810": frozenset(),
    "0830": frozenset(),
    "1110": frozenset({1, 2, 4, 10, 11, 12, 13}),
    "1210": frozenset(),
    "1310": frozenset(),
    "1610": frozenset({15, 16, 17, 18, 19}),
    "1710": frozenset(),
}
REQUEST_TYPES: Final = frozenset(_REQUESTS)
MESSAGE_TYPES: Final = REQUEST_TYPES | frozenset(_RESPONSES)
RESPONSE_CODES: Final = frozenset(
    {"0000", "A001", "A002", "A010", "A301", "A601", "B001", "B002", "B003", "B004", "B005", "B006", "9001"}
)
_REQUEST_CODE: Final = "    "


def allowed_elements(
    message_type: str, response_code: str = _REQUEST_CODE
) -> tuple[frozenset[int], frozenset[int]]:
    """Return ``(required, allowed)`` element numbers for a message type and response code.

    Requests: the §3 required elements, plus 14 allowed on 1200/1700. Responses with
    ``0000``: exactly the §3 "response elements on 0000", all required. Responses with
    any other code: none required, and only elements from that same list allowed
    (1110 B001 carries none; a sender may echo some). Unknown types raise CodecError.
    """
    if message_type in _REQUESTS:
        required, optional = _REQUESTS[message_type]
        return required, required | optional
    if message_type in _RESPONSES:
        elements = _RESPONSES[message_type]
        return (elements if response_code == "0000" else frozenset()), elements
    raise CodecError("H1 message type", 0, f"{message_type!r} is not a message type of this profile")


@dataclass(frozen=True)
class Header:
    """The 72-byte header (H1–H8). ``response_code`` is four spaces in requests."""

    message_type: str
    centre: str
    processing_date: str
    serial: str
    sent_at: str
    biller_code: str
    response_code: str
    bitmap: str

    @property
    def transaction_key(self) -> str:
        """H2 (left-aligned in 10) + H3 + H4: the 26-character transaction key."""
        return self.centre.ljust(10) + self.processing_date + self.serial

    @property
    def is_request(self) -> bool:
        """True for the seven request types (0800 … 1700)."""
        return self.message_type in REQUEST_TYPES

    @property
    def answerable(self) -> bool:
        """True when a ``9001`` can answer this header: a request type, or four digits this profile does
        not know (spec §1: a frame whose header can be read gets 9001), but not a response type."""
        return (
            self.message_type not in _RESPONSES
            and _is_digits(self.message_type, 4)
            and int(self.message_type) + 10 <= 9999
        )


@dataclass(frozen=True)
class Message:
    """One message: the header fields (the bitmap follows from ``elements``) and its data elements.

    ``centre`` has its fill removed (``"MPNC000001"``); ``serial`` is the 8-digit
    H4 as text; ``elements`` maps element number to value (see module docstring).
    Frozen, but not hashable (``elements`` is a dict); nothing is checked until
    :func:`build_body` or :func:`make_response`.
    """

    message_type: str
    centre: str
    processing_date: str
    serial: str
    sent_at: str
    biller_code: str
    response_code: str = _REQUEST_CODE
    elements: dict[int, ElementValue] = field(default_factory=dict)

    @property
    def transaction_key(self) -> str:
        """H2 (left-aligned in 10) + H3 + H4: the 26-character transaction key."""
        return self.centre.ljust(10) + self.processing_date + self.serial

    @property
    def is_request(self) -> bool:
        """True for the seven request types (0800 … 1700)."""
        return self.message_type in REQUEST_TYPES

    @property
    def bitmap(self) -> str:
        """H8 for the present elements: 16 upper-case hex digits, bit 1 the most significant."""
        bits = 0
        for number in self.elements:
            if not isinstance(number, int) or not 1 <= number <= 64:
                raise CodecError("H8 bitmap", BITMAP_OFFSET, f"{number!r} is not an element number 1–64")
            bits |= 1 << (64 - number)
        return f"{bits:016X}"

    @property
    def header(self) -> Header:
        """The header of this message, bitmap included."""
        return Header(
            self.message_type,
            self.centre,
            self.processing_date,
            self.serial,
            self.sent_at,
            self.biller_code,
            self.response_code,
            self.bitmap,
        )


def _bits(bitmap: str) -> list[int]:
    value = int(bitmap, 16)
    return [n for n in range(1, 65) if value >> (64 - n) & 1]


def _check_response_code(message_type: str, code: str) -> None:
    f = _HEADER_FIELD["response_code"][1]
    if message_type in REQUEST_TYPES:
        if code != _REQUEST_CODE:
            raise CodecError(
                f.name, RESPONSE_CODE_OFFSET, f"{code!r} in a {message_type} request; must be four spaces"
            )
    elif code not in RESPONSE_CODES:
        raise CodecError(f.name, RESPONSE_CODE_OFFSET, f"{code!r} is not a response code of §4")


def _check_elements(message_type: str, code: str, present: Iterable[int]) -> None:
    """Raise CodecError for element 3, undefined, disallowed or missing elements (offset of H8)."""
    required, allowed = allowed_elements(message_type, code)
    present = sorted(present)
    for number in present:
        if number == 3:
            raise CodecError(
                _ELEMENTS[3].name, BITMAP_OFFSET, "must be absent in this profile (bit 3 is set)"
            )
        if number not in _ELEMENTS:
            raise CodecError("H8 bitmap", BITMAP_OFFSET, f"bit {number} is not a defined element")
        if number not in allowed:
            what = f"{message_type} {code}" if message_type not in REQUEST_TYPES else message_type
            raise CodecError(
                _ELEMENTS[number].name, BITMAP_OFFSET, f"is not allowed in {what} (bit {number} set)"
            )
    for number in sorted(required - set(present)):
        raise CodecError(
            _ELEMENTS[number].name, BITMAP_OFFSET, f"is required in {message_type} (bit {number} not set)"
        )


def _parse_header_fields(data: bytes) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, offset, f in _HEADER_FIELDS:
        values[name] = _read_text(data, offset, f)
        if name == "message_type" and values[name] not in MESSAGE_TYPES:
            raise CodecError(f.name, offset, f"{values[name]!r} is not a message type of this profile")
    return values


def parse_body(body: bytes) -> Message:
    """Parse one message body (header + elements) into a :class:`Message`.

    Raises :class:`CodecError` (offsets from the start of the body) for anything
    §2/§3 calls a format error: a field of the wrong type or content, an unknown
    message type, a response code that does not fit the type, a bitmap that is
    not 16 upper-case hex digits or sets element 3, an undefined element, an
    element the type does not allow, a missing required element, or a body
    whose length is not what the bitmap says.
    """
    data = bytes(body)
    h = _parse_header_fields(data)
    _check_response_code(h["message_type"], h["response_code"])
    numbers = _bits(h["bitmap"])
    _check_elements(h["message_type"], h["response_code"], numbers)
    expected = HEADER_LENGTH + sum(_ELEMENTS[n].width for n in numbers)
    if len(data) > expected:
        raise CodecError(
            "body length",
            expected,
            f"{len(data)} bytes, but bitmap {h['bitmap']} gives a body of {expected}: "
            f"{len(data) - expected} bytes too many",
        )
    elements: dict[int, ElementValue] = {}
    pos = HEADER_LENGTH
    for number in numbers:
        f = _ELEMENTS[number]
        if pos + f.width > len(data):
            raise CodecError(
                f.name,
                pos,
                f"body ends at {len(data)} bytes, but bitmap {h['bitmap']} gives a body of {expected}",
            )
        elements[number] = _read(data, pos, f)
        pos += f.width
    return Message(
        message_type=h["message_type"],
        centre=h["centre"],
        processing_date=h["processing_date"],
        serial=h["serial"],
        sent_at=h["sent_at"],
        biller_code=h["biller_code"],
        response_code=h["response_code"],
        elements=elements,
    )


def build_body(message: Message) -> bytes:
    """Build the body of ``message``; CodecError (field, offset) for anything that would not parse."""
    if message.message_type not in MESSAGE_TYPES:
        raise CodecError(
            "H1 message type", 0, f"{message.message_type!r} is not a message type of this profile"
        )
    parts = []
    for name, offset, f in _HEADER_FIELDS[:-1]:
        parts.append(_write(f, getattr(message, name), offset))
    _check_response_code(message.message_type, message.response_code)
    bitmap = message.bitmap
    _check_elements(message.message_type, message.response_code, message.elements)
    parts.append(bitmap.encode("ascii"))
    pos = HEADER_LENGTH
    for number in sorted(message.elements):
        f = _ELEMENTS[number]
        parts.append(_write(f, message.elements[number], pos))
        pos += f.width
    return b"".join(parts)


def _check_frame_length(prefix: bytes, offset: int) -> int:
    for i, byte in enumerate(prefix):
        if byte not in _DIGIT_BYTES:
            raise CodecError(
                "frame length", offset, f"byte 0x{byte:02X} at offset {offset + i} is not an ASCII digit"
            )
    if len(prefix) < FRAME_PREFIX_LENGTH:
        return -1
    length = int(prefix)
    if length > MAX_BODY_LENGTH:
        raise CodecError("frame length", offset, f"body of {length} bytes is longer than {MAX_BODY_LENGTH}")
    return length


def parse_frame(data: bytes) -> Message:
    """Parse exactly one frame (4-digit length + body).

    Errors in the prefix, or a body that is not as long as the prefix says, are
    reported as field ``"frame length"`` at offset 0; errors inside the body keep
    body offsets (as :func:`parse_body`).
    """
    data = bytes(data)
    if len(data) < FRAME_PREFIX_LENGTH:
        _check_frame_length(data, 0)
        raise CodecError("frame length", 0, f"truncated: {len(data)} bytes, the length prefix is 4")
    length = _check_frame_length(data[:FRAME_PREFIX_LENGTH], 0)
    if len(data) - FRAME_PREFIX_LENGTH != length:
        raise CodecError(
            "frame length", 0, f"prefix says {length} body bytes, {len(data) - FRAME_PREFIX_LENGTH} follow"
        )
    return parse_body(data[FRAME_PREFIX_LENGTH:])


def build_frame(message: Message) -> bytes:
    """Build ``message`` as one frame: 4-digit zero-filled body length, then the body."""
    body = build_body(message)
    if len(body) > MAX_BODY_LENGTH:  # pragma: no cover - no valid message is this long
        raise CodecError("frame length", 0, f"body of {len(body)} bytes is longer than {MAX_BODY_LENGTH}")
    return f"{len(body):04d}".encode("ascii") + body


class FrameDecoder:
    """Cut a TCP byte stream into frame bodies.

    ``feed(chunk)`` returns the bodies completed by that chunk, in order; a frame
    may be split over several chunks and one chunk may hold several frames. A
    length prefix that is not four digits or exceeds 5,297 raises
    :class:`CodecError` (field ``"frame length"``, offset in the stream): the
    stream cannot be resynchronised and the connection should be closed. If
    complete bodies came before the bad prefix in the same chunk, they are
    returned first and the error is raised by the next ``feed`` (``feed(b"")``
    will do); :attr:`error` shows it at once. Once failed, the decoder stays failed.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._consumed = 0
        self.error: CodecError | None = None

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the bodies of the frames they complete."""
        if self.error is not None:
            raise self.error
        self._buffer += data
        bodies: list[bytes] = []
        while True:
            prefix = bytes(self._buffer[:FRAME_PREFIX_LENGTH])
            try:
                length = _check_frame_length(prefix, self._consumed)
            except CodecError as exc:
                self.error = exc
                if bodies:
                    return bodies
                raise
            if length < 0 or len(self._buffer) < FRAME_PREFIX_LENGTH + length:
                return bodies
            end = FRAME_PREFIX_LENGTH + length
            bodies.append(bytes(self._buffer[FRAME_PREFIX_LENGTH:end]))
            del self._buffer[:end]
            self._consumed += end


def peek_header(body: bytes) -> Header | None:
    """Read just enough of a body that failed :func:`parse_body` to answer it ``9001``.

    Returns a :class:`Header` when the body has 72 bytes and H1 (any four digits), H2, H3 (eight
    digits, not necessarily a real date: an invalid date is echoed as received), H4 and H6 are
    well-formed, so that :func:`build_format_error` can answer it; otherwise ``None`` (the server then
    closes the connection). H5, H7 and H8 are returned as read (ASCII, undecodable bytes as U+FFFD)
    and may be malformed. An unknown message type such as ``1900`` is readable (answered ``1910``);
    a header whose H1 is a response type cannot be answered: check :attr:`Header.answerable`.
    """
    data = bytes(body)
    if len(data) < HEADER_LENGTH:
        return None
    values: dict[str, str] = {}
    try:
        for name, offset, f in _HEADER_FIELDS:
            if name in {"sent_at", "response_code", "bitmap"}:
                values[name] = data[offset : offset + f.width].decode("ascii", errors="replace")
            elif name == "processing_date":
                values[name] = _read_text(data, offset, _PEEK_DATE)
            else:
                values[name] = _read_text(data, offset, f)
    except CodecError:
        return None
    return Header(**values)


_PEEK_DATE: Final = _Field("H3 processing date", "N", 8, "code")


def build_format_error(header: Header) -> bytes:
    """The body of the ``9001`` answer to a request whose header :func:`peek_header` could read: H1 =
    its type + 10 (also for a type this profile does not know), H2, H3, H4 and H6 echoed as received,
    H5 now, no elements. Raises :class:`CodecError` for a header that cannot be answered (a response
    type, or ``9990``–``9999``)."""
    if not header.answerable:
        raise CodecError("H1 message type", 0, f"{header.message_type!r} cannot be answered")
    return b"".join(
        (
            b"%04d" % (int(header.message_type) + 10),
            header.centre.ljust(10).encode("ascii"),
            header.processing_date.encode("ascii"),
            header.serial.encode("ascii"),
            _now_jst().encode("ascii"),
            header.biller_code.encode("ascii"),
            b"9001",
            b"0" * 16,
        )
    )


def _now_jst() -> str:
    return datetime.now(JST).strftime("%Y%m%d%H%M%S")


def _response(
    request: Message | Header, code: str, elements: Mapping[int, ElementValue] | None, sent_at: str | None
) -> Message:
    if request.message_type not in REQUEST_TYPES:
        raise CodecError("H1 message type", 0, f"{request.message_type!r} is not a request type; no response")
    if code not in RESPONSE_CODES:
        raise CodecError("H7 response code", RESPONSE_CODE_OFFSET, f"{code!r} is not a response code of §4")
    return Message(
        message_type=f"{int(request.message_type) + 10:04d}",
        centre=request.centre,
        processing_date=request.processing_date,
        serial=request.serial,
        sent_at=_now_jst() if sent_at is None else sent_at,
        biller_code=request.biller_code,
        response_code=code,
        elements=dict(elements or {}),
    )


def make_response(
    request: Message | Header,
    code: str,
    elements: Mapping[int, ElementValue] | None = None,
    sent_at: str | None = None,
) -> Message:
    """The response to ``request``: H1 = request type + 10, H2/H3/H4/H6 echoed, H7 = ``code``.

    ``sent_at`` (H5, YYYYMMDDhhmmss) defaults to now in JST. ``request`` may be a
    :class:`Header` from :func:`peek_header` (for ``9001``). The response is checked
    like :func:`build_body` would; CodecError if it would not build.
    """
    response = _response(request, code, elements, sent_at)
    build_body(response)
    return response


def build_response(
    request: Message | Header, code: str, elements: Mapping[int, ElementValue] | None = None
) -> bytes:
    """The body of the response :func:`make_response` gives, built once: the line's hot path."""
    return build_body(_response(request, code, elements, None))


# ---------------------------------------------------------------------------------------------------------
# Teller batch files (spec §6)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchHeader:
    """Header record (データ区分 1; 種別コード 01 and コード区分 0 are implied)."""

    biller_code: str  # 収納機関コード N(8)
    biller_name_kana: str  # 収納機関名カナ K(40)
    handling_date: str  # 取扱日 N(8) YYYYMMDD
    bank_code: str  # 金融機関コード N(4)
    bank_name_kana: str  # 金融機関名カナ K(15)


@dataclass(frozen=True)
class BatchData:
    """Data record (データ区分 2): one teller payment (取消区分 0) or reversal (1)."""

    customer_number: str  # お客様番号 X(20), 1–20 digits
    confirmation_number: str  # 確認番号 X(6), 1–6 digits
    amount: int  # 金額 N(11)
    branch_code: str  # 店舗コード N(3)
    paid_date: str  # 収納日 N(8) YYYYMMDD
    paid_time: str  # 収納時刻 N(6) hhmmss
    serial: str  # 取引通番 N(8)
    payer_name_kana: str = ""  # 払込人名カナ K(30)
    cancel: int = 0  # 取消区分 N(1): 0 payment, 1 reversal

    @property
    def is_reversal(self) -> bool:
        """True for 取消区分 1."""
        return self.cancel == 1

    @property
    def paid_at(self) -> str:
        """収納日 + 収納時刻 as YYYYMMDDhhmmss (the form of element 8)."""
        return self.paid_date + self.paid_time

    def transaction_key(self, header: BatchHeader) -> str:
        """The payment's key (§6): bank code left-aligned in 10 (H2) + 取扱日 (H3) + 取引通番 (H4)."""
        return header.bank_code.ljust(10) + header.handling_date + self.serial


@dataclass(frozen=True)
class BatchTrailer:
    """Trailer record (データ区分 8): totals of payments and of reversals."""

    count: int  # 合計件数 N(6), 取消区分 0
    total: int  # 合計金額 N(12)
    cancel_count: int  # 取消件数 N(6), 取消区分 1
    cancel_total: int  # 取消金額 N(12)

    @classmethod
    def of(cls, records: Iterable[BatchData]) -> BatchTrailer:
        """The trailer that matches ``records``."""
        records = list(records)
        payments = [r.amount for r in records if r.cancel == 0]
        reversals = [r.amount for r in records if r.cancel == 1]
        return cls(len(payments), sum(payments), len(reversals), sum(reversals))


@dataclass(frozen=True)
class BatchEnd:
    """End record (データ区分 9): no fields."""


@dataclass(frozen=True)
class BatchFile:
    """One teller batch file: name, header, data records, trailer, end, and its newline style."""

    name: str
    header: BatchHeader
    records: tuple[BatchData, ...]
    trailer: BatchTrailer
    end: BatchEnd = BatchEnd()
    crlf: bool = True  # CR LF after each record; False: records back to back

    @property
    def payments(self) -> tuple[BatchData, ...]:
        """Data records with 取消区分 0."""
        return tuple(r for r in self.records if r.cancel == 0)

    @property
    def reversals(self) -> tuple[BatchData, ...]:
        """Data records with 取消区分 1."""
        return tuple(r for r in self.records if r.cancel == 1)

    def keyed_records(self) -> list[tuple[str, BatchData]]:
        """``(transaction key, record)`` for every data record, in file order."""
        return [(r.transaction_key(self.header), r) for r in self.records]

    def transaction_keys(self) -> list[str]:
        """The transaction key of every data record, in file order."""
        return [r.transaction_key(self.header) for r in self.records]


# (attribute or None for a constant/filler, offset in the record, field, constant text or None)
_Layout = tuple[tuple[str | None, int, _Field, str | None], ...]


def _layout(
    prefix: str, fields: list[tuple[str | None, str, Kind, int, Check, int, int, str | None]]
) -> _Layout:
    out = []
    pos = 0
    for attr, name, kind, width, check, lo, hi, const in fields:
        choices = frozenset({const}) if const is not None else frozenset()
        out.append((attr, pos, _Field(f"{prefix} {name}", kind, width, check, lo, hi, choices), const))
        pos += width
    if pos != BATCH_RECORD_LENGTH:  # pragma: no cover - layout self-check
        raise RuntimeError(f"{prefix} layout is {pos} bytes")
    return tuple(out)


_FILLER: Final = " "  # constant of a filler: all spaces (checked as blank text)
_HEADER_LAYOUT: Final = _layout(
    "header",
    [
        (None, "データ区分", "N", 1, "code", 0, 0, "1"),
        (None, "種別コード", "N", 2, "code", 0, 0, "01"),
        (None, "コード区分", "N", 1, "code", 0, 0, "0"),
        ("biller_code", "収納機関コード", "N", 8, "code", 0, 0, None),
        ("biller_name_kana", "収納機関名カナ", "K", 40, "text", 0, 0, None),
        ("handling_date", "取扱日", "N", 8, "date", 0, 0, None),
        ("bank_code", "金融機関コード", "N", 4, "code", 0, 0, None),
        ("bank_name_kana", "金融機関名カナ", "K", 15, "text", 0, 0, None),
        (None, "filler", "X", 41, "text", 0, 0, _FILLER),
    ],
)
_DATA_LAYOUT: Final = _layout(
    "data",
    [
        (None, "データ区分", "N", 1, "code", 0, 0, "2"),
        ("customer_number", "お客様番号", "X", 20, "digits", 0, 0, None),
        ("confirmation_number", "確認番号", "X", 6, "digits", 0, 0, None),
        ("amount", "金額", "N", 11, "int", 1, _MAX_AMOUNT, None),
        ("branch_code", "店舗コード", "N", 3, "code", 0, 0, None),
        ("paid_date", "収納日", "N", 8, "date", 0, 0, None),
        ("paid_time", "収納時刻", "N", 6, "time", 0, 0, None),
        ("serial", "取引通番", "N", 8, "code", 0, 0, None),
        ("payer_name_kana", "払込人名カナ", "K", 30, "text", 0, 0, None),
        ("cancel", "取消区分", "N", 1, "int", 0, 1, None),
        (None, "filler", "X", 26, "text", 0, 0, _FILLER),
    ],
)
_TRAILER_LAYOUT: Final = _layout(
    "trailer",
    [
        (None, "データ区分", "N", 1, "code", 0, 0, "8"),
        ("count", "合計件数", "N", 6, "int", 0, 10**6 - 1, None),
        ("total", "合計金額", "N", 12, "int", 0, 10**12 - 1, None),
        ("cancel_count", "取消件数", "N", 6, "int", 0, 10**6 - 1, None),
        ("cancel_total", "取消金額", "N", 12, "int", 0, 10**12 - 1, None),
        (None, "filler", "X", 83, "text", 0, 0, _FILLER),
    ],
)
_END_LAYOUT: Final = _layout(
    "end",
    [
        (None, "データ区分", "N", 1, "code", 0, 0, "9"),
        (None, "filler", "X", 119, "text", 0, 0, _FILLER),
    ],
)
_KIND_NAMES: Final = {"1": "header", "2": "data", "8": "trailer", "9": "end"}
_NAME_RE: Final = re.compile(r"01_([0-9]{5})_([0-9]{5})_([0-9]{4})_([0-9]{3})")


def _field_offset(layout: _Layout, attr: str) -> int:
    return next(pos for a, pos, _f, _c in layout if a == attr)


def _field_of(layout: _Layout, attr: str) -> _Field:
    return next(f for a, _p, f, _c in layout if a == attr)


def _read_record(raw: bytes, layout: _Layout, base: int, record: int) -> dict[str, ElementValue]:
    values: dict[str, ElementValue] = {}
    for attr, pos, f, const in layout:
        if const == _FILLER:
            _check_filler(raw, pos, f, base, record)
        elif const is not None:
            _read_text(raw, pos, f, base, record)  # checks the constant (f.choices)
        elif attr is not None:
            values[attr] = _read(raw, pos, f, base, record)
    return values


def _check_filler(raw: bytes, pos: int, f: _Field, base: int, record: int) -> None:
    chunk = raw[pos : pos + f.width]
    for i, byte in enumerate(chunk):
        if byte != 0x20:
            raise CodecError(
                f.name,
                base + pos,
                f"byte 0x{byte:02X} at offset {base + pos + i} is not a space",
                record=record,
            )


def _write_record(obj: object, layout: _Layout, base: int, record: int) -> bytes:
    parts = []
    for attr, pos, f, const in layout:
        if const == _FILLER:
            parts.append(b" " * f.width)
        elif const is not None:
            parts.append(const.encode("ascii"))
        elif attr is not None:
            parts.append(_write(f, getattr(obj, attr), base + pos, record))
    return b"".join(parts)


def batch_file_name(header: BatchHeader, serial: int) -> str:
    """``01_BBBBB_SSSSS_MMDD_NNN`` for ``header`` and a serial 0–999."""
    if not 0 <= serial <= 999:
        raise CodecError("file name", 0, f"serial {serial} is outside 0–999")
    return f"01_{header.bank_code.zfill(5)}_{header.biller_code[:5]}_{header.handling_date[4:8]}_{serial:03d}"


def _check_name(name: str, header: BatchHeader) -> None:
    match = _NAME_RE.fullmatch(name)
    if match is None:
        raise CodecError("file name", 0, f"{name!r} is not 01_BBBBB_SSSSS_MMDD_NNN")
    bank, biller, mmdd, _serial = match.groups()
    checks = (
        (bank, header.bank_code.zfill(5), "bank_code", "BBBBB", "the 金融機関コード"),
        (biller, header.biller_code[:5], "biller_code", "SSSSS", "the first 5 digits of the 収納機関コード"),
        (mmdd, header.handling_date[4:8], "handling_date", "MMDD", "the month and day of the 取扱日"),
    )
    for in_name, in_header, attr, part, what in checks:
        if in_name != in_header:
            raise CodecError(
                f"file name {part}",
                _field_offset(_HEADER_LAYOUT, attr),
                f"{name!r} has {in_name}, but {what} in the header gives {in_header}",
                record=1,
            )


def _check_contents(batch: BatchFile, size: int) -> None:
    """Trailer against data, and one 取引通番 per record (size: bytes per record incl. newline)."""
    seen: dict[str, int] = {}
    for i, r in enumerate(batch.records, start=2):
        if r.serial in seen:
            raise CodecError(
                "data 取引通番",
                (i - 1) * size + _field_offset(_DATA_LAYOUT, "serial"),
                f"{r.serial} is already used by record {seen[r.serial]}: one transaction key, one record",
                record=i,
            )
        seen[r.serial] = i
    expected = BatchTrailer.of(batch.records)
    number = len(batch.records) + 2
    for attr in ("count", "total", "cancel_count", "cancel_total"):
        have, want = getattr(batch.trailer, attr), getattr(expected, attr)
        if have != want:
            f = _field_of(_TRAILER_LAYOUT, attr)
            raise CodecError(
                f.name,
                (number - 1) * size + _field_offset(_TRAILER_LAYOUT, attr),
                f"{have} in the trailer, but the data records give {want}",
                record=number,
            )


def _split_records(data: bytes) -> tuple[bool, list[tuple[int, bytes]]]:
    """Cut a file into ``(offset, 120-byte record)``; detect CR LF vs back to back."""
    n = BATCH_RECORD_LENGTH
    if not data:
        raise CodecError("record length", 0, "the file is empty", record=1)
    crlf = data[n : n + 2] == b"\r\n"
    records = []
    if crlf:
        for pos in range(0, len(data), n + 2):
            if data[pos + n : pos + n + 2] != b"\r\n":
                end = data.find(b"\r\n", pos)
                length = (end if end != -1 else len(data)) - pos
                tail = "followed by CR LF" if end != -1 else "not followed by CR LF"
                raise CodecError(
                    "record length",
                    pos,
                    f"record is {length} bytes {tail}; this file has 120-byte records each followed by CR LF",
                    record=pos // (n + 2) + 1,
                )
            records.append((pos, data[pos : pos + n]))
        return crlf, records
    first_crlf = data.find(b"\r\n")
    if first_crlf != -1 and first_crlf < n:
        raise CodecError(
            "record length", 0, f"record is {first_crlf} bytes followed by CR LF, expected 120", record=1
        )
    for pos in range(0, len(data), n):
        if len(data) - pos < n:
            raise CodecError(
                "record length", pos, f"record is {len(data) - pos} bytes, expected 120", record=pos // n + 1
            )
        records.append((pos, data[pos : pos + n]))
    return crlf, records


def parse_batch_file(name: str, data: bytes) -> BatchFile:
    """Parse a teller batch file (§6) and check it whole.

    ``name`` is the file name (a path's last component is used). Checks: one
    newline style (CR LF after every record, or none), 120-byte records, the
    order header, data*, trailer, end and nothing after, every field's type and
    content (constants 1/01/0, fillers all spaces, dates, 取消区分 0 or 1), the
    trailer's counts and sums against the data (取消区分 0 vs 1), distinct 取引通番,
    and that the name's BBBBB/SSSSS/MMDD match the header. Errors are
    :class:`CodecError` with the 1-based record number, field and file offset.
    """
    name = PurePath(name).name
    if _NAME_RE.fullmatch(name) is None:
        raise CodecError("file name", 0, f"{name!r} is not 01_BBBBB_SSSSS_MMDD_NNN")
    raw_data = bytes(data)
    crlf, chunks = _split_records(raw_data)
    header: BatchHeader | None = None
    records: list[BatchData] = []
    trailer: BatchTrailer | None = None
    end: BatchEnd | None = None
    for number, (offset, raw) in enumerate(chunks, start=1):
        kind = raw[:1].decode("ascii", errors="replace")
        expected: tuple[str, ...]
        if header is None:
            expected = ("1",)
        elif trailer is None:
            expected = ("2", "8")
        elif end is None:
            expected = ("9",)
        else:
            raise CodecError(
                "データ区分", offset, "a record after the end record (データ区分 9)", record=number
            )
        if kind not in expected:
            want = " or ".join(f"{k} ({_KIND_NAMES[k]})" for k in expected)
            found = f"{kind} ({_KIND_NAMES[kind]})" if kind in _KIND_NAMES else repr(raw[:1])
            raise CodecError("データ区分", offset, f"expected {want}, found {found}", record=number)
        if kind == "1":
            header = BatchHeader(**_str_values(_read_record(raw, _HEADER_LAYOUT, offset, number)))
        elif kind == "2":
            v = _read_record(raw, _DATA_LAYOUT, offset, number)
            records.append(
                BatchData(
                    customer_number=str(v["customer_number"]),
                    confirmation_number=str(v["confirmation_number"]),
                    amount=int(v["amount"]),
                    branch_code=str(v["branch_code"]),
                    paid_date=str(v["paid_date"]),
                    paid_time=str(v["paid_time"]),
                    serial=str(v["serial"]),
                    payer_name_kana=str(v["payer_name_kana"]),
                    cancel=int(v["cancel"]),
                )
            )
        elif kind == "8":
            v = _read_record(raw, _TRAILER_LAYOUT, offset, number)
            trailer = BatchTrailer(
                int(v["count"]), int(v["total"]), int(v["cancel_count"]), int(v["cancel_total"])
            )
        else:
            _read_record(raw, _END_LAYOUT, offset, number)
            end = BatchEnd()
    if header is None or trailer is None or end is None:
        missing = "header" if header is None else "trailer" if trailer is None else "end"
        raise CodecError(
            "データ区分", len(raw_data), f"the file ends without its {missing} record", record=len(chunks) + 1
        )
    batch = BatchFile(name, header, tuple(records), trailer, end, crlf)
    _check_contents(batch, BATCH_RECORD_LENGTH + 2 if crlf else BATCH_RECORD_LENGTH)
    _check_name(name, header)
    return batch


def _str_values(values: dict[str, ElementValue]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


def build_batch_file(batch: BatchFile) -> bytes:
    """The bytes of ``batch``; CodecError for anything :func:`parse_batch_file` would reject."""
    if _NAME_RE.fullmatch(batch.name) is None:
        raise CodecError("file name", 0, f"{batch.name!r} is not 01_BBBBB_SSSSS_MMDD_NNN")
    size = BATCH_RECORD_LENGTH + 2 if batch.crlf else BATCH_RECORD_LENGTH
    rows = [_write_record(batch.header, _HEADER_LAYOUT, 0, 1)]
    for number, record in enumerate(batch.records, start=2):
        rows.append(_write_record(record, _DATA_LAYOUT, (number - 1) * size, number))
    number = len(batch.records) + 2
    rows.append(_write_record(batch.trailer, _TRAILER_LAYOUT, (number - 1) * size, number))
    rows.append(_write_record(batch.end, _END_LAYOUT, number * size, number + 1))
    _check_contents(batch, size)
    _check_name(batch.name, batch.header)
    newline = b"\r\n" if batch.crlf else b""
    return b"".join(row + newline for row in rows)


def make_batch_file(
    header: BatchHeader, records: Iterable[BatchData], *, serial: int = 1, crlf: bool = True
) -> BatchFile:
    """A :class:`BatchFile` with its name (from ``serial``) and trailer computed from ``records``."""
    records = tuple(records)
    return BatchFile(
        batch_file_name(header, serial), header, records, BatchTrailer.of(records), BatchEnd(), crlf
    )


def batch_data_offset(batch: BatchFile, record: int, attr: str) -> int:
    """The file offset of field ``attr`` (a :class:`BatchData` attribute) of data record ``record`` (1-based,
    counting the header as record 1), for error reports about a record the codec accepted."""
    size = BATCH_RECORD_LENGTH + 2 if batch.crlf else BATCH_RECORD_LENGTH
    return (record - 1) * size + _field_offset(_DATA_LAYOUT, attr)
