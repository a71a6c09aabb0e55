"""Invoice arithmetic: lines and the qualified-invoice (適格請求書) totals.

Money is integer yen. Tax is computed once per rate per invoice, never per
line, with the biller's rounding rule:

- tax-exclusive prices (税抜): tax_r = round(Σ amounts at rate r × r / 100)
- tax-inclusive prices (税込): tax_r = round(Σ amounts at rate r × r / (100 + r)),
  and the rate's subtotal is the gross minus that tax.

The arithmetic touches no database; the CSV import, the services, the console's live totals
(``totals_preview``, mirrored by static/js/invoice-form.js) share it. The last section is the
automatic invoice numbering (the pattern itself: ``billing.numbers.InvoiceNumberPattern``): the next
number of a biller, creation with retry on a number taken meanwhile, and the pattern's setting.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models.functions import Length
from django.utils.translation import gettext as _

from billing.errors import Conflict, ValidationFailed
from billing.numbers import INVOICE_NUMBER_MAX_LENGTH, InvoiceNumberPattern

if TYPE_CHECKING:
    from billing.models import ApiKey, Biller, User

TAX_RATES = {"10": 10, "8": 8, "exempt": 0}
TAX_CATEGORY_LABELS = {"10": "10%", "8": "8%※", "exempt": "非課税"}
# what people write for a tax category → the category; letters in any case (EXEMPT)
TAX_CATEGORY_ALIASES = {
    "10": "10",
    "10%": "10",
    "8": "8",
    "8%": "8",
    "8%※": "8",
    "軽減": "8",
    "exempt": "exempt",
    "非課税": "exempt",
    "免税": "exempt",
    "0": "exempt",
    "0%": "exempt",
}
MAX_QUANTITY = 10_000_000
MAX_UNIT_PRICE = 9_999_999_999
MAX_TOTAL = 99_999_999_999  # N(11) on the MPN line
MAX_LINES_PER_INVOICE = 200


class LineError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def round_div(numerator: int, denominator: int, rule: str) -> int:
    """numerator / denominator rounded by ``rule`` (floor, ceiling, half_up away from zero), in integers."""
    if rule == "floor":
        return numerator // denominator
    if rule == "ceiling":
        return -(-numerator // denominator)
    if rule == "half_up":
        sign = -1 if numerator < 0 else 1
        return sign * ((2 * abs(numerator) + denominator) // (2 * denominator))
    raise ValueError(f"unknown rounding rule {rule!r}")


def tax_category_parse(value: object) -> str | None:
    """The tax category ("10", "8", "exempt") that ``value`` names, or None: the one rule of the CSV
    import, the console and the API (``TAX_CATEGORY_ALIASES``)."""
    text = value.strip() if isinstance(value, str) else str(value if value is not None else "").strip()
    return TAX_CATEGORY_ALIASES.get(text) or TAX_CATEGORY_ALIASES.get(text.lower())


def _int(value: Any, field: str, *, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise LineError(field, _("must be a whole number"))
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().replace(",", "")
        if not re.fullmatch(r"-?\d+", text):  # not lstrip("-"): int("--5") would raise ValueError
            raise LineError(
                field, _("must be a whole number of yen or units, not %(value)r") % {"value": value}
            )
        number = int(text)
    if not low <= number <= high:
        raise LineError(
            field,
            _("must be between %(low)s and %(high)s (got %(number)s)")
            % {"low": f"{low:,}", "high": f"{high:,}", "number": f"{number:,}"},
        )
    return number


def clean_line(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one line; returns the stored form with its amount. Raises LineError naming the field."""
    description = str(raw.get("description") or "").strip()
    if not description:
        raise LineError("description", _("is required"))
    if len(description) > 100:
        raise LineError("description", _("must be at most 100 characters"))
    quantity = _int(raw.get("quantity", 1), "quantity", low=1, high=MAX_QUANTITY)
    unit_price = _int(raw.get("unit_price"), "unit_price", low=-MAX_UNIT_PRICE, high=MAX_UNIT_PRICE)
    category = tax_category_parse(raw.get("tax_category"))
    if category is None:
        raise LineError(
            "tax_category", _("must be 10, 8 or exempt (got %(value)r)") % {"value": raw.get("tax_category")}
        )
    return {
        "description": description,
        "quantity": quantity,
        "unit_price": unit_price,
        "tax_category": category,
        "amount": quantity * unit_price,
    }


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal_10: int
    tax_10: int
    subtotal_8: int
    tax_8: int
    subtotal_exempt: int
    total: int

    def as_fields(self) -> dict[str, int]:
        return {
            "subtotal_10": self.subtotal_10,
            "tax_10": self.tax_10,
            "subtotal_8": self.subtotal_8,
            "tax_8": self.tax_8,
            "subtotal_exempt": self.subtotal_exempt,
            "total": self.total,
        }


