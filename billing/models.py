"""The tenant (Biller, the 収納企業), its people, its customers and the audit trail."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing import validators
from billing.numbers import format_registration_code, issuer_for, new_number_key, new_registration_code

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


class InvitationState:
    """The state of a single-use, expiring invitation (console or customer portal), from its timestamps."""

    accepted_at: datetime.datetime | None
    revoked_at: datetime.datetime | None
    expires_at: datetime.datetime

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


class Invitation(InvitationState, models.Model):
    """A single-use, expiring link that makes its holder a member of a biller.

    Only the SHA-256 of the token is stored; the token itself exists in the
    e-mail alone.
    """

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="invitations")
    email = models.EmailField(_("e-mail"))
    role = models.CharField(_("role"), max_length=10, choices=Membership.Role)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} → {self.biller.slug}"


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


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise TypeError(f"{self.model.__name__} is append-only: rows are never updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError(f"{self.model.__name__} is append-only: rows are never deleted.")


class AuditEntry(models.Model):
    """Who did what, to which biller, when (UTC), with before/after where it matters.

    Append-only three times over: no service updates it, the model refuses
    ``save()`` of an existing row and ``delete()``, and a database trigger
    (migration 0002) refuses UPDATE (and DELETE on PostgreSQL).
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(max_length=300)
    action = models.CharField(max_length=64, db_index=True)
    biller = models.ForeignKey(Biller, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    summary = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["biller", "-created_at"], name="audit_biller_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("AuditEntry is append-only: an entry is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("AuditEntry is append-only: an entry is never deleted.")


class Invoice(models.Model):
    """Something a customer owes (or is owed, for a credit note), with its Pay-easy numbers.

    Lines are stored with the invoice as a document (a JSON list): they are
    never queried on their own, they are immutable once published, and one
    table keeps the bulk import to one COPY. The per-rate totals are columns.

    Kinds: an ``invoice`` (適格請求書); a ``credit_note`` (適格返還請求書) that
    reduces a paid invoice; a ``payment_request`` (an order's pay-later numbers
    or a chosen amount), which needs no lines of its own.

    Status: draft → published → paid, published → cancelled. Overdue is
    derived from the due date. A published invoice is immutable: a correction
    is a cancellation and a new invoice.
    """

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note (返還請求書)")
        PAYMENT_REQUEST = "payment_request", _("Payment request")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        PAID = "paid", _("Paid")
        CANCELLED = "cancelled", _("Cancelled")

    # The composite indexes below lead with the biller (and the customer): no single-column FK indexes,
    # which every row of a million-invoice import would otherwise pay for. Nor per-row foreign-key
    # checks: on PostgreSQL one statement-level trigger checks all new rows at once that the biller
    # exists and the customer belongs to that same biller (stronger than two foreign keys, which cannot
    # see a customer of another tenant), and billers and customers refuse DELETE (migration 0007).
    biller = models.ForeignKey(
        Biller, on_delete=models.PROTECT, related_name="invoices", db_index=False, db_constraint=False
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind, default=Kind.INVOICE)
    customer = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invoices",
        db_index=False,
        db_constraint=False,
    )
    number = models.CharField(
        _("invoice number"),
        max_length=32,
        validators=[
            RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9\-_/.]{0,31}$", _("Use letters, digits and - _ / ."))
        ],
    )
    external_id = models.CharField(_("external id"), max_length=64, blank=True, default="")
    issue_date = models.DateField(_("issue date"))
    due_date = models.DateField(_("due date"))
    description = models.CharField(
        _("description shown to payers (料金名)"),
        max_length=20,
        help_text=_("Up to 20 characters, shown on ATM screens."),
    )
    lines_json = models.TextField(db_column="lines", default="[]")
    tax_inclusive = models.BooleanField(_("prices include tax"), default=False)
    tax_rounding = models.CharField(max_length=8, choices=Biller.TaxRounding)
    subtotal_10 = models.BigIntegerField(default=0)
    tax_10 = models.BigIntegerField(default=0)
    subtotal_8 = models.BigIntegerField(default=0)
    tax_8 = models.BigIntegerField(default=0)
    subtotal_exempt = models.BigIntegerField(default=0)
    total = models.BigIntegerField(_("total"), default=0)
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.DRAFT)
    recipient_name = models.CharField(_("recipient"), max_length=100, blank=True)
    recipient_email = models.EmailField(_("recipient e-mail"), blank=True)
    confirmation_number = models.CharField(
        _("confirmation number (確認番号)"), max_length=6, null=True, blank=True
    )
    original = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes", db_index=False
    )
    source_hash = models.CharField(max_length=64, blank=True, default="")
    published_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-issue_date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["biller", "number"], name="invoice_number_unique_per_biller"),
            models.UniqueConstraint(
                fields=["biller", "external_id"],
                condition=~Q(external_id=""),
                name="invoice_external_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(kind="payment_request") | Q(customer__isnull=False), name="invoice_has_customer"
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="invoice_total_not_negative"),
            models.CheckConstraint(
                condition=~Q(status__in=["published", "paid"])
                | Q(kind="credit_note")
                | Q(confirmation_number__isnull=False),
                name="payable_published_has_numbers",
            ),
        ]
        indexes = [
            # Every console/API sort, with and without a status filter, reads its first page from an
            # index that ends in id (ties are common: a monthly run shares one due date).
            models.Index(fields=["biller", "issue_date", "id"], name="invoice_issue_date"),
            models.Index(fields=["biller", "status", "issue_date", "id"], name="invoice_status_issue"),
            models.Index(fields=["biller", "due_date", "id"], name="invoice_due_date"),
            models.Index(fields=["biller", "status", "due_date", "id"], name="invoice_status_due_id"),
            models.Index(fields=["biller", "total", "id"], name="invoice_total"),
            models.Index(fields=["biller", "customer", "issue_date"], name="invoice_customer"),
            models.Index(
                fields=["original"], condition=Q(original__isnull=False), name="invoice_credit_notes"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.total:,} yen)"

    @property
    def lines(self) -> list[dict[str, Any]]:
        """The lines: description, quantity, unit_price, tax_category, amount (stored as JSON text)."""
        cached = self.__dict__.get("_lines")
        if cached is None or cached[0] != self.lines_json:
            cached = (self.lines_json, json.loads(self.lines_json or "[]"))
            self.__dict__["_lines"] = cached
        return cached[1]

    @lines.setter
    def lines(self, value: list[dict[str, Any]]) -> None:
        self.lines_json = json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    @property
    def customer_number(self) -> str | None:
        """お客様番号: a keyed permutation of this invoice's id (billing.numbers), so it is not stored.

        It exists once the invoice is payable (published with a confirmation number). Load the
        biller with the invoice (``select_related("biller")``) when listing many.
        """
        if self.confirmation_number is None or self.pk is None:
            return None
        return issuer_for(self.biller.number_key).customer_number(self.pk)

    @property
    def is_overdue(self) -> bool:
        return self.status == self.Status.PUBLISHED and self.due_date < timezone.localdate()

    @property
    def is_payable(self) -> bool:
        return self.kind != self.Kind.CREDIT_NOTE and self.status == self.Status.PUBLISHED

    def rate_rows(self) -> list[tuple[str, int, int]]:
        """(label, subtotal, tax) per rate that occurs, as a qualified invoice must show them."""
        rows = []
        if self.subtotal_10 or self.tax_10:
            rows.append(("10%", self.subtotal_10, self.tax_10))
        if self.subtotal_8 or self.tax_8:
            rows.append(("8%※", self.subtotal_8, self.tax_8))
        if self.subtotal_exempt:
            rows.append(("非課税", self.subtotal_exempt, 0))
        return rows


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

    class Meta:
        constraints = [models.UniqueConstraint(fields=["biller", "key"], name="idempotency_key_per_biller")]

    def __str__(self) -> str:
        return f"{self.biller_id}:{self.key}"


