"""Invoice numbers and external ids: which ones the file repeats, and which ones are already stored.

On PostgreSQL every checked invoice's keys are staged by COPY into a temporary table of a connection of
their own (``KeyStage``), and one query at the end finds the repeats; elsewhere the checker keeps sets
of their hashes. ``stored_keys`` looks a batch of keys up among the invoices already stored.
"""

from __future__ import annotations

import contextlib
import datetime
import re
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import connection

import billing.imports.limits as limits
from billing.imports.records import INVOICE_TABLE, column
from billing.imports.storing import copy_escape
from billing.models import Invoice


class KeyStage:
    """Every checked invoice's number and external id, staged in a temporary table of a connection of its
    own (COPY, kept open: PostgreSQL files them while this process parses), so that finding the ones that
    appear twice costs no memory here, whatever the size of the file. A connection of its own: the
    import's COPY holds the other one, and a number twice makes the import's transaction fail — this one
    still answers which rows it was.

    ``counted`` says how the invoice was counted: n new, u unchanged, - not at all (in error)."""

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
        if len(self.buffer) >= limits.KEY_FLUSH:
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
    return copy_escape(text)


def _unkey(text: str) -> str:
    if "\\" not in text:
        return text
    return re.sub(r"\\(\\|0)", lambda m: "\\" if m[1] == "\\" else "\x00", text)


def stored_keys(
    *, biller_id: int, numbers: Sequence[str], externals: Sequence[str], not_created_at: datetime.datetime
) -> list[tuple[str, str, str]]:
    """(number, external id, content hash) of the biller's stored invoices with one of these numbers or
    external ids — not the rows this import stored itself (they share its created_at): a number twice in
    the file is named as such by the staging of keys, not as "already exists"."""
    if connection.vendor == "postgresql":
        # one array parameter per key list, each an index probe per key: ~40 ms for 5,000 invoices
        # (an ORM IN list of 5,000 placeholders is ten times slower, an OR of the two a table scan)
        biller, number, external, source = (
            column(name) for name in ("biller", "number", "external_id", "source_hash")
        )
        created, table = column("created_at"), INVOICE_TABLE
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {number}, {external}, {source} FROM {table} "  # noqa: S608
                f"WHERE {biller} = %s AND {number} = ANY(%s) AND {created} <> %s UNION "
                f"SELECT {number}, {external}, {source} FROM {table} "
                f"WHERE {biller} = %s AND {external} = ANY(%s) AND {external} <> '' AND {created} <> %s",
                [biller_id, list(numbers), not_created_at, biller_id, list(externals), not_created_at],
            )
            return cursor.fetchall()
    of_biller = Invoice.objects.filter(biller_id=biller_id)
    columns = ("number", "external_id", "source_hash")
    found = list(of_biller.filter(number__in=numbers).values_list(*columns))
    found += of_biller.filter(external_id__in=externals).values_list(*columns)
    return found
