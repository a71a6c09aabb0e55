"""A biller's Pay-easy contracts: which banks may take its bills, through which channels, from when."""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import Biller
from billing.scoping import TenantManager
from billing.validators import validate_bank_code


class Channel(models.TextChoices):
    """チャネル区分 (spec §2, element 7)."""

    TELLER = "01", _("Teller (窓口)")
    ATM = "02", _("ATM")
    INTERNET_BANKING = "03", _("Internet banking (number entry)")
    MOBILE = "04", _("Mobile banking")
    INFO_LINK = "05", _("Information link (情報リンク)")
    TELEPHONE = "06", _("Telephone banking")


CHANNEL_FIELDS: dict[str, str] = {
    Channel.TELLER: "allows_teller",
    Channel.ATM: "allows_atm",
    Channel.INTERNET_BANKING: "allows_internet_banking",
    Channel.MOBILE: "allows_mobile",
    Channel.INFO_LINK: "allows_info_link",
    Channel.TELEPHONE: "allows_telephone",
}


def validate_known_bank(value: str) -> None:
    from payeasy.banks import bank_get

    validate_bank_code(value)
    if bank_get(value) is None:
        raise ValidationError(
            _("Bank code %(value)s is not in the 全銀 bank master."),
            code="unknown_bank",
            params={"value": value},
        )


class ContractedBank(models.Model):
    """A bank with which the biller has a Pay-easy collection contract for a period.

    Periods of the same biller and bank never overlap (checked by the service
    under a lock on the biller row). ``valid_to`` is inclusive; empty means open-ended.
    """

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="contracted_banks")
    bank_code = models.CharField(_("bank code"), max_length=4, validators=[validate_known_bank])
    allows_teller = models.BooleanField(_("teller (窓口)"), default=False)
    allows_atm = models.BooleanField(_("ATM"), default=False)
    allows_internet_banking = models.BooleanField(_("internet banking"), default=False)
    allows_mobile = models.BooleanField(_("mobile banking"), default=False)
    allows_info_link = models.BooleanField(_("information link (情報リンク)"), default=False)
    allows_telephone = models.BooleanField(_("telephone banking"), default=False)
    valid_from = models.DateField(_("contract start"))
    valid_to = models.DateField(_("contract end"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        ordering = ["bank_code", "valid_from"]
        indexes = [models.Index(fields=["biller", "bank_code"], name="contract_biller_bank")]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="contract_period_ordered",
                violation_error_message=_("The contract end must not be before its start."),
            ),
            models.CheckConstraint(
                condition=Q(allows_teller=True)
                | Q(allows_atm=True)
                | Q(allows_internet_banking=True)
                | Q(allows_mobile=True)
                | Q(allows_info_link=True)
                | Q(allows_telephone=True),
                name="contract_has_a_channel",
                violation_error_message=_("Choose at least one channel."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.biller.slug} {self.bank_code} {self.valid_from}–{self.valid_to or ''}"

    @property
    def bank(self):
        from payeasy.banks import bank_get

        return bank_get(self.bank_code)

    @property
    def channels(self) -> list[str]:
        return [code for code, field in CHANNEL_FIELDS.items() if getattr(self, field)]

    def get_channel_labels(self) -> list[str]:
        return [str(Channel(code).label) for code in self.channels]

    def allows(self, channel: str) -> bool:
        field = CHANNEL_FIELDS.get(channel)
        return bool(field and getattr(self, field))

    def covers(self, day: datetime.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def overlaps(self, start: datetime.date, end: datetime.date | None) -> bool:
        my_end = self.valid_to or datetime.date.max
        other_end = end or datetime.date.max
        return self.valid_from <= other_end and start <= my_end
