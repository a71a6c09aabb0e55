"""The MPN line protocol codec: frames, messages and teller batch files, as bytes.

This package is the whole byte layout of ``mpn-line-protocol.md`` (version 1) and
nothing else: no Django, no database, no business rules beyond what the spec
calls a *format error*. A deployment that needs another byte layout swaps this
package; the communication server and the MPN simulator only see the dataclasses
and functions re-exported here. Its modules, each importing only those above it:

- :mod:`~payeasy.codec.errors` — :class:`CodecError`;
- :mod:`~payeasy.codec.fields` — the field types N, X, K, J (read, check, write one field);
- :mod:`~payeasy.codec.messages` — header, elements, message types, response codes: one body;
- :mod:`~payeasy.codec.frames` — the length prefix and the TCP stream;
- :mod:`~payeasy.codec.batch` — teller batch files (§6).

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

from payeasy.codec.batch import (
    BATCH_RECORD_LENGTH,
    BatchData,
    BatchEnd,
    BatchFile,
    BatchHeader,
    BatchTrailer,
    batch_data_offset,
    batch_file_name,
    build_batch_file,
    make_batch_file,
    parse_batch_file,
)
from payeasy.codec.errors import CodecError
from payeasy.codec.fields import ElementValue, fit_double_byte, fit_kana
from payeasy.codec.frames import FRAME_PREFIX_LENGTH, MAX_BODY_LENGTH, FrameDecoder, build_frame, parse_frame
from payeasy.codec.messages import (
    BITMAP_OFFSET,
    ELEMENT_NAMES,
    ELEMENT_WIDTHS,
    HEADER_LENGTH,
    JST,
    MESSAGE_TYPES,
    REQUEST_TYPES,
    RESPONSE_CODE_OFFSET,
    RESPONSE_CODES,
    Header,
    Message,
    allowed_elements,
    build_body,
    build_format_error,
    build_response,
    make_response,
    parse_body,
    peek_header,
)

__all__ = [
    "BATCH_RECORD_LENGTH",
    "BITMAP_OFFSET",
    "ELEMENT_NAMES",
    "ELEMENT_WIDTHS",
    "FRAME_PREFIX_LENGTH",
    "HEADER_LENGTH",
    "JST",
    "MAX_BODY_LENGTH",
    "MESSAGE_TYPES",
    "REQUEST_TYPES",
    "RESPONSE_CODES",
    "RESPONSE_CODE_OFFSET",
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
    "build_response",
    "fit_double_byte",
    "fit_kana",
    "make_batch_file",
    "make_response",
    "parse_batch_file",
    "parse_body",
    "parse_frame",
    "peek_header",
]
