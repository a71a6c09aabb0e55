from __future__ import annotations

import unicodedata

from django import forms
from django.utils.translation import gettext_lazy as _

DEMO_LOGIN = "demo"
DEMO_PASSWORD = "sandbox-2026"  # noqa: S105 - the published sandbox login, shown on the page


class LoginForm(forms.Form):
    login_id = forms.CharField(
        label=_("Login ID"), max_length=40, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=100,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def clean(self) -> dict:
        data = super().clean() or {}
        given = (data.get("login_id", "").strip(), data.get("password"))
        if all(given) and given != (DEMO_LOGIN, DEMO_PASSWORD):
            raise forms.ValidationError(_("Wrong login ID or password."), code="login")
        return data


class DigitsField(forms.CharField):
    """Digits as people type them: full-width digits, spaces and hyphens are accepted and dropped."""

    def __init__(self, *, low: int, high: int, **kwargs: object) -> None:
        self.low, self.high = low, high
        super().__init__(max_length=high + 10, **kwargs)  # type: ignore[arg-type]

    def to_python(self, value: object) -> str:
        text = unicodedata.normalize("NFKC", str(super().to_python(value)))
        return text.replace("-", "").replace(" ", "")

    def validate(self, value: str) -> None:
        super().validate(value)
        if value and not (value.isascii() and value.isdigit() and self.low <= len(value) <= self.high):
            size = str(self.low) if self.low == self.high else f"{self.low}–{self.high}"
            raise forms.ValidationError(_("Enter %(size)s digits.") % {"size": size}, code="digits")


def _numeric(size: int) -> forms.TextInput:
    return forms.TextInput(attrs={"inputmode": "numeric", "size": size, "autocomplete": "off"})


class AtmForm(forms.Form):
    """The three numbers a payer keys in (番号入力方式)."""

    payee_number = DigitsField(label=_("Payee number (収納機関番号)"), low=5, high=5, widget=_numeric(7))
    customer_number = DigitsField(
        label=_("Customer number (お客様番号)"), low=1, high=20, widget=_numeric(22)
    )
    confirmation_number = DigitsField(
        label=_("Confirmation number (確認番号)"), low=1, high=6, widget=_numeric(8)
    )
