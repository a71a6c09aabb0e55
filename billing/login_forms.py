"""Forms of the console login: password, second factor, set-up, and the biller's operator rule."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class LoginForm(forms.Form):
    """Only the fields: the password is checked in the view, after the lockout (billing.login_views,
    billing.portal.account_views). The console and the customer portal use the same two forms."""

    email = forms.EmailField(
        label=_("E-mail"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class TotpForm(forms.Form):
    code = forms.CharField(
        label=_("6-digit code from your authenticator app"),
        max_length=10,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": r"[0-9 ]*",
                "autofocus": True,
                "spellcheck": "false",
            }
        ),
    )


class RecoveryCodeForm(forms.Form):
    recovery_code = forms.CharField(
        label=_("Recovery code"),
        max_length=20,
        help_text=_("One of the 10 codes you saved when you set up two-step verification, e.g. abcde-fghjk."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )


class OperatorTotpForm(forms.Form):
    required = forms.BooleanField(
        label=_("Operators must use two-step verification too"),
        required=False,
        help_text=_("Administrators always must. Operators without it set it up at their next page."),
    )
