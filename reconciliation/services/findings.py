"""The one way a finding changes state: an append-only action, written with the finding's new state under
a lock on the finding row, and its audit entry."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from billing.models import Biller, Invoice, User
from billing.services.audit import audit_record
from reconciliation.errors import ActionRefused
from reconciliation.models import Action, Finding


def finding_lock(*, biller: Biller, finding_id: int) -> Finding:
    """The tenant's finding, locked for the caller's transaction (``Finding.DoesNotExist`` otherwise)."""
    return Finding.objects.for_biller(biller).select_for_update().get(pk=finding_id)


def action_record(
    *,
    finding: Finding,
    kind: str,
    actor: User | None,
    amount: int = 0,
    invoice: Invoice | None = None,
    reason: str = "",
) -> Action:
    """Append ``kind`` to ``finding`` (locked by the caller, inside its transaction), set the state it
    leads to, and audit it. A person's action needs the finding open (reopen: not open); the system's
    (cleared, found again) are recorded only by runs."""
    assert transaction.get_connection().in_atomic_block, "action_record runs inside the caller's transaction"
    closing = {Action.Kind.MATCH, Action.Kind.REFUND, Action.Kind.WRITE_OFF}
    if kind in closing and not finding.is_open:
        raise ActionRefused(f"finding {finding.pk} is {finding.state}, not open")
    if kind == Action.Kind.REOPEN and finding.is_open:
        raise ActionRefused(f"finding {finding.pk} is already open")
    now = timezone.now()
    action = Action.objects.create(
        biller_id=finding.biller_id,
        finding=finding,
        kind=kind,
        amount=amount,
        invoice=invoice,
        reason=reason[:300],
        actor=actor,
        created_at=now,
    )
    before = finding.state
    finding.state = Action.STATE_AFTER[Action.Kind(kind)]
    finding.state_at = now
    finding.save(update_fields=["state", "state_at"])
    audit_record(
        actor=actor,
        action=f"finding.{kind}",
        biller=finding.biller,
        target=finding,
        summary=f"{finding.get_kind_display()} {finding.key} ¥{finding.amount:,}"[:300],
        before={"state": before},
        after={"state": finding.state, "amount": amount, "reason": reason[:300]},
    )
    return action
