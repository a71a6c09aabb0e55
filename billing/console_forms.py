"""Forms of the tenant console's invoice, customer and API key pages.

The forms only shape what people type; the rules live in the services and the
selectors, whose ``ValidationFailed.errors`` the views put back on these fields.
"""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.core.validators import MaxLengthValidator
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from billing.errors import ValidationFailed
from billing.forms import form_errors_add
from billing.invoicing import Totals, tax_category_parse, totals_preview
from billing.models import Biller, Customer, Invoice
from billing.numbers import INVOICE_NUMBER_PATTERN_MAX_LENGTH, invoice_number_pattern_errors
from billing.selectors import INVOICE_SORTS
from billing.services.customers import CUSTOMER_FIELDS
from billing.services.invoices import MAX_LINES
from billing.validators import DESCRIPTION_MAX_LENGTH, validate_description

DATE_WIDGET_ATTRS = {"type": "date"}

SORT_LABELS = {
    "-issue_date": _("Issue date, newest first"),
    "issue_date": _("Issue date, oldest first"),
    "due_date": _("Due date, earliest first"),
    "-due_date": _("Due date, latest first"),
    "total": _("Amount, smallest first"),
    "-total": _("Amount, largest first"),
    "number": _("Invoice number, A to Z"),
    "-number": _("Invoice number, Z to A"),
}

DEFAULT_SORT = "-issue_date"  # what InvoiceFilters.parse uses for an empty sort

TAX_CATEGORY_CHOICES = [
    ("10", _("10%")),
    ("8", _("8% (reduced rate)")),
    ("exempt", _("Tax exempt")),
]


class TaxCategoryField(forms.ChoiceField):
    """A tax rate: the select offers 10, 8 and exempt; a posted alias (8%, 軽減, 免税, …) means the same
    (billing.invoicing.tax_category_parse, the rule of the CSV import and the API too)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=TAX_CATEGORY_CHOICES, **kwargs)

    def to_python(self, value: Any) -> str:
        text = super().to_python(value)
        return tax_category_parse(text) or text


class DescriptionField(forms.CharField):
    """料金名, checked by billing.validators.description_errors (the rule of every door)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=DESCRIPTION_MAX_LENGTH, **kwargs)  # max_length: the input's maxlength
        self.validators = [
            *(v for v in self.validators if not isinstance(v, MaxLengthValidator)),
            validate_description,
        ]


def _date_widget() -> forms.DateInput:
    return forms.DateInput(attrs=DATE_WIDGET_ATTRS, format="%Y-%m-%d")


# --- invoice list --------------------------------------------------------------------------------------


class InvoiceFilterForm(forms.Form):
    """The list's GET filters. Every value is checked by ``selectors.InvoiceFilters.parse`` alone."""

    use_required_attribute = False
    renders_same_unbound = True  # {% field_group %} (billing.templatetags.form_fields)

    q = forms.CharField(
        label=_("Search"),
        required=False,
        help_text=_("Invoice number, customer number (お客様番号), external id or customer name."),
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    status = forms.CharField(
        label=_("Status"),
        required=False,
        widget=forms.Select(
            choices=[
                ("", _("All")),
                *Invoice.Status.choices[:2],
                ("overdue", _("Overdue")),
                *Invoice.Status.choices[2:],
            ]
        ),
    )
    kind = forms.CharField(
        label=_("Kind"),
        required=False,
        widget=forms.Select(choices=[("", _("All")), *Invoice.Kind.choices]),
    )
    customer = forms.CharField(label=_("Customer code"), required=False)
    due_from = forms.CharField(label=_("Due from"), required=False, widget=_date_widget())
    due_to = forms.CharField(label=_("Due to"), required=False, widget=_date_widget())
    amount_min = forms.CharField(
        label=_("Amount from (yen)"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 10}),
    )
    amount_max = forms.CharField(
        label=_("Amount to (yen)"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 10}),
    )
    sort = forms.CharField(
        label=_("Sort by"),
        required=False,
        # the default sort first, so an empty value shows what the list is sorted by
        widget=forms.Select(
            choices=[
                (key, SORT_LABELS.get(key, key))
                for key in sorted(INVOICE_SORTS, key=lambda k: k != DEFAULT_SORT)
            ]
        ),
    )


# --- invoice create / edit -----------------------------------------------------------------------------


