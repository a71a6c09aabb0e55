"""Every CSV the product writes for a spreadsheet goes through here (formula injection, OWASP).

A spreadsheet (Excel, LibreOffice, Google Sheets) runs a cell that begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return as a formula: a description such as ``=cmd|'/c calc'!A1`` or
``@SUM(A1)`` that a customer, an import file or an API client wrote would run on the desk of whoever
opens the export. :func:`safe_cell` neutralises such a text cell by putting a single quote ``'`` in
front of it (the spreadsheet then shows the text as it is, the quote marking it as text).

Numbers stay numbers: an ``int``, a ``Decimal`` or a ``float`` (an amount, a count, a row number) is
written as it is, and so is a text cell that is a plain decimal number (``-1200``, ``+5``, ``3.5``),
which a spreadsheet reads as that number and nothing else. Anything else that begins with one of those
characters is quoted: ``-2+3`` and ``+1+1`` become ``'-2+3`` and ``'+1+1``.

Use :func:`writer` instead of ``csv.writer``; a test refuses ``csv.writer`` anywhere else. What the
product *reads* (invoice imports, teller files) is not touched by this module.
"""

from __future__ import annotations

import csv
import decimal
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_STARTS", "SafeWriter", "safe_cell", "writer"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet cell that cannot be a formula (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float | decimal.Decimal):
        return value
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeWriter:
    """``csv.writer`` whose rows pass through :func:`safe_cell`, cell by cell."""

    def __init__(self, out: Any, **fmtparams: Any) -> None:
        self._writer = csv.writer(out, **fmtparams)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: Any, **fmtparams: Any) -> SafeWriter:
    """The one CSV writer of the product: ``csv.writer(out, **fmtparams)`` with safe cells."""
    return SafeWriter(out, **fmtparams)
