"""The columns of the invoice CSV as people read them: the one mapping every report of an import uses
(the preview page, the error list download, the help page).

Problems are stored with the column's canonical name (``invoice_number``: stable, what the code and the
tests compare); they are shown with ``column_label``: in Japanese the column's documented Japanese header
(請求番号, the spelling the sample file and most files use), in English a readable name (Invoice number).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy, pgettext_lazy

from billing.imports.reading import COLUMNS, REQUIRED

# canonical name → readable English name (its Japanese is the column's Japanese header, COLUMNS[name][0])
COLUMN_NAMES: dict[str, Promise] = {
    "invoice_number": pgettext_lazy("CSV column", "Invoice number"),
    "external_id": pgettext_lazy("CSV column", "External ID"),
    "customer_code": pgettext_lazy("CSV column", "Customer code"),
    "issue_date": pgettext_lazy("CSV column", "Issue date"),
    "due_date": pgettext_lazy("CSV column", "Due date"),
    "description": pgettext_lazy("CSV column", "Charge name"),
    "item": pgettext_lazy("CSV column", "Item"),
    "quantity": pgettext_lazy("CSV column", "Quantity"),
    "unit_price": pgettext_lazy("CSV column", "Unit price"),
    "tax_category": pgettext_lazy("CSV column", "Tax category"),
    "tax_inclusive": pgettext_lazy("CSV column", "Tax included"),
    "total": pgettext_lazy("CSV column", "Invoice total"),
}

# what a column takes, for the help page
COLUMN_FORMATS: dict[str, Promise] = {
    "invoice_number": gettext_lazy(
        "Unique for your company; letters, digits and - _ / . (up to 32 characters)."
    ),
    "external_id": gettext_lazy(
        "Your system's key for the invoice (up to 64 characters); makes importing again safe."
    ),
    "customer_code": gettext_lazy("An active customer of your company (Console → Customers)."),
    "issue_date": gettext_lazy("YYYY-MM-DD or YYYY/MM/DD."),
    "due_date": gettext_lazy("YYYY-MM-DD or YYYY/MM/DD; not before the issue date."),
    "description": gettext_lazy(
        "Shown to payers at ATMs: up to 20 characters, all of them in Shift_JIS (cp932)."
    ),
    "item": gettext_lazy("The line's description, up to 100 characters."),
    "quantity": gettext_lazy("A whole number from 1 to 10,000,000 (1 if left empty)."),
    "unit_price": gettext_lazy("Whole yen; negative for a discount line."),
    "tax_category": gettext_lazy(
        "10 (standard rate), 8 (reduced rate, also written 軽減) or exempt (also written 非課税 or 0)."
    ),
    "tax_inclusive": gettext_lazy("1 if the unit prices include tax, 0 (the default) if not."),
    "total": gettext_lazy(
        "If given (on any line of the invoice), it must equal the total the portal computes."
    ),
}


def _japanese() -> bool:
    language = translation.get_language() or settings.LANGUAGE_CODE
    return language.split("-")[0].lower() == "ja"


def column_label(name: str) -> str:
    """The column ``name`` (canonical, as problems store it) as people read it in the active language:
    its Japanese header in Japanese, a readable name in English. Anything else (a header the file
    spelled in a way the import does not know, or nothing) is returned as it is."""
    if name not in COLUMNS:
        return name
    if _japanese():
        return COLUMNS[name][0]
    return str(COLUMN_NAMES[name])


@dataclass(frozen=True)
class ColumnHelp:
    """One column of the file, as the help page describes it."""

    name: str  # canonical
    label: str
    japanese_header: str
    english_header: str
    required: bool
    format: str


def column_help() -> list[ColumnHelp]:
    """Every column of the file in the documented order, described in the active language."""
    return [
        ColumnHelp(
            name=name,
            label=column_label(name),
            japanese_header=headers[0],
            english_header=headers[1],
            required=name in REQUIRED,
            format=str(COLUMN_FORMATS[name]),
        )
        for name, headers in COLUMNS.items()
    ]
