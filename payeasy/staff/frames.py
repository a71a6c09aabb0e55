"""How the staff console shows a stored frame body: a hex dump with its cp932 text, and its fields.

The fields are cut at their spec §2 positions whether or not the body parses (so that a broken frame
still shows what sits where); the codec's values are added when it does parse, and its error — field
and byte offset — when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from payeasy import codec

BYTES_PER_ROW = 16

MESSAGE_TYPE_LABELS: dict[str, Promise] = {
    "0800": _("Open the day (開局要求)"),
    "0810": _("Open the day: response"),
    "0820": _("Close (閉局要求)"),
    "0830": _("Close: response"),
    "1100": _("Inquiry (照会依頼)"),
    "1110": _("Inquiry: response"),
    "1200": _("Payment (消込依頼)"),
    "1210": _("Payment: response"),
    "1300": _("Reversal (取消依頼)"),
    "1310": _("Reversal: response"),
    "1600": _("Counters (カウンタ通知)"),
    "1610": _("Counters: response"),
    "1700": _("Resend confirmation (再送確認通知)"),
    "1710": _("Resend confirmation: response"),
}

# (label, position, width, attribute of codec.Message)
HEADER_FIELDS: tuple[tuple[str, Promise, int, int, str], ...] = (
    ("H1", _("Message type (電文種別)"), 0, 4, "message_type"),
    ("H2", _("Sending centre code (仕向センタコード)"), 4, 10, "centre"),
    ("H3", _("Processing date (仕向処理年月日)"), 14, 8, "processing_date"),
    ("H4", _("Processing serial (仕向処理通番)"), 22, 8, "serial"),
    ("H5", _("Sent at (送信日時)"), 30, 14, "sent_at"),
    ("H6", _("Biller code (収納機関コード)"), 44, 8, "biller_code"),
    ("H7", _("Response code (応答コード)"), 52, 4, "response_code"),
    ("H8", _("Bitmap"), 56, 16, "bitmap"),
)

ELEMENT_LABELS: dict[int, Promise] = {
    1: _("Customer number (お客様番号)"),
    2: _("Confirmation number (確認番号)"),
    3: _("Payment classification (納付区分)"),
    4: _("Amount (金額)"),
    5: _("Bank code (金融機関コード)"),
    6: _("Branch code (店舗コード)"),
    7: _("Channel (チャネル区分)"),
    8: _("Paid at (収納日時)"),
    9: _("Original transaction key (元取引キー)"),
    10: _("Due date (支払期限)"),
    11: _("Biller name, kana (収納機関名カナ)"),
    12: _("Biller name, kanji (収納機関名漢字)"),
    13: _("Bill description (料金名)"),
    14: _("Payer name, kana (払込人名カナ)"),
    15: _("Counter date (カウンタ日付)"),
    16: _("Count for the counter date (当日件数)"),
    17: _("Amount for the counter date (当日金額)"),
    18: _("Count for the day before (前日件数)"),
    19: _("Amount for the day before (前日金額)"),
    20: _("Close kind (閉局区分)"),
}


def message_type_label(code: str) -> str:
    label = MESSAGE_TYPE_LABELS.get(code)
    return f"{code} {label}" if label else code or "—"


@dataclass(frozen=True)
class DumpByte:
    hex: str
    in_error: bool


@dataclass(frozen=True)
class DumpRow:
    offset: int
    bytes: list[DumpByte]
    text: str  # the characters starting in this row, cp932; "." for a byte that is no character


@dataclass(frozen=True)
class FrameField:
    code: str  # "H1" … "H8", or the element number
    label: str
    offset: int
    width: int
    as_read: str  # the bytes at this position as cp932 text (present even when they do not parse)
    value: str  # the codec's value when the body parses, else ""
    in_error: bool = False


@dataclass(frozen=True)
class FrameView:
    size: int
    rows: list[DumpRow]
    text: str
    fields: list[FrameField]
    error: codec.CodecError | None
    truncated: bool  # the body ends before a field the header announces

    @property
    def parsed(self) -> bool:
        return self.error is None


def _is_lead_byte(byte: int) -> bool:
    return 0x81 <= byte <= 0x9F or 0xE0 <= byte <= 0xFC


def _characters(data: bytes) -> list[tuple[int, str]]:
    """(offset, character) for every character of ``data`` read as cp932; a bad byte reads as ".\""""
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(data):
        byte = data[i]
        if _is_lead_byte(byte) and i + 1 < len(data):
            try:
                ch = data[i : i + 2].decode("cp932")
            except UnicodeDecodeError:
                ch = ""
            if len(ch) == 1 and ch.isprintable():
                out.append((i, ch))
                i += 2
                continue
        if 0x20 <= byte <= 0x7E or 0xA1 <= byte <= 0xDF:
            out.append((i, bytes([byte]).decode("cp932")))
        else:
            out.append((i, "."))
        i += 1
    return out