class ImportJob(models.Model):
    """One uploaded CSV of invoices: previewed (nothing written), then imported all or nothing."""

    class Mode(models.TextChoices):
        PREVIEW = "preview", _("Preview")
        IMPORT = "import", _("Import")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        NOTHING = "nothing", _("Nothing to import")
        FAILED = "failed", _("Failed")

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="import_jobs")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=8, choices=Mode, default=Mode.PREVIEW)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    file_path = models.CharField(max_length=500)
    file_name = models.CharField(max_length=255)
    file_size = models.BigIntegerField(default=0)
    file_sha256 = models.CharField(max_length=64)
    encoding = models.CharField(max_length=16, blank=True, help_text="empty: detect")
    publish = models.BooleanField(default=True)
    language = models.CharField(
        max_length=10, default="ja", help_text="the language of the report: the uploader's"
    )
    rows = models.BigIntegerField(default=0)
    invoices_new = models.BigIntegerField(default=0)
    invoices_unchanged = models.BigIntegerField(default=0)
    total_amount = models.BigIntegerField(default=0)
    error_count = models.BigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    message = models.CharField(max_length=300, blank=True)
    preview_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.mode}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.NOTHING, self.Status.FAILED}


# --- customer portal accounts (billing.portal) ----------------------------------------------------------


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


