"""Sizes and thresholds of the CSV import, in one module so tests can shrink them (monkeypatch here).

The other modules read them as ``limits.NAME`` when they run, never copy them at import time.
"""

from __future__ import annotations

MAX_ERRORS_KEPT = 1000  # problems kept with the job; more are only counted
CONFIRMATION_BLOCK = 50_000  # confirmation numbers drawn at a time when publishing
PROGRESS_EVERY = 20_000  # rows between two progress reports
LOOKUP_BATCH = 5_000  # invoices decided per query against what is stored
ANALYZE_AFTER_INVOICES = 10_000  # an import this large refreshes the planner's statistics
CACHE_ENTRIES = 50_000  # per-string caches stop growing here: a file of all-different values stays flat
COPY_CHUNK = 1 << 20  # bytes of COPY text sent at a time
INSERT_BATCH = 5_000  # rows per executemany where there is no COPY (SQLite)
KEY_FLUSH = 20_000  # staged keys sent at a time
