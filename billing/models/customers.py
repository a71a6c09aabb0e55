"""A biller's customers and their portal accounts and invitations."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models.tenants import Biller, InvitationState, User
from billing.numbers import format_registration_code, new_registration_code
from billing.scoping import TenantManager


class Customer(models.Model):
    """A payer of one biller: a consumer or a company."""

    class Kind(models.TextChoices):
        CONSUMER = "consumer", _("Consumer")
        CORPORATE = "corporate", _("Corporate")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        INACTIVE = "inactive", _("Inactive")

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="customers")
    code = models.CharField(
        _("customer code"),
        max_length=32,
        validators=[RegexValidator(r"^[A-Za-z0-9\-_.]{1,32}$", _("Use letters, digits and - _ ."))],
    )
    name = models.CharField(_("name"), max_length=100)
    name_kana = models.CharField(_("name (kana)"), max_length=100, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    kind = models.CharField(_("type"), max_length=10, choices=Kind, default=Kind.CONSUMER)
    postal_code = models.CharField(
        _("postal code"), max_length=8, blank=True, validators=[RegexValidator(r"^\d{3}-?\d{4}$")]
    )
    address = models.CharField(_("address"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.ACTIVE)
    # Printed on the paper bill: with an お客様番号 of one of this customer's bills it lets the
    # reader open a portal account (billing.portal). Regenerated from the console if it leaks.
    registration_code = models.CharField(
        _("portal registration code"), max_length=12, default=new_registration_code, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["biller", "code"], name="customer_code_unique_per_biller")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def registration_code_display(self) -> str:
        return format_registration_code(self.registration_code)

    @property
    def is_corporate(self) -> bool:
        return self.kind == self.Kind.CORPORATE


class CustomerAccount(models.Model):
    """A customer-realm user's access to one customer of one biller, with a role.

    A consumer's single user is a payer. A corporate customer has several users: viewers see the
    invoices, approvers approve or reject them (社内決裁), payers pay approved ones. One user has one
    account (the user's login is namespaced by the biller, see ``customer_login``).
    """

    class Role(models.TextChoices):
        VIEWER = "viewer", _("Viewer")
        APPROVER = "approver", _("Approver")
        PAYER = "payer", _("Payer")

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+")
    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="customer_account")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="accounts")
    role = models.CharField(_("role"), max_length=10, choices=Role)
    # Optional TOTP (RFC 6238). The secret is enabled once a code from the app has been checked.
    totp_secret = models.CharField(max_length=64, blank=True, default="")
    totp_enabled_at = models.DateTimeField(null=True, blank=True)
    totp_last_step = models.BigIntegerField(null=True, blank=True)  # a code is accepted once
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        ordering = ["customer_id", "id"]
        indexes = [models.Index(fields=["biller", "customer"], name="customer_account_customer")]

    def __str__(self) -> str:
        return f"{self.user} → {self.customer} ({self.role})"

    @property
    def totp_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def can_approve(self) -> bool:
        return self.role == self.Role.APPROVER and self.customer.is_corporate


class CustomerInvitation(InvitationState):
    """A single-use, expiring link that opens a portal account for one customer.

    Sent from the tenant console, or with the e-mail of a published invoice when the customer has
    no account yet (``created_by`` empty). Only the SHA-256 of the token is stored.
    """

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invitations")
    role = models.CharField(_("role"), max_length=10, choices=CustomerAccount.Role)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["biller", "customer"], name="customer_invitation_customer")]

    def __str__(self) -> str:
        return f"{self.email} → {self.customer}"
