"""Customer portal services, by subject: who sees and pays what (``access``), accounts and
self-registration (``accounts``), invitations (``invitations``), two-step verification
(``two_factor``) and approvals and chosen amounts (``invoices``).

Every write is a service: keyword-only, taking the biller explicitly, one transaction, one audit
entry, e-mail enqueued after commit. Everything public is importable from here too; payeasy's paying
code imports ``billing.portal.services.can_pay`` (and ``numbers_visibility``) by this path.
"""

from billing.portal.services.access import (
    NUMBERS_SHOWN,
    NumbersVisibility,
    account_of,
    approval_state,
    can_pay,
    customer_of,
    email_numbers_visibility,
    latest_decision,
    may_see_numbers,
    numbers_visibility,
    past_due_refused,
    portal_url,
)
from billing.portal.services.accounts import (
    customer_account_create,
    customer_account_set_active,
    customer_account_set_role,
    customer_register,
    customer_registration_code_regenerate,
    password_reset_request,
)
from billing.portal.services.invitations import (
    customer_invitation_accept,
    customer_invitation_create,
    customer_invitation_get_pending,
    customer_invitation_revoke,
    invitation_url,
    published_invoice_link,
)
from billing.portal.services.invoices import chosen_amount_request, invoice_decide
from billing.portal.services.two_factor import (
    totp_disable,
    totp_enrol_begin,
    totp_enrol_confirm,
    totp_provisioning_uri,
    totp_verify,
)

__all__ = [
    "NUMBERS_SHOWN",
    "NumbersVisibility",
    "account_of",
    "approval_state",
    "can_pay",
    "chosen_amount_request",
    "customer_account_create",
    "customer_account_set_active",
    "customer_account_set_role",
    "customer_invitation_accept",
    "customer_invitation_create",
    "customer_invitation_get_pending",
    "customer_invitation_revoke",
    "customer_of",
    "customer_register",
    "customer_registration_code_regenerate",
    "email_numbers_visibility",
    "invitation_url",
    "invoice_decide",
    "latest_decision",
    "may_see_numbers",
    "numbers_visibility",
    "password_reset_request",
    "past_due_refused",
    "portal_url",
    "published_invoice_link",
    "totp_disable",
    "totp_enrol_begin",
    "totp_enrol_confirm",
    "totp_provisioning_uri",
    "totp_verify",
]
