"""Checking a complete invoice (its invoice columns, totals and keys) into the row to store, and deciding
it against what is stored and what the file repeats. Every problem is reported with its row and column."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable
from typing import NamedTuple

from django.utils.translation import gettext as _

import billing.imports.limits as limits
from billing.imports.keys import KeyStage, stored_keys
from billing.imports.records import InvoiceRow, PendingInvoice
from billing.imports.results import ImportResult
from billing.invoicing import MAX_LINES_PER_INVOICE, LineError, Totals, totals_from_sums
from billing.models import Biller, Customer, Invoice
from billing.validators import description_errors

_TRUE = {"1", "true", "yes", "税込", "y"}
_FALSE = {"", "0", "false", "no", "税抜", "n"}
_new_tuple = tuple.__new__
_NUMBER_OK = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_/.")


def repeat_message(number: str) -> str:
    return _(
        "invoice %(number)s appears again: the rows of an invoice must be together, "
        "and an invoice number only once per file"
    ) % {"number": number}


def external_twice_message(external_id: str) -> str:
    return _("external id %(id)s appears twice in the file") % {"id": external_id}


class Dates(dict[str, datetime.date | None]):
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
        if len(self) < limits.CACHE_ENTRIES:
            self[text] = value
        return value


class _Customer(NamedTuple):
    pk: int
    name: str
    email: str
    status: str


class _Head(NamedTuple):
    """An invoice's invoice columns as read (text) and as checked."""

    customer_code: str
    issue_text: str
    due_text: str
    description: str
    external_id: str
    customer: _Customer
    issue_date: datetime.date
    due_date: datetime.date
    inclusive: bool


class _Batched(NamedTuple):
    row_no: int
    number: str
    external_id: str
    content_hash: str
    row: InvoiceRow
    total: int


