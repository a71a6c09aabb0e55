from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from billing.models import Biller
from payeasy import selectors
from payeasy.models import Channel, ContractedBank, Message, validate_known_bank
from payeasy.services.contracts import ContractInput
from payeasy.staff.frames import MESSAGE_TYPE_LABELS


class ContractForm(forms.Form):
    contract_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    bank_code = forms.CharField(
        label=_("Bank code"),
        max_length=4,
        validators=[validate_known_bank],
        widget=forms.TextInput(
            attrs={"list": "bank-directory", "inputmode": "numeric", "size": 6, "autocomplete": "off"}
        ),
    )
    channels = forms.MultipleChoiceField(
        label=_("Channels"),
        choices=Channel.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one channel.")},
    )
    valid_from = forms.DateField(label=_("Contract start"), widget=forms.DateInput(attrs={"type": "date"}))
    valid_to = forms.DateField(
        label=_("Contract end"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Inclusive. Leave empty for an open-ended contract."),
    )

    def clean_bank_code(self) -> str:
        # "0001 みずほ" picked from the list means bank 0001.
        return self.cleaned_data["bank_code"].strip()[:4]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("valid_from"), data.get("valid_to")
        if start and end and end < start:
            self.add_error("valid_to", _("The contract end must not be before its start."))
        return data

    def to_input(self) -> ContractInput:
        d = self.cleaned_data
        return ContractInput(
            bank_code=d["bank_code"],
            channels=d["channels"],
            valid_from=d["valid_from"],
            valid_to=d.get("valid_to"),
        )

    @classmethod
    def initial_for(cls, row: ContractedBank) -> dict[str, Any]:
        return {
            "contract_id": row.pk,
            "bank_code": row.bank_code,
            "channels": row.channels,
            "valid_from": row.valid_from,
            "valid_to": row.valid_to,
        }


class BaseContractFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        """Overlapping periods for one bank inside the same submission, named by row."""
        if any(self.errors):
            return
        seen: dict[str, list[tuple[int, Any, Any]]] = {}
        for i, form in enumerate(self.forms):
            if not form.has_changed() or not form.cleaned_data:
                continue
            bank, start, end = (form.cleaned_data.get(k) for k in ("bank_code", "valid_from", "valid_to"))
            for j, other_start, other_end in seen.get(bank, []):
                if start <= (other_end or datetime.date.max) and other_start <= (end or datetime.date.max):
                    form.add_error(
                        "valid_from",
                        _("Row %(row)d: the period overlaps row %(other)d for the same bank.")
                        % {"row": i + 1, "other": j + 1},
                    )
            seen.setdefault(bank, []).append((i, start, end))


ContractFormSet = forms.formset_factory(ContractForm, formset=BaseContractFormSet, extra=3, max_num=50)


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=[("active", "active"), ("suspended", "suspended")])
    reason = forms.CharField(required=False, max_length=200)


# --- operations: the message history search ------------------------------------------------------------

EARLIEST_SEARCH_DATE = datetime.date(2000, 1, 1)


