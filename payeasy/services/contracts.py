"""Writes of the payeasy app: contracted banks and onboarding a biller onto the iDC's MPN connection."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from billing.errors import ValidationFailed
from billing.models import Biller, User
from billing.services import audit_record, biller_create, model_full_clean, snapshot
from payeasy.models import CHANNEL_FIELDS, ContractedBank

CONTRACT_FIELDS = ("bank_code", *CHANNEL_FIELDS.values(), "valid_from", "valid_to")


@dataclass
class ContractInput:
    bank_code: str
    channels: Sequence[str]
    valid_from: datetime.date
    valid_to: datetime.date | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_fields(self) -> dict[str, Any]:
        unknown = [c for c in self.channels if c not in CHANNEL_FIELDS]
        if unknown:
            raise ValidationFailed(
                {"channels": [_("unknown channel %(code)r") % {"code": c} for c in unknown]}
            )
        flags = {name: code in self.channels for code, name in CHANNEL_FIELDS.items()}
        return {
            "bank_code": self.bank_code.strip(),
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
            **flags,
        }


def _check_overlap(*, biller: Biller, contract: ContractedBank, prefix: str) -> None:
    others = ContractedBank.objects.filter(biller=biller, bank_code=contract.bank_code)
    if contract.pk:
        others = others.exclude(pk=contract.pk)
    for other in others:
        if other.overlaps(contract.valid_from, contract.valid_to):
            until = other.valid_to.isoformat() if other.valid_to else _("open end")
            raise ValidationFailed(
                {
                    f"{prefix}valid_from": [
                        _("The period overlaps the contract with bank %(bank)s from %(start)s to %(end)s.")
                        % {"bank": other.bank_code, "start": other.valid_from.isoformat(), "end": until}
                    ]
                }
            )


def contracted_bank_add(
    *, actor: User, biller: Biller, contract: ContractInput, prefix: str = ""
) -> ContractedBank:
    """Add a contracted bank. Periods of the same bank never overlap: checked under a lock on the biller."""
    with transaction.atomic():
        locked = Biller.objects.select_for_update().get(pk=biller.pk)
        row = ContractedBank(biller=locked, **contract.as_fields())
        model_full_clean(row, prefix=prefix, exclude=["biller"])
        _check_overlap(biller=locked, contract=row, prefix=prefix)
        row.save()
        audit_record(
            actor=actor,
            action="contract.add",
            biller=locked,
            target=row,
            summary=f"{row.bank_code} {','.join(row.channels)}",
            after=snapshot(row, CONTRACT_FIELDS),
        )
    return row


def contracted_bank_update(
    *, actor: User, biller: Biller, contract_id: int, contract: ContractInput
) -> ContractedBank:
    with transaction.atomic():
        locked = Biller.objects.select_for_update().get(pk=biller.pk)
        row = ContractedBank.objects.get(pk=contract_id, biller=locked)
        before = snapshot(row, CONTRACT_FIELDS)
        for name, value in contract.as_fields().items():
            setattr(row, name, value)
        model_full_clean(row, exclude=["biller"])
        _check_overlap(biller=locked, contract=row, prefix="")
        row.save()
        audit_record(
            actor=actor,
            action="contract.update",
            biller=locked,
            target=row,
            summary=row.bank_code,
            before=before,
            after=snapshot(row, CONTRACT_FIELDS),
        )
    return row


def biller_onboard(*, actor: User, biller_data: dict[str, Any], contracts: Sequence[ContractInput]) -> Biller:
    """Create a biller with its contracted banks, all or nothing.

    Errors name the field; a contract's fields are prefixed ``contracts.<i>.``.
    """
    with transaction.atomic():
        biller = biller_create(actor=actor, data=biller_data)
        for i, contract in enumerate(contracts):
            contracted_bank_add(actor=actor, biller=biller, contract=contract, prefix=f"contracts.{i}.")
    return biller
