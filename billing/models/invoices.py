"""Invoices (qualified invoices, pay-later numbers, payment requests), CSV import jobs, approvals."""

from __future__ import annotations

import json
from typing import Any

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models.audit import AppendOnlyQuerySet
from billing.models.customers import Customer
from billing.models.tenants import Biller, User
from billing.numbers import issuer_for
from billing.scoping import TenantManager


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

    objects = TenantManager()

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

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.mode}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.NOTHING, self.Status.FAILED}


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
        indexes = [
            models.Index(fields=["invoice", "id"], name="invoice_approval_invoice"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id} {self.decision} by {self.decided_by_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("InvoiceApproval is append-only: a decision is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("InvoiceApproval is append-only: a decision is never deleted.")


class InvoiceNumberCounter(models.Model):
    """The last sequence handed out by a biller's automatic invoice numbering, per *scope*: the pattern's
    text around the sequence for a period (``2026-12-{seq}`` for ``{yyyy}-{mm}-{seq:06}`` in December
    2026). Locked (``SELECT … FOR UPDATE``) while a number is taken, so the next number costs one row
    lookup however many invoices the biller has; created on a scope's first number from the highest
    number already stored (typed or imported). Gaps are allowed (a number taken by a creation that then
    failed is not reused); a number is never given twice — the unique (biller, number) backs it."""

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    scope = models.CharField(max_length=64)
    last = models.PositiveBigIntegerField(default=0)

    objects = TenantManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["biller", "scope"], name="invoice_number_counter_once_per_scope"),
        ]

    def __str__(self) -> str:
        return f"invoice numbers of {self.biller_id} in {self.scope}: {self.last}"
