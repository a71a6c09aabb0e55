"""The reconciliation console's forms: the work queue's filters and the actions on a finding."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reconciliation.calendar import business_day_add
from reconciliation.models import Finding
from reconciliation.models.refunds import AccountType
from reconciliation.selectors.findings import AGE_BUCKETS, ALL_STATES, FindingFilters


class FindingFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Type"), required=False, choices=[("", _("All types")), *Finding.Kind.choices]
    )
    state = forms.ChoiceField(
        label=_("State"),
        required=False,
        initial=Finding.State.OPEN,
        choices=[*Finding.State.choices, (ALL_STATES, _("All states"))],
    )
    date_from = forms.DateField(
        label=_("Processing date from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("Processing date to"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    amount_min = forms.IntegerField(label=_("Amount from (yen)"), required=False, min_value=0)
    amount_max = forms.IntegerField(label=_("Amount to (yen)"), required=False, min_value=0)
    age = forms.ChoiceField(
        label=_("Age"), required=False, choices=[("", _("Any age")), *((b.key, b.label) for b in AGE_BUCKETS)]
    )

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        if data is not None and "state" not in data:
            data = data.copy()
            data["state"] = Finding.State.OPEN  # the queue: open findings unless asked otherwise
        super().__init__(data, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        low, high = data.get("date_from"), data.get("date_to")
        if low and high and low > high:
            self.add_error("date_to", _("The end of the range is before its start."))
        amin, amax = data.get("amount_min"), data.get("amount_max")
        if amin is not None and amax is not None and amin > amax:
            self.add_error("amount_max", _("The largest amount is smaller than the smallest."))
        return data

    def filters(self) -> FindingFilters:
        """The filters of a valid form (of an unbound one: the open queue)."""
        if not self.is_bound:
            return FindingFilters()
        d = self.cleaned_data
        return FindingFilters(
            kind=d.get("kind") or "",
            state=d.get("state") or Finding.State.OPEN,
            date_from=d.get("date_from"),
            date_to=d.get("date_to"),
            amount_min=d.get("amount_min"),
            amount_max=d.get("amount_max"),
            age=d.get("age") or "",
        )


class MatchForm(forms.Form):
    invoice_number = forms.CharField(
        label=_("Invoice number"),
        max_length=50,
        help_text=_("The number of this biller's unpaid invoice the payment is for."),
    )


class RefundForm(forms.Form):
    bank_code = forms.CharField(
        label=_("Bank code"),
        max_length=4,
        min_length=4,
        help_text=_("4 digits; type a bank's name to choose it from the list."),
        widget=forms.TextInput(
            attrs={"list": "bank-directory", "inputmode": "numeric", "autocomplete": "off"}
        ),
    )
    branch_code = forms.CharField(
        label=_("Branch code"),
        max_length=3,
        min_length=3,
        help_text=_("3 digits."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    account_type = forms.ChoiceField(label=_("Account type"), choices=AccountType.choices)
    account_number = forms.CharField(
        label=_("Account number"),
        max_length=7,
        help_text=_("1 to 7 digits."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    holder_kana = forms.CharField(
        label=_("Account holder (kana)"),
        max_length=60,
        help_text=_(
            "As the bank holds it, in kana. Full-width kana and letters are converted to half-width."
        ),
    )
    transfer_date = forms.DateField(
        label=_("Transfer date"),
        help_text=_("A business day of the banks, today or later."),
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"transfer_date": business_day_add(timezone.localdate(), 1)})
        super().__init__(*args, **kwargs)

    def clean_transfer_date(self) -> datetime.date:
        day: datetime.date = self.cleaned_data["transfer_date"]
        if day < timezone.localdate():
            raise ValidationError(_("The transfer date cannot be in the past."))
        return day


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300, widget=forms.Textarea(attrs={"rows": 2}))


__all__ = ["FindingFilterForm", "MatchForm", "ReasonForm", "RefundForm"]