class CustomerInvitation(InvitationState, models.Model):
    """A single-use, expiring link that opens a portal account for one customer.

    Sent from the tenant console, or with the e-mail of a published invoice when the customer has
    no account yet (``created_by`` empty). Only the SHA-256 of the token is stored.
    """

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invitations")
    email = models.EmailField(_("e-mail"))
    role = models.CharField(_("role"), max_length=10, choices=CustomerAccount.Role)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["biller", "customer"], name="customer_invitation_customer")]

    def __str__(self) -> str:
        return f"{self.email} → {self.customer}"


class InvoiceApproval(models.Model):
    """A corporate customer's approver approved or rejected an invoice (社内決裁). Append-only.

    The latest decision of an invoice counts: a payer can pay it only while that is an approval.
    Rows are never changed or deleted (the model refuses, and a trigger does on PostgreSQL).
    """

    class Decision(models.TextChoices):
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="approvals", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+", db_index=False)
    decision = models.CharField(_("decision"), max_length=10, choices=Decision)
    comment = models.CharField(_("comment"), max_length=500, blank=True)
    decided_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(_("decided at"), default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["invoice", "id"], name="invoice_approval_invoice")]

    def __str__(self) -> str:
        return f"{self.invoice_id} {self.decision} by {self.decided_by_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("InvoiceApproval is append-only: a decision is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("InvoiceApproval is append-only: a decision is never deleted.")


class LoginAttempt(models.Model):
    """One attempt to log in (password or second-factor step), for throttling and lockout.

    ``realm`` says whose login it was: a biller's customer portal (``biller`` set) or the console
    of iDC staff and tenant members, the Django admin included (``biller`` empty). ``login`` is the
    e-mail as typed (normalised); ``ip`` the client address (REMOTE_ADDR, or the address a trusted
    proxy reports, see billing.throttling).
    """

    class Realm(models.TextChoices):
        PORTAL = "portal", _("Customer portal")
        CONSOLE = "console", _("Console")

    realm = models.CharField(max_length=8, choices=Realm, default=Realm.PORTAL)
    biller = models.ForeignKey(
        Biller, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    login = models.CharField(max_length=254)
    ip = models.GenericIPAddressField()
    succeeded = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["biller", "login", "created_at"], name="portal_attempt_login"),
            models.Index(fields=["ip", "created_at"], name="portal_attempt_ip"),
            models.Index(fields=["created_at"], name="portal_attempt_time"),
            models.Index(
                fields=["login", "created_at"], name="console_attempt_login", condition=Q(realm="console")
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(realm="portal", biller__isnull=False) | Q(realm="console", biller__isnull=True),
                name="login_attempt_realm_matches_biller",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.realm} {self.login} from {self.ip} {'ok' if self.succeeded else 'failed'}"


PortalLoginAttempt = LoginAttempt  # its name from when only the portal counted attempts


