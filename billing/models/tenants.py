"""The tenant (Biller, the 収納企業), its console users, their memberships and invitations, API keys."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing import validators
from billing.numbers import (
    INVOICE_NUMBER_PATTERN_DEFAULT,
    INVOICE_NUMBER_PATTERN_MAX_LENGTH,
    new_number_key,
    validate_invoice_number_pattern,
)
from billing.scoping import TenantManager

RESERVED_SLUGS = frozenset(
    {"www", "api", "admin", "staff", "static", "media", "accounts", "mail", "b", "i18n", "assets", "help"}
)

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{1,38})[a-z0-9]$",
    _("Use 3–40 lower-case letters, digits and hyphens, starting and ending with a letter or digit."),
    code="slug",
)


def validate_not_reserved(value: str) -> None:
    from django.core.exceptions import ValidationError

    if value in RESERVED_SLUGS:
        raise ValidationError(_("%(value)s is reserved."), code="reserved", params={"value": value})


class Biller(models.Model):
    """A 収納企業: the tenant. Every tenant-owned row points here with PROTECT."""

    class Status(models.TextChoices):
        ONBOARDING = "onboarding", _("Onboarding")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    class LatePaymentPolicy(models.TextChoices):
        ACCEPT = "accept", _("Accept payments after the due date")
        REFUSE = "refuse", _("Refuse payments after the due date (B003)")

    class TaxRounding(models.TextChoices):
        FLOOR = "floor", _("Round down (切り捨て)")
        HALF_UP = "half_up", _("Round half up (四捨五入)")
        CEILING = "ceiling", _("Round up (切り上げ)")

    legal_name = models.CharField(_("legal name"), max_length=100)
    short_name = models.CharField(
        _("short name (kanji)"),
        max_length=12,
        validators=[validators.validate_double_byte],
        help_text=_("Up to 12 full-width characters; sent on the MPN line (収納機関名漢字)."),
    )
    name_kana = models.CharField(
        _("name (half-width kana)"),
        max_length=24,
        validators=[validators.validate_zengin_kana],
        help_text=_("全銀 half-width kana, up to 24 characters; full-width input is converted."),
    )
    payee_number = models.CharField(
        _("payee number (収納機関番号)"), max_length=5, validators=[validators.validate_payee_number]
    )
    biller_code = models.CharField(
        _("biller code (収納機関コード)"),
        max_length=8,
        unique=True,
        validators=[validators.validate_biller_code],
        error_messages={"unique": _("Another biller already has this biller code.")},
    )
    registration_number = models.CharField(
        _("qualified invoice registration number"),
        max_length=14,
        blank=True,
        validators=[validators.validate_registration_number],
        help_text=_("T and 13 digits (適格請求書発行事業者登録番号)."),
    )
    slug = models.CharField(
        _("portal slug"),
        max_length=40,
        unique=True,
        validators=[slug_validator, validate_not_reserved],
        error_messages={"unique": _("Another biller already uses this portal slug.")},
    )
    contact_name = models.CharField(_("contact name"), max_length=100)
    contact_email = models.EmailField(_("contact e-mail"))
    contact_phone = models.CharField(
        _("contact phone"),
        max_length=20,
        blank=True,
        validators=[RegexValidator(r"^[0-9+\-() ]{6,20}$", _("Use digits, spaces and + - ( )."))],
    )
    status = models.CharField(_("status"), max_length=12, choices=Status, default=Status.ONBOARDING)
    late_payment_policy = models.CharField(
        _("late payment policy"), max_length=8, choices=LatePaymentPolicy, default=LatePaymentPolicy.ACCEPT
    )
    tax_rounding = models.CharField(
        _("tax rounding rule"), max_length=8, choices=TaxRounding, default=TaxRounding.FLOOR
    )
    reminder_days = models.PositiveSmallIntegerField(
        _("reminder days before due"), default=3, help_text=_("0 sends no reminder.")
    )
    # Invoices created without a number get one from this pattern (billing.numbers, billing.invoicing).
    invoice_number_pattern = models.CharField(
        _("invoice number pattern"),
        max_length=INVOICE_NUMBER_PATTERN_MAX_LENGTH,
        default=INVOICE_NUMBER_PATTERN_DEFAULT,
        validators=[validate_invoice_number_pattern],
        help_text=_(
            "Used when an invoice is created without a number. {yyyy} {yy} {mm} {dd}: the issue date; "
            "{seq:06}: the sequence number, 6 digits. The sequence restarts when the date part changes."
        ),
    )
    # Administrators and iDC staff always need a second factor in the console; operators when this is on.
    console_totp_for_operators = models.BooleanField(_("operators need two-step verification"), default=False)
    # Payment numbers are a keyed permutation of the invoice's id (billing.numbers).
    number_key = models.CharField(max_length=32, default=new_number_key, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["biller_code"]
        verbose_name = _("biller")
        constraints = [
            models.CheckConstraint(
                condition=Q(biller_code__startswith=F("payee_number")),
                name="biller_code_starts_with_payee_number",
                violation_error_message=_("The biller code must start with the 5-digit payee number."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.biller_code} {self.legal_name}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        both_well_formed = re.fullmatch(r"\d{5}", self.payee_number or "") and re.fullmatch(
            r"\d{8}", self.biller_code or ""
        )
        if both_well_formed and not self.biller_code.startswith(self.payee_number):
            raise ValidationError(
                {"biller_code": _("The biller code must start with the 5-digit payee number.")}
            )

    @property
    def is_suspended(self) -> bool:
        return self.status == self.Status.SUSPENDED


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        email = self.normalize_email(email)
        user = self.model(login=console_login(email), email=email, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, login: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("email", login)
        extra.update(is_staff=True, is_superuser=True, is_idc_staff=True)
        return self.create_user(extra.pop("email"), password, **extra)


def console_login(email: str) -> str:
    """The login of a console user (iDC staff, tenant admin/operator): the e-mail, lower-cased."""
    return email.strip().lower()


def customer_login(biller: Biller | int, email: str) -> str:
    """The login of a customer account: namespaced by the biller, so each portal has its own accounts.

    It starts with ``customer:``, which no console login (an e-mail address) can: the same
    address can be a console user and a customer of any number of billers, each a separate account.
    """
    biller_id = biller if isinstance(biller, int) else biller.pk
    return f"customer:{biller_id}:{email.strip().lower()}"


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in.

    Console users (iDC staff and tenant members) log in with their e-mail.
    Customer accounts are per biller: the same person is a separate account in
    each biller's portal, so ``login`` namespaces them by biller and
    ``customer_biller`` says whose portal the account belongs to.
    """

    class Realm(models.TextChoices):
        CONSOLE = "console", _("Console")
        CUSTOMER = "customer", _("Customer portal")

    login = models.CharField(_("login"), max_length=300, unique=True)
    email = models.EmailField(_("e-mail"))
    name = models.CharField(_("name"), max_length=100, blank=True)
    realm = models.CharField(max_length=10, choices=Realm, default=Realm.CONSOLE)
    customer_biller = models.ForeignKey(
        Biller, null=True, blank=True, on_delete=models.PROTECT, related_name="customer_accounts"
    )
    is_idc_staff = models.BooleanField(_("iDC staff"), default=False)
    is_staff = models.BooleanField(_("Django admin access"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "login"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        verbose_name = _("user")
        constraints = [
            models.CheckConstraint(
                condition=(Q(realm="console", customer_biller__isnull=True))
                | (Q(realm="customer", customer_biller__isnull=False, is_idc_staff=False)),
                name="user_realm_matches_biller",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.email


class Membership(models.Model):
    """A console user's role at one biller. A user may belong to several billers."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("Administrator")
        OPERATOR = "operator", _("Operator (read-only)")

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(_("role"), max_length=10, choices=Role)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["biller__biller_code"]
        constraints = [
            models.UniqueConstraint(fields=["biller", "user"], name="membership_unique_per_biller")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.biller.slug} ({self.role})"

    @property
    def can_write(self) -> bool:
        return self.role == self.Role.ADMIN


class InvitationState(models.Model):
    """What a single-use, expiring invitation (console or customer portal) has in common: the address it
    went to, the SHA-256 of its token, and its state from its timestamps (abstract: no table)."""

    email = models.EmailField(_("e-mail"))
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    STATE_LABELS: ClassVar[dict[str, Any]] = {
        "pending": _("pending"),
        "accepted": _("accepted"),
        "revoked": _("revoked"),
        "expired": _("expired"),
    }

    def get_state_display(self) -> str:
        return str(self.STATE_LABELS[self.state])

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class Invitation(InvitationState):
    """A single-use, expiring link that makes its holder a member of a biller.

    Only the SHA-256 of the token is stored; the token itself exists in the
    e-mail alone.
    """

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="invitations")
    role = models.CharField(_("role"), max_length=10, choices=Membership.Role)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} → {self.biller.slug}"


class ApiKey(models.Model):
    """A tenant's key for the REST API. Only its SHA-256 is stored; the key is shown once."""

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyRecord(models.Model):
    """The stored response of a POST made with an Idempotency-Key, per tenant, for 24 hours."""

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.TextField(null=True)  # the JSON as sent: jsonb would reorder its keys
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    objects = TenantManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["biller", "key"], name="idempotency_key_per_biller")]

    def __str__(self) -> str:
        return f"{self.biller_id}:{self.key}"