class InvoiceForm(forms.Form):
    customer = forms.CharField(
        label=_("Customer code"),
        max_length=32,
        help_text=_("Type the customer's code; the list suggests active customers."),
        widget=forms.TextInput(attrs={"list": "customer-directory", "autocomplete": "off", "size": 20}),
    )
    number = forms.CharField(
        label=_("Invoice number"), max_length=32, widget=forms.TextInput(attrs={"size": 20})
    )
    external_id = forms.CharField(
        label=_("External id"),
        max_length=64,
        required=False,
        help_text=_("Optional: the id of this invoice in your own system. Must be unique."),
    )
    issue_date = forms.DateField(label=_("Issue date"), widget=_date_widget())
    due_date = forms.DateField(label=_("Due date"), widget=_date_widget())
    description = DescriptionField(
        label=_("Description shown to payers (料金名)"),
        help_text=_("Up to 20 characters, shown on ATM screens."),
    )
    tax_inclusive = forms.BooleanField(label=_("Prices include tax"), required=False, label_suffix="")

    def __init__(
        self, *args: Any, customers: QuerySet[Customer], next_number: str | None = None, **kwargs: Any
    ) -> None:
        """``next_number``: the automatic number (a new invoice): the number may be left empty."""
        self.customers = customers
        super().__init__(*args, **kwargs)
        if next_number is not None:
            self.fields["number"].required = False
            self.fields["number"].help_text = _(
                "Leave empty to number it automatically: %(number)s (for this issue date)."
            ) % {"number": next_number}

    def clean_customer(self) -> Customer:
        code = self.cleaned_data["customer"].strip()
        customer = self.customers.filter(code=code).first()
        if customer is None:
            raise forms.ValidationError(
                _("No customer has the code %(code)s."), code="unknown", params={"code": code}
            )
        return customer

    @staticmethod
    def initial_for(invoice: Invoice) -> dict[str, Any]:
        return {
            "customer": invoice.customer.code if invoice.customer is not None else "",
            "number": invoice.number,
            "external_id": invoice.external_id,
            "issue_date": invoice.issue_date,
            "due_date": invoice.due_date,
            "description": invoice.description,
            "tax_inclusive": invoice.tax_inclusive,
        }

    def to_input(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "customer": d["customer"],
            "number": d["number"],
            "external_id": d["external_id"],
            "issue_date": d["issue_date"],
            "due_date": d["due_date"],
            "description": d["description"],
            "tax_inclusive": d["tax_inclusive"],
        }


class LineForm(forms.Form):
    """One invoice line. Quantity and price are checked by the service (it accepts 1,200 as well)."""

    use_required_attribute = False

    description = forms.CharField(label=_("Item"), max_length=100, required=False)
    quantity = forms.CharField(
        label=_("Quantity"),
        required=False,
        initial="1",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 6}),
    )
    unit_price = forms.CharField(
        label=_("Unit price (yen)"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 12}),
    )
    tax_category = TaxCategoryField(label=_("Tax rate"), initial="10")

    def _value(self, name: str) -> str:
        if hasattr(self, "cleaned_data") and name in self.cleaned_data:
            return str(self.cleaned_data[name] or "").strip()
        return str(self[name].value() or "").strip()

    def is_blank(self) -> bool:
        """Nothing typed: no item, no price, and the quantity left at 1 (or emptied)."""
        return (
            not self._value("description")
            and not self._value("unit_price")
            and self._value("quantity") in {"", "1"}
        )

    def to_line(self) -> dict[str, Any]:
        line = {
            "description": self._value("description"),
            "unit_price": self._value("unit_price"),
            "tax_category": self._value("tax_category"),
        }
        if self._value("quantity"):
            line["quantity"] = self._value("quantity")
        return line

    @staticmethod
    def initial_for(line: dict[str, Any]) -> dict[str, Any]:
        return {
            "description": line.get("description", ""),
            "quantity": str(line.get("quantity", 1)),
            "unit_price": str(line.get("unit_price", "")),
            "tax_category": line.get("tax_category", "10"),
        }


class BaseLineFormSet(forms.BaseFormSet):
    def filled(self) -> list[tuple[int, LineForm]]:
        """(row index, form) of the rows with something in them; blank rows are ignored."""
        return [(i, f) for i, f in enumerate(self.forms) if not f.is_blank()]  # type: ignore[attr-defined]