def _as_text(data: bytes) -> str:
    return "".join(ch for _i, ch in _characters(data))


def _layout(data: bytes) -> tuple[list[tuple[str, str, int, int]], bool]:
    """(code, label, offset, width) of every field the header and bitmap announce, as far as they can be
    read; and whether the body is shorter than they say."""
    fields = [(code, str(label), pos, width) for code, label, pos, width, _attr in HEADER_FIELDS]
    bitmap = data[codec.BITMAP_OFFSET : codec.HEADER_LENGTH].decode("ascii", "replace")
    if len(bitmap) == 16 and all(c in "0123456789ABCDEF" for c in bitmap):
        bits = int(bitmap, 16)
        pos = codec.HEADER_LENGTH
        for number in range(1, 65):
            if bits >> (64 - number) & 1:
                width = codec.ELEMENT_WIDTHS.get(number)
                if width is None:  # an undefined element: its width, and all that follows, is unknown
                    break
                fields.append((str(number), str(ELEMENT_LABELS[number]), pos, width))
                pos += width
    present = [f for f in fields if f[2] < len(data)]
    return present, any(pos + width > len(data) for _c, _l, pos, width in fields)


def _values(message: codec.Message) -> dict[str, str]:
    values = {code: str(getattr(message, attr)) for code, _l, _p, _w, attr in HEADER_FIELDS}
    values.update({str(n): str(v) for n, v in message.elements.items()})
    return values


def frame_view(body: bytes) -> FrameView:
    """The hex dump and the fields of one stored body (``Message.raw`` or ``Message.response_raw``)."""
    data = bytes(body)
    error: codec.CodecError | None = None
    values: dict[str, str] = {}
    try:
        values = _values(codec.parse_body(data))
    except codec.CodecError as exc:
        error = exc
    layout, truncated = _layout(data)
    error_range = range(0)
    fields = []
    for code, label, pos, width in layout:
        in_error = error is not None and pos == error.offset
        if in_error:
            error_range = range(pos, pos + width)
        fields.append(
            FrameField(
                code=code,
                label=label,
                offset=pos,
                width=width,
                as_read=_as_text(data[pos : pos + width]),
                value=values.get(code, ""),
                in_error=in_error,
            )
        )
    if error is not None and not error_range:
        error_range = range(error.offset, error.offset + 1)
    texts: dict[int, list[str]] = {}
    for i, ch in _characters(data):
        texts.setdefault(i // BYTES_PER_ROW, []).append(ch)
    rows = []
    for start in range(0, len(data), BYTES_PER_ROW):
        chunk = data[start : start + BYTES_PER_ROW]
        rows.append(
            DumpRow(
                offset=start,
                bytes=[DumpByte(f"{b:02X}", start + i in error_range) for i, b in enumerate(chunk)],
                text="".join(texts.get(start // BYTES_PER_ROW, [])),
            )
        )
    return FrameView(
        size=len(data), rows=rows, text=_as_text(data), fields=fields, error=error, truncated=truncated
    )
