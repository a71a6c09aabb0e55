"""The accounts' and the staff console's biller forms, and ``form_errors_add``: a service's
``ValidationFailed`` onto a form, the one way every HTML view shows one."""

from __future__ import annotations

from collections.abc import Mapping

from django import forms
from django.utils.translation import gettext_lazy as _

from billing.errors import ValidationFailed
from billing.kana import to_double_byte, to_zengin_kana
from billing.models import Biller, Membership
from billing.services.billers import BILLER_FIELDS


def form_errors_add(
    form: forms.BaseForm, errors: ValidationFailed | Mapping[str, list[str]], *, named: bool = False
) -> None:
    """A service's errors (``ValidationFailed``, or its ``errors``) onto ``form``: a key that names one of
    the form's fields onto that field, any other key onto the form itself.

    ``named`` (the tenant console's forms): a field that already has errors of its own keeps just those
    (the form and the service checked the same rule), and another key's errors name it ("customer: …").
    """
    items = errors.errors if isinstance(errors, ValidationFailed) else errors
    for key, errs in items.items():
        if key in form.fields:
            if not (named and key in form.errors):
                form.add_error(key, errs)
        elif named:
            form.add_error(None, [f"{key}: {e}" if key not in {"__all__", ""} else e for e in errs])
        else:
            form.add_error(None, errs)


class InvitationAcceptForm(forms.Form):
    name = forms.CharField(label=_("Your name"), max_length=100)
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        min_length=10,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 10 characters, not only digits, not a common password."),
    )


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"))
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices, initial=Membership.Role.ADMIN)


class BillerForm(forms.ModelForm):
    """The biller's own fields. Kana and the short name are converted before the rules check them."""

    class Meta:
        model = Biller
        fields = list(BILLER_FIELDS)  # what the services accept, nothing else
        widgets = {
            "payee_number": forms.TextInput(
                attrs={"inputmode": "numeric", "pattern": r"\d{5}", "maxlength": 5}
            ),
            "biller_code": forms.TextInput(
                attrs={"inputmode": "numeric", "pattern": r"\d{8}", "maxlength": 8}
            ),
        }

    def clean_name_kana(self) -> str:
        return to_zengin_kana(self.cleaned_data["name_kana"])

    def clean_short_name(self) -> str:
        return to_double_byte(self.cleaned_data["short_name"].strip())

    def clean_slug(self) -> str:
        return self.cleaned_data["slug"].strip().lower()

    def clean_registration_number(self) -> str:
        return self.cleaned_data["registration_number"].strip().upper()
