"""CSV import of invoices: one row per line item, rows of one invoice together.

The same pass serves the preview (nothing written) and the import (all or
nothing, in one transaction). It streams: memory holds one invoice at a time
and bounded buffers, whatever the size of the file. On PostgreSQL rows go in
through COPY, and every invoice's number and external id is staged through a
COPY of its own into a temporary table on a second connection, where one query
at the end finds the numbers and external ids that appear twice in the file
(elsewhere, in SQLite, a set of their hashes is kept in memory).

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
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg import errors as psycopg_errors

from billing import dbsecurity
from billing.invoicing import MAX_LINES_PER_INVOICE, LineError, totals_from_sums
from billing.models import Biller, Customer, Invoice
from billing.numbers import confirmation_numbers

MAX_ERRORS_KEPT = 1000
CONFIRMATION_BLOCK = 50_000
PROGRESS_EVERY = 20_000
LOOKUP_BATCH = 5_000  # invoices decided per query against what is stored
ANALYZE_AFTER_INVOICES = 10_000  # an import this large refreshes the planner's statistics

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
        message, column = _storable(message), _storable(column)
        super().__init__(message)
        self.message = message
        self.row = row
        self.column = column


def _storable(text: str) -> str:
    """Text quoted from the file, fit to be stored with the job: PostgreSQL text and JSON hold no NUL."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


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
            self.errors.append(RowError(row, _storable(column), _storable(message)))

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
            _(
                "The file is neither UTF-8 nor Shift_JIS (cp932): byte offset %(offset)d cannot be read. "
                "Save it as CSV UTF-8 or CSV (Shift_JIS) and choose the encoding."
            )
            % {"offset": exc.start}
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
            _(
                "The file is not valid %(encoding)s near byte offset %(offset)d: %(reason)s. "
                "Choose the other encoding or re-save the file."
            )
            % {"encoding": encoding, "offset": counter.offset, "reason": exc.reason}
        ) from exc


# --- checking --------------------------------------------------------------------------------


def _map_header(header: list[str]) -> dict[str, int]:
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


CACHE_ENTRIES = 50_000  # per-string caches stop growing here: a file of all-different values stays flat


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
        if len(self) < CACHE_ENTRIES:
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
        if len(cache_) < CACHE_ENTRIES:
            cache_[text] = ok
    return ok


@dataclass(slots=True)
class _Pending:
    number: str
    first_row: int
    row: list[str]  # the invoice's first row: its invoice columns are read from it in finish()
    total: str = ""
    lines: list[str] = field(default_factory=list)  # each line already as JSON
    sum_10: int = 0
    sum_8: int = 0
    sum_exempt: int = 0
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
    "confirmation_number",
    "source_hash",
    "published_at",
    "created_at",
    "updated_at",
)
_NUMBER_OK = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_/.")


