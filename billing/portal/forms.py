"""Forms of the customer portal and of the console's customer-account section."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import SetPasswordForm
from django.utils.translation import gettext_lazy as _

from billing.models import Customer, CustomerAccount, InvoiceApproval

PASSWORD_HELP = _("At least 10 characters, not only digits, not a common password.")


class NewAccountForm(forms.Form):
    name = forms.CharField(
        label=_("Your name"), max_length=100, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        min_length=10,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=PASSWORD_HELP,
    )


class RegistrationForm(NewAccountForm):
    field_order = ["customer_number", "registration_code", "email", "name", "password"]

    customer_number = forms.CharField(
        label=_("Customer number (お客様番号)"),
        max_length=30,
        help_text=_("The number printed on your bill, beside 収納機関番号."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    registration_code = forms.CharField(
        label=_("Registration code"),
        max_length=30,
        help_text=_("12 letters and digits printed on your bill, for example ABCD-EFGH-JKMN."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )
    email = forms.EmailField(
        label=_("E-mail"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        label=_("E-mail"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )


class PortalSetPasswordForm(SetPasswordForm):
    """Django's form, with our labels."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = PASSWORD_HELP


class InvoiceFilterForm(forms.Form):
    """The search and period filter of the invoice list (the tab is a link, carried as a hidden field)."""

    use_required_attribute = False
    renders_same_unbound = True  # {% field_group %} (billing.templatetags.form_fields)

    tab = forms.CharField(required=False, widget=forms.HiddenInput)
    q = forms.CharField(
        label=_("Search (invoice number or description)"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    issued_from = forms.DateField(
        label=_("Issued from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    issued_to = forms.DateField(
        label=_("Issued to"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(label=_("Decision"), choices=InvoiceApproval.Decision.choices)
    comment = forms.CharField(
        label=_("Comment"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Required when you reject the invoice."),
    )


# --- tenant console ------------------------------------------------------------------------------------


class PortalInviteForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=CustomerAccount.Role.choices)

    def __init__(self, *args: Any, customer: Customer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        role = self.fields["role"]
        assert isinstance(role, forms.ChoiceField)
        if customer.kind == Customer.Kind.CONSUMER:
            role.choices = [(CustomerAccount.Role.PAYER, CustomerAccount.Role.PAYER.label)]
            role.initial = CustomerAccount.Role.PAYER
            role.help_text = _("A consumer's account is always a payer.")
        else:
            role.initial = CustomerAccount.Role.VIEWER
        if not self.is_bound and customer.email:
            self.fields["email"].initial = customer.email


class AccountRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=CustomerAccount.Role.choices)


class ChosenAmountForm(forms.Form):
    """The amount a payer chooses to pay on their balance (任意金額). The range is the service's rule."""

    amount = forms.CharField(
        label=_("Amount to pay (yen)"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "size": 14}),
    )

    def clean_amount(self) -> int:
        import unicodedata

        raw = unicodedata.normalize("NFKC", self.cleaned_data["amount"])
        text = raw.replace(",", "").replace("¥", "").replace("円", "").replace(" ", "").strip()
        if not text.isdigit():
            raise forms.ValidationError(_("Enter a whole number of yen, for example 10000."), code="invalid")
        return int(text)
