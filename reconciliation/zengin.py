"""全銀協 総合振込 files (種別コード 21): :class:`ZenginFile` <-> bytes, written and checked whole.

The file the bank takes for a day's refunds: 120-byte records in cp932 (half-width kana are one byte each),
a header (データ区分 1), one data record per transfer (2), a trailer with the count and sum (8), and an end
record (9). N fields are ASCII digits, right-aligned and zero-padded; C fields are half-width 全銀 kana,
A-Z, 0-9, space and ``( ) . - /`` (:data:`billing.kana.ZENGIN_KANA_CHARS`), left-aligned and
space-padded. Every record is followed by CR LF by default (``crlf=False``: records back to back, as some
banks want it; the parser accepts either, one style per file) — the layout tables say it is "120 bytes,
122 with CR LF appended".

Layout, byte offsets 0-based within the record:

=========  ==================================================================================
header     0 データ区分 N1 "1" · 1 種別コード N2 "21" · 3 コード区分 N1 "0" (JIS/SJIS) ·
           4 委託者コード N10 · 14 委託者名 C40 · 54 振込指定日 (取組日) N4 MMDD ·
           58 仕向銀行番号 N4 · 62 仕向銀行名 C15 · 77 仕向支店番号 N3 · 80 仕向支店名 C15 ·
           95 預金種目 N1 (1 普通, 2 当座, 9 その他) · 96 口座番号 N7 · 103 ダミー C17
data       0 データ区分 N1 "2" · 1 被仕向銀行番号 N4 · 5 被仕向銀行名 C15 · 20 被仕向支店番号 N3 ·
           23 被仕向支店名 C15 · 38 手形交換所番号 N4 (unused: "0000"; spaces accepted) ·
           42 預金種目 N1 (1, 2, 4 貯蓄, 9) · 43 口座番号 N7 · 50 受取人名 C30 · 80 振込金額 N10 ·
           90 新規コード N1 (0; 1 and 2 accepted) · 91 顧客コード1 C10 · 101 顧客コード2 C10 ·
           111 振込指定区分 N1 (7 電信; 8 文書 accepted) · 112 識別表示 C1 (space: no EDI) ·
           113 ダミー C7
trailer    0 データ区分 N1 "8" · 1 合計件数 N6 · 7 合計金額 N12 · 19 ダミー C101
end        0 データ区分 N1 "9" · 1 ダミー C119
=========  ==================================================================================

Sources checked (the 全銀協 layout as banks publish it; third-party copies, read for the layout only):

- 全銀協制定ファイルフォーマット【総合振込】, https://expydoc.com/doc/11700435 — N and C, zero and space
  fill, 120 bytes (122 with CR LF), header and data fields and widths, 手形交換所番号 "未使用(0とする)";
- Oracle E-Business Suite, Japanese EFT format,
  https://docs.oracle.com/cd/E18727_01/doc.121/e13419/T457804T457813.htm — header and data widths,
  振込依頼人コード right-aligned with zeros;
- a bank's 総合振込 (全銀形式) layout, https://happylibus.com/doc/455113 — 振込指定区分 7 電信 / 8 文書,
  新規コード 0/1/2, 識別表示;
- https://qiita.com/shjimb/items/44fba0368b00c7c3c404 (GMO あおぞらネット銀行's format written out) and
  https://qiita.com/toruca/items/75e4b981933660842af8 (header offsets 55–58 振込指定日 … 104–120 ダミー);
- https://www.miyagin.co.jp/kfkdown-zengin-help — 120-byte records with CR LF or with no newline; CR
  alone or LF alone refused.

Where they differ (委託者コード zero- or space-filled, 顧客コード N or C), this module writes what all of
them accept: the 10-digit code, and customer codes of digits only.

Errors are :class:`payeasy.codec.errors.CodecError` (re-exported as :data:`ZenginError`) naming the 1-based
record number, the field and its byte offset in the file, as the teller batch files' codec does.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from payeasy.codec.errors import CodecError
from payeasy.codec.fields import ElementValue, Field, is_digits
from payeasy.codec.records import (
    FILLER,
    RECORD_LENGTH,
    Layout,
    field_of,
    field_offset,
    layout,
    missing_record,
    read_record,
    records_in_order,
    split_records,
    write_record,
)

__all__ = [
    "MAX_TRANSFER_AMOUNT",
    "RECORD_LENGTH",
    "ZenginData",
    "ZenginEnd",
    "ZenginError",
    "ZenginFile",
    "ZenginHeader",
    "ZenginTrailer",
    "zengin_build",
    "zengin_field_offset",
    "zengin_make",
    "zengin_parse",
]

ZenginError = CodecError
MAX_TRANSFER_AMOUNT: Final = 9_999_999_999  # 振込金額 N(10)
MAX_COUNT: Final = 999_999  # 合計件数 N(6)
MAX_TOTAL: Final = 999_999_999_999  # 合計金額 N(12)
TELEGRAPHIC: Final = "7"  # 振込指定区分 7: 電信扱


def _pad_account(value: str) -> str:
    """An account number of 1–7 digits as its N(7) field (zeros on the left); anything else unchanged
    (the writer refuses it, naming the field)."""
    return value.zfill(7) if is_digits(value) and len(value) <= 7 else value


@dataclass(frozen=True)
class ZenginHeader:
    """Header record (データ区分 1; 種別コード 21 and コード区分 0 are implied): the requester (委託者), the
    transfer date and the account the money leaves from."""

    requester_code: str  # 委託者コード N(10)
    requester_name: str  # 委託者名 C(40)
    transfer_date: str  # 振込指定日 (取組日) N(4) MMDD
    bank_code: str  # 仕向銀行番号 N(4)
    bank_name: str  # 仕向銀行名 C(15)
    branch_code: str  # 仕向支店番号 N(3)
    branch_name: str  # 仕向支店名 C(15)
    account_type: str  # 預金種目 N(1): 1, 2 or 9
    account_number: str  # 口座番号 N(7); 1–7 digits are zero-padded

    def __post_init__(self) -> None:
        object.__setattr__(self, "account_number", _pad_account(self.account_number))


@dataclass(frozen=True)
class ZenginData:
    """Data record (データ区分 2): one transfer to the payee's account."""

    bank_code: str  # 被仕向銀行番号 N(4)
    bank_name: str  # 被仕向銀行名 C(15)
    branch_code: str  # 被仕向支店番号 N(3)
    branch_name: str  # 被仕向支店名 C(15)
    account_type: str  # 預金種目 N(1): 1, 2, 4 or 9
    account_number: str  # 口座番号 N(7); 1–7 digits are zero-padded
    payee_name: str  # 受取人名 C(30)
    amount: int  # 振込金額 N(10), 1–9,999,999,999
    customer_code_1: str = ""  # 顧客コード1 C(10)
    customer_code_2: str = ""  # 顧客コード2 C(10)
    new_code: str = "0"  # 新規コード N(1)
    transfer_kind: str = TELEGRAPHIC  # 振込指定区分 N(1): 7 電信
    clearing_house: str = "0000"  # 手形交換所番号 N(4): unused, zeros (spaces are read as "")

    def __post_init__(self) -> None:
        object.__setattr__(self, "account_number", _pad_account(self.account_number))
        if not self.clearing_house.strip():  # unused either way: spaces read back as zeros
            object.__setattr__(self, "clearing_house", "0000")


