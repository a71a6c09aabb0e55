"""CSV import of invoices: one row per line item, rows of one invoice together.

The same pass serves the preview (nothing written) and the import (all or
nothing, in one transaction). It streams: memory holds one invoice at a time
plus the keys already seen, so a file of a million invoices fits in a few
hundred MB. On PostgreSQL rows go in through COPY; elsewhere in batches.

Re-importing is idempotent by external id (or by invoice number when the
file has no external ids): an invoice already imported with the same content
is counted as unchanged, with other content it is an error.

Every problem is reported with its row (as a spreadsheet numbers it: the
header is row 1), its column and the reason; the first 1,000 are kept.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from billing.invoicing import MAX_LINES_PER_INVOICE, TAX_RATES, LineError, compute_totals
from billing.models import Biller, Customer, Invoice
from billing.numbers import confirmation_numbers

MAX_ERRORS_KEPT = 1000
NUMBER_BLOCK = 10_000
PROGRESS_EVERY = 20_000

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
_CATEGORIES = {
    "10": "10",
    "10%": "10",
    "8": "8",
    "8%": "8",
    "8%※": "8",
    "軽減": "8",
    "exempt": "exempt",
    "非課税": "exempt",
    "0": "exempt",
    "0%": "exempt",
}
_TRUE = {"1", "true", "yes", "税込", "y"}
_FALSE = {"", "0", "false", "no", "税抜", "n"}


class ImportFailed(Exception):
    """The file cannot be read at all (encoding, header): nothing was checked further."""

    def __init__(self, message: str, *, row: int | None = None, column: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.row = row
        self.column = column


@dataclass
class RowError:
    row: int
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass
class ImportResult:
    encoding: str
    rows: int = 0
    invoices_new: int = 0
    invoices_unchanged: int = 0
    total_amount: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    written: bool = False

    def error(self, row: int, column: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(RowError(row, column, message))

    @property
    def ok(self) -> bool:
        return self.error_count == 0


# --- reading ------------------------------------------------------------------------------------------------


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
            f"The file is neither UTF-8 nor Shift_JIS (cp932): byte offset {exc.start} cannot be read. "
            "Save it as CSV UTF-8 or CSV (Shift_JIS) and choose the encoding."
        ) from exc


class _CountingReader(io.RawIOBase):
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


def _decoded_lines(raw: IO[bytes], encoding: str, counter: _CountingReader) -> Iterator[str]:
    text = io.TextIOWrapper(
        io.BufferedReader(counter, 1 << 20), encoding=encoding, errors="strict", newline=""
    )
    try:
        yield from text
    except UnicodeDecodeError as exc:
        raise ImportFailed(
            f"The file is not valid {encoding} near byte offset {counter.offset}: {exc.reason}. "
            "Choose the other encoding or re-save the file."
        ) from exc


# --- checking --------------------------------------------------------------------------------


def _map_header(header: list[str]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        key = _ALIASES.get(name.strip().lstrip("\ufeff").lower())
        if key is None:
            raise ImportFailed(
                f"Unknown column {name!r}. The columns are described in docs/csv-import.md.",
                row=1,
                column=name,
            )
        if key in positions:
            raise ImportFailed(f"Column {name!r} appears twice.", row=1, column=name)
        positions[key] = i
    missing = [c for c in REQUIRED if c not in positions]
    if missing:
        raise ImportFailed(
            f"Required columns missing: {', '.join(COLUMNS[c][0] + ' (' + c + ')' for c in missing)}.", row=1
        )
    return positions


class _Dates(dict[str, datetime.date | None]):
    """Parses YYYY-MM-DD and YYYY/MM/DD once per distinct string (a file repeats the same few dates)."""

    def __missing__(self, text: str) -> datetime.date | None:
        try:
            value: datetime.date | None = datetime.date.fromisoformat(text.replace("/", "-"))
        except ValueError:
            parts = text.replace("/", "-").split("-")
            try:
                value = (
                    datetime.date(int(parts[0]), int(parts[1]), int(parts[2])) if len(parts) == 3 else None
                )
            except ValueError:
                value = None
        self[text] = value
        return value


def _cp932_ok(text: str, cache_: dict[str, bool]) -> bool:
    ok = cache_.get(text)
    if ok is None:
        try:
            text.encode("cp932")
            ok = True
        except UnicodeEncodeError:
            ok = False
        cache_[text] = ok
    return ok


@dataclass
class _Pending:
    number: str
    first_row: int
    header: tuple[str, ...]
    total: str = ""
    lines: list[dict[str, Any]] = field(default_factory=list)
    bad: bool = False


InvoiceRow = tuple[Any, ...]
INVOICE_COLUMNS = (
    "biller_id",
    "kind",
    "customer_id",
    "number",
    "external_id",
    "issue_date",
    "due_date",
    "description",
    "lines",
    "tax_inclusive",
    "tax_rounding",
    "subtotal_10",
    "tax_10",
    "subtotal_8",
    "tax_8",
    "subtotal_exempt",
    "total",
    "status",
    "recipient_name",
    "recipient_email",
    "customer_number",
    "confirmation_number",
    "number_seq",
    "source_hash",
    "published_at",
    "created_at",
    "updated_at",
)


class _Checker:
    """Turns rows into invoice rows ready to store, reporting every problem with its row and column."""

    def __init__(
        self, *, biller: Biller, result: ImportResult, publish: bool, now: datetime.datetime
    ) -> None:
        self.biller = biller
        self.result = result
        self.publish = publish
        self.now = now
        self.rounding = biller.tax_rounding
        self.customers = {
            code: (pk, name, email, status)
            for code, pk, name, email, status in Customer.objects.filter(biller=biller)
            .values_list("code", "pk", "name", "email", "status")
            .iterator(chunk_size=20000)
        }
        # what is already stored: number → (external key, content hash); external id → number
        self.existing_numbers: dict[str, tuple[str, str]] = {}
        self.existing_external: dict[str, str] = {}
        if Invoice.objects.filter(biller=biller).exists():
            for number, external_id, source_hash in (
                Invoice.objects.filter(biller=biller)
                .values_list("number", "external_id", "source_hash")
                .iterator(chunk_size=20000)
            ):
                self.existing_numbers[number] = (external_id, source_hash)
                if external_id:
                    self.existing_external[external_id] = number
        self.seen_numbers: set[str] = set()
        self.seen_external: set[str] = set()
        self.dates = _Dates()
        self.cp932: dict[str, bool] = {}

    def finish(self, pending: _Pending) -> InvoiceRow | None:
        """Check an invoice whose rows are complete; its stored row, or None (unchanged or in error)."""
        r = self.result
        row_no = pending.first_row
        customer_code, issue_text, due_text, description, inclusive_text, external_id = pending.header
        total_text = pending.total
        number = pending.number
        if number in self.seen_numbers:
            r.error(
                row_no,
                "invoice_number",
                f"invoice {number} appears again: the rows of an invoice must be "
                "together, and an invoice number only once per file",
            )
            return None
        self.seen_numbers.add(number)
        if pending.bad:
            return None
        bad = False
        customer = self.customers.get(customer_code)
        if customer is None:
            r.error(row_no, "customer_code", f"unknown customer {customer_code!r}")
            bad = True
        elif customer[3] != Customer.Status.ACTIVE:
            r.error(row_no, "customer_code", f"customer {customer_code} is inactive")
            bad = True
        issue_date = self.dates[issue_text]
        if issue_date is None:
            r.error(row_no, "issue_date", f"bad date {issue_text!r}: use YYYY-MM-DD")
            bad = True
        due_date = self.dates[due_text]
        if due_date is None:
            r.error(row_no, "due_date", f"bad date {due_text!r}: use YYYY-MM-DD")
            bad = True
        elif issue_date is not None and due_date < issue_date:
            r.error(row_no, "due_date", "is before the issue date")
            bad = True
        if not description:
            r.error(row_no, "description", "is required")
            bad = True
        elif len(description) > 20:
            r.error(row_no, "description", f"must be at most 20 characters (got {len(description)})")
            bad = True
        elif not _cp932_ok(description, self.cp932):
            bad_chars = "".join(ch for ch in description if not _cp932_ok(ch, self.cp932))
            r.error(row_no, "description", f"has characters Shift_JIS (cp932) cannot carry: {bad_chars!r}")
            bad = True
        lowered = inclusive_text.lower()
        if lowered in _TRUE:
            inclusive = True
        elif lowered in _FALSE:
            inclusive = False
        else:
            r.error(row_no, "tax_inclusive", f"must be 1 or 0 (got {inclusive_text!r})")
            bad = True
            inclusive = False
        if (
            len(number) > 32
            or not number.replace("-", "").replace("_", "").replace("/", "").replace(".", "").isalnum()
        ):
            r.error(row_no, "invoice_number", f"{number!r}: use up to 32 letters, digits and - _ / .")
            bad = True
        if len(external_id) > 64:
            r.error(row_no, "external_id", "must be at most 64 characters")
            bad = True
        if len(pending.lines) > MAX_LINES_PER_INVOICE:
            r.error(row_no, "item", f"invoice {number} has more than {MAX_LINES_PER_INVOICE} lines")
            bad = True
        if bad:
            return None
        try:
            totals = compute_totals(pending.lines, rounding=self.rounding, tax_inclusive=inclusive)
        except LineError as exc:
            r.error(row_no, "unit_price", exc.message)
            return None
        if total_text:
            stated = total_text.replace(",", "")
            if not stated.isdigit() or int(stated) != totals.total:
                r.error(
                    row_no,
                    "total",
                    f"total mismatch: the file says {total_text}, the lines come to "
                    f"{totals.total:,} yen ({self.rounding} rounding, tax once per rate)",
                )
                return None
        lines_json = json.dumps(pending.lines, ensure_ascii=False, separators=(",", ":"))
        content_hash = hashlib.sha256(
            "\x1f".join(
                (
                    number,
                    external_id,
                    customer_code,
                    issue_text,
                    due_text,
                    description,
                    str(inclusive),
                    lines_json,
                )
            ).encode()
        ).hexdigest()
        key = external_id or number
        if external_id:
            if external_id in self.seen_external:
                r.error(row_no, "external_id", f"external id {external_id} appears twice in the file")
                return None
            self.seen_external.add(external_id)
            stored_number = self.existing_external.get(external_id)
            if stored_number is not None:
                _, stored_hash = self.existing_numbers[stored_number]
                if stored_number == number and stored_hash == content_hash:
                    r.invoices_unchanged += 1
                    return None
                r.error(
                    row_no,
                    "external_id",
                    f"external id {external_id} was already imported as invoice "
                    f"{stored_number} with other content; cancel it and use a new id",
                )
                return None
        stored = self.existing_numbers.get(number)
        if stored is not None:
            if stored[0] == external_id and stored[1] == content_hash:
                r.invoices_unchanged += 1
                return None
            r.error(
                row_no,
                "invoice_number",
                f"duplicate invoice number {number}: it already exists"
                + ("" if key == number else f" (external id {stored[0] or '—'})"),
            )
            return None
        r.invoices_new += 1
        r.total_amount += totals.total
        status = Invoice.Status.PUBLISHED if self.publish else Invoice.Status.DRAFT
        return (
            self.biller.pk,
            Invoice.Kind.INVOICE,
            customer[0],
            number,
            external_id,
            issue_date,
            due_date,
            description,
            lines_json,
            inclusive,
            self.rounding,
            totals.subtotal_10,
            totals.tax_10,
            totals.subtotal_8,
            totals.tax_8,
            totals.subtotal_exempt,
            totals.total,
            status,
            customer[1],
            customer[2],
            None,
            None,
            None,
            content_hash,
            self.now if self.publish else None,
            self.now,
            self.now,
        )


def _line(row: list[str], pos: dict[str, int], row_no: int, result: ImportResult) -> dict[str, Any] | None:
    description = row[pos["item"]].strip()
    ok = True
    if not description:
        result.error(row_no, "item", "is required")
        ok = False
    elif len(description) > 100:
        result.error(row_no, "item", "must be at most 100 characters")
        ok = False
    q_text = row[pos["quantity"]].strip() if "quantity" in pos else "1"
    quantity = 1
    if q_text:
        cleaned = q_text.replace(",", "")
        if not cleaned.isdigit() or not 1 <= int(cleaned) <= 10_000_000:
            result.error(row_no, "quantity", f"must be a whole number from 1 to 10,000,000 (got {q_text!r})")
            ok = False
        else:
            quantity = int(cleaned)
    p_text = row[pos["unit_price"]].strip()
    cleaned = p_text.replace(",", "").replace("¥", "").replace("円", "")
    digits = cleaned[1:] if cleaned.startswith("-") else cleaned
    unit_price = 0
    if not digits.isdigit() or len(digits) > 10:
        result.error(row_no, "unit_price", f"must be a whole number of yen (got {p_text!r})")
        ok = False
    else:
        unit_price = int(cleaned)
    c_text = row[pos["tax_category"]].strip()
    category = _CATEGORIES.get(c_text.lower())
    if category is None:
        result.error(row_no, "tax_category", f"unknown tax category {c_text!r}: use 10, 8 or exempt")
        ok = False
    if not ok:
        return None
    assert category in TAX_RATES
    return {
        "description": description,
        "quantity": quantity,
        "unit_price": unit_price,
        "tax_category": category,
        "amount": quantity * unit_price,
    }


def check_rows(
    lines: Iterator[str],
    *,
    checker: _Checker,
    emit: Callable[[InvoiceRow], None],
    progress: Callable[[int], None] | None = None,
) -> None:
    result = checker.result
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFailed("The file is empty.", row=1) from None
    pos = _map_header(header)
    width = len(header)
    i_number = pos["invoice_number"]
    i_total = pos.get("total")
    header_positions = [pos.get(name) for name in HEADER_FIELDS]
    pending: _Pending | None = None
    row_no = 1
    for row in reader:
        row_no += 1
        if len(row) != width:
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            result.error(row_no, "", f"has {len(row)} fields; the header has {width}")
            if pending is not None:
                pending.bad = True
            continue
        result.rows += 1
        number = row[i_number].strip()
        if not number:
            result.error(row_no, "invoice_number", "is required")
            continue
        head = tuple("" if p is None else row[p].strip() for p in header_positions)
        if pending is None or number != pending.number:
            if pending is not None:
                stored = checker.finish(pending)
                if stored is not None:
                    emit(stored)
            pending = _Pending(number=number, first_row=row_no, header=head)
        elif head != pending.header:
            differing = [
                HEADER_FIELDS[i] for i, (a, b) in enumerate(zip(head, pending.header, strict=True)) if a != b
            ]
            result.error(
                row_no,
                differing[0],
                f"differs from row {pending.first_row} of the same invoice "
                f"{number}; the invoice columns must repeat on every line",
            )
            pending.bad = True
            continue
        if i_total is not None:
            stated = row[i_total].strip()
            if stated:
                if pending.total and stated != pending.total:
                    result.error(
                        row_no,
                        "total",
                        f"says {stated} but an earlier line of invoice {number} says {pending.total}",
                    )
                    pending.bad = True
                pending.total = stated
        line = _line(row, pos, row_no, result)
        if line is None:
            pending.bad = True
        else:
            pending.lines.append(line)
        if progress is not None and result.rows % PROGRESS_EVERY == 0:
            progress(result.rows)
    if pending is not None:
        stored = checker.finish(pending)
        if stored is not None:
            emit(stored)
    if result.rows == 0 and result.error_count == 0:
        raise ImportFailed("The file has a header but no invoice rows.", row=2)


# --- writing --------------------------------------------------------------------------------


class _Writer:
    """Stores invoice rows inside the open transaction, assigning payment numbers to published ones."""

    def __init__(self, *, biller: Biller, publish: bool) -> None:
        self.biller = biller
        self.publish = publish
        self.buffer: list[InvoiceRow] = []
        self.numbers: list[str] = []
        self.confirmations: list[str] = []
        self.issuer: Any = None
        self.next_seq = 0
        self._copy_cm: Any = None
        self._copy: Any = None
        self._cursor: Any = None

    def _number_triple(self) -> tuple[str, str, int]:
        if not self.numbers:
            from billing.services.invoices import reserve_numbers

            self.close()  # the connection cannot run another statement while a COPY is open

            self.issuer, first = reserve_numbers(biller=self.biller, count=NUMBER_BLOCK)
            self.numbers = self.issuer.customer_numbers(first, NUMBER_BLOCK)
            self.numbers.reverse()
            self.confirmations = confirmation_numbers(NUMBER_BLOCK)
            self.next_seq = first
        self.next_seq += 1
        return self.numbers.pop(), self.confirmations.pop(), self.next_seq - 1

    def __call__(self, row: InvoiceRow) -> None:
        if self.publish:
            number, confirmation, seq = self._number_triple()
            row = (*row[:20], number, confirmation, seq, *row[23:])
        if connection.vendor == "postgresql":
            if self._copy is None:
                self._cursor = connection.cursor().cursor  # the psycopg cursor under Django's wrapper
                self._copy_cm = self._cursor.copy(
                    f"COPY billing_invoice ({', '.join(INVOICE_COLUMNS)}) FROM STDIN"
                )
                self._copy = self._copy_cm.__enter__()
            self._copy.write_row(row)
        else:
            self.buffer.append(row)
            if len(self.buffer) >= 5000:
                self.flush()

    def flush(self) -> None:
        if self.buffer:
            placeholders = ", ".join(["%s"] * len(INVOICE_COLUMNS))
            ops = connection.ops
            rows = [
                (
                    *r[:5],
                    ops.adapt_datefield_value(r[5]),
                    ops.adapt_datefield_value(r[6]),
                    *r[7:24],
                    ops.adapt_datetimefield_value(r[24]),
                    ops.adapt_datetimefield_value(r[25]),
                    ops.adapt_datetimefield_value(r[26]),
                )
                for r in self.buffer
            ]
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO billing_invoice ({', '.join(INVOICE_COLUMNS)}) VALUES ({placeholders})",  # noqa: S608
                    rows,
                )
            self.buffer = []

    def close(self) -> None:
        self.flush()
        if self._copy_cm is not None:
            self._copy_cm.__exit__(None, None, None)
            self._copy_cm = self._copy = None

    def abort(self) -> None:
        if self._copy_cm is not None:
            with contextlib.suppress(Exception):  # the transaction is rolled back anyway
                self._copy_cm.__exit__(ImportFailed, ImportFailed("aborted"), None)
            self._copy_cm = self._copy = None


def progress_key(job_id: int) -> str:
    return f"import-progress:{job_id}"


def run(
    raw: IO[bytes],
    *,
    biller: Biller,
    write: bool,
    publish: bool = True,
    encoding: str = "",
    job_id: int | None = None,
    file_size: int = 0,
) -> ImportResult:
    """Check (and with ``write``, store) a CSV of invoices. All or nothing: any error stores nothing.

    Raises ImportFailed when the file cannot be read at all.
    """
    sample = raw.read(1 << 16)
    raw.seek(0)
    if not sample:
        raise ImportFailed("The file is empty.", row=1)
    chosen = encoding or detect_encoding(sample)
    if chosen == "utf-8" and sample.startswith(codecs.BOM_UTF8):
        chosen = "utf-8-sig"
    try:
        codecs.lookup(chosen)
    except LookupError as exc:
        raise ImportFailed(f"Unknown encoding {chosen!r}.") from exc
    result = ImportResult(encoding=chosen)
    counter = _CountingReader(raw)
    now = timezone.now()

    def progress(rows: int) -> None:
        if job_id is not None:
            cache.set(progress_key(job_id), {"rows": rows, "bytes": counter.offset, "size": file_size}, 3600)

    checker = _Checker(biller=biller, result=result, publish=publish, now=now)
    if not write:
        check_rows(
            _decoded_lines(raw, chosen, counter), checker=checker, emit=lambda row: None, progress=progress
        )
        return result
    writer = _Writer(biller=biller, publish=publish)
    try:
        with transaction.atomic():
            check_rows(_decoded_lines(raw, chosen, counter), checker=checker, emit=writer, progress=progress)
            if not result.ok:
                writer.abort()
                raise _RollBack
            writer.close()
            result.written = result.invoices_new > 0
    except _RollBack:
        result.written = False
    except BaseException:
        writer.abort()
        raise
    return result


class _RollBack(Exception):
    pass