class ConsoleTwoFactor(models.Model):
    """A console user's TOTP second factor (RFC 6238) and recovery codes.

    The secret counts once a code from the app has confirmed it (``enabled_at``); ``last_step`` is
    the time step of the last code accepted, so a code is accepted once. Recovery codes are stored
    as SHA-256 digests only (they are random, 50 bits each); a used one is removed from the list.
    """

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="console_two_factor")
    secret = models.CharField(max_length=64)
    enabled_at = models.DateTimeField(null=True, blank=True)
    last_step = models.BigIntegerField(null=True, blank=True)
    recovery_hashes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user} ({'on' if self.enabled else 'enrolling'})"

    @property
    def enabled(self) -> bool:
        return self.enabled_at is not None


# --- chosen amounts (任意金額): account balances repaid in amounts the payer chooses ---------------------


class BalanceAccount(models.Model):
    """A customer's account balance (e.g. a card's), repaid in amounts the payer chooses (任意金額).

    The tenant states the balance as dated items (monthly statements) and a minimum payment. Each
    amount a payer chooses is a fresh payment request (an ``Invoice`` of kind ``payment_request``
    linked by ``BalancePaymentRequest``) with its own numbers; once the line pays it, the amount is
    allocated to the items oldest first (``BalanceAllocation``) and what is left over becomes
    ``credit``. The balance is the sum of the items' outstanding amounts.
    """

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="balance_account")
    minimum_payment = models.BigIntegerField(_("minimum payment"), default=1)
    credit = models.BigIntegerField(_("credit"), default=0)  # paid beyond the balance, held for the customer
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["biller", "customer"], name="balance_account_per_biller"),
            models.CheckConstraint(condition=Q(minimum_payment__gte=1), name="balance_minimum_positive"),
            models.CheckConstraint(condition=Q(credit__gte=0), name="balance_credit_not_negative"),
        ]

    def __str__(self) -> str:
        return f"balance of {self.customer_id}"


class BalanceItem(models.Model):
    """One dated part of a balance (a monthly statement): its amount and what is still outstanding."""

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    account = models.ForeignKey(BalanceAccount, on_delete=models.PROTECT, related_name="items")
    date = models.DateField(_("date"))
    description = models.CharField(_("description"), max_length=100)
    amount = models.BigIntegerField(_("amount"))
    outstanding = models.BigIntegerField(_("outstanding"))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["date", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "date", "description"], name="balance_item_unique_per_account"
            ),
            models.CheckConstraint(condition=Q(amount__gte=1), name="balance_item_amount_positive"),
            models.CheckConstraint(
                condition=Q(outstanding__gte=0) & Q(outstanding__lte=F("amount")),
                name="balance_item_outstanding_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.description} {self.outstanding}/{self.amount}"


class BalancePaymentRequest(models.Model):
    """Links a chosen-amount payment request (an Invoice) to the balance it repays."""

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    account = models.ForeignKey(BalanceAccount, on_delete=models.PROTECT, related_name="requests")
    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="balance_request")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.invoice_id} → balance {self.account_id}"


class BalanceAllocation(models.Model):
    """How a paid chosen amount went to the balance: one row per item it reduced, one (``item`` empty)
    for the excess that became credit. Append-only: a reversal of the payment appends the opposite rows.

    ``payment_key`` is the transaction key (取引番号) of the payment or reversal over the line; with
    ``position`` it is unique, so a payment applied twice never allocates twice.
    """

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    account = models.ForeignKey(BalanceAccount, on_delete=models.PROTECT, related_name="allocations")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="+", db_index=False)
    item = models.ForeignKey(
        BalanceItem, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations"
    )
    amount = models.BigIntegerField(_("amount"))  # yen: positive allocates, negative undoes
    payment_key = models.CharField(_("transaction key"), max_length=40)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["biller", "payment_key", "position"], name="balance_allocation_once_per_payment"
            ),
        ]
        indexes = [models.Index(fields=["invoice", "id"], name="balance_allocation_invoice")]

    def __str__(self) -> str:
        return f"{self.payment_key}#{self.position} {self.amount}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("BalanceAllocation is append-only: an allocation is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("BalanceAllocation is append-only: an allocation is never deleted.")
