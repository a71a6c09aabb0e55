"""Refunds by bank transfer (Pay-easy cannot refund through the network) and the 全銀 総合振込 files
that carry a day's refunds to the biller's bank."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import Biller, User
from billing.models.audit import AppendOnlyQuerySet
from billing.scoping import TenantManager
from billing.validators import validate_bank_code
from reconciliation.models.findings import Action, Finding

validate_branch_code = RegexValidator(r"^[0-9]{3}$", _("A branch code is 3 digits."))
validate_account_number = RegexValidator(r"^[0-9]{1,7}$", _("An account number is 1 to 7 digits."))
validate_requester_code = RegexValidator(r"^[0-9]{10}$", _("A requester code (委託者コード) is 10 digits."))


class AccountType(models.TextChoices):
    """預金種目 of the 全銀 format."""

    ORDINARY = "1", _("Ordinary (普通)")
    CURRENT = "2", _("Current (当座)")
    SAVINGS = "4", _("Savings (貯蓄)")
    OTHER = "9", _("Other (その他)")


class RefundAccount(models.Model):
    """The biller's own account the refunds are paid from, and its 総合振込 contract with that bank."""

    biller = models.OneToOneField(Biller, on_delete=models.PROTECT, related_name="+")
    requester_code = models.CharField(
        _("requester code (委託者コード)"), max_length=10, validators=[validate_requester_code]
    )
    requester_name_kana = models.CharField(_("requester name (half-width kana)"), max_length=40)
    bank_code = models.CharField(_("bank code"), max_length=4, validators=[validate_bank_code])
    branch_code = models.CharField(_("branch code"), max_length=3, validators=[validate_branch_code])
    account_type = models.CharField(_("account type"), max_length=1, choices=AccountType)
    account_number = models.CharField(_("account number"), max_length=7, validators=[validate_account_number])
    updated_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    def __str__(self) -> str:
        return f"{self.bank_code}-{self.branch_code} {self.account_number}"


class TransferFile(models.Model):
    """A 全銀 総合振込 file: the refunds of one transfer date not yet in an earlier file, as sent to the
    bank (120-byte cp932 records: header, data, trailer, end). Append-only."""

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    transfer_date = models.DateField(_("transfer date"))
    serial = models.PositiveIntegerField(_("serial"))
    count = models.PositiveIntegerField(_("transfers"))
    total = models.BigIntegerField(_("total"))
    content = models.BinaryField(_("file"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-transfer_date", "-serial"]
        constraints = [
            models.UniqueConstraint(
                fields=["biller", "transfer_date", "serial"], name="transfer_file_serial"
            ),
        ]

    def __str__(self) -> str:
        return self.filename

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("TransferFile is append-only: a file is never changed.")
        super().save(*args, **kwargs)

    @property
    def filename(self) -> str:
        return f"sogofuri_{self.transfer_date:%Y%m%d}_{self.serial:02d}.txt"


class Refund(models.Model):
    """A refund of money the biller holds and must give back (a double payment, a payment to a cancelled
    bill, …) by bank transfer to the payee's account. Created with its ``refund`` action; written into
    one transfer file (``transfer_file``, set once, when the file is made)."""

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    finding = models.ForeignKey(Finding, on_delete=models.PROTECT, related_name="refunds")
    action = models.OneToOneField(Action, on_delete=models.PROTECT, related_name="refund")
    amount = models.BigIntegerField(_("amount"))
    bank_code = models.CharField(_("bank code"), max_length=4, validators=[validate_bank_code])
    branch_code = models.CharField(_("branch code"), max_length=3, validators=[validate_branch_code])
    account_type = models.CharField(_("account type"), max_length=1, choices=AccountType)
    account_number = models.CharField(_("account number"), max_length=7, validators=[validate_account_number])
    holder_kana = models.CharField(_("account holder (half-width kana)"), max_length=30)
    transfer_date = models.DateField(_("transfer date"))
    transfer_file = models.ForeignKey(
        TransferFile, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]
        indexes = [
            models.Index(
                fields=["biller", "transfer_date"],
                condition=Q(transfer_file__isnull=True),
                name="refund_unfiled",
            )
        ]

    def __str__(self) -> str:
        return f"refund ¥{self.amount:,} to {self.bank_code}-{self.branch_code}"
