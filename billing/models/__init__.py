"""Billing's models, one module per concept; every model and public name is importable from here.

- ``tenants`` — Biller (the 収納企業), console users, memberships, invitations, API keys, idempotency;
- ``customers`` — customers and their portal accounts and invitations;
- ``audit`` — the append-only audit trail (and the append-only queryset);
- ``invoices`` — invoices, import jobs, corporate approvals;
- ``signin`` — failed-login counts and the console's second factor;
- ``balances`` — chosen amounts (任意金額);
- ``payments`` — payments on bills and receipts, as billing shows them (recorded by payeasy);
- ``pages`` — answers of kept pages, given again to the same session (billing.page_replay), and the
  change counters of customers their fingerprints read.
"""

from billing.models.audit import AppendOnlyQuerySet, AuditEntry
from billing.models.balances import BalanceAccount, BalanceAllocation, BalanceItem, BalancePaymentRequest
from billing.models.customers import Customer, CustomerAccount, CustomerInvitation
from billing.models.invoices import ImportJob, Invoice, InvoiceApproval, InvoiceNumberCounter
from billing.models.pages import CustomerChange, KeptAnswer
from billing.models.payments import InvoicePayment, Receipt
from billing.models.signin import ConsoleTwoFactor, LoginAttempt, PortalLoginAttempt
from billing.models.tenants import (
    RESERVED_SLUGS,
    ApiKey,
    Biller,
    IdempotencyRecord,
    Invitation,
    InvitationState,
    Membership,
    User,
    UserManager,
    console_login,
    customer_login,
    slug_validator,
    validate_not_reserved,
)

__all__ = [
    "RESERVED_SLUGS",
    "ApiKey",
    "AppendOnlyQuerySet",
    "AuditEntry",
    "BalanceAccount",
    "BalanceAllocation",
    "BalanceItem",
    "BalancePaymentRequest",
    "Biller",
    "ConsoleTwoFactor",
    "Customer",
    "CustomerAccount",
    "CustomerChange",
    "CustomerInvitation",
    "IdempotencyRecord",
    "ImportJob",
    "Invitation",
    "InvitationState",
    "Invoice",
    "InvoiceApproval",
    "InvoiceNumberCounter",
    "InvoicePayment",
    "KeptAnswer",
    "LoginAttempt",
    "Membership",
    "PortalLoginAttempt",
    "Receipt",
    "User",
    "UserManager",
    "console_login",
    "customer_login",
    "slug_validator",
    "validate_not_reserved",
]