LineFormSet = cast(
    type[BaseLineFormSet],
    forms.formset_factory(  # the factory subclasses BaseLineFormSet
        LineForm,
        formset=BaseLineFormSet,
        extra=5,
        max_num=MAX_LINES,
        validate_max=True,
        absolute_max=MAX_LINES,
    ),
)


def line_formset(rows: list[dict[str, Any]], *, extra: int = 0) -> BaseLineFormSet:
    """An unbound formset showing ``rows`` (what was typed, kept when a row is added or removed without
    JavaScript) and ``extra`` empty rows."""
    factory = forms.formset_factory(
        LineForm,
        formset=BaseLineFormSet,
        extra=extra,
        max_num=MAX_LINES,
        validate_max=True,
        absolute_max=MAX_LINES,
    )
    return cast(BaseLineFormSet, factory(prefix="lines", initial=rows))


def typed_rows(formset: forms.BaseFormSet) -> list[dict[str, Any]]:
    """Each row of a bound formset as typed (no validation)."""
    return [{name: f[name].value() for name in f.fields} for f in formset.forms]


def form_typed(form: forms.Form) -> dict[str, Any]:
    """A bound form's values as typed (no validation), to show again as an unbound form's initial."""
    return {name: form[name].value() for name in form.fields}


def lines_totals(formset: forms.BaseFormSet, *, biller: Biller, tax_inclusive: bool) -> Totals | None:
    """The totals of the rows with something in them, as typed (billing.invoicing.totals_preview)."""
    rows = [f for f in formset.forms if not f.is_blank()]  # type: ignore[attr-defined]
    raw = [{name: f[name].value() for name in ("quantity", "unit_price", "tax_category")} for f in rows]
    for line in raw:
        if not str(line["quantity"] or "").strip():
            del line["quantity"]  # an emptied quantity is 1, as LineForm.to_line sends it
    return totals_preview(raw, rounding=biller.tax_rounding, tax_inclusive=tax_inclusive)


def formset_errors_apply(
    exc: ValidationFailed,
    *,
    form: forms.Form,
    formset: forms.BaseFormSet,
    rows: list[int],
    list_name: str,
    stray_to_formset: bool,
) -> None:
    """Put a service's errors on the form and on the formset rows they name.

    The service numbers only the rows it was given (the filled ones), so ``<list_name>[n]`` is the
    formset row ``rows[n]``. An error on the list itself or on a row past those goes above the
    formset when ``stray_to_formset`` (the invoice lines), otherwise to the form (the balance items).
    """
    row_key = re.compile(rf"^{re.escape(list_name)}\[(\d+)\](?:\.(\w+))?$")
    main: dict[str, list[str]] = {}
    for key, errs in exc.errors.items():
        match = row_key.match(key)
        if match and int(match[1]) < len(rows):
            form_errors_add(formset.forms[rows[int(match[1])]], {match[2]: errs})
        elif stray_to_formset and (key == list_name or match):
            formset.non_form_errors().extend(errs)
        else:
            main[key] = errs
    form_errors_add(form, main, named=True)


class InvoiceNumberingForm(forms.Form):
    invoice_number_pattern = forms.CharField(
        label=_("Invoice number pattern"),
        max_length=INVOICE_NUMBER_PATTERN_MAX_LENGTH,
        widget=forms.TextInput(attrs={"size": 30, "spellcheck": "false", "autocomplete": "off"}),
        help_text=_(
            "Letters, digits, - _ / . and the placeholders {yyyy} (year), {yy} (year, 2 digits), {mm} "
            "(month), {dd} (day) of the issue date, and one sequence number: {seq} or {seq:06} (padded to "
            "6 digits). The sequence starts again at 1 whenever the text around it changes: every month "
            "with {yyyy}-{mm}-{seq:06}."
        ),
    )

    def clean_invoice_number_pattern(self) -> str:
        value = self.cleaned_data["invoice_number_pattern"].strip()
        problems = invoice_number_pattern_errors(value)
        if problems:
            raise forms.ValidationError(problems)
        return value


# --- customers -----------------------------------------------------------------------------------------


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = list(CUSTOMER_FIELDS)
        widgets = {
            "postal_code": forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "postal-code"}),
            "address": forms.TextInput(attrs={"autocomplete": "street-address", "size": 60}),
            "email": forms.EmailInput(attrs={"autocomplete": "off"}),
        }
        help_texts = {
            "code": _("Up to 32 letters, digits and - _ . ; unique within your customers."),
            "postal_code": _("For example 100-0001."),
        }

    def to_input(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in CUSTOMER_FIELDS}


