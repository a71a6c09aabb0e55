"""Chosen amounts (任意金額): account balances repaid in amounts the payer chooses."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models.audit import AppendOnlyQuerySet
from billing.models.customers import Customer
from billing.models.invoices import Invoice
from billing.models.tenants import Biller, User
from billing.scoping import TenantManager


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

    objects = TenantManager()

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

    objects = TenantManager()

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

    objects = TenantManager()

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
