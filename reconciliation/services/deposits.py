"""The biller's money: deposit statements imported from its bank account (all rows or none) and each
bank's lag, the business days from a processing date to the day the bank's funds arrive.

The statement CSV (docs/deposit-statements.md): UTF-8 (with or without BOM) or cp932, a header row, the
columns 入金日 / value_date, 金融機関コード / bank_code, 金額 / amount and optionally 摘要 / description
(others are ignored). Every problem of the file is collected and reported by row, column and byte
offset; a file with any problem stores nothing. The reconciliation run imports ``lags_of``, ``lag_for`` and
``value_date_for`` from here.
"""

from __future__ import annotations

import codecs
import datetime
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from billing.errors import Conflict, NotFound, ValidationFailed
from billing.imports.reading import csv_rows
from billing.imports.results import ImportFailed, storable
from billing.models import ApiKey, Biller, User
from billing.services.audit import audit_record, snapshot
from payeasy.banks import bank_get
from reconciliation.calendar import business_day_add
from reconciliation.models import Deposit, DepositLag, DepositStatement
from reconciliation.selectors.deposits import lags_of

__all__ = [
    "MAX_BYTES",
    "MAX_ERRORS",
    "MAX_ROWS",
    "StatementInvalid",
    "StatementProblem",
    "deposit_lag_delete",
    "deposit_lag_save",
    "deposit_statement_import",
    "lag_for",
    "lags_of",
    "value_date_for",
]

# Limits, read when an import runs (tests shrink them with monkeypatch).
MAX_BYTES = 10 * 1024 * 1024  # a statement file
MAX_ROWS = 100_000  # deposits in one statement
MAX_ERRORS = 100  # problems reported; more are only counted
MAX_AMOUNT = 999_999_999_999  # one deposit, yen
INSERT_BATCH = 2_000
MAX_LAG_DAYS = 30

# canonical column → accepted header names (Japanese first; compared without case and surrounding blanks)
COLUMNS: dict[str, tuple[str, ...]] = {
    "value_date": ("入金日", "value_date"),
    "bank_code": ("金融機関コード", "bank_code"),
    "amount": ("金額", "amount"),
    "description": ("摘要", "description"),
}
REQUIRED = ("value_date", "bank_code", "amount")
HEADER_NAMES = {alias.lower(): name for name, aliases in COLUMNS.items() for alias in aliases}
DESCRIPTION_MAX = 100

# full-width digits and separators as typed in a Japanese spreadsheet → ASCII
_WIDE = str.maketrans("０１２３４５６７８９，／－", "0123456789,/-")
_DATE = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})|([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})|([0-9]{4})([0-9]{2})([0-9]{2})",
    re.ASCII,
)
_AMOUNT = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+", re.ASCII)
_BANK = re.compile(r"[0-9]{1,4}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LOCK_CLASS = 0x4450  # pg_advisory_xact_lock's first key: the deposit imports of one biller


# --- what an import reports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementProblem:
    """One problem of a statement file: its row (1 = the header; None: the file as a whole), the column
    as the file names it, what is wrong, and the byte offset where the row starts."""

    row: int | None
    column: str
    message: str
    offset: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message, "offset": self.offset}


class StatementInvalid(ValidationFailed):
    """The statement cannot be imported: nothing was stored. ``problems``: the first ``MAX_ERRORS``,
    ``error_count``: all of them."""

    code = "statement_invalid"

    def __init__(self, problems: list[StatementProblem], *, error_count: int | None = None) -> None:
        self.problems = problems
        self.error_count = len(problems) if error_count is None else error_count
        if self.error_count == 1 and problems:
            summary = problems[0].message
        else:
            summary = _("The statement has %(count)d problems; nothing was imported.") % {
                "count": self.error_count
            }
        super().__init__({"file": [summary]})


class _Problems:
    def __init__(self) -> None:
        self.kept: list[StatementProblem] = []
        self.count = 0

    def add(self, row: int | None, column: str, message: str, offset: int | None = None) -> None:
        self.count += 1
        if len(self.kept) < MAX_ERRORS:
            self.kept.append(StatementProblem(row, storable(column), storable(message), offset))

    def raise_any(self) -> None:
        if self.count:
            raise StatementInvalid(self.kept, error_count=self.count)


def _refuse(
    message: str, *, row: int | None = None, column: str = "", offset: int | None = None
) -> StatementInvalid:
    return StatementInvalid([StatementProblem(row, storable(column), storable(message), offset)])


# --- reading the file ------------------------------------------------------------------------------------