@dataclass(frozen=True)
class ZenginTrailer:
    """Trailer record (データ区分 8): how many transfers and their sum."""

    count: int  # 合計件数 N(6)
    total: int  # 合計金額 N(12)

    @classmethod
    def of(cls, records: Iterable[ZenginData]) -> ZenginTrailer:
        """The trailer that matches ``records``."""
        amounts = [r.amount for r in records]
        return cls(len(amounts), sum(amounts))


@dataclass(frozen=True)
class ZenginEnd:
    """End record (データ区分 9): no fields."""


@dataclass(frozen=True)
class ZenginFile:
    """One 総合振込 file: header, data records, trailer, end, and its newline style."""

    header: ZenginHeader
    records: tuple[ZenginData, ...]
    trailer: ZenginTrailer
    end: ZenginEnd = ZenginEnd()
    crlf: bool = True  # CR LF after each record; False: records back to back

    @property
    def record_size(self) -> int:
        """Bytes per record in the file, newline included."""
        return RECORD_LENGTH + 2 if self.crlf else RECORD_LENGTH


_FILLER: Final = FILLER

_HEADER: Final = layout(
    "header",
    [
        (None, "データ区分", "N", 1, "code", 0, 0, "1"),
        (None, "種別コード", "N", 2, "code", 0, 0, "21"),
        (None, "コード区分", "N", 1, "code", 0, 0, "0"),
        ("requester_code", "委託者コード", "N", 10, "code", 0, 0, None),
        ("requester_name", "委託者名", "K", 40, "nonblank", 0, 0, None),
        ("transfer_date", "振込指定日", "N", 4, "code", 0, 0, None),
        ("bank_code", "仕向銀行番号", "N", 4, "code", 0, 0, None),
        ("bank_name", "仕向銀行名", "K", 15, "text", 0, 0, None),
        ("branch_code", "仕向支店番号", "N", 3, "code", 0, 0, None),
        ("branch_name", "仕向支店名", "K", 15, "text", 0, 0, None),
        ("account_type", "預金種目", "N", 1, "code", 0, 0, None),
        ("account_number", "口座番号", "N", 7, "code", 0, 0, None),
        (None, "ダミー", "X", 17, "text", 0, 0, _FILLER),
    ],
)
_DATA: Final = layout(
    "data",
    [
        (None, "データ区分", "N", 1, "code", 0, 0, "2"),
        ("bank_code", "被仕向銀行番号", "N", 4, "code", 0, 0, None),
        ("bank_name", "被仕向銀行名", "K", 15, "text", 0, 0, None),
        ("branch_code", "被仕向支店番号", "N", 3, "code", 0, 0, None),
        ("branch_name", "被仕向支店名", "K", 15, "text", 0, 0, None),
        ("clearing_house", "手形交換所番号", "X", 4, "text", 0, 0, None),
        ("account_type", "預金種目", "N", 1, "code", 0, 0, None),
        ("account_number", "口座番号", "N", 7, "code", 0, 0, None),
        ("payee_name", "受取人名", "K", 30, "nonblank", 0, 0, None),
        ("amount", "振込金額", "N", 10, "int", 1, MAX_TRANSFER_AMOUNT, None),
        ("new_code", "新規コード", "N", 1, "code", 0, 0, None),
        ("customer_code_1", "顧客コード1", "K", 10, "text", 0, 0, None),
        ("customer_code_2", "顧客コード2", "K", 10, "text", 0, 0, None),
        ("transfer_kind", "振込指定区分", "N", 1, "code", 0, 0, None),
        (None, "識別表示", "X", 1, "text", 0, 0, _FILLER),
        (None, "ダミー", "X", 7, "text", 0, 0, _FILLER),
    ],
)
_TRAILER: Final = layout(
    "trailer",
    [
        (None, "データ区分", "N", 1, "code", 0, 0, "8"),
        ("count", "合計件数", "N", 6, "int", 1, MAX_COUNT, None),
        ("total", "合計金額", "N", 12, "int", 1, MAX_TOTAL, None),
        (None, "ダミー", "X", 101, "text", 0, 0, _FILLER),
    ],
)
_END: Final = layout(
    "end",
    [
        (None, "データ区分", "N", 1, "code", 0, 0, "9"),
        (None, "ダミー", "X", 119, "text", 0, 0, _FILLER),
    ],
)
_LAYOUTS: Final = {"header": _HEADER, "data": _DATA, "trailer": _TRAILER, "end": _END}
# codes beyond the field type: what each code field may hold
_CODES: Final[dict[str, frozenset[str]]] = {
    "header 預金種目": frozenset({"1", "2", "9"}),
    "data 預金種目": frozenset({"1", "2", "4", "9"}),
    "data 新規コード": frozenset({"0", "1", "2"}),
    "data 振込指定区分": frozenset({"7", "8"}),
    "data 手形交換所番号": frozenset({"0000", ""}),  # unused: zeros, or spaces (read back as "")
}