def compute_totals(
    lines: Iterable[Mapping[str, Any]], *, rounding: str, tax_inclusive: bool = False
) -> Totals:
    """Per-rate subtotals and taxes, tax rounded once per rate. Raises LineError for impossible sums."""
    sum_10 = sum_8 = sum_exempt = 0
    for line in lines:
        category = line["tax_category"]
        if category == "10":
            sum_10 += line["amount"]
        elif category == "8":
            sum_8 += line["amount"]
        else:
            sum_exempt += line["amount"]
    return totals_from_sums(sum_10, sum_8, sum_exempt, rounding=rounding, tax_inclusive=tax_inclusive)


def totals_from_sums(
    sum_10: int, sum_8: int, sum_exempt: int, *, rounding: str, tax_inclusive: bool = False
) -> Totals:
    """The totals from the sums of the line amounts per rate (what ``compute_totals`` adds up)."""
    for category, amount in (("10", sum_10), ("8", sum_8), ("exempt", sum_exempt)):
        if amount < 0:
            raise LineError(
                "lines",
                _("the %(category)s lines sum to %(amount)s yen; a rate's sum cannot be negative")
                % {"category": category, "amount": f"{amount:,}"},
            )
    if tax_inclusive:
        tax_10 = round_div(sum_10 * 10, 110, rounding)
        tax_8 = round_div(sum_8 * 8, 108, rounding)
        subtotal_10, subtotal_8 = sum_10 - tax_10, sum_8 - tax_8
    else:
        tax_10 = round_div(sum_10 * 10, 100, rounding)
        tax_8 = round_div(sum_8 * 8, 100, rounding)
        subtotal_10, subtotal_8 = sum_10, sum_8
    total = subtotal_10 + tax_10 + subtotal_8 + tax_8 + sum_exempt
    if total > MAX_TOTAL:
        raise LineError(
            "lines",
            _("the total %(total)s yen exceeds %(max)s yen")
            % {"total": f"{total:,}", "max": f"{MAX_TOTAL:,}"},
        )
    return Totals(subtotal_10, tax_10, subtotal_8, tax_8, sum_exempt, total)


def totals_preview(
    raw_lines: Iterable[Mapping[str, Any]], *, rounding: str, tax_inclusive: bool = False
) -> Totals | None:
    """The totals of lines as typed (quantity, unit price, tax rate; the item is not needed), or None
    when a line's numbers or rate would be refused or the sums are impossible. The console shows it while
    the form is being filled in; static/js/invoice-form.js computes the same in the browser."""
    sums = {"10": 0, "8": 0, "exempt": 0}
    try:
        for raw in raw_lines:
            quantity = _int(raw.get("quantity", 1), "quantity", low=1, high=MAX_QUANTITY)
            unit_price = _int(raw.get("unit_price"), "unit_price", low=-MAX_UNIT_PRICE, high=MAX_UNIT_PRICE)
            category = tax_category_parse(raw.get("tax_category"))
            if category is None:
                return None
            sums[category] += quantity * unit_price
        return totals_from_sums(
            sums["10"], sums["8"], sums["exempt"], rounding=rounding, tax_inclusive=tax_inclusive
        )
    except (LineError, ValueError):
        return None


# --- automatic invoice numbers -------------------------------------------------------------------------

NUMBERING_ATTEMPTS = 25  # an attempt is lost only to a number typed by a concurrent creation


def _scope(pattern: InvoiceNumberPattern, on: datetime.date) -> str:
    """The counter's key: the pattern's text around the sequence for ``on`` (``2026-12-{seq}``)."""
    head, tail = pattern.around(on)
    return f"{head}{{seq}}{tail}"


def _highest_stored(biller: Biller, pattern: InvoiceNumberPattern, on: datetime.date) -> int:
    """The highest sequence among the biller's stored numbers of ``on``'s period (0 for none): read once
    per period, when its counter is created (numbers typed or imported before automatic numbering)."""
    from billing.models import Invoice

    head, _tail = pattern.around(on)
    highest = (
        Invoice.objects.for_biller(biller)
        .filter(number__startswith=head, number__regex=pattern.regex(on))
        .order_by(Length("number").desc(), "-number")
        .values_list("number", flat=True)
        .first()
    )
    return (pattern.seq_of(highest, on) or 0) if highest else 0


