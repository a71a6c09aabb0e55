"""The import as a whole: read, check and (with ``write``) store a file, all or nothing, with progress."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

import billing.imports.limits as limits
from billing import dbsecurity
from billing.imports.checking import InvoiceChecker
from billing.imports.keys import KeyStage
from billing.imports.reading import CountingReader, decoded_lines, encoding_choose
from billing.imports.records import INVOICE_TABLE
from billing.imports.results import ImportResult
from billing.imports.scanning import check_rows
from billing.imports.storing import InvoiceWriter
from billing.models import Biller


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
    chosen = encoding_choose(raw, encoding=encoding)
    result = ImportResult(encoding=chosen)
    counter = CountingReader(raw)

    def progress(rows: int) -> None:
        if job_id is not None:
            cache.set(progress_key(job_id), {"rows": rows, "bytes": counter.offset, "size": file_size}, 3600)

    checker = InvoiceChecker(biller=biller, result=result, publish=publish, now=timezone.now())
    if connection.vendor == "postgresql":
        checker.keys = KeyStage()
    try:
        lines = decoded_lines(chosen, counter)
        if not write:
            check_rows(lines, checker=checker, emit=lambda row: None, progress=progress)
            return result
        _store(lines, checker, progress)
        if result.written and result.invoices_new >= limits.ANALYZE_AFTER_INVOICES:
            _analyze()
        return result
    finally:
        if checker.keys is not None:
            checker.keys.close()


def _store(lines: Iterator[str], checker: InvoiceChecker, progress: Callable[[int], None]) -> None:
    """Check and store in one transaction; any error in the file rolls all of it back."""
    result = checker.result
    writer = InvoiceWriter(biller=checker.biller, publish=checker.publish)
    checker.before_lookup = writer.pause

    def failed() -> None:
        checker.lookups_failed = True  # the transaction is lost: no more lookups on its connection

    writer.on_failure = failed
    try:
        with transaction.atomic():
            check_rows(lines, checker=checker, emit=writer, progress=progress)
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


def _analyze() -> None:
    """Statistics for the planner now, not when autovacuum comes by (billing.dbsecurity.analyze)."""
    if connection.vendor == "postgresql":
        dbsecurity.analyze(connection, INVOICE_TABLE)


class _RollBack(Exception):
    pass
