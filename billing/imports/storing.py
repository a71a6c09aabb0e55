"""Storing checked invoice rows: PostgreSQL's COPY (through a staging table under row-level security),
or batched INSERTs elsewhere."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, connection
from psycopg import errors as psycopg_errors

import billing.imports.limits as limits
from billing.imports.records import INVOICE_COLUMNS, INVOICE_TABLE, InvoiceRow
from billing.imports.results import ImportFailed
from billing.models import Biller
from billing.numbers import confirmation_numbers

_COLUMN_LIST = ", ".join(INVOICE_COLUMNS)


def copy_escape(text: str) -> str:
    """Escape for COPY text format. ``str.translate`` is slow on non-ASCII text; ``in`` is not."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


class InvoiceWriter:
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
        self.buffer: list[tuple[InvoiceRow, str | None]] = []
        self.text: list[str] = []
        self.text_size = 0
        self.confirmations: list[str] = []
        self._copy_cm: Any = None
        self._copy: Any = None
        self._dates: dict[Any, str] = {}
        self._timestamp: str | None = None
        self._staging: str | None = None  # the temporary table, under row-level security
        # A number twice in the file fails the COPY (the unique index): the writer stops and says so, the
        # check goes on to the end, and the staging of keys names the rows (InvoiceChecker.duplicates_report).
        self.failed: Exception | None = None
        self.on_failure: Callable[[], None] = lambda: None

    def __call__(self, row: InvoiceRow) -> None:
        if self.failed is not None:
            return
        confirmation = None
        if self.publish:
            if not self.confirmations:
                self.confirmations = confirmation_numbers(limits.CONFIRMATION_BLOCK)
            confirmation = self.confirmations.pop()
        if self.postgres:
            if self._timestamp is None:
                self._timestamp = row.created_at.isoformat()
            line = self._copy_line(row, confirmation)
            self.text.append(line)
            self.text_size += len(line)
            if self.text_size >= limits.COPY_CHUNK:
                self._guarded(self._send)
        else:
            self.buffer.append((row, confirmation))
            if len(self.buffer) >= limits.INSERT_BATCH:
                self.flush()

    def pause(self) -> None:
        """End the open COPY (the next row starts another), so the connection can run a query: a COPY
        holds its connection until it ends, and a lookup on it would wait for ever."""
        self._guarded(self._pause)

    def close(self) -> None:
        self._guarded(self._close)

    def abort(self) -> None:
        self.text, self.buffer = [], []
        if self._copy_cm is not None:
            with contextlib.suppress(Exception):  # the transaction is rolled back anyway
                self._copy_cm.__exit__(ImportFailed, ImportFailed("aborted"), None)
            self._copy_cm = self._copy = None

    def flush(self) -> None:
        """INSERT the buffered rows (where there is no COPY)."""
        if not self.buffer:
            return
        placeholders = ", ".join(["%s"] * len(INVOICE_COLUMNS))
        date, timestamp = connection.ops.adapt_datefield_value, connection.ops.adapt_datetimefield_value
        rows = [
            (
                *r[:5],
                date(r.issue_date),
                date(r.due_date),
                *r[7:20],
                confirmation,
                r.source_hash,
                timestamp(r.published_at),
                timestamp(r.created_at),
                timestamp(r.updated_at),
            )
            for r, confirmation in self.buffer
        ]
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {INVOICE_TABLE} ({_COLUMN_LIST}) VALUES ({placeholders})",  # noqa: S608
                rows,
            )
        self.buffer = []

    # --- the COPY --------------------------------------------------------------------------------------

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

    def _copy_line(self, row: InvoiceRow, confirmation: str | None) -> str:
        """One row in COPY text format, laid out as INVOICE_COLUMNS (one f-string: ~1 µs a row)."""
        (
            biller_id,
            kind,
            customer_id,
            number,
            external_id,
            issue_date,
            due_date,
            description,
            lines,
            tax_inclusive,
            tax_rounding,
            subtotal_10,
            tax_10,
            subtotal_8,
            tax_8,
            subtotal_exempt,
            total,
            status,
            recipient_name,
            recipient_email,
            _unset,
            source_hash,
            published_at,
            _created,
            _updated,
        ) = row
        esc, date, now, null = copy_escape, self._date, self._timestamp, "\\N"
        return (
            f"{biller_id}\t{kind}\t{customer_id}\t{esc(number)}\t{esc(external_id)}\t{date(issue_date)}\t"
            f"{date(due_date)}\t{esc(description)}\t{esc(lines)}\t{'t' if tax_inclusive else 'f'}\t"
            f"{tax_rounding}\t{subtotal_10}\t{tax_10}\t{subtotal_8}\t{tax_8}\t{subtotal_exempt}\t{total}\t"
            f"{status}\t{esc(recipient_name)}\t{esc(recipient_email)}\t{confirmation or null}\t"
            f"{source_hash}\t{now if published_at else null}\t{now}\t{now}\n"
        )

    def _send(self) -> None:
        if not self.text:
            return
        if self._copy is None:
            cursor = connection.cursor().cursor  # the psycopg cursor under Django's wrapper
            table = self._copy_target(cursor)
            self._copy_cm = cursor.copy(f"COPY {table} ({_COLUMN_LIST}) FROM STDIN")
            self._copy = self._copy_cm.__enter__()
        self._copy.write("".join(self.text))
        self.text, self.text_size = [], 0

    def _copy_target(self, cursor: Any) -> str:
        if self._staging is None:
            cursor.execute("SELECT row_security_active(%s::text)", [INVOICE_TABLE])
            if not cursor.fetchone()[0]:
                self._staging = ""
            else:
                self._staging = f"{INVOICE_TABLE}_import"
                cursor.execute(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {self._staging} ON COMMIT DROP AS "  # noqa: S608
                    f"SELECT {_COLUMN_LIST} FROM {INVOICE_TABLE} WITH NO DATA"
                )
        return self._staging or INVOICE_TABLE

    def _pause(self) -> None:
        self._send()
        if self._copy_cm is not None:
            self._copy_cm.__exit__(None, None, None)
            self._copy_cm = self._copy = None
            self._move_staged()

    def _close(self) -> None:
        self.flush()
        self._pause()

    def _move_staged(self) -> None:
        if self._staging:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {INVOICE_TABLE} ({_COLUMN_LIST}) "  # noqa: S608
                    f"SELECT {_COLUMN_LIST} FROM {self._staging}"
                )
                cursor.execute(f"TRUNCATE {self._staging}")
