"""What an import reports: the file that cannot be read at all, and the result with its row errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import billing.imports.limits as limits


def storable(text: str) -> str:
    """Text quoted from the file, fit to be stored with the job: PostgreSQL text and JSON hold no NUL."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


class ImportFailed(Exception):
    """The file cannot be read at all (encoding, header): nothing was checked further."""

    def __init__(self, message: str, *, row: int | None = None, column: str = "") -> None:
        message, column = storable(message), storable(column)
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
        if len(self.errors) < limits.MAX_ERRORS_KEPT:
            self.errors.append(RowError(row, storable(column), storable(message)))

    @property
    def ok(self) -> bool:
        return self.error_count == 0
