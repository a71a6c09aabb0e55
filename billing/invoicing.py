"""Invoice arithmetic: lines and the qualified-invoice (適格請求書) totals.

Money is integer yen. Tax is computed once per rate per invoice, never per
line, with the biller's rounding rule:

- tax-exclusive prices (税抜): tax_r = round(Σ amounts at rate r × r / 100)
- tax-inclusive prices (税込): tax_r = round(Σ amounts at rate r × r / (100 + r)),
  and the rate's subtotal is the gross minus that tax.

Nothing here touches the database; the CSV import and the services share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

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
        if not text.lstrip("-").isdigit():
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
