from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from payeasy.models import Channel, ContractedBank, validate_known_bank
from payeasy.services import ContractInput


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
