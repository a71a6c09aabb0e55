"""The payment facts billing shows: payments on bills and their receipts."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models.audit import AppendOnlyQuerySet
from billing.models.invoices import Invoice
from billing.models.tenants import Biller
from billing.scoping import TenantManager


class InvoicePayment(models.Model):
    """A payment on a bill as the biller and the customer see it: paid at, amount, bank, channel, what it
    did. Recorded by the payment network's app (payeasy) through ``billing.services.payments`` in the
    transaction of its own ledger entry; billing's pages read these rows, never the network's models.

    Append-only like the ledger it mirrors: a reversal is a new row with a negative amount. ``entry_ref``
    is the network's reference of its ledger entry, opaque here (no foreign key out of billing); a
    negative ``entry_ref`` is a staff match: a payment the network put on no bill (or the wrong one) that
    the biller's staff assigned to this bill (``invoice_payment_assign``, reconciliation's
    ``-action.pk``). ``payment_key`` is the reference the payer sees (the transaction key, 受付番号).
    """

    class Outcome(models.TextChoices):
        PAID = "paid", _("Paid")
        DOUBLE_PAYMENT = "double_payment", _("Double payment (二重支払)")
        PROVISIONAL = "provisional", _("Provisional (仮消込)")
        REVERSAL = "reversal", _("Reversal (取消)")

    class Reason(models.TextChoices):
        """Why a payment is provisional, in the customer's terms (the network's own reasons are its own)."""

        NONE = "", _("—")
        AMOUNT_DIFFERS = "amount_differs", _("The amount differs from the bill")
        BILL_CANCELLED = "bill_cancelled", _("The bill was cancelled")
        PAID_LATE = "paid_late", _("Paid after the due date")
        CHECKING = "checking", _("Being checked by the biller")

    class Channel(models.TextChoices):
        TELLER = "teller", _("Teller (窓口)")
        ATM = "atm", _("ATM")
        INTERNET_BANKING = "internet_banking", _("Internet banking (number entry)")
        MOBILE = "mobile", _("Mobile banking")
        INFO_LINK = "info_link", _("Information link (情報リンク)")
        TELEPHONE = "telephone", _("Telephone banking")

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    amount = models.BigIntegerField(_("amount"))  # yen: positive for payments, negative for reversals
    paid_at = models.DateTimeField(_("paid at"))
    bank_code = models.CharField(_("bank code"), max_length=4)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome)
    reason = models.CharField(_("reason"), max_length=16, choices=Reason, blank=True, default="")
    payment_key = models.CharField(_("payment reference"), max_length=40)
    entry_ref = models.BigIntegerField()  # the network's ledger entry (negative: staff match): unique
    created_at = models.DateTimeField(default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()
    rows_locked_by_workers = True  # the receipt sender locks them (billing.dbsecurity)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["biller", "entry_ref"], name="invoice_payment_once_per_entry"),
            models.CheckConstraint(
                condition=Q(outcome="reversal", amount__lt=0) | ~Q(outcome="reversal") & Q(amount__gt=0),
                name="invoice_payment_sign_matches_outcome",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} {self.amount:,}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("InvoicePayment is append-only: a payment is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("InvoicePayment is append-only: a payment is never deleted.")


JST = ZoneInfo("Asia/Tokyo")
RECEIPT_NUMBER_FORMAT = "R-{year}-{serial:06d}"


def receipt_number(year: int, serial: int) -> str:
    """The receipt number a customer sees: R-<year of issue>-<6-digit serial of the biller's year>."""
    return RECEIPT_NUMBER_FORMAT.format(year=year, serial=serial)


class Receipt(models.Model):
    """The receipt (領収書) of a payment that paid a bill, issued once: the one-to-one link makes issuing
    it once. ``number`` (R-2026-000001) is the biller's own sequence per year of issue, allocated from
    ``ReceiptCounter`` under its row lock, so one biller never has two receipts with the same number
    (and the unique constraint says so to the database)."""

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    payment = models.OneToOneField(InvoicePayment, on_delete=models.PROTECT, related_name="receipt")
    number = models.CharField(_("receipt number"), max_length=20)
    sent_at = models.DateTimeField(_("issued at"), default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["biller", "number"], name="receipt_number_once_per_biller"),
        ]

    def __str__(self) -> str:
        return f"receipt {self.number} for payment {self.payment_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Store a new receipt; one made without a number gets the biller's next (``ReceiptCounter``)."""
        if self.pk is not None and not kwargs.get("force_insert"):
            raise TypeError("Receipt is append-only: a receipt is never changed.")
        if self.number:
            super().save(*args, **kwargs)
            return
        with transaction.atomic():
            year = timezone.localtime(self.sent_at, JST).year
            (self.number,) = ReceiptCounter.numbers_allocate(biller_id=self.biller_id, year=year, count=1)
            super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("Receipt is append-only: a receipt is never deleted.")


class ReceiptCounter(models.Model):
    """The last receipt serial a biller gave in a year (JST). ``billing.services.receipts`` locks the row
    (``select_for_update``) while it numbers a batch, so concurrent workers number one after the other."""

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    objects = TenantManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["biller", "year"], name="receipt_counter_once_per_year"),
        ]

    def __str__(self) -> str:
        return f"receipts of {self.biller_id} in {self.year}: {self.last}"

    @classmethod
    def numbers_allocate(cls, *, biller_id: int, year: int, count: int) -> list[str]:
        """``count`` new receipt numbers of the biller for ``year``, in order. Inside the transaction that
        stores the receipts: the counter row is created if missing (a concurrent creation is ignored, not
        an error) and locked (``SELECT … FOR UPDATE``) until that transaction ends, so two workers never
        hand out the same serial; the unique constraint on (biller, number) backs it."""
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("receipt numbers are allocated inside the transaction that stores them")
        if count <= 0:
            return []
        ReceiptCounter.objects.bulk_create(
            [ReceiptCounter(biller_id=biller_id, year=year)], ignore_conflicts=True
        )
        counter = ReceiptCounter.objects.select_for_update().get(biller_id=biller_id, year=year)
        first = counter.last + 1
        counter.last += count
        counter.save(update_fields=["last"])
        return [receipt_number(year, serial) for serial in range(first, first + count)]