def _number_checked(number: str) -> str:
    if len(number) > INVOICE_NUMBER_MAX_LENGTH:
        raise ValidationFailed(
            {
                "number": [
                    _(
                        "The next automatic number %(number)s is longer than %(max)d characters; "
                        "type a number, or change the invoice number pattern in the invoice settings."
                    )
                    % {"number": number, "max": INVOICE_NUMBER_MAX_LENGTH}
                ]
            }
        )
    return number


def _first_free(biller: Biller, pattern: InvoiceNumberPattern, on: datetime.date, seq: int) -> int:
    """``seq``, or the first sequence after it whose number is not stored yet (typed numbers are skipped)."""
    from billing.models import Invoice

    invoices = Invoice.objects.for_biller(biller)
    while invoices.filter(number=pattern.number(on, seq)).exists():
        seq += 1
    return seq


def invoice_number_next(*, biller: Biller, on: datetime.date) -> str:
    """The number the biller's pattern gives the next invoice issued ``on``, for the form's hint: one more
    than the period's counter (or, before its first automatic number, than the highest stored number),
    past the numbers already stored. Not reserved: ``invoice_number_take`` takes one."""
    from billing.models import InvoiceNumberCounter

    pattern = InvoiceNumberPattern(biller.invoice_number_pattern)
    last = (
        InvoiceNumberCounter.objects.for_biller(biller)
        .filter(scope=_scope(pattern, on))
        .values_list("last", flat=True)
        .first()
    )
    seq = (last if last is not None else _highest_stored(biller, pattern, on)) + 1
    return _number_checked(pattern.number(on, _first_free(biller, pattern, on, seq)))


def invoice_number_take(*, biller: Biller, on: datetime.date) -> str:
    """Take the next automatic number for an invoice issued ``on``: the period's counter row (created from
    the highest stored number the first time) locked ``FOR UPDATE``, moved past numbers already stored,
    and advanced. One row lookup per number, however many invoices the biller has. Inside the caller's
    transaction when there is one (the lock is then held until it ends); a number whose creation fails
    is not handed out again (a gap)."""
    from billing.models import InvoiceNumberCounter

    pattern = InvoiceNumberPattern(biller.invoice_number_pattern)
    scope = _scope(pattern, on)
    counters = InvoiceNumberCounter.objects.for_biller(biller)
    with transaction.atomic():
        if not counters.filter(scope=scope).exists():
            seed = _highest_stored(biller, pattern, on)
            counters.bulk_create(
                [InvoiceNumberCounter(biller=biller, scope=scope, last=seed)], ignore_conflicts=True
            )
        counter = counters.select_for_update().get(scope=scope)
        seq = _first_free(biller, pattern, on, counter.last + 1)
        number = _number_checked(pattern.number(on, seq))
        counter.last = seq
        counter.save(update_fields=["last"])
    return number


def invoice_create_numbered[InvoiceT](
    create: Callable[[str], InvoiceT], *, biller: Biller, on: datetime.date
) -> InvoiceT:
    """``create(number)`` with the next automatic number (``invoice_number_take``); when that number was
    stored meanwhile by a creation that typed it (the duplicate check or the unique constraint refused
    it), again with the number after it. Any other error is the caller's. ``create`` is a service call
    (``services.invoice_create``) that runs in a transaction (or savepoint) of its own."""
    from billing.models import Invoice

    def taken(number: str) -> bool:
        return Invoice.objects.for_biller(biller).filter(number=number).exists()

    for _attempt in range(NUMBERING_ATTEMPTS):
        number = invoice_number_take(biller=biller, on=on)
        try:
            return create(number)
        except ValidationFailed as exc:
            if set(exc.errors) != {"number"} or not taken(number):
                raise
        except Conflict:
            if not taken(number):
                raise
    raise Conflict(
        _("No free invoice number was found after %(attempts)d tries; try again, or type a number.")
        % {"attempts": NUMBERING_ATTEMPTS},
        field="number",
    )


def invoice_numbering_update(*, actor: User | ApiKey | None, biller: Biller, pattern: str) -> Biller:
    """Set the biller's invoice number pattern (checked by the model's rule), with its audit entry."""
    from django.core.exceptions import ValidationError

    from billing.models import Biller
    from billing.services.audit import audit_field_set

    value = pattern.strip()
    try:
        Biller._meta.get_field("invoice_number_pattern").clean(value, biller)
    except ValidationError as exc:
        raise ValidationFailed({"invoice_number_pattern": list(exc.messages)}) from exc
    with transaction.atomic():
        locked = Biller.objects.select_for_update().get(pk=biller.pk)
        audit_field_set(
            actor=actor,
            action="biller.invoice_numbering",
            biller=locked,
            target=locked,
            field="invoice_number_pattern",
            value=value,
            summary=value,
            update_fields=["updated_at"],
        )
    return locked
