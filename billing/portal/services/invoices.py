"""What a customer's people do with their invoices in the portal: an approver approves or rejects one
(社内決裁), and a payer asks for a payment request of an amount they chose against the balance."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from billing.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from billing.models import Biller, Invoice, InvoiceApproval, User
from billing.portal.services.access import Role, account_of, latest_decision
from billing.services.audit import audit_record
from billing.services.balances import balance_request_create


def chosen_amount_request(*, user: Any, biller: Biller, amount: Any) -> Invoice:
    """A payer asks for a payment request of an amount they chose, against their customer's balance
    (任意金額). Only a payer account pays; the range is the balance service's rule."""
    account = account_of(user, biller)
    if account is None:
        raise NotFound(_("No such balance."))
    if account.role != Role.PAYER:
        raise Forbidden(
            _("Your role (%(role)s) cannot pay. A payer of your company can.")
            % {"role": account.get_role_display()}
        )
    return balance_request_create(actor=account.user, biller=biller, customer=account.customer, amount=amount)


def invoice_decide(
    *, actor: User, biller: Biller, invoice: Invoice | int, decision: str, comment: str = ""
) -> InvoiceApproval:
    """An approver of the invoice's corporate customer approves or rejects it. Appends a decision.

    A rejection needs a comment. Approving an invoice whose latest decision is an approval is a
    conflict (it is approved already); rejecting an approved invoice withdraws the approval.
    """
    if decision not in InvoiceApproval.Decision.values:
        raise ValidationFailed({"decision": [_("unknown decision %(d)r") % {"d": decision}]})
    comment = (comment or "").strip()
    if len(comment) > 500:
        raise ValidationFailed({"comment": [_("at most 500 characters")]})
    if decision == InvoiceApproval.Decision.REJECTED and not comment:
        raise ValidationFailed({"comment": [_("Say why the invoice is rejected.")]})
    account = account_of(actor, biller)
    if account is None:
        raise NotFound(_("No such invoice."))
    pk = invoice if isinstance(invoice, int) else invoice.pk
    with transaction.atomic():
        locked = (
            Invoice.objects.select_for_update(of=("self",))
            .select_related("customer", "biller")
            .filter(pk=pk, biller=biller, customer_id=account.customer_id)
            .exclude(status=Invoice.Status.DRAFT)
            .first()
        )
        if locked is None:
            raise NotFound(_("No such invoice."))
        if not account.can_approve:
            raise Forbidden(_("Only an approver of the company can approve or reject invoices."))
        if not locked.is_payable:
            raise InvalidTransition(
                _("Only an unpaid invoice can be approved or rejected; this one is %(status)s.")
                % {"status": locked.get_status_display().lower()},
                field="status",
            )
        latest = latest_decision(locked)
        if latest is not None and latest.decision == decision == InvoiceApproval.Decision.APPROVED:
            raise Conflict(_("This invoice is approved already."), code="already_approved")
        approval = InvoiceApproval.objects.create(
            biller=biller,
            invoice=locked,
            customer_id=account.customer_id,
            decision=decision,
            comment=comment,
            decided_by=actor,
        )
        audit_record(
            actor=actor,
            action=f"invoice.{'approve' if decision == InvoiceApproval.Decision.APPROVED else 'reject'}",
            biller=biller,
            target=locked,
            summary=f"{locked.number} {comment}"[:300],
            after={"decision": decision},
        )
    return approval


__all__ = ["chosen_amount_request", "invoice_decide"]
