"""Writes of the payeasy app: contracts and onboarding (contracts), applying payments (payments)."""

from payeasy.services.contracts import (
    CONTRACT_FIELDS,
    ContractInput,
    biller_onboard,
    contracted_bank_add,
    contracted_bank_update,
)
from payeasy.services.payments import APPLY_BATCH, Applied, Event, notices_apply, refund_due

__all__ = [
    "APPLY_BATCH",
    "CONTRACT_FIELDS",
    "Applied",
    "ContractInput",
    "Event",
    "biller_onboard",
    "contracted_bank_add",
    "contracted_bank_update",
    "notices_apply",
    "refund_due",
]