def zengin_field_offset(kind: str, attr: str) -> int:
    """The offset within a record of ``kind`` ("header", "data", "trailer") of its field ``attr``."""
    return field_offset(_LAYOUTS[kind], attr)


def _check_value(f: Field, text: str, offset: int, record: int) -> None:
    """The checks a code field needs beyond its type: code lists and the MMDD date."""
    allowed = _CODES.get(f.name)
    if allowed is not None and text not in allowed:
        raise CodecError(
            f.name, offset, f"{text!r} is not one of {', '.join(sorted(allowed))}", record=record
        )
    if f.name == "header 振込指定日":
        try:
            datetime.date(2000, int(text[:2]), int(text[2:]))  # a leap year: 0229 is a date
        except ValueError:
            raise CodecError(f.name, offset, f"{text!r} is not a month and day MMDD", record=record) from None


def _read_record(raw: bytes, layout_: Layout, base: int, record: int) -> dict[str, ElementValue]:
    return read_record(raw, layout_, base, record, check=_check_value)


def _write_record(obj: object, layout_: Layout, base: int, record: int) -> bytes:
    return write_record(obj, layout_, base, record, check=_check_value)


def _check_totals(zfile: ZenginFile) -> None:
    """At least one transfer; the trailer's count and sum against the data records."""
    size = zfile.record_size
    number = len(zfile.records) + 2  # the trailer's record number
    if not zfile.records:
        raise CodecError("data", size, "a 総合振込 file carries at least one transfer", record=2)
    expected = ZenginTrailer.of(zfile.records)
    for attr in ("count", "total"):
        have, want = getattr(zfile.trailer, attr), getattr(expected, attr)
        if have != want:
            raise CodecError(
                field_of(_TRAILER, attr).name,
                (number - 1) * size + zengin_field_offset("trailer", attr),
                f"{have} in the trailer, but the data records give {want}",
                record=number,
            )