class CustomerSearchForm(forms.Form):
    use_required_attribute = False

    q = forms.CharField(
        label=_("Search (code or name)"), required=False, widget=forms.TextInput(attrs={"type": "search"})
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All")), *Customer.Status.choices]
    )


# --- API keys ------------------------------------------------------------------------------------------


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Key name"),
        max_length=100,
        help_text=_("What uses this key, for example “billing system (production)”."),
    )


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason for cancelling"), max_length=200, required=False)


# --- payment requests (pay-later numbers) and balances (chosen amounts) ------------------------------------


def _yen_widget(size: int = 12) -> forms.TextInput:
    return forms.TextInput(attrs={"inputmode": "numeric", "size": size})


class PaymentRequestForm(forms.Form):
    """An order's pay-later numbers. The amount and the rules are checked by the service."""

    amount = forms.CharField(label=_("Amount (yen, tax included)"), widget=_yen_widget())
    description = DescriptionField(
        label=_("Description shown to payers (料金名)"),
        help_text=_("Up to 20 characters, shown on ATM screens."),
    )
    due_date = forms.DateField(label=_("Due date"), widget=_date_widget())
    email = forms.EmailField(
        label=_("Customer e-mail"),
        required=False,
        help_text=_("The numbers and a link to them are sent here. Empty: the customer's e-mail."),
    )
    name = forms.CharField(label=_("Customer name"), max_length=100, required=False)
    external_id = forms.CharField(
        label=_("Order reference"),
        max_length=64,
        required=False,
        help_text=_("Optional: the order's id in your own system. Must be unique."),
    )
    customer = forms.CharField(
        label=_("Customer code"),
        max_length=32,
        required=False,
        help_text=_("Optional: one of your customers."),
        widget=forms.TextInput(attrs={"list": "customer-directory", "autocomplete": "off", "size": 20}),
    )
    tax_category = TaxCategoryField(label=_("Tax rate"), initial="10")

    def __init__(self, *args: Any, customers: QuerySet[Customer], **kwargs: Any) -> None:
        self.customers = customers
        super().__init__(*args, **kwargs)

    def clean_customer(self) -> Customer | None:
        code = self.cleaned_data["customer"].strip()
        if not code:
            return None
        customer = self.customers.filter(code=code).first()
        if customer is None:
            raise forms.ValidationError(
                _("No customer has the code %(code)s."), code="unknown", params={"code": code}
            )
        return customer

    def to_input(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


class BalanceForm(forms.Form):
    minimum_payment = forms.CharField(
        label=_("Minimum payment (yen)"),
        widget=_yen_widget(),
        help_text=_("A payer chooses an amount from this (or the whole balance, if smaller) to the balance."),
    )


class BalanceItemForm(forms.Form):
    """One dated item of a balance (a monthly statement). Amounts are checked by the service."""

    use_required_attribute = False

    date = forms.DateField(label=_("Date"), required=False, widget=_date_widget())
    description = forms.CharField(label=_("Description"), max_length=100, required=False)
    amount = forms.CharField(label=_("Amount (yen)"), required=False, widget=_yen_widget())
    outstanding = forms.CharField(
        label=_("Outstanding (yen)"), required=False, widget=_yen_widget(), help_text=_("Empty: unchanged.")
    )

    def _value(self, name: str) -> Any:
        if hasattr(self, "cleaned_data") and name in self.cleaned_data:
            return self.cleaned_data[name]
        return self[name].value()

    def is_blank(self) -> bool:
        return not any(str(self._value(n) or "").strip() for n in ("date", "description", "amount"))

    def to_item(self) -> dict[str, Any]:
        return {name: self._value(name) for name in ("date", "description", "amount", "outstanding")}


class BaseBalanceItemFormSet(forms.BaseFormSet):
    def filled(self) -> list[tuple[int, BalanceItemForm]]:
        return [(i, f) for i, f in enumerate(self.forms) if not f.is_blank()]  # type: ignore[attr-defined]


BalanceItemFormSet = cast(
    type[BaseBalanceItemFormSet],
    forms.formset_factory(
        BalanceItemForm,
        formset=BaseBalanceItemFormSet,
        extra=3,
        max_num=200,
        validate_max=True,
        absolute_max=200,
    ),
)
