"""Reading the file: its encoding, its decoded lines with a byte count, CSV rows, and the header."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from typing import IO, Any

from django.utils.translation import gettext as _

from billing.imports.results import ImportFailed

# canonical name → accepted header spellings (Japanese first)
COLUMNS: dict[str, tuple[str, ...]] = {
    "invoice_number": ("請求番号", "invoice_number"),
    "external_id": ("外部ID", "external_id"),
    "customer_code": ("顧客コード", "customer_code"),
    "issue_date": ("請求日", "issue_date"),
    "due_date": ("支払期限", "due_date"),
    "description": ("料金名", "description"),
    "item": ("品目", "item"),
    "quantity": ("数量", "quantity"),
    "unit_price": ("単価", "unit_price"),
    "tax_category": ("税区分", "tax_category"),
    "tax_inclusive": ("税込", "tax_inclusive"),
    "total": ("請求金額", "total"),
}
REQUIRED = (
    "invoice_number",
    "customer_code",
    "issue_date",
    "due_date",
    "description",
    "item",
    "unit_price",
    "tax_category",
)
# The invoice columns repeat on every line of the invoice; 請求金額 (total) may be left empty on some lines.
HEADER_FIELDS = ("customer_code", "issue_date", "due_date", "description", "tax_inclusive", "external_id")
_ALIASES = {alias.lower(): name for name, aliases in COLUMNS.items() for alias in aliases}


def detect_encoding(sample: bytes) -> str:
    """UTF-8 with BOM, UTF-8, or cp932 (Excel's Japanese CSV). ``sample`` is the start of the file."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        codecs.getincrementaldecoder("cp932")().decode(sample, final=False)
        return "cp932"
    except UnicodeDecodeError as exc:
        raise ImportFailed(
            _(
                "The file is neither UTF-8 nor Shift_JIS (cp932): byte offset %(offset)d cannot be read. "
                "Save it as CSV UTF-8 or CSV (Shift_JIS) and choose the encoding."
            )
            % {"offset": exc.start}
        ) from exc


def encoding_choose(raw: IO[bytes], *, encoding: str) -> str:
    """The encoding to read ``raw`` with: the one chosen (a BOM makes UTF-8 UTF-8 with BOM), or detected."""
    sample = raw.read(1 << 16)
    raw.seek(0)
    if not sample:
        raise ImportFailed(_("The file is empty."), row=1)
    chosen = encoding or detect_encoding(sample)
    if chosen == "utf-8" and sample.startswith(codecs.BOM_UTF8):
        chosen = "utf-8-sig"
    try:
        codecs.lookup(chosen)
    except LookupError as exc:
        raise ImportFailed(_("Unknown encoding %(name)r.") % {"name": chosen}) from exc
    return chosen


class CountingReader(io.RawIOBase):
    """Counts bytes read so progress and decoding errors can name a byte offset."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.offset += n
        return n


def decoded_lines(encoding: str, counter: CountingReader) -> Iterator[str]:
    """The lines of the file ``counter`` reads, decoded strictly; a bad byte is ImportFailed at its offset."""
    text = io.TextIOWrapper(
        io.BufferedReader(counter, 1 << 20), encoding=encoding, errors="strict", newline=""
    )
    try:
        yield from text
    except UnicodeDecodeError as exc:
        raise ImportFailed(
            _(
                "The file is not valid %(encoding)s near byte offset %(offset)d: %(reason)s. "
                "Choose the other encoding or re-save the file."
            )
            % {"encoding": encoding, "offset": counter.offset, "reason": exc.reason}
        ) from exc


def csv_rows(lines: Iterator[str]) -> Iterator[list[str]]:
    """csv.reader, with what it cannot read (a cell longer than its limit) as ImportFailed naming the row."""
    reader = csv.reader(lines)
    row_no = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = str(exc)
            if "field limit" in reason:
                reason = _("a cell is longer than %(limit)s characters") % {
                    "limit": f"{csv.field_size_limit():,}"
                }
            raise ImportFailed(
                _("Row %(row)d cannot be read as CSV: %(reason)s.") % {"row": row_no + 1, "reason": reason},
                row=row_no + 1,
            ) from exc
        row_no += 1
        yield row


def header_map(header: list[str]) -> dict[str, int]:
    """Canonical column name → its position in the file; ImportFailed for an unknown, twice or missing one."""
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        key = _ALIASES.get(name.strip().lstrip("\ufeff").lower())
        if key is None:
            raise ImportFailed(
                _("Unknown column %(name)r. The columns are described in the CSV import guide.")
                % {"name": name},
                row=1,
                column=name,
            )
        if key in positions:
            raise ImportFailed(_("Column %(name)r appears twice.") % {"name": name}, row=1, column=name)
        positions[key] = i
    missing = [c for c in REQUIRED if c not in positions]
    if missing:
        raise ImportFailed(
            _("Required columns missing: %(columns)s.")
            % {"columns": ", ".join(COLUMNS[c][0] + " (" + c + ")" for c in missing)},
            row=1,
        )
    return positions