def _date_widget() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class MessageSearchForm(forms.Form):
    """The GET filters of the message history (電文履歴). Empty dates mean today (JST)."""

    use_required_attribute = False

    key = forms.CharField(
        label=_("Transaction key"),
        required=False,
        max_length=selectors.KEY_LENGTH,
        strip=False,
        help_text=_(
            "The whole key (26 characters: centre, date, serial) finds it on any day; a shorter "
            "text matches the beginning of keys."
        ),
        widget=forms.TextInput(attrs={"size": 28, "autocomplete": "off", "spellcheck": "false"}),
    )
    customer_number = forms.CharField(
        label=_("Customer number (お客様番号)"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 20, "autocomplete": "off"}),
    )
    biller = forms.CharField(
        label=_("Biller code"),
        required=False,
        max_length=120,
        widget=forms.TextInput(
            attrs={"list": "biller-directory", "inputmode": "numeric", "size": 10, "autocomplete": "off"}
        ),
    )
    type = forms.ChoiceField(
        label=_("Message type"),
        required=False,
        choices=[
            ("", _("All")),
            *((code, format_lazy("{} {}", code, label)) for code, label in MESSAGE_TYPE_LABELS.items()),
        ],
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"), required=False, choices=[("", _("All")), *Message.Outcome.choices]
    )
    date_from = forms.DateField(
        label=_("Received from"), required=False, widget=_date_widget(), help_text=_("JST. Empty: today.")
    )
    date_to = forms.DateField(label=_("Received to"), required=False, widget=_date_widget())

    def clean_key(self) -> str:
        return self.cleaned_data["key"].strip()

    def clean_customer_number(self) -> str:
        value = self.cleaned_data["customer_number"].strip()
        if value and not value.isdigit():
            raise forms.ValidationError(_("A customer number has digits only."), code="digits")
        return value

    def clean_biller(self) -> str:
        # "12345001 テスト電気" picked from the list means biller code 12345001
        value = (self.cleaned_data["biller"].split() or [""])[0]
        if value and not (value.isdigit() and len(value) <= 8):
            raise forms.ValidationError(_("A biller code has up to 8 digits."), code="biller_code")
        return value

    def _clean_date(self, name: str) -> datetime.date | None:
        value = self.cleaned_data[name]
        if value is not None and not EARLIEST_SEARCH_DATE <= value <= selectors.jst_today():
            raise forms.ValidationError(
                _("Give a date between %(first)s and today."),
                code="date_range",
                params={"first": EARLIEST_SEARCH_DATE.isoformat()},
            )
        return value

    def clean_date_from(self) -> datetime.date | None:
        return self._clean_date("date_from")

    def clean_date_to(self) -> datetime.date | None:
        return self._clean_date("date_to")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        days = self.date_range(data)
        if days is not None:
            first, last = days
            if last < first:
                self.add_error("date_to", _("The end date must not be before the start date."))
            elif (last - first).days >= selectors.SEARCH_MAX_DAYS:
                self.add_error(
                    "date_to",
                    _("Search at most %(days)d days at a time.") % {"days": selectors.SEARCH_MAX_DAYS},
                )
        return data

    @staticmethod
    def date_range(data: dict[str, Any]) -> tuple[datetime.date, datetime.date] | None:
        """The JST days searched (as ``selectors.message_search`` bounds them); None: every day."""
        return selectors.message_search_days(
            key=data.get("key", ""), date_from=data.get("date_from"), date_to=data.get("date_to")
        )

    def search(self) -> QuerySet[Message]:
        d = self.cleaned_data
        code = d["biller"]
        biller = Biller.objects.filter(biller_code=code).first() if code else None
        return selectors.message_search(
            key=d["key"],
            customer_number=d["customer_number"],
            biller=biller,
            biller_code=code if biller is None else "",
            message_type=d["type"],
            outcome=d["outcome"],
            date_from=d["date_from"],
            date_to=d["date_to"],
        )


# --- 情報リンク endpoints -------------------------------------------------------------------------------


class HandoffEndpointForm(forms.Form):
    bank_code = forms.CharField(
        label=_("Bank code"),
        max_length=40,
        help_text=_("4-digit 全銀 bank code; type a name to pick from the bank master."),
        widget=forms.TextInput(
            attrs={"list": "bank-directory", "inputmode": "numeric", "size": 8, "autocomplete": "off"}
        ),
    )
    entry_url = forms.CharField(
        label=_("Entry URL"),
        max_length=500,
        help_text=_("Where the hand-off page POSTs the envelope: the bank's https:// 情報リンク entry."),
        widget=forms.TextInput(attrs={"size": 60, "autocomplete": "off", "spellcheck": "false"}),
    )
    enabled = forms.BooleanField(
        label=_("Enabled"),
        required=False,
        initial=True,
        help_text=_("Payers are offered this bank only while enabled (and it has an active key)."),
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:  # the bank of an endpoint never changes
            del self.fields["bank_code"]

    def clean_bank_code(self) -> str:
        # "0001 みずほ" picked from the list means bank 0001.
        value = self.cleaned_data["bank_code"].strip()[:4]
        validate_known_bank(value)
        return value