def zengin_make(header: ZenginHeader, records: Iterable[ZenginData], *, crlf: bool = True) -> ZenginFile:
    """A :class:`ZenginFile` with its trailer computed from ``records``."""
    records = tuple(records)
    return ZenginFile(header, records, ZenginTrailer.of(records), ZenginEnd(), crlf)


def zengin_build(zfile: ZenginFile) -> bytes:
    """The bytes of ``zfile``; :class:`CodecError` for anything :func:`zengin_parse` would refuse (a field
    too long or of the wrong characters, an amount over 10 digits, a trailer that disagrees with the
    data)."""
    size = zfile.record_size
    rows = [_write_record(zfile.header, _HEADER, 0, 1)]
    for number, record in enumerate(zfile.records, start=2):
        rows.append(_write_record(record, _DATA, (number - 1) * size, number))
    number = len(zfile.records) + 2
    _check_totals(zfile)
    rows.append(_write_record(zfile.trailer, _TRAILER, (number - 1) * size, number))
    rows.append(_write_record(zfile.end, _END, number * size, number + 1))
    newline = b"\r\n" if zfile.crlf else b""
    data = b"".join(row + newline for row in rows)
    if len(data) != size * len(rows):  # pragma: no cover - follows from the record lengths
        raise CodecError("record length", 0, f"file is {len(data)} bytes for {len(rows)} records")
    return data


def zengin_parse(data: bytes) -> ZenginFile:
    """Parse a 総合振込 file and check it whole.

    Checks: 120-byte records, CR LF after every one or after none; the order header, data+, trailer, end
    and nothing after; every field's type and content (constants 1/21/0/2/8/9, fillers all spaces, MMDD,
    code lists); the trailer's count and sum against the data. Errors are :class:`CodecError` with the
    1-based record number, the field and its byte offset in the file.
    """
    raw_data = bytes(data)
    crlf, chunks = split_records(raw_data)
    header: ZenginHeader | None = None
    records: list[ZenginData] = []
    trailer: ZenginTrailer | None = None
    end: ZenginEnd | None = None
    for number, offset, raw, kind in records_in_order(chunks):
        if kind == "1":
            v = _read_record(raw, _HEADER, offset, number)
            header = ZenginHeader(**{k: str(x) for k, x in v.items()})
        elif kind == "2":
            v = _read_record(raw, _DATA, offset, number)
            amount = int(v.pop("amount"))
            records.append(ZenginData(amount=amount, **{k: str(x) for k, x in v.items()}))
        elif kind == "8":
            v = _read_record(raw, _TRAILER, offset, number)
            trailer = ZenginTrailer(int(v["count"]), int(v["total"]))
        else:
            _read_record(raw, _END, offset, number)
            end = ZenginEnd()
    missing_record(header, trailer, end, size=len(raw_data), records=len(chunks))
    assert header is not None and trailer is not None and end is not None
    zfile = ZenginFile(header, tuple(records), trailer, end, crlf)
    _check_totals(zfile)
    return zfile
