"""Forms of the deposit pages: the statement upload, a bank's lag, and the funds table's bank filter."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from reconciliation.models import DepositLag


class StatementUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Deposit statement (CSV)"),
        help_text=_(
            "UTF-8 or Shift_JIS (cp932), a header row, the columns 入金日, 金融機関コード, 金額 and "
            "optionally 摘要. All rows or none: a file with any problem imports nothing."
        ),
    )


class LagForm(forms.Form):
    bank_code = forms.CharField(
        label=_("Bank code"),
        required=False,
        max_length=4,
        help_text=_("Four digits (0005, 0009, …). Leave it empty to set the default for every other bank."),
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "list": "bank-directory", "autocomplete": "off"}
        ),
    )
    business_days = forms.IntegerField(
        label=_("Business days after the processing date"),
        min_value=0,
        max_value=30,
        initial=DepositLag.DEFAULT_DAYS,
        help_text=_("Weekends, national holidays and 12/31–1/3 are not business days."),
    )


class BankFilterForm(forms.Form):
    bank = forms.RegexField(
        label=_("Bank code"),
        regex=r"^[0-9]{4}$",
        required=False,
        error_messages={"invalid": _("Four digits.")},
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "list": "bank-directory", "autocomplete": "off"}
        ),
    )
