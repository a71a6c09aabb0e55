"""Files of fixed 120-byte records (the 全銀 family: the teller batch files of spec §6, the 総合振込
transfer files): a record's layout, reading and writing a record field by field, cutting a file into
records, and the order every such file keeps — one header (データ区分 1), data records (2), one trailer
(8), one end record (9).

Errors are :class:`CodecError` naming the 1-based record number, the field and its byte offset in the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Final

from payeasy.codec.errors import CodecError
from payeasy.codec.fields import Check, ElementValue, Field, Kind, field_read, field_read_text, field_write

RECORD_LENGTH: Final = 120
FILLER: Final = " "  # the constant of a filler: all spaces
KIND_NAMES: Final = {"1": "header", "2": "data", "8": "trailer", "9": "end"}

# (attribute or None for a constant/filler, offset in the record, field, constant text or None)
Layout = tuple[tuple[str | None, int, Field, str | None], ...]
# a field's checks beyond its type: (field, text read or written, offset in the file, record number)
ValueCheck = Callable[[Field, str, int, int], None]


def layout(
    prefix: str, fields: list[tuple[str | None, str, Kind, int, Check, int, int, str | None]]
) -> Layout:
    """The layout of one record kind: ``(attribute, name, kind, width, check, low, high, constant)`` per
    field in order; the widths must add up to the record length."""
    out = []
    pos = 0
    for attr, name, kind, width, check, lo, hi, const in fields:
        choices = frozenset({const}) if const is not None and const != FILLER else frozenset()
        out.append((attr, pos, Field(f"{prefix} {name}", kind, width, check, lo, hi, choices), const))
        pos += width
    if pos != RECORD_LENGTH:  # pragma: no cover - layout self-check
        raise RuntimeError(f"{prefix} layout is {pos} bytes, not {RECORD_LENGTH}")
    return tuple(out)


def field_offset(layout_: Layout, attr: str) -> int:
    """The offset within its record of the field ``attr``."""
    return next(pos for a, pos, _f, _c in layout_ if a == attr)


def field_of(layout_: Layout, attr: str) -> Field:
    return next(f for a, _p, f, _c in layout_ if a == attr)


def read_record(
    raw: bytes, layout_: Layout, base: int, record: int, *, check: ValueCheck | None = None
) -> dict[str, ElementValue]:
    """The values of one record (at file offset ``base``): fillers must be spaces, constants as laid out,
    every field valid for its type (and for ``check``, when given, on text fields)."""
    values: dict[str, ElementValue] = {}
    for attr, pos, f, const in layout_:
        if const == FILLER:
            for i, byte in enumerate(raw[pos : pos + f.width]):
                if byte != 0x20:
                    raise CodecError(
                        f.name,
                        base + pos,
                        f"byte 0x{byte:02X} at offset {base + pos + i} is not a space",
                        record=record,
                    )
        elif const is not None:
            field_read_text(raw, pos, f, base, record)  # checks the constant (f.choices)
        elif attr is not None:
            value = field_read(raw, pos, f, base, record)
            if check is not None and isinstance(value, str):
                check(f, value, base + pos, record)
            values[attr] = value
    return values


def write_record(
    obj: object, layout_: Layout, base: int, record: int, *, check: ValueCheck | None = None
) -> bytes:
    """The 120 bytes of ``obj`` (its attributes named by the layout); every field exactly its width."""
    parts = []
    for attr, pos, f, const in layout_:
        if const == FILLER:
            chunk = b" " * f.width
        elif const is not None:
            chunk = const.encode("ascii")
        else:
            assert attr is not None
            value = getattr(obj, attr)
            chunk = field_write(f, value, base + pos, record)
            if check is not None and isinstance(value, str):
                check(f, value, base + pos, record)
        if len(chunk) != f.width:
            raise CodecError(
                f.name, base + pos, f"{len(chunk)} bytes written, expected {f.width}", record=record
            )
        parts.append(chunk)
    return b"".join(parts)


def split_records(data: bytes) -> tuple[bool, list[tuple[int, bytes]]]:
    """Cut a file into ``(offset, 120-byte record)``: CR LF after every record, or none at all (a file
    keeps one style; CR or LF alone, or inside a record, is refused)."""
    n = RECORD_LENGTH
    if not data:
        raise CodecError("record length", 0, "the file is empty", record=1)
    crlf = data[n : n + 2] == b"\r\n"
    step = n + 2 if crlf else n
    style = "each followed by CR LF" if crlf else "back to back"
    records = []
    for pos in range(0, len(data), step):
        chunk = data[pos : pos + n]
        if (
            len(chunk) < n
            or b"\r" in chunk
            or b"\n" in chunk
            or (crlf and data[pos + n : pos + n + 2] != b"\r\n")
        ):
            rest = data[pos:]
            cut = min((i for i in (rest.find(b"\r"), rest.find(b"\n")) if i != -1), default=len(rest))
            tail = " before a newline" if cut < len(rest) else " at the end of the file"
            raise CodecError(
                "record length",
                pos,
                f"record is {cut} bytes{tail}; this file has {n}-byte records {style}",
                record=pos // step + 1,
            )
        records.append((pos, chunk))
    return crlf, records


def records_in_order(chunks: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, int, bytes, str]]:
    """``(record number, offset, raw, データ区分)`` of each record, refusing one out of the order header,
    data*, trailer, end, and anything after the end."""
    state = 0  # 0: header next, 1: data or trailer, 2: end, 3: nothing more
    number = 0
    for number, (offset, raw) in enumerate(chunks, start=1):
        kind = raw[:1].decode("ascii", errors="replace")
        expected = (("1",), ("2", "8"), ("9",), ())[state]
        if not expected:
            raise CodecError(
                "データ区分", offset, "a record after the end record (データ区分 9)", record=number
            )
        if kind not in expected:
            want = " or ".join(f"{k} ({KIND_NAMES[k]})" for k in expected)
            found = f"{kind} ({KIND_NAMES[kind]})" if kind in KIND_NAMES else repr(raw[:1])
            raise CodecError("データ区分", offset, f"expected {want}, found {found}", record=number)
        state = {"1": 1, "2": 1, "8": 2, "9": 3}[kind]
        yield number, offset, raw, kind


def missing_record(header: object, trailer: object, end: object, *, size: int, records: int) -> None:
    """Refuse a file that ended before its header, trailer or end record (``size``: bytes read)."""
    if header is None or trailer is None or end is None:
        missing = "header" if header is None else "trailer" if trailer is None else "end"
        raise CodecError(
            "データ区分", size, f"the file ends without its {missing} record", record=records + 1
        )
