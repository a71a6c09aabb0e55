"""Teller batch files (spec §6, 一括消込データ): a file of 120-byte records <-> a :class:`BatchFile`.

The records (header, data, trailer, end), their fixed layouts, the file name ``01_BBBBB_SSSSS_MMDD_NNN``,
and the whole-file checks: record order, newline style, trailer totals, one 取引通番 per record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Final

from payeasy.codec.errors import CodecError
from payeasy.codec.fields import MAX_AMOUNT, ElementValue
from payeasy.codec.records import (
    FILLER,
    RECORD_LENGTH,
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
    "BATCH_RECORD_LENGTH",
    "BatchData",
    "BatchEnd",
    "BatchFile",
    "BatchHeader",
    "BatchTrailer",
    "batch_data_offset",
    "batch_file_name",
    "build_batch_file",
    "make_batch_file",
    "parse_batch_file",
]

BATCH_RECORD_LENGTH: Final = RECORD_LENGTH


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


_FILLER: Final = FILLER
_HEADER_LAYOUT: Final = layout(
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
_DATA_LAYOUT: Final = layout(
    "data",
    [
        (None, "データ区分", "N", 1, "code", 0, 0, "2"),
        ("customer_number", "お客様番号", "X", 20, "digits", 0, 0, None),
        ("confirmation_number", "確認番号", "X", 6, "digits", 0, 0, None),
        ("amount", "金額", "N", 11, "int", 1, MAX_AMOUNT, None),
        ("branch_code", "店舗コード", "N", 3, "code", 0, 0, None),
        ("paid_date", "収納日", "N", 8, "date", 0, 0, None),
        ("paid_time", "収納時刻", "N", 6, "time", 0, 0, None),
        ("serial", "取引通番", "N", 8, "code", 0, 0, None),
        ("payer_name_kana", "払込人名カナ", "K", 30, "text", 0, 0, None),
        ("cancel", "取消区分", "N", 1, "int", 0, 1, None),
        (None, "filler", "X", 26, "text", 0, 0, _FILLER),
    ],
)
_TRAILER_LAYOUT: Final = layout(
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
_END_LAYOUT: Final = layout(
    "end",
    [
        (None, "データ区分", "N", 1, "code", 0, 0, "9"),
        (None, "filler", "X", 119, "text", 0, 0, _FILLER),
    ],
)
_NAME_RE: Final = re.compile(r"01_([0-9]{5})_([0-9]{5})_([0-9]{4})_([0-9]{3})")


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
                field_offset(_HEADER_LAYOUT, attr),
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
                (i - 1) * size + field_offset(_DATA_LAYOUT, "serial"),
                f"{r.serial} is already used by record {seen[r.serial]}: one transaction key, one record",
                record=i,
            )
        seen[r.serial] = i
    expected = BatchTrailer.of(batch.records)
    number = len(batch.records) + 2
    for attr in ("count", "total", "cancel_count", "cancel_total"):
        have, want = getattr(batch.trailer, attr), getattr(expected, attr)
        if have != want:
            f = field_of(_TRAILER_LAYOUT, attr)
            raise CodecError(
                f.name,
                (number - 1) * size + field_offset(_TRAILER_LAYOUT, attr),
                f"{have} in the trailer, but the data records give {want}",
                record=number,
            )


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
    crlf, chunks = split_records(raw_data)
    header: BatchHeader | None = None
    records: list[BatchData] = []
    trailer: BatchTrailer | None = None
    end: BatchEnd | None = None
    for number, offset, raw, kind in records_in_order(chunks):
        if kind == "1":
            header = BatchHeader(**_str_values(read_record(raw, _HEADER_LAYOUT, offset, number)))
        elif kind == "2":
            v = read_record(raw, _DATA_LAYOUT, offset, number)
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
            v = read_record(raw, _TRAILER_LAYOUT, offset, number)
            trailer = BatchTrailer(
                int(v["count"]), int(v["total"]), int(v["cancel_count"]), int(v["cancel_total"])
            )
        else:
            read_record(raw, _END_LAYOUT, offset, number)
            end = BatchEnd()
    missing_record(header, trailer, end, size=len(raw_data), records=len(chunks))
    assert header is not None and trailer is not None and end is not None
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
    rows = [write_record(batch.header, _HEADER_LAYOUT, 0, 1)]
    for number, record in enumerate(batch.records, start=2):
        rows.append(write_record(record, _DATA_LAYOUT, (number - 1) * size, number))
    number = len(batch.records) + 2
    rows.append(write_record(batch.trailer, _TRAILER_LAYOUT, (number - 1) * size, number))
    rows.append(write_record(batch.end, _END_LAYOUT, number * size, number + 1))
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
    return (record - 1) * size + field_offset(_DATA_LAYOUT, attr)