class _Checker:
    """Turns rows into invoice rows ready to store, reporting every problem with its row and column."""

    def __init__(
        self, *, biller: Biller, result: ImportResult, publish: bool, now: datetime.datetime
    ) -> None:
        self.biller = biller
        self.result = result
        self.biller_id = biller.pk
        self.publish = publish
        self.now = now
        self.status = Invoice.Status.PUBLISHED if publish else Invoice.Status.DRAFT
        self.published_at = now if publish else None
        self.rounding = biller.tax_rounding
        self.customers: dict[str, tuple[int, str, str, str]] = {
            code: (pk, name, email, status)
            for code, pk, name, email, status in Customer.objects.filter(biller=biller)
            .values_list("code", "pk", "name", "email", "status")
            .iterator(chunk_size=20000)
        }
        # What is already stored is looked up in batches (one indexed query per LOOKUP_BATCH invoices),
        # not loaded: re-importing a million invoices stays within the same memory as importing them.
        self.has_existing = Invoice.objects.filter(biller=biller).exists()
        self.before_lookup: Callable[[], None] | None = None
        self.batch: list[tuple[int, str, str, str, InvoiceRow, int]] = []
        self.emit: Callable[[InvoiceRow], None] = lambda row: None
        self.header_of: Callable[[list[str]], tuple[str, ...]] = tuple
        # where duplicates are found: the staging table (PostgreSQL) or, elsewhere, sets of hashes
        self.keys: _KeyStage | None = None
        self.seen_numbers: set[int] = set()
        self.seen_external: set[int] = set()
        self._external = ""  # what finish() decided for the invoice it just checked, for the staging
        self._counted = "-"
        self._total = 0
        self.dates = _Dates()
        self.cp932: dict[str, bool] = {}
        self.json_strings: dict[str, str] = {}

    def json_string(self, text: str) -> str:
        encoded = self.json_strings.get(text)
        if encoded is None:
            encoded = json.dumps(text, ensure_ascii=False)
            if len(self.json_strings) < CACHE_ENTRIES:
                self.json_strings[text] = encoded
        return encoded

    def finish(self, pending: _Pending) -> InvoiceRow | None:
        """Check an invoice whose rows are complete; its stored row, or None (unchanged or in error)."""
        self._external, self._counted, self._total = "", "-", 0
        row = self._finish(pending)
        if self.keys is not None and self._counted != "b":  # a batched one is staged once decided
            self.keys.add(pending.first_row, pending.number, self._external, self._counted, self._total)
        return row

    def _finish(self, pending: _Pending) -> InvoiceRow | None:
        r = self.result
        row_no = pending.first_row
        number = pending.number
        number_fp = hash(number)  # seen-sets hold hashes, not the strings (only without the staging)
        if self.keys is None and number_fp in self.seen_numbers:
            r.error(
                row_no,
                "invoice_number",
                _(
                    "invoice %(number)s appears again: the rows of an invoice must be together, "
                    "and an invoice number only once per file"
                )
                % {"number": number},
            )
            return None
        if self.keys is None:
            self.seen_numbers.add(number_fp)
        if pending.bad:
            return None
        customer_code, issue_text, due_text, description, inclusive_text, external_id = map(
            str.strip, self.header_of(pending.row)
        )
        bad = False
        customer = self.customers.get(customer_code)
        if customer is None:
            r.error(row_no, "customer_code", _("unknown customer %(code)r") % {"code": customer_code})
            bad = True
        elif customer[3] != Customer.Status.ACTIVE:
            r.error(row_no, "customer_code", _("customer %(code)s is inactive") % {"code": customer_code})
            bad = True
        issue_date = self.dates[issue_text]
        if issue_date is None:
            r.error(row_no, "issue_date", _("bad date %(text)r: use YYYY-MM-DD") % {"text": issue_text})
            bad = True
        due_date = self.dates[due_text]
        if due_date is None:
            r.error(row_no, "due_date", _("bad date %(text)r: use YYYY-MM-DD") % {"text": due_text})
            bad = True
        elif issue_date is not None and due_date < issue_date:
            r.error(row_no, "due_date", "is before the issue date")
            bad = True
        if not description:
            r.error(row_no, "description", _("is required"))
            bad = True
        elif len(description) > 20:
            r.error(
                row_no,
                "description",
                _("must be at most 20 characters (got %(n)d)") % {"n": len(description)},
            )
            bad = True
        elif "\x00" in description:
            r.error(row_no, "description", _("must not contain NUL characters"))
            bad = True
        elif not _cp932_ok(description, self.cp932):
            bad_chars = "".join(ch for ch in description if not _cp932_ok(ch, self.cp932))
            r.error(
                row_no,
                "description",
                _("has characters Shift_JIS (cp932) cannot carry: %(chars)r") % {"chars": bad_chars},
            )
            bad = True
        lowered = inclusive_text.lower()
        if lowered in _TRUE:
            inclusive = True
        elif lowered in _FALSE:
            inclusive = False
        else:
            r.error(row_no, "tax_inclusive", _("must be 1 or 0 (got %(text)r)") % {"text": inclusive_text})
            bad = True
            inclusive = False
        if len(number) > 32 or not _NUMBER_OK.issuperset(number) or number[0] in "-_/.":
            r.error(
                row_no,
                "invoice_number",
                _("%(number)r: use up to 32 letters, digits and - _ / .") % {"number": number},
            )
            bad = True
        if len(external_id) > 64:
            r.error(row_no, "external_id", "must be at most 64 characters")
            bad = True
        elif "\x00" in external_id:  # PostgreSQL text cannot hold it
            r.error(row_no, "external_id", _("must not contain NUL characters"))
            bad = True
        if len(pending.lines) > MAX_LINES_PER_INVOICE:
            r.error(
                row_no,
                "item",
                _("invoice %(number)s has more than %(max)d lines")
                % {"number": number, "max": MAX_LINES_PER_INVOICE},
            )
            bad = True
        if bad or customer is None:
            return None
        try:
            totals = totals_from_sums(
                pending.sum_10,
                pending.sum_8,
                pending.sum_exempt,
                rounding=self.rounding,
                tax_inclusive=inclusive,
            )
        except LineError as exc:
            r.error(row_no, "unit_price", exc.message)
            return None
        if pending.total:
            stated = pending.total.replace(",", "")
            if not stated.isdigit() or int(stated) != totals.total:
                r.error(
                    row_no,
                    "total",
                    _(
                        "total mismatch: the file says %(stated)s, the lines come to %(total)s yen "
                        "(%(rounding)s rounding, tax once per rate)"
                    )
                    % {"stated": pending.total, "total": f"{totals.total:,}", "rounding": self.rounding},
                )
                return None
        lines_json = "[" + ",".join(pending.lines) + "]"
        content_hash = hashlib.blake2b(
            "\x1f".join(
                (
                    number,
                    external_id,
                    customer_code,
                    issue_text,
                    due_text,
                    description,
                    "1" if inclusive else "0",
                    lines_json,
                )
            ).encode(),
            digest_size=20,
        ).hexdigest()
        if external_id and self.keys is not None:
            self._external = external_id  # a second use in the file is found by the staging's query
        elif external_id:
            external_fp = hash(external_id)
            if external_fp in self.seen_external:
                r.error(
                    row_no,
                    "external_id",
                    _("external id %(id)s appears twice in the file") % {"id": external_id},
                )
                return None
            self.seen_external.add(external_fp)
        row = (
            self.biller_id,
            "invoice",
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
            self.status,
            customer[1],
            customer[2],
            None,
            content_hash,
            self.published_at,
            self.now,
            self.now,
        )
        if self.has_existing:
            self.batch.append((row_no, number, external_id, content_hash, row, totals.total))
            self._counted = "b"
            if len(self.batch) >= LOOKUP_BATCH:
                self.resolve()
            return None
        r.invoices_new += 1
        r.total_amount += totals.total
        self._counted, self._total = "n", totals.total
        return row

    def resolve(self) -> None:
        """Decide a batch of checked invoices against what is stored: new (emitted), unchanged or error."""
        batch, self.batch = self.batch, []
        if not batch:
            return
        r = self.result
        numbers = [item[1] for item in batch]
        externals = [item[2] for item in batch if item[2]]
        by_number: dict[str, tuple[str, str]] = {}
        by_external: dict[str, tuple[str, str]] = {}
        found: list[tuple[str, str, str]]
        if self.before_lookup is not None and not self.lookups_failed:
            self.before_lookup()  # the writer's COPY must not be open on this connection while we ask
        if self.lookups_failed:  # the import's transaction failed (a number twice): only stage the keys
            for row_no, number, external_id, _hash, _row, _total in batch:
                self._stage(row_no, number, external_id, "-", 0)
            return
        if connection.vendor == "postgresql":
            # one array parameter per key list, each an index probe per key: ~40 ms for 5,000 invoices
            # (an ORM IN list of 5,000 placeholders is ten times slower, an OR of the two a table scan)
            with connection.cursor() as cursor:
                cursor.execute(
                    # not the rows this import stored itself (they share its created_at): a number
                    # twice in the file is named as such by report_duplicates, not as "already exists"
                    "SELECT number, external_id, source_hash FROM billing_invoice "
                    "WHERE biller_id = %s AND number = ANY(%s) AND created_at <> %s UNION "
                    "SELECT number, external_id, source_hash FROM billing_invoice "
                    "WHERE biller_id = %s AND external_id = ANY(%s) AND external_id <> '' "
                    "AND created_at <> %s",
                    [self.biller_id, numbers, self.now, self.biller_id, externals, self.now],
                )
                found = cursor.fetchall()
        else:
            of_biller = Invoice.objects.filter(biller_id=self.biller_id)
            columns = ("number", "external_id", "source_hash")
            found = list(of_biller.filter(number__in=numbers).values_list(*columns))
            found += of_biller.filter(external_id__in=externals).values_list(*columns)
        for number, external_id, source_hash in found:
            by_number[number] = (external_id, source_hash)
            if external_id:
                by_external[external_id] = (number, source_hash)
        for row_no, number, external_id, content_hash, row, total in batch:
            if external_id and external_id in by_external:
                stored_number, stored_hash = by_external[external_id]
                if stored_number == number and stored_hash == content_hash:
                    r.invoices_unchanged += 1
                    self._stage(row_no, number, external_id, "u", 0)
                else:
                    self._stage(row_no, number, external_id, "-", 0)
                    r.error(
                        row_no,
                        "external_id",
                        _(
                            "external id %(id)s was already imported as invoice %(number)s with other "
                            "content; cancel it and use a new id"
                        )
                        % {"id": external_id, "number": stored_number},
                    )
            elif number in by_number:
                if by_number[number][1] == content_hash:  # the content hash covers the external id too
                    r.invoices_unchanged += 1
                    self._stage(row_no, number, external_id, "u", 0)
                else:
                    self._stage(row_no, number, external_id, "-", 0)
                    r.error(
                        row_no,
                        "invoice_number",
                        _("duplicate invoice number %(number)s: it already exists") % {"number": number},
                    )
            else:
                r.invoices_new += 1
                r.total_amount += total
                self._stage(row_no, number, external_id, "n", total)
                self.emit(row)

    lookups_failed = False

    def _stage(self, row_no: int, number: str, external_id: str, counted: str, total: int) -> None:
        if self.keys is not None:
            self.keys.add(row_no, number, external_id, counted, total)

    def report_duplicates(self) -> None:
        """Name every invoice number and external id that appears twice in the file (found in SQL), and take
        the repeats out of the counts."""
        if self.keys is None:
            return
        r = self.result
        repeated_numbers: set[int] = set()
        for row_no, number, counted, total in self.keys.repeated("number"):
            repeated_numbers.add(row_no)
            self._uncount(counted, total)
            r.error(
                row_no,
                "invoice_number",
                _(
                    "invoice %(number)s appears again: the rows of an invoice must be together, "
                    "and an invoice number only once per file"
                )
                % {"number": number},
            )
            if len(repeated_numbers) > MAX_ERRORS_KEPT:
                break  # enough to name; the rest are counted below
        for row_no, external_id, counted, total in self.keys.repeated("external_id"):
            if row_no in repeated_numbers:
                continue
            self._uncount(counted, total)
            r.error(
                row_no, "external_id", _("external id %(id)s appears twice in the file") % {"id": external_id}
            )
            if r.error_count > 2 * MAX_ERRORS_KEPT + len(repeated_numbers):
                break

    def _uncount(self, counted: str, total: int) -> None:
        if counted == "n":
            self.result.invoices_new -= 1
            self.result.total_amount -= total
        elif counted == "u":
            self.result.invoices_unchanged -= 1


