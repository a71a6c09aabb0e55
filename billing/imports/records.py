"""The shapes an import passes along: an invoice whose rows are being read, and a checked invoice row.

``InvoiceRow`` is a NamedTuple (a tuple: cheap to build a million of, unpacked in one step for COPY);
its field names are the invoice model's attribute names, and ``INVOICE_COLUMNS`` their columns.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import models

from billing.models import Invoice


class InvoiceRow(NamedTuple):
    """One invoice as stored, in the order of ``INVOICE_COLUMNS``."""

    biller_id: int
    kind: str
    customer_id: int
    number: str
    external_id: str
    issue_date: datetime.date
    due_date: datetime.date
    description: str
    lines_json: str  # the lines as JSON text
    tax_inclusive: bool
    tax_rounding: str
    subtotal_10: int
    tax_10: int
    subtotal_8: int
    tax_8: int
    subtotal_exempt: int
    total: int
    status: str
    recipient_name: str
    recipient_email: str
    confirmation_number: str | None  # given by the writer when publishing
    source_hash: str
    published_at: datetime.datetime | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


def column(name: str) -> str:
    """The database column of the invoice field (or attribute) ``name``."""
    field = Invoice._meta.get_field(name)
    assert isinstance(field, models.Field)
    return str(field.column)


INVOICE_TABLE: str = Invoice._meta.db_table
INVOICE_COLUMNS: tuple[str, ...] = tuple(column(name) for name in InvoiceRow._fields)


@dataclass(slots=True)
class PendingInvoice:
    """An invoice whose rows are still being read: its first row, its checked lines and their sums."""

    number: str
    first_row: int
    row: list[str]  # the invoice's first row: its invoice columns are read from it when it is complete
    total: str = ""  # the total the file states (the first line that states one), as written
    total_row: int = 0  # the row that states it
    lines: list[str] = field(default_factory=list)  # each line already as JSON
    sum_10: int = 0
    sum_8: int = 0
    sum_exempt: int = 0
    bad: bool = False  # a problem was reported: the invoice is not stored
    bad_lines: bool = False  # a line could not be read: its total cannot be computed (nor checked)
