"""The money side: deposits from the banks' statements and the funds expected from each bank.

A direct biller receives each bank's collections some business days after the processing date (the lag,
per bank, ``DepositLag``). A run computes ``ExpectedFunds`` per bank and processing date (what the ledger
says the bank owes, due on ``value_date``) and compares the sum due per bank and value date with the
``Deposit`` rows of the statements the tenant imported.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import Biller, User
from billing.models.audit import AppendOnlyQuerySet
from billing.scoping import TenantManager


class DepositLag(models.Model):
    """Business days from a processing date to the day the bank's funds arrive; ``bank_code`` "" is the
    biller's default for banks without their own row."""

    DEFAULT_DAYS = 2

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    bank_code = models.CharField(_("bank code"), max_length=4, blank=True)
    business_days = models.PositiveSmallIntegerField(
        _("business days"), default=DEFAULT_DAYS, validators=[MaxValueValidator(30)]
    )

    objects = TenantManager()

    class Meta:
        ordering = ["bank_code"]
        constraints = [models.UniqueConstraint(fields=["biller", "bank_code"], name="deposit_lag_once")]

    def __str__(self) -> str:
        return f"{self.bank_code or '*'}: {self.business_days}"


class DepositStatement(models.Model):
    """One deposit statement CSV as imported (all rows or none). ``first_date``..``last_date`` is the
    period it covers: deposits are compared for value dates inside an imported statement's period only."""

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    name = models.CharField(_("file name"), max_length=200)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    encoding = models.CharField(_("encoding"), max_length=10)
    first_date = models.DateField(_("from"))
    last_date = models.DateField(_("to"))
    row_count = models.PositiveIntegerField(_("rows"))
    total = models.BigIntegerField(_("total"))
    imported_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    imported_at = models.DateTimeField(default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-imported_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["biller", "sha256"], name="deposit_statement_once")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("DepositStatement is append-only.")
        super().save(*args, **kwargs)


class Deposit(models.Model):
    """One credit on the biller's account from a statement: value date, remitting bank, amount."""

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    statement = models.ForeignKey(DepositStatement, on_delete=models.PROTECT, related_name="deposits")
    row = models.PositiveIntegerField(_("row"))
    value_date = models.DateField(_("value date"))
    bank_code = models.CharField(_("bank code"), max_length=4)
    amount = models.BigIntegerField(_("amount"))
    description = models.CharField(_("description (摘要)"), max_length=100, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["value_date", "id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="deposit_amount_positive")]
        indexes = [models.Index(fields=["biller", "value_date", "bank_code"], name="deposit_day_bank")]

    def __str__(self) -> str:
        return f"{self.value_date} {self.bank_code} ¥{self.amount:,}"


class ExpectedFunds(models.Model):
    """What one bank owes the biller for one processing date (payments less reversals it reported), due
    on ``value_date``; ``state`` is the comparison of all that is due from the bank on that value date
    with its deposits (rewritten by every run: a derived figure, not a fact)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Not yet due or no statement")
        MATCHED = "matched", _("Deposited (確報)")
        SHORT = "short", _("Shortfall")
        EXCESS = "excess", _("Excess")

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    bank_code = models.CharField(_("bank code"), max_length=4)
    processing_date = models.DateField(_("processing date"))
    value_date = models.DateField(_("value date"))
    count = models.PositiveIntegerField(_("payments"))
    amount = models.BigIntegerField(_("amount"))
    state = models.CharField(_("state"), max_length=8, choices=State, default=State.PENDING)
    checked_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        ordering = ["processing_date", "bank_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["biller", "bank_code", "processing_date"], name="expected_funds_once"
            ),
        ]
        indexes = [models.Index(fields=["biller", "value_date"], name="expected_funds_value_date")]

    def __str__(self) -> str:
        return f"{self.bank_code} {self.processing_date} → {self.value_date} ¥{self.amount:,}"
