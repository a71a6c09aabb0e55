"""Reconciliation's rows: findings and the actions on them, refunds and their 全銀 files, deposits and
the funds expected from each bank, the pairs of line and teller-file reports, and the runs."""

from reconciliation.models.deposits import Deposit, DepositLag, DepositStatement, ExpectedFunds
from reconciliation.models.findings import Action, Finding
from reconciliation.models.refunds import Refund, RefundAccount, TransferFile
from reconciliation.models.runs import ReportPair, Run

__all__ = [
    "Action",
    "Deposit",
    "DepositLag",
    "DepositStatement",
    "ExpectedFunds",
    "Finding",
    "Refund",
    "RefundAccount",
    "ReportPair",
    "Run",
    "TransferFile",
]
