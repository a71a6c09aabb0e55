"""The hot loop: CSV rows into pending invoices, with the checks of each line inlined (a million rows
go through), each complete invoice handed to the checker and, checked, to the writer."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator

from django.utils.translation import gettext as _

import billing.imports.limits as limits
from billing.imports.checking import InvoiceChecker
from billing.imports.reading import HEADER_FIELDS, csv_rows, header_map
from billing.imports.records import InvoiceRow, PendingInvoice
from billing.imports.results import ImportFailed
from billing.invoicing import TAX_CATEGORY_ALIASES, tax_category_parse


def check_rows(
    lines: Iterator[str],
    *,
    checker: InvoiceChecker,
    emit: Callable[[InvoiceRow], None],
    progress: Callable[[int], None] | None = None,
) -> None:
    """One pass, one invoice in memory: every row checked, every checked invoice emitted."""
    result = checker.result
    error = result.error
    json_string = checker.json_string
    reader = csv_rows(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFailed(_("The file is empty."), row=1) from None
    pos = header_map(header)
    width = len(header)
    i_number = pos["invoice_number"]
    i_total = pos.get("total")
    i_item, i_price, i_category = pos["item"], pos["unit_price"], pos["tax_category"]
    i_quantity = pos.get("quantity")
    header_positions = [pos.get(name) for name in HEADER_FIELDS]
    # Every row gets one empty cell appended (index -1), which stands in for absent invoice columns,
    # so one C-level itemgetter yields the invoice columns in HEADER_FIELDS order.
    pick = operator.itemgetter(*(-1 if p is None else p for p in header_positions))
    progress_every = limits.PROGRESS_EVERY
    aliases = TAX_CATEGORY_ALIASES

    checker.header_of = pick
    checker.emit = emit
    pending: PendingInvoice | None = None
    row_no = 1
    rows = 0
    for row in reader:
        row_no += 1
        if len(row) != width:
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            error(
                row_no, "", _("has %(n)d fields; the header has %(width)d") % {"n": len(row), "width": width}
            )
            if pending is not None:  # the row may be one of its lines: its total cannot be known
                pending.bad = pending.bad_lines = True
            continue
        rows += 1
        row.append("")
        number = row[i_number].strip()
        # the invoice this row's line belongs to; None when the row has no number: its cells are still
        # checked, so that every problem of the row is named at once
        target: PendingInvoice | None = None
        if not number:
            error(row_no, "invoice_number", _("is required"))
            checker.check_orphan(row_no, pick(row))
        else:
            if pending is None or number != pending.number:
                if pending is not None:
                    stored = checker.finish(pending)
                    if stored is not None:
                        emit(stored)
                pending = PendingInvoice(number, row_no, row)
            elif pick(row) != pick(pending.row):
                for name, cell, first in zip(HEADER_FIELDS, pick(row), pick(pending.row), strict=True):
                    if cell.strip() != first.strip():
                        error(
                            row_no,
                            name,
                            _(
                                "differs from row %(row)d of the same invoice %(number)s; "
                                "the invoice columns must repeat on every line"
                            )
                            % {"row": pending.first_row, "number": number},
                        )
                        pending.bad = True
            target = pending
            if i_total is not None:
                stated = row[i_total].strip()
                if stated and not stated.replace(",", "").isdecimal():
                    error(
                        row_no,
                        "total",
                        _("must be a whole number of yen (got %(text)r)") % {"text": stated},
                    )
                    pending.bad = True
                elif stated and pending.total and stated != pending.total:
                    error(
                        row_no,
                        "total",
                        _("says %(stated)s but an earlier line of invoice %(number)s says %(earlier)s")
                        % {"stated": stated, "number": number, "earlier": pending.total},
                    )
                    pending.bad = True
                elif stated and not pending.total:
                    pending.total, pending.total_row = stated, row_no
        # the line: item, quantity, unit price, tax category
        ok = True
        item = row[i_item].strip()
        if not item:
            error(row_no, "item", _("is required"))
            ok = False
        elif len(item) > 100:
            error(row_no, "item", _("must be at most 100 characters"))
            ok = False
        elif "\x00" in item:
            error(row_no, "item", _("must not contain NUL characters"))
            ok = False
        quantity = 1
        if i_quantity is not None:
            q_text = row[i_quantity].strip()
            if q_text:
                try:
                    quantity = int(q_text.replace(",", ""))
                except ValueError:
                    quantity = 0
                if not 1 <= quantity <= 10_000_000 or not q_text.replace(",", "").isdigit():
                    error(
                        row_no,
                        "quantity",
                        _("must be a whole number from 1 to 10,000,000 (got %(text)r)") % {"text": q_text},
                    )
                    ok = False
        p_text = row[i_price].strip()
        try:
            unit_price = int(p_text)
        except ValueError:
            cleaned = p_text.replace(",", "").replace("¥", "").replace("円", "")
            digits = cleaned[1:] if cleaned.startswith("-") else cleaned
            unit_price = int(cleaned) if digits.isdigit() else None  # type: ignore[assignment]
        if unit_price is None or not -9_999_999_999 <= unit_price <= 9_999_999_999 or "_" in p_text:
            error(row_no, "unit_price", _("must be a whole number of yen (got %(text)r)") % {"text": p_text})
            ok = False
        c_text = row[i_category]
        category = aliases.get(c_text) or tax_category_parse(c_text)  # the exact spelling, at dict speed
        if category is None:
            error(
                row_no,
                "tax_category",
                _("unknown tax category %(text)r: use 10, 8 or exempt") % {"text": c_text.strip()},
            )
            ok = False
        if target is None:
            pass  # a row without a number: its cells were checked, it adds to no invoice
        elif not ok:
            target.bad = target.bad_lines = True
        else:
            amount = quantity * unit_price
            if category == "10":
                target.sum_10 += amount
            elif category == "8":
                target.sum_8 += amount
            else:
                target.sum_exempt += amount
            target.lines.append(
                f'{{"description":{json_string(item)},"quantity":{quantity},"unit_price":{unit_price},'
                f'"tax_category":"{category}","amount":{amount}}}'
            )
        if progress is not None and rows % progress_every == 0:
            result.rows = rows
            progress(rows)
    if pending is not None:
        stored = checker.finish(pending)
        if stored is not None:
            emit(stored)
    checker.resolve()
    checker.duplicates_report()
    # batch decisions and repeats report late; a row's problems in the order of the file's columns
    result.errors.sort(key=lambda e: (e.row, pos.get(e.column, -1)))
    result.rows = rows
    if rows == 0 and result.error_count == 0:
        raise ImportFailed(_("The file has a header but no invoice rows."), row=2)