class InvoiceChecker:
    """Turns complete invoices into invoice rows ready to store, reporting every problem with its row and
    column. ``finish`` checks one invoice; ``resolve`` decides a batch against what is stored;
    ``duplicates_report`` names what the file repeats (with the staging of keys)."""

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
        self.customers: dict[str, _Customer] = {
            code: _Customer(pk, name, email, status)
            for code, pk, name, email, status in Customer.objects.filter(biller=biller)
            .values_list("code", "pk", "name", "email", "status")
            .iterator(chunk_size=20000)
        }
        # What is already stored is looked up in batches (one indexed query per LOOKUP_BATCH invoices),
        # not loaded: re-importing a million invoices stays within the same memory as importing them.
        self.has_existing = Invoice.objects.filter(biller=biller).exists()
        self.before_lookup: Callable[[], None] | None = None
        self.lookups_failed = False  # the import's transaction failed: no more lookups on its connection
        self.batch: list[_Batched] = []
        self.emit: Callable[[InvoiceRow], None] = lambda row: None
        self.header_of: Callable[[list[str]], tuple[str, ...]] = tuple
        # where duplicates are found: the staging table (PostgreSQL) or, elsewhere, sets of hashes
        self.keys: KeyStage | None = None
        self.seen_numbers: set[int] = set()
        self.seen_external: set[int] = set()
        self.dates = Dates()
        self.descriptions: dict[str, list[str]] = {}
        self.json_strings: dict[str, str] = {}

    def json_string(self, text: str) -> str:
        encoded = self.json_strings.get(text)
        if encoded is None:
            encoded = json.dumps(text, ensure_ascii=False)
            if len(self.json_strings) < limits.CACHE_ENTRIES:
                self.json_strings[text] = encoded
        return encoded

    # --- one invoice ---------------------------------------------------------------------------------

    def finish(self, pending: PendingInvoice) -> InvoiceRow | None:
        """Check an invoice whose rows are complete; its stored row, or None (unchanged, batched or in
        error). Its keys are staged now, or when its batch is decided.

        Every problem is reported, not the first: the invoice columns are checked even when a line or
        the number is wrong, and the stated total whenever the lines can be added up."""
        repeated = self._repeated(pending)
        number_ok = self._number_ok(pending.first_row, pending.number)
        head, inclusive = self._head(pending.first_row, self.header_of(pending.row))
        if len(pending.lines) > MAX_LINES_PER_INVOICE:
            self.result.error(
                pending.first_row,
                "item",
                _("invoice %(number)s has more than %(max)d lines")
                % {"number": pending.number, "max": MAX_LINES_PER_INVOICE},
            )
            pending.bad = True
        totals = None
        if inclusive is not None and not pending.bad_lines:
            totals = self._totals(pending, inclusive)
        if repeated or pending.bad or not number_ok or head is None or totals is None:
            return self._staged(pending, None)
        lines_json = "[" + ",".join(pending.lines) + "]"
        if self.keys is None and not self._external_once(pending.first_row, head.external_id):
            return self._staged(pending, None)
        row = self._row(pending.number, head, lines_json, totals)
        if self.has_existing:
            self._batch_add(pending, head, row, totals.total)
            return None
        self.result.invoices_new += 1
        self.result.total_amount += totals.total
        return self._staged(pending, row, head.external_id, "n", totals.total)

    def check_orphan(self, row_no: int, cells: tuple[str, ...]) -> None:
        """The invoice columns of a row that belongs to no invoice (its number is missing), checked on
        their own so that the row's every problem is named at once."""
        self._head(row_no, cells)

    def _staged(
        self,
        pending: PendingInvoice,
        row: InvoiceRow | None,
        external_id: str = "",
        counted: str = "-",
        total: int = 0,
    ) -> InvoiceRow | None:
        if self.keys is not None:
            self.keys.add(pending.first_row, pending.number, external_id, counted, total)
        return row

    def _repeated(self, pending: PendingInvoice) -> bool:
        """Without the staging of keys: the number was seen before in the file (said here)."""
        if self.keys is not None:
            return False
        number_fp = hash(pending.number)  # seen-sets hold hashes, not the strings
        if number_fp in self.seen_numbers:
            self.result.error(pending.first_row, "invoice_number", repeat_message(pending.number))
            return True
        self.seen_numbers.add(number_fp)
        return False

    def _head(self, row_no: int, cells: tuple[str, ...]) -> tuple[_Head | None, bool | None]:
        """The invoice columns ``cells`` (in HEADER_FIELDS order) of row ``row_no`` checked, every
        problem reported: the checked columns (None if any is wrong), and whether the prices include
        tax (None if that column is wrong)."""
        error = self.result.error
        customer_code, issue_text, due_text, description, inclusive_text, external_id = map(str.strip, cells)
        customer = self._customer(row_no, customer_code)
        issue_date, due_date = self._dates(row_no, issue_text, due_text)
        bad = customer is None or issue_date is None or due_date is None
        problems = self.descriptions.get(description)
        if problems is None:
            problems = description_errors(description)
            if len(self.descriptions) < limits.CACHE_ENTRIES:
                self.descriptions[description] = problems
        for problem in problems:
            error(row_no, "description", problem)
            bad = True
        lowered = inclusive_text.lower()
        inclusive: bool | None = lowered in _TRUE
        if not inclusive and lowered not in _FALSE:
            error(row_no, "tax_inclusive", _("must be 1 or 0 (got %(text)r)") % {"text": inclusive_text})
            inclusive = None
            bad = True
        bad = not self._external_ok(row_no, external_id) or bad
        if bad or customer is None or issue_date is None or due_date is None or inclusive is None:
            return None, inclusive
        head = _new_tuple(  # a _Head: tuple.__new__ skips NamedTuple's Python-level __new__
            _Head,
            (
                customer_code,
                issue_text,
                due_text,
                description,
                external_id,
                customer,
                issue_date,
                due_date,
                inclusive,
            ),
        )
        return head, inclusive

    def _customer(self, row_no: int, code: str) -> _Customer | None:
        customer = self.customers.get(code)
        if customer is None:
            self.result.error(row_no, "customer_code", _("unknown customer %(code)r") % {"code": code})
        elif customer.status != Customer.Status.ACTIVE:
            self.result.error(row_no, "customer_code", _("customer %(code)s is inactive") % {"code": code})
            return None
        return customer

    def _dates(
        self, row_no: int, issue_text: str, due_text: str
    ) -> tuple[datetime.date | None, datetime.date | None]:
        error = self.result.error
        issue_date, due_date = self.dates[issue_text], self.dates[due_text]
        if issue_date is None:
            error(row_no, "issue_date", _("bad date %(text)r: use YYYY-MM-DD") % {"text": issue_text})
        if due_date is None:
            error(row_no, "due_date", _("bad date %(text)r: use YYYY-MM-DD") % {"text": due_text})
        elif issue_date is not None and due_date < issue_date:
            error(row_no, "due_date", _("is before the issue date"))
            due_date = None
        return issue_date, due_date

    def _number_ok(self, row_no: int, number: str) -> bool:
        if len(number) > 32 or not _NUMBER_OK.issuperset(number) or number[0] in "-_/.":
            self.result.error(
                row_no,
                "invoice_number",
                _("%(number)r: use up to 32 letters, digits and - _ / .") % {"number": number},
            )
            return False
        return True

    def _external_ok(self, row_no: int, external_id: str) -> bool:
        if len(external_id) > 64:
            self.result.error(row_no, "external_id", _("must be at most 64 characters"))
            return False
        if "\x00" in external_id:  # PostgreSQL text cannot hold it
            self.result.error(row_no, "external_id", _("must not contain NUL characters"))
            return False
        return True

    def _totals(self, pending: PendingInvoice, inclusive: bool) -> Totals | None:
        """The per-rate totals of the lines, checked against the total the file states (if it does)."""
        row_no = pending.first_row
        try:
            totals = totals_from_sums(
                pending.sum_10,
                pending.sum_8,
                pending.sum_exempt,
                rounding=self.rounding,
                tax_inclusive=inclusive,
            )
        except LineError as exc:
            self.result.error(row_no, "unit_price", exc.message)
            return None
        if pending.total and int(pending.total.replace(",", "")) != totals.total:
            # the total's form was checked as it was read (scanning): a whole number of yen
            self.result.error(
                pending.total_row or row_no,
                "total",
                _(
                    "total mismatch: the file says %(stated)s, the lines come to %(total)s yen "
                    "(%(rounding)s rounding, tax once per rate)"
                )
                % {"stated": pending.total, "total": f"{totals.total:,}", "rounding": self.rounding},
            )
            return None
        return totals

    def _external_once(self, row_no: int, external_id: str) -> bool:
        """Without the staging of keys: an external id is used once in the file (a second use said here)."""
        if not external_id:
            return True
        external_fp = hash(external_id)
        if external_fp in self.seen_external:
            self.result.error(row_no, "external_id", external_twice_message(external_id))
            return False
        self.seen_external.add(external_fp)
        return True

    def _row(self, number: str, head: _Head, lines_json: str, totals: Totals) -> InvoiceRow:
        return _new_tuple(  # an InvoiceRow, built at tuple speed (a million of them go through)
            InvoiceRow,
            (
                self.biller_id,
                "invoice",
                head.customer.pk,
                number,
                head.external_id,
                head.issue_date,
                head.due_date,
                head.description,
                lines_json,
                head.inclusive,
                self.rounding,
                totals.subtotal_10,
                totals.tax_10,
                totals.subtotal_8,
                totals.tax_8,
                totals.subtotal_exempt,
                totals.total,
                self.status,
                head.customer.name,
                head.customer.email,
                None,
                _content_hash(number, head, lines_json),
                self.published_at,
                self.now,
                self.now,
            ),
        )

    # --- against what is stored ----------------------------------------------------------------------

    def _batch_add(self, pending: PendingInvoice, head: _Head, row: InvoiceRow, total: int) -> None:
        self.batch.append(
            _Batched(pending.first_row, pending.number, head.external_id, row.source_hash, row, total)
        )
        if len(self.batch) >= limits.LOOKUP_BATCH:
            self.resolve()

    def resolve(self) -> None:
        """Decide a batch of checked invoices against what is stored: new (emitted), unchanged or error."""
        batch, self.batch = self.batch, []
        if not batch:
            return
        if self.before_lookup is not None and not self.lookups_failed:
            self.before_lookup()  # the writer's COPY must not be open on this connection while we ask
        if self.lookups_failed:  # the import's transaction failed (a number twice): only stage the keys
            for item in batch:
                self._stage(item, "-", 0)
            return
        found = stored_keys(
            biller_id=self.biller_id,
            numbers=[item.number for item in batch],
            externals=[item.external_id for item in batch if item.external_id],
            not_created_at=self.now,
        )
        by_number: dict[str, tuple[str, str]] = {}
        by_external: dict[str, tuple[str, str]] = {}
        for number, external_id, source_hash in found:
            by_number[number] = (external_id, source_hash)
            if external_id:
                by_external[external_id] = (number, source_hash)
        for item in batch:
            self._decide(item, by_number, by_external)

    def _decide(
        self, item: _Batched, by_number: dict[str, tuple[str, str]], by_external: dict[str, tuple[str, str]]
    ) -> None:
        """New (counted and emitted), unchanged (counted), or in conflict with what is stored (an error)."""
        r = self.result
        conflict: tuple[str, str] | None = None
        if item.external_id and item.external_id in by_external:
            stored_number, stored_hash = by_external[item.external_id]
            if stored_number != item.number or stored_hash != item.content_hash:
                conflict = (
                    "external_id",
                    _(
                        "external id %(id)s was already imported as invoice %(number)s with other "
                        "content; cancel it and use a new id"
                    )
                    % {"id": item.external_id, "number": stored_number},
                )
        elif item.number in by_number:
            if by_number[item.number][1] != item.content_hash:  # the content hash covers the external id too
                conflict = (
                    "invoice_number",
                    _("duplicate invoice number %(number)s: it already exists") % {"number": item.number},
                )
        else:
            r.invoices_new += 1
            r.total_amount += item.total
            self._stage(item, "n", item.total)
            self.emit(item.row)
            return
        if conflict is None:
            r.invoices_unchanged += 1
            self._stage(item, "u", 0)
        else:
            self._stage(item, "-", 0)
            r.error(item.row_no, *conflict)

    def _stage(self, item: _Batched, counted: str, total: int) -> None:
        if self.keys is not None:
            self.keys.add(item.row_no, item.number, item.external_id, counted, total)

    # --- what the file repeats ----------------------------------------------------------------------

    def duplicates_report(self) -> None:
        """Name every invoice number and external id that appears twice in the file (found in SQL), and take
        the repeats out of the counts."""
        if self.keys is None:
            return
        r = self.result
        repeated_numbers: set[int] = set()
        for row_no, number, counted, total in self.keys.repeated("number"):
            repeated_numbers.add(row_no)
            self._uncount(counted, total)
            r.error(row_no, "invoice_number", repeat_message(number))
            if len(repeated_numbers) > limits.MAX_ERRORS_KEPT:
                break  # enough to name; the rest are counted below
        for row_no, external_id, counted, total in self.keys.repeated("external_id"):
            if row_no in repeated_numbers:
                continue
            self._uncount(counted, total)
            r.error(row_no, "external_id", external_twice_message(external_id))
            if r.error_count > 2 * limits.MAX_ERRORS_KEPT + len(repeated_numbers):
                break

    def _uncount(self, counted: str, total: int) -> None:
        if counted == "n":
            self.result.invoices_new -= 1
            self.result.total_amount -= total
        elif counted == "u":
            self.result.invoices_unchanged -= 1


def _content_hash(number: str, head: _Head, lines_json: str) -> str:
    """What re-importing compares: the invoice as the file states it."""
    return hashlib.blake2b(
        "\x1f".join(
            (
                number,
                head.external_id,
                head.customer_code,
                head.issue_text,
                head.due_text,
                head.description,
                "1" if head.inclusive else "0",
                lines_json,
            )
        ).encode(),
        digest_size=20,
    ).hexdigest()