def _decode(data: bytes) -> tuple[str, str]:
    """The text and its encoding: valid UTF-8 (a BOM allowed) is UTF-8, anything else must be cp932."""
    bom = data.startswith(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8-sig"), ("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        if bom:
            raise _refuse(
                _(
                    "The file starts as UTF-8 (BOM) but byte offset %(offset)d is not UTF-8. "
                    "Re-save it as CSV UTF-8."
                )
                % {"offset": exc.start},
                offset=exc.start,
            ) from exc
    try:
        return data.decode("cp932"), "cp932"
    except UnicodeDecodeError as exc:
        raise _refuse(
            _(
                "The file is neither UTF-8 nor Shift_JIS (cp932): byte offset %(offset)d cannot be read. "
                "Save it from the spreadsheet as CSV UTF-8 or CSV (Shift_JIS)."
            )
            % {"offset": exc.start},
            offset=exc.start,
        ) from exc


class _Lines:
    """The file's lines (universal newlines kept, as csv wants them) and the bytes read so far."""

    def __init__(self, text: str, encoding: str) -> None:
        self.text = text
        self.encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        self.offset = 3 if encoding == "utf-8-sig" else 0

    def __iter__(self) -> Iterator[str]:
        for line in io.StringIO(self.text, newline=""):
            self.offset += len(line.encode(self.encoding, "replace"))
            yield line


@dataclass(frozen=True)
class _Row:
    row: int
    value_date: datetime.date
    bank_code: str
    amount: int
    description: str


def _date(cell: str) -> tuple[datetime.date | None, str]:
    text = cell.strip().translate(_WIDE)
    if not text:
        return None, _("The value date is missing.")
    match = _DATE.fullmatch(text)
    if match is None:
        return None, _("%(value)r is not a date: write YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD.") % {
            "value": cell[:40]
        }
    year, month, day = (int(g) for g in match.groups() if g is not None)
    try:
        value = datetime.date(year, month, day)
    except ValueError:
        return None, _("%(value)r is not a date of the calendar.") % {"value": cell[:40]}
    if not 2000 <= value.year <= 2099:
        return None, _("%(value)r is outside the years 2000–2099.") % {"value": cell[:40]}
    return value, ""


def _bank(cell: str) -> tuple[str | None, str]:
    text = cell.strip().translate(_WIDE)
    if not text:
        return None, _("The bank code is missing.")
    if _BANK.fullmatch(text) is None:
        return None, _("%(value)r is not a bank code: four digits (0005, 0009, …).") % {"value": cell[:40]}
    code = text.zfill(4)
    if bank_get(code) is None:
        return None, _("Bank code %(code)s is not in the 全銀 bank directory.") % {"code": code}
    return code, ""


def _amount(cell: str) -> tuple[int | None, str]:
    text = cell.strip().translate(_WIDE)
    if not text:
        return None, _("The amount is missing.")
    if _AMOUNT.fullmatch(text) is None:
        return None, _(
            "%(value)r is not an amount: whole yen in digits, commas between thousands allowed (12,345)."
        ) % {"value": cell[:40]}
    value = int(text.replace(",", ""))
    if value <= 0:
        return None, _("The amount must be more than 0 yen (list credits only).")
    if value > MAX_AMOUNT:
        return None, _("%(value)r is more than one deposit can be.") % {"value": cell[:40]}
    return value, ""


def _description(cell: str) -> tuple[str | None, str]:
    text = cell.strip()
    if _CONTROL.search(text):
        return None, _("The description contains a control character (tab, line break or NUL).")
    if len(text) > DESCRIPTION_MAX:
        return None, _("The description is %(length)d characters long; at most %(max)d.") % {
            "length": len(text),
            "max": DESCRIPTION_MAX,
        }
    return text, ""


CHECKS = {"value_date": _date, "bank_code": _bank, "amount": _amount, "description": _description}


def _header(cells: list[str], problems: _Problems) -> dict[str, tuple[int, str]]:
    """Canonical column → (position, the name the file gives it). Unknown columns are ignored."""
    found: dict[str, tuple[int, str]] = {}
    for i, name in enumerate(cells):
        key = HEADER_NAMES.get(name.strip().lstrip("\ufeff").lower())
        if key is None:
            continue
        if key in found:
            problems.add(1, name, _("The column %(name)r appears twice.") % {"name": name}, 0)
            continue
        found[key] = (i, name.strip())
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        problems.add(
            1,
            "",
            _("The header row must name the columns %(columns)s (Japanese or English names).")
            % {"columns": ", ".join(f"{COLUMNS[c][0]} / {c}" for c in missing)},
            0,
        )
    return found


def _parse(text: str, encoding: str, problems: _Problems) -> list[_Row]:
    """Every deposit of the file; what is wrong goes to ``problems``."""
    lines = _Lines(text, encoding)
    records = csv_rows(iter(lines))
    out: list[_Row] = []
    columns: dict[str, tuple[int, str]] | None = None
    number = 0
    data_rows = 0
    while True:
        start = lines.offset
        try:
            cells = next(records)
        except StopIteration:
            break
        except ImportFailed as exc:
            problems.add(exc.row, "", exc.message, start)
            break
        number += 1
        if columns is None:
            columns = _header(cells, problems)
            if problems.count:
                return out
            continue
        if not any(c.strip() for c in cells):
            continue  # a blank line, or a row of empty cells as spreadsheets leave them
        data_rows += 1
        if data_rows > MAX_ROWS:
            problems.add(
                number,
                "",
                _("The statement has more than %(max)s deposits: split it.") % {"max": f"{MAX_ROWS:,}"},
                start,
            )
            break
        values: dict[str, Any] = {}
        for key, (position, name) in columns.items():
            cell = cells[position] if position < len(cells) else ""
            value, message = CHECKS[key](cell)
            if message:
                problems.add(number, name, message, start)
            values[key] = value
        if all(values.get(key) is not None for key in REQUIRED):
            out.append(
                _Row(
                    number,
                    values["value_date"],
                    values["bank_code"],
                    values["amount"],
                    values.get("description") or "",
                )
            )
    if columns is None:
        problems.add(None, "", _("The file is empty: it needs a header row and at least one deposit."), 0)
    elif not data_rows and not problems.count:
        problems.add(None, "", _("The file has a header row but no deposits."), lines.offset)
    return out


def _already_imported(biller: Biller, rows: list[_Row], problems: _Problems) -> None:
    """A deposit's value date and bank already in another statement would count twice: a problem."""
    first, last = min(r.value_date for r in rows), max(r.value_date for r in rows)
    taken: dict[tuple[datetime.date, str], str] = {}
    for day, bank, name in (
        Deposit.objects.for_biller(biller)
        .filter(value_date__gte=first, value_date__lte=last, bank_code__in={r.bank_code for r in rows})
        .values_list("value_date", "bank_code", "statement__name")
        .order_by()
        .distinct()
    ):
        taken.setdefault((day, bank), name)
    if not taken:
        return
    for row in rows:
        earlier = taken.get((row.value_date, row.bank_code))
        if earlier is not None:
            problems.add(
                row.row,
                "",
                _(
                    "Deposits from bank %(bank)s on %(date)s were already imported with the statement "
                    "%(name)r: they would count twice. Leave that day out of this file."
                )
                % {"bank": row.bank_code, "date": row.value_date.isoformat(), "name": earlier},
            )


def _lock_imports(biller: Biller) -> None:
    """Imports of one biller one at a time (the check for deposits already imported stays true)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, biller.pk % (1 << 31)])


# --- the services -----------------------------------------------------------------------------------------


def deposit_statement_import(
    *, actor: User | ApiKey | None, biller: Biller, name: str, data: bytes
) -> DepositStatement:
    """Import one deposit statement CSV of ``biller``: all rows or none.

    ``StatementInvalid`` lists the problems (row, column, message, byte offset) when anything is wrong;
    ``Conflict`` when the same file (SHA-256) was imported before.
    """
    if len(data) > MAX_BYTES:
        raise _refuse(
            _("The file is larger than %(max)s bytes, the most a statement may be. Split it by period.")
            % {"max": f"{MAX_BYTES:,}"}
        )
    if not data.strip(b"\xef\xbb\xbf \t\r\n"):
        raise _refuse(_("The file is empty: it needs a header row and at least one deposit."))
    digest = hashlib.sha256(data).hexdigest()
    name = (name or "statement.csv").replace("\x00", "")[:200]
    if DepositStatement.objects.for_biller(biller).filter(sha256=digest).exists():
        raise Conflict(
            _("This statement was imported before (same file): nothing was imported."), code="duplicate"
        )
    text, encoding = _decode(data)
    problems = _Problems()
    rows = _parse(text, encoding, problems)
    problems.raise_any()
    with transaction.atomic():
        _lock_imports(biller)
        _already_imported(biller, rows, problems)
        problems.raise_any()
        try:
            with transaction.atomic():
                statement = DepositStatement.objects.create(
                    biller=biller,
                    name=name,
                    sha256=digest,
                    encoding=encoding,
                    first_date=min(r.value_date for r in rows),
                    last_date=max(r.value_date for r in rows),
                    row_count=len(rows),
                    total=sum(r.amount for r in rows),
                    imported_by=actor if isinstance(actor, User) else None,
                )
        except IntegrityError as exc:
            raise Conflict(
                _("This statement was imported before (same file): nothing was imported."), code="duplicate"
            ) from exc
        Deposit.objects.bulk_create(
            (
                Deposit(
                    biller=biller,
                    statement=statement,
                    row=r.row,
                    value_date=r.value_date,
                    bank_code=r.bank_code,
                    amount=r.amount,
                    description=r.description,
                )
                for r in rows
            ),
            batch_size=INSERT_BATCH,
        )
        audit_record(
            actor=actor,
            action="deposit_statement.import",
            biller=biller,
            target=statement,
            summary=f"{statement.name}: {statement.row_count} deposits ¥{statement.total:,}",
            after=snapshot(
                statement, ["name", "sha256", "encoding", "first_date", "last_date", "row_count", "total"]
            ),
        )
    return statement


def _lag_bank_code(bank_code: str) -> str:
    code = (bank_code or "").strip()
    if code and (re.fullmatch(r"[0-9]{4}", code, re.ASCII) is None or bank_get(code) is None):
        raise ValidationFailed(
            {
                "bank_code": [
                    _(
                        "Enter a bank code of the 全銀 bank directory (4 digits), "
                        "or leave it empty for the default."
                    )
                ]
            }
        )
    return code


def deposit_lag_save(
    *, actor: User | ApiKey | None, biller: Biller, bank_code: str, business_days: int
) -> DepositLag:
    """Set the business days from a processing date to the arrival of ``bank_code``'s funds ("": the
    biller's default for banks without their own)."""
    code = _lag_bank_code(bank_code)
    if (
        isinstance(business_days, bool)
        or not isinstance(business_days, int)
        or not 0 <= business_days <= MAX_LAG_DAYS
    ):
        raise ValidationFailed(
            {
                "business_days": [
                    _("Enter a whole number of business days from 0 to %(max)d.") % {"max": MAX_LAG_DAYS}
                ]
            }
        )
    with transaction.atomic():
        lag = DepositLag.objects.for_biller(biller).select_for_update().filter(bank_code=code).first()
        if lag is not None:
            before = lag.business_days
            if before != business_days:
                lag.business_days = business_days
                lag.save(update_fields=["business_days"])
                audit_record(
                    actor=actor,
                    action="deposit_lag.save",
                    biller=biller,
                    target=lag,
                    summary=f"{code or '*'}: {business_days}",
                    before={"bank_code": code, "business_days": before},
                    after={"bank_code": code, "business_days": business_days},
                )
            return lag
        try:
            with transaction.atomic():
                lag = DepositLag.objects.create(biller=biller, bank_code=code, business_days=business_days)
        except IntegrityError as exc:
            raise Conflict(_("The lag was set at the same time by someone else; try again.")) from exc
        audit_record(
            actor=actor,
            action="deposit_lag.save",
            biller=biller,
            target=lag,
            summary=f"{code or '*'}: {business_days}",
            after={"bank_code": code, "business_days": business_days},
        )
        return lag


def deposit_lag_delete(*, actor: User | ApiKey | None, biller: Biller, bank_code: str) -> None:
    """Remove ``bank_code``'s lag: its funds then follow the default (the biller's "" row, else
    ``DepositLag.DEFAULT_DAYS``)."""
    code = (bank_code or "").strip()
    with transaction.atomic():
        lag = DepositLag.objects.for_biller(biller).select_for_update().filter(bank_code=code).first()
        if lag is None:
            raise NotFound(_("No lag is set for this bank."), field="bank_code")
        before = {"bank_code": code, "business_days": lag.business_days}
        audit_record(
            actor=actor,
            action="deposit_lag.delete",
            biller=biller,
            target=lag,
            summary=f"{code or '*'}: {lag.business_days}",
            before=before,
        )
        lag.delete()


# --- the lag as the reconciliation run uses it --------------------------------------------------------------


def lag_for(lags: dict[str, int], bank_code: str) -> int:
    """Business days for ``bank_code``: its own lag, else the biller's default (""), else
    ``DepositLag.DEFAULT_DAYS``."""
    if bank_code in lags:
        return lags[bank_code]
    return lags.get("", DepositLag.DEFAULT_DAYS)


def value_date_for(*, processing_date: datetime.date, business_days: int) -> datetime.date:
    """The day funds of ``processing_date`` arrive: ``business_days`` business days after it (0: that day
    when it is a business day, else the next business day)."""
    return business_day_add(processing_date, business_days)