class _KeyStage:
    """Every checked invoice's number and external id, staged in a temporary table of a connection of its
    own (COPY, kept open: PostgreSQL files them while this process parses), so that finding the ones that
    appear twice costs no memory here, whatever the size of the file. A connection of its own: the
    import's COPY holds the other one, and a number twice makes the import's transaction fail — this one
    still answers which rows it was.

    ``counted`` says how the invoice was counted: n new, u unchanged, - not at all (in error)."""

    FLUSH = 20_000

    def __init__(self) -> None:
        import psycopg

        params = dict(connection.get_connection_params())
        params.pop("cursor_factory", None)
        self.conn = psycopg.connect(**params, autocommit=True)
        self.conn.execute("SET work_mem = '64MB'")  # the final GROUP BY of a few million keys, in memory
        self.conn.execute(
            "CREATE TEMPORARY TABLE import_keys (row_no integer, number text, external_id text, "
            "counted text, total bigint)"
        )
        self._copy_cm: Any = self.conn.cursor().copy("COPY import_keys FROM STDIN")
        self._copy: Any = self._copy_cm.__enter__()
        self.buffer: list[str] = []

    def add(self, row_no: int, number: str, external_id: str, counted: str, total: int) -> None:
        self.buffer.append(f"{row_no}\t{_key(number)}\t{_key(external_id)}\t{counted}\t{total}\n")
        if len(self.buffer) >= self.FLUSH:
            self._copy.write("".join(self.buffer))
            self.buffer = []

    def repeated(self, column: str) -> Iterator[tuple[int, str, str, int]]:
        """(row, value, counted, total) of every row whose ``column`` an earlier row of the file has, in
        file order; streamed."""
        if self._copy_cm is not None:
            if self.buffer:
                self._copy.write("".join(self.buffer))
                self.buffer = []
            self._copy_cm.__exit__(None, None, None)
            self._copy_cm = self._copy = None
        assert column in {"number", "external_id"}
        query = (
            f"SELECT k.row_no, k.{column}, k.counted, k.total FROM import_keys k "  # noqa: S608
            f"JOIN (SELECT {column}, min(row_no) AS first FROM import_keys WHERE {column} <> '' "
            f"GROUP BY {column} HAVING count(*) > 1) d ON d.{column} = k.{column} AND k.row_no > d.first "
            "ORDER BY k.row_no"
        )
        for row_no, value, counted, total in self.conn.cursor().stream(query):
            yield row_no, _unkey(value), counted, total

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()  # its temporary table goes with it


