"""Message layout (spec §2), message types (§3) and response codes (§4): one body <-> a :class:`Message`.

The 72-byte header (H1–H8) and the data elements, :class:`Header` and :class:`Message`, parsing and
building a body, the response to a request, and the ``9001`` answer to a body that does not parse.
Framing a body on the TCP stream is :mod:`payeasy.codec.frames`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Final

from payeasy.codec.errors import CodecError
from payeasy.codec.fields import (
    MAX_AMOUNT,
    ElementValue,
    Field,
    field_read,
    field_read_text,
    field_write,
    is_digits,
)

__all__ = [
    "BITMAP_OFFSET",
    "ELEMENT_NAMES",
    "ELEMENT_WIDTHS",
    "HEADER_LENGTH",
    "JST",
    "MESSAGE_TYPES",
    "REQUEST_TYPES",
    "RESPONSE_CODES",
    "RESPONSE_CODE_OFFSET",
    "Header",
    "Message",
    "allowed_elements",
    "build_body",
    "build_format_error",
    "build_response",
    "make_response",
    "parse_body",
    "peek_header",
]

HEADER_LENGTH: Final = 72
BITMAP_OFFSET: Final = 56
RESPONSE_CODE_OFFSET: Final = 52
JST: Final = timezone(timedelta(hours=9), "JST")

_HEADER_FIELDS: Final[tuple[tuple[str, int, Field], ...]] = (
    ("message_type", 0, Field("H1 message type", "N", 4, "code")),  # choices checked separately
    ("centre", 4, Field("H2 sending centre code", "X", 10, "nonblank")),
    ("processing_date", 14, Field("H3 processing date", "N", 8, "date")),
    ("serial", 22, Field("H4 processing serial", "N", 8, "code")),
    ("sent_at", 30, Field("H5 sent at", "N", 14, "datetime")),
    ("biller_code", 44, Field("H6 biller code", "N", 8, "code")),
    ("response_code", RESPONSE_CODE_OFFSET, Field("H7 response code", "X", 4, "raw")),
    ("bitmap", BITMAP_OFFSET, Field("H8 bitmap", "X", 16, "bitmap")),
)
_HEADER_FIELD: Final = {name: (offset, f) for name, offset, f in _HEADER_FIELDS}

_ELEMENTS: Final[dict[int, Field]] = {
    1: Field("element 1 customer number", "X", 20, "digits"),
    2: Field("element 2 confirmation number", "X", 6, "digits"),
    3: Field("element 3 納付区分", "X", 16),
    4: Field("element 4 amount", "N", 11, "int", 1, MAX_AMOUNT),
    5: Field("element 5 bank code", "N", 4, "code"),
    6: Field("element 6 branch code", "N", 3, "code"),
    7: Field("element 7 channel", "N", 2, "code", choices=frozenset({"01", "02", "03", "04", "05", "06"})),
    8: Field("element 8 paid at", "N", 14, "datetime"),
    9: Field("element 9 original transaction key", "X", 26, "key"),
    10: Field("element 10 due date", "N", 8, "date"),
    11: Field("element 11 biller name kana", "K", 24),
    12: Field("element 12 biller name kanji", "J", 24),
    13: Field("element 13 bill description", "J", 40),
    14: Field("element 14 payer name kana", "K", 30),
    15: Field("element 15 counter date", "N", 8, "date"),
    16: Field("element 16 count for the counter date", "N", 8, "int", 0, 10**8 - 1),
    17: Field("element 17 amount for the counter date", "N", 15, "int", 0, 10**15 - 1),
    18: Field("element 18 count for the day before", "N", 8, "int", 0, 10**8 - 1),
    19: Field("element 19 amount for the day before", "N", 15, "int", 0, 10**15 - 1),
    20: Field("element 20 close kind", "N", 1, "int", 1, 2),
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
class _HeadFields:
    """H1–H7, shared by :class:`Header` and :class:`Message`, and what follows from them."""

    message_type: str
    centre: str
    processing_date: str
    serial: str
    sent_at: str
    biller_code: str
    response_code: str

    @property
    def transaction_key(self) -> str:
        """H2 (left-aligned in 10) + H3 + H4: the 26-character transaction key."""
        return self.centre.ljust(10) + self.processing_date + self.serial

    @property
    def is_request(self) -> bool:
        """True for the seven request types (0800 … 1700)."""
        return self.message_type in REQUEST_TYPES


@dataclass(frozen=True)
class Header(_HeadFields):
    """The 72-byte header (H1–H8). ``response_code`` is four spaces in requests."""

    bitmap: str

    @property
    def answerable(self) -> bool:
        """True when a ``9001`` can answer this header: a request type, or four digits this profile does
        not know (spec §1: a frame whose header can be read gets 9001), but not a response type."""
        return (
            self.message_type not in _RESPONSES
            and is_digits(self.message_type, 4)
            and int(self.message_type) + 10 <= 9999
        )


@dataclass(frozen=True)
class Message(_HeadFields):
    """One message: the header fields (the bitmap follows from ``elements``) and its data elements.

    ``centre`` has its fill removed (``"MPNC000001"``); ``serial`` is the 8-digit
    H4 as text; ``elements`` maps element number to value (see :mod:`payeasy.codec`).
    Frozen, but not hashable (``elements`` is a dict); nothing is checked until
    :func:`build_body` or :func:`make_response`.
    """

    response_code: str = _REQUEST_CODE
    elements: dict[int, ElementValue] = field(default_factory=dict)

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
        values[name] = field_read_text(data, offset, f)
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
        elements[number] = field_read(data, pos, f)
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
        parts.append(field_write(f, getattr(message, name), offset))
    _check_response_code(message.message_type, message.response_code)
    bitmap = message.bitmap
    _check_elements(message.message_type, message.response_code, message.elements)
    parts.append(bitmap.encode("ascii"))
    pos = HEADER_LENGTH
    for number in sorted(message.elements):
        f = _ELEMENTS[number]
        parts.append(field_write(f, message.elements[number], pos))
        pos += f.width
    return b"".join(parts)


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
                values[name] = field_read_text(data, offset, _PEEK_DATE)
            else:
                values[name] = field_read_text(data, offset, f)
    except CodecError:
        return None
    return Header(**values)


_PEEK_DATE: Final = Field("H3 processing date", "N", 8, "code")


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
