"""Writes of the payeasy app: contracts and onboarding (contracts), applying payments (payments),
teller batch files (teller)."""

from payeasy.services.contracts import (
    CONTRACT_FIELDS,
    ContractInput,
    biller_onboard,
    contracted_bank_add,
    contracted_bank_update,
)
from payeasy.services.payments import APPLY_BATCH, Applied, Event, notices_apply, refund_due
from payeasy.services.teller import DropResult, TellerImport, teller_drop_scan, teller_file_import

__all__ = [
    "APPLY_BATCH",
    "CONTRACT_FIELDS",
    "Applied",
    "ContractInput",
    "DropResult",
    "Event",
    "TellerImport",
    "biller_onboard",
    "contracted_bank_add",
    "contracted_bank_update",
    "notices_apply",
    "refund_due",
    "teller_drop_scan",
    "teller_file_import",
]