def _key(text: str) -> str:
    """A value as COPY text: NUL, which PostgreSQL text cannot hold, becomes \\0 (one-to-one)."""
    if "\\" in text or "\x00" in text:
        text = text.replace("\\", "\\\\").replace("\x00", "\\0")
    return _esc(text)


def _unkey(text: str) -> str:
    if "\\" not in text:
        return text
    return re.sub(r"\\(\\|0)", lambda m: "\\" if m[1] == "\\" else "\x00", text)


def _csv_rows(lines: Iterator[str]) -> Iterator[list[str]]:
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


def check_rows(
    lines: Iterator[str],
    *,
    checker: _Checker,
    emit: Callable[[InvoiceRow], None],
    progress: Callable[[int], None] | None = None,
) -> None:
    """The hot loop: one pass, one invoice in memory; line checks are inlined (a million rows go through)."""
    result = checker.result
    error = result.error
    json_string = checker.json_string
    reader = _csv_rows(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFailed(_("The file is empty."), row=1) from None
    pos = _map_header(header)
    width = len(header)
    i_number = pos["invoice_number"]
    i_total = pos.get("total")
    i_item, i_price, i_category = pos["item"], pos["unit_price"], pos["tax_category"]
    i_quantity = pos.get("quantity")
    header_positions = [pos.get(name) for name in HEADER_FIELDS]
    # Every row gets one empty cell appended (index -1), which stands in for absent invoice columns,
    # so one C-level itemgetter yields the invoice columns in HEADER_FIELDS order.
    raw_header = operator.itemgetter(*(-1 if p is None else p for p in header_positions))
    pick = raw_header

    checker.header_of = raw_header
    checker.emit = emit
    categories = _CATEGORIES
    pending: _Pending | None = None
    row_no = 1
    rows = 0
    for row in reader:
        row_no += 1
        if len(row) != width:
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            error(
                row_no, "", _("has %(n)d fields; the header has %(width)d") % {"n": len(row), "width": width}
            )
            if pending is not None:
                pending.bad = True
            continue
        rows += 1
        row.append("")
        number = row[i_number].strip()
        if not number:
            error(row_no, "invoice_number", _("is required"))
            continue
        if pending is None or number != pending.number:
            if pending is not None:
                stored = checker.finish(pending)
                if stored is not None:
                    emit(stored)
            pending = _Pending(number, row_no, row)
        elif pick(row) != pick(pending.row):
            head, first = raw_header(row), raw_header(pending.row)
            differing = [
                HEADER_FIELDS[i]
                for i, (a, b) in enumerate(zip(head, first, strict=True))
                if a.strip() != b.strip()
            ]
            if differing:
                error(
                    row_no,
                    differing[0],
                    _(
                        "differs from row %(row)d of the same invoice %(number)s; "
                        "the invoice columns must repeat on every line"
                    )
                    % {"row": pending.first_row, "number": number},
                )
                pending.bad = True
                continue
        if i_total is not None:
            stated = row[i_total].strip()
            if stated:
                if pending.total and stated != pending.total:
                    error(
                        row_no,
                        "total",
                        _("says %(stated)s but an earlier line of invoice %(number)s says %(earlier)s")
                        % {"stated": stated, "number": number, "earlier": pending.total},
                    )
                    pending.bad = True
                pending.total = stated
        # the line: item, quantity, unit price, tax category
        ok = True
        item = row[i_item].strip()
        if not item:
            error(row_no, "item", _("is required"))
            ok = False
        elif len(item) > 100:
            error(row_no, "item", _("must be at most 100 characters"))
            ok = False
        elif "\x00" in item:
            error(row_no, "item", _("must not contain NUL characters"))
            ok = False
        quantity = 1
        if i_quantity is not None:
            q_text = row[i_quantity].strip()
            if q_text:
                try:
                    quantity = int(q_text.replace(",", ""))
                except ValueError:
                    quantity = 0
                if not 1 <= quantity <= 10_000_000 or not q_text.replace(",", "").isdigit():
                    error(
                        row_no,
                        "quantity",
                        _("must be a whole number from 1 to 10,000,000 (got %(text)r)") % {"text": q_text},
                    )
                    ok = False
        p_text = row[i_price].strip()
        try:
            unit_price = int(p_text)
        except ValueError:
            cleaned = p_text.replace(",", "").replace("¥", "").replace("円", "")
            digits = cleaned[1:] if cleaned.startswith("-") else cleaned
            unit_price = int(cleaned) if digits.isdigit() else None  # type: ignore[assignment]
        if unit_price is None or not -9_999_999_999 <= unit_price <= 9_999_999_999 or "_" in p_text:
            error(row_no, "unit_price", _("must be a whole number of yen (got %(text)r)") % {"text": p_text})
            ok = False
        c_text = row[i_category].strip()
        category = categories.get(c_text) or categories.get(c_text.lower())
        if category is None:
            error(
                row_no,
                "tax_category",
                _("unknown tax category %(text)r: use 10, 8 or exempt") % {"text": c_text},
            )
            ok = False
        if not ok:
            pending.bad = True
        else:
            amount = quantity * unit_price
            if category == "10":
                pending.sum_10 += amount
            elif category == "8":
                pending.sum_8 += amount
            else:
                pending.sum_exempt += amount
            pending.lines.append(
                f'{{"description":{json_string(item)},"quantity":{quantity},"unit_price":{unit_price},'
                f'"tax_category":"{category}","amount":{amount}}}'
            )
        if progress is not None and rows % PROGRESS_EVERY == 0:
            result.rows = rows
            progress(rows)
    if pending is not None:
        stored = checker.finish(pending)
        if stored is not None:
            emit(stored)
    checker.resolve()
    checker.report_duplicates()
    result.errors.sort(key=operator.attrgetter("row"))  # batch decisions and repeats report late
    result.rows = rows
    if rows == 0 and result.error_count == 0:
        raise ImportFailed(_("The file has a header but no invoice rows."), row=2)


# --- writing --------------------------------------------------------------------------------


def _esc(text: str) -> str:
    """Escape for COPY text format. ``str.translate`` is slow on non-ASCII text; ``in`` is not."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


_TEXT_COLUMNS = frozenset(
    i
    for i, name in enumerate(INVOICE_COLUMNS)
    if name in {"number", "external_id", "description", "lines", "recipient_name", "recipient_email"}
)
COPY_CHUNK = 1 << 20


class _Writer:
    """Stores invoice rows inside the open transaction, with a confirmation number when publishing.

    The customer number is not stored: it is a permutation of the id the database assigns
    (billing.numbers). On PostgreSQL rows are formatted as COPY text here and sent in 1 MB chunks
    through one COPY that stays open to the end, so PostgreSQL works while this process parses.

    PostgreSQL takes no COPY FROM into a table under row-level security (billing.dbsecurity): for a
    role it applies to, the COPY fills a temporary table of the same columns, and one INSERT … SELECT
    moves the rows in under the tenant policy whenever the COPY ends (``pause``, ``close``).
    """

    def __init__(self, *, biller: Biller, publish: bool) -> None:
        self.biller = biller
        self.publish = publish
        self.postgres = connection.vendor == "postgresql"
        self.buffer: list[InvoiceRow] = []
        self.text: list[str] = []
        self.text_size = 0
        self.confirmations: list[str] = []
        self._copy_cm: Any = None
        self._copy: Any = None
        self._dates: dict[Any, str] = {}
        self._timestamp: str | None = None
        self._staging: str | None = None  # the temporary table, under row-level security
        # A number twice in the file fails the COPY (the unique index): the writer stops and says so, the
        # check goes on to the end, and the staging of keys names the rows (_Checker.report_duplicates).
        self.failed: Exception | None = None
        self.on_failure: Callable[[], None] = lambda: None

    def _guarded(self, step: Callable[[], None]) -> None:
        if self.failed is not None:
            return
        try:
            step()
        except (IntegrityError, psycopg_errors.IntegrityError) as exc:
            self.failed = exc
            self.text, self.buffer = [], []
            self.abort()
            self.on_failure()

    def _date(self, value: datetime.date) -> str:
        text = self._dates.get(value)
        if text is None:
            text = self._dates[value] = value.isoformat()
        return text

    def _copy_line(self, r: InvoiceRow) -> str:
        """One row in COPY text format, laid out as INVOICE_COLUMNS (one f-string: ~1 µs a row)."""
        esc = _esc
        n = "\\N"
        return (
            f"{r[0]}\t{r[1]}\t{r[2]}\t{esc(r[3])}\t{esc(r[4])}\t{self._date(r[5])}\t"
            f"{self._date(r[6])}\t{esc(r[7])}\t{esc(r[8])}\t{'t' if r[9] else 'f'}\t{r[10]}\t"
            f"{r[11]}\t{r[12]}\t{r[13]}\t{r[14]}\t{r[15]}\t{r[16]}\t{r[17]}\t{esc(r[18])}\t"
            f"{esc(r[19])}\t{r[20] or n}\t{r[21]}\t{self._timestamp if r[22] else n}\t"
            f"{self._timestamp}\t{self._timestamp}\n"
        )

    def __call__(self, row: InvoiceRow) -> None:
        if self.failed is not None:
            return
        if self.publish:
            if not self.confirmations:
                self.confirmations = confirmation_numbers(CONFIRMATION_BLOCK)
            row = (*row[:20], self.confirmations.pop(), *row[21:])
        if self.postgres:
            if self._timestamp is None:
                self._timestamp = row[23].isoformat()
            line = self._copy_line(row)
            self.text.append(line)
            self.text_size += len(line)
            if self.text_size >= COPY_CHUNK:
                self._guarded(self._send)
        else:
            self.buffer.append(row)
            if len(self.buffer) >= 5000:
                self.flush()

    def _send(self) -> None:
        if not self.text:
            return
        if self._copy is None:
            cursor = connection.cursor().cursor  # the psycopg cursor under Django's wrapper
            table = self._copy_target(cursor)
            self._copy_cm = cursor.copy(f"COPY {table} ({', '.join(INVOICE_COLUMNS)}) FROM STDIN")
            self._copy = self._copy_cm.__enter__()
        self._copy.write("".join(self.text))
        self.text, self.text_size = [], 0

    def _copy_target(self, cursor: Any) -> str:
        if self._staging is None:
            cursor.execute("SELECT row_security_active('billing_invoice')")
            if not cursor.fetchone()[0]:
                self._staging = ""
            else:
                self._staging = "billing_invoice_import"
                cursor.execute(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {self._staging} ON COMMIT DROP AS "  # noqa: S608
                    f"SELECT {', '.join(INVOICE_COLUMNS)} FROM billing_invoice WITH NO DATA"
                )
        return self._staging or "billing_invoice"

    def _move_staged(self) -> None:
        if self._staging:
            columns = ", ".join(INVOICE_COLUMNS)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO billing_invoice ({columns}) SELECT {columns} FROM {self._staging}"  # noqa: S608
                )
                cursor.execute(f"TRUNCATE {self._staging}")

    def flush(self) -> None:
        if self.buffer:
            placeholders = ", ".join(["%s"] * len(INVOICE_COLUMNS))
            ops = connection.ops
            rows = [
                (
                    *r[:5],
                    ops.adapt_datefield_value(r[5]),
                    ops.adapt_datefield_value(r[6]),
                    *r[7:22],
                    ops.adapt_datetimefield_value(r[22]),
                    ops.adapt_datetimefield_value(r[23]),
                    ops.adapt_datetimefield_value(r[24]),
                )
                for r in self.buffer
            ]
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO billing_invoice ({', '.join(INVOICE_COLUMNS)}) VALUES ({placeholders})",  # noqa: S608
                    rows,
                )
            self.buffer = []

    def pause(self) -> None:
        """End the open COPY (the next row starts another), so the connection can run a query: a COPY
        holds its connection until it ends, and a lookup on it would wait for ever."""
        self._guarded(self._pause)

    def _pause(self) -> None:
        self._send()
        if self._copy_cm is not None:
            self._copy_cm.__exit__(None, None, None)
            self._copy_cm = self._copy = None
            self._move_staged()

    def close(self) -> None:
        self._guarded(self._close)

    def _close(self) -> None:
        self.flush()
        self._send()
        if self._copy_cm is not None:
            self._copy_cm.__exit__(None, None, None)
            self._copy_cm = self._copy = None
            self._move_staged()

    def abort(self) -> None:
        self.text, self.buffer = [], []
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
        raise ImportFailed(_("The file is empty."), row=1)
    chosen = encoding or detect_encoding(sample)
    if chosen == "utf-8" and sample.startswith(codecs.BOM_UTF8):
        chosen = "utf-8-sig"
    try:
        codecs.lookup(chosen)
    except LookupError as exc:
        raise ImportFailed(_("Unknown encoding %(name)r.") % {"name": chosen}) from exc
    result = ImportResult(encoding=chosen)
    counter = _CountingReader(raw)
    now = timezone.now()

    def progress(rows: int) -> None:
        if job_id is not None:
            cache.set(progress_key(job_id), {"rows": rows, "bytes": counter.offset, "size": file_size}, 3600)

    checker = _Checker(biller=biller, result=result, publish=publish, now=now)
    if connection.vendor == "postgresql":
        checker.keys = _KeyStage()
    try:
        if not write:
            check_rows(
                _decoded_lines(raw, chosen, counter),
                checker=checker,
                emit=lambda row: None,
                progress=progress,
            )
            return result
        return _write(raw, chosen, counter, checker, progress)
    finally:
        if checker.keys is not None:
            checker.keys.close()


def _write(
    raw: IO[bytes],
    encoding: str,
    counter: _CountingReader,
    checker: _Checker,
    progress: Callable[[int], None],
) -> ImportResult:
    result = checker.result
    writer = _Writer(biller=checker.biller, publish=checker.publish)
    checker.before_lookup = writer.pause

    def failed() -> None:
        checker.lookups_failed = True  # the transaction is lost: no more lookups on its connection

    writer.on_failure = failed
    try:
        with transaction.atomic():
            check_rows(
                _decoded_lines(raw, encoding, counter), checker=checker, emit=writer, progress=progress
            )
            if result.ok:
                writer.close()
            if writer.failed is not None and result.ok:
                raise writer.failed  # not a number twice in this file: another writer raced this one
            if not result.ok:
                writer.abort()
                raise _RollBack
            result.written = result.invoices_new > 0
    except _RollBack:
        result.written = False
    except BaseException:
        writer.abort()
        raise
    if result.written and result.invoices_new >= ANALYZE_AFTER_INVOICES and connection.vendor == "postgresql":
        # Statistics for the planner now, not when autovacuum comes by (billing.dbsecurity.analyze).
        dbsecurity.analyze(connection, Invoice._meta.db_table)
    return result


class _RollBack(Exception):
    pass
