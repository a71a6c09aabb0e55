"""CSV import of invoices: one row per line item, rows of one invoice together.

The same pass serves the preview (nothing written) and the import (all or nothing, in one transaction).
It streams: memory holds one invoice at a time and bounded buffers, whatever the size of the file. On
PostgreSQL rows go in through COPY, and every invoice's number and external id is staged through a COPY
of its own into a temporary table on a second connection, where one query at the end finds the numbers
and external ids that appear twice in the file (elsewhere, in SQLite, a set of their hashes is kept in
memory).

Re-importing is idempotent by external id (or by invoice number when the file has no external ids): an
invoice already imported with the same content is counted as unchanged, with other content it is an
error.

Every problem is reported with its row (as a spreadsheet numbers it: the header is row 1), its column
and the reason, every problem of a row at once (not the first); the first 1,000 are kept.

The modules, in the order a file goes through them:

- ``reading``: encoding, decoded lines, CSV rows, the header;
- ``scanning``: the hot loop, rows into pending invoices, each line checked;
- ``checking``: a complete invoice checked into its ``records.InvoiceRow``, decided against what is
  stored, and what the file repeats;
- ``keys``: the staging of numbers and external ids, and the lookup of stored ones;
- ``storing``: COPY (under row-level security through a staging table) or INSERT;
- ``flow``: ``run``, the whole import; ``results``: what it reports; ``limits``: its sizes;
- ``columns``: the columns as people read them (``column_label``), for every report of an import.
"""

from __future__ import annotations

import billing.imports.limits as limits
from billing.imports.columns import COLUMN_NAMES, ColumnHelp, column_help, column_label
from billing.imports.flow import progress_key, run
from billing.imports.reading import COLUMNS, HEADER_FIELDS, REQUIRED, detect_encoding
from billing.imports.records import INVOICE_COLUMNS, INVOICE_TABLE, InvoiceRow
from billing.imports.results import ImportFailed, ImportResult, RowError
from billing.imports.scanning import check_rows

__all__ = [
    "COLUMNS",
    "COLUMN_NAMES",
    "HEADER_FIELDS",
    "INVOICE_COLUMNS",
    "INVOICE_TABLE",
    "REQUIRED",
    "ColumnHelp",
    "ImportFailed",
    "ImportResult",
    "InvoiceRow",
    "RowError",
    "check_rows",
    "column_help",
    "column_label",
    "detect_encoding",
    "limits",
    "progress_key",
    "run",
]
