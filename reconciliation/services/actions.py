"""What the biller's staff do with a finding: match the payment to a bill, refund it, write it off, or
reopen the finding. One transaction each, under a lock on the finding row; the finding's state changes
only through ``reconciliation.services.findings.action_record`` (one ``Action``, one audit entry). A
refused action raises a product error and changes nothing.

Money is never counted twice: a payment (ledger entry) is matched or refunded once, whatever finding
names it; a match needs a payable bill of exactly the payment's amount; a matched or refunded finding
cannot be reopened (billing keeps the payment on the bill, the refund goes to the bank), only a
written-off or cleared one.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.errors import NotFound, ValidationFailed
from billing.kana import to_zengin_kana, zengin_kana_errors
from billing.models import Biller, Invoice, User
from billing.services.payments import invoice_payment_assign
from payeasy.banks import bank_get, branch_get
from payeasy.models import LedgerEntry
from payeasy.services.invoice_payments import CHANNELS
from reconciliation.calendar import is_business_day
from reconciliation.errors import ActionRefused
from reconciliation.models import Action, Finding, Refund
from reconciliation.models.refunds import AccountType
from reconciliation.services.findings import action_record, finding_lock

# findings about one payment the biller holds (``entry_id``): money that reached no bill or the wrong one
MATCHABLE_KINDS = frozenset(
    {Finding.Kind.PROVISIONAL, Finding.Kind.LATE_PAYMENT, Finding.Kind.DOUBLE_PAYMENT}
)
REFUNDABLE_KINDS = MATCHABLE_KINDS
# a match put the money on a bill and a refund sends it back: neither is undone by reopening
REOPENABLE_STATES = frozenset({Finding.State.WRITTEN_OFF, Finding.State.CLEARED})
REASON_MAX = 300
HOLDER_MAX = 30  # the 全銀 総合振込 record's 受取人名
# the ledger entries a person may still act on: money held, not yet on its bill
HELD = (LedgerEntry.Outcome.PROVISIONAL, LedgerEntry.Outcome.DOUBLE_PAYMENT)
STANDING = (LedgerEntry.Outcome.PAID, LedgerEntry.Outcome.DOUBLE_PAYMENT)


@dataclass(frozen=True, slots=True)
class Payee:
    """The account a refund is paid to, as typed (``finding_refund`` checks and normalises it)."""

    bank_code: str
    branch_code: str
    account_type: str
    account_number: str
    holder_kana: str


def actions_available(finding: Finding) -> frozenset[str]:
    """The actions a person may take on ``finding`` as it stands (``Action.Kind`` values)."""
    if not finding.is_open:
        return frozenset({Action.Kind.REOPEN}) if finding.state in REOPENABLE_STATES else frozenset()
    kinds = {Action.Kind.WRITE_OFF}
    if finding.kind in MATCHABLE_KINDS and finding.entry_id is not None:
        kinds.add(Action.Kind.MATCH)
    if finding.kind in REFUNDABLE_KINDS and finding.amount > 0:
        kinds.add(Action.Kind.REFUND)
    return frozenset(kinds)


def _locked(biller: Biller, finding_id: int) -> Finding:
    try:
        return finding_lock(biller=biller, finding_id=finding_id)
    except Finding.DoesNotExist as exc:
        raise NotFound(_("No such finding.")) from exc


def _open(finding: Finding) -> None:
    if not finding.is_open:
        raise ActionRefused(
            _("This finding is %(state)s, not open: nothing was changed.")
            % {"state": finding.get_state_display()}
        )


def _held_entry(biller: Biller, finding: Finding) -> LedgerEntry | None:
    """The payment the finding is about, if it names one: refused unless the biller still holds it (not
    applied to its bill, not reversed, not matched or refunded already under any finding)."""
    if finding.entry_id is None:
        return None
    entries = LedgerEntry.objects.for_biller(biller)
    # locked: two findings naming one payment are acted on one after the other
    entry = (
        entries.select_for_update(of=("self",)).select_related("notice").filter(pk=finding.entry_id).first()
    )
    if entry is None or entry.outcome not in HELD:
        raise ActionRefused(_("The payment of this finding is not money the biller holds: nothing to do."))
    if entries.filter(reverses=entry).exists():
        raise ActionRefused(_("The bank reversed this payment: the money is no longer held."))
    if entry.outcome == LedgerEntry.Outcome.DOUBLE_PAYMENT and not (
        entry.invoice_id is not None
        and entries.filter(invoice_id=entry.invoice_id, outcome__in=STANDING, reversed_by__isnull=True)
        .exclude(pk=entry.pk)
        .exists()
    ):
        raise ActionRefused(
            _("The bill's other payment was reversed: this payment now pays the bill, nothing is held.")
        )
    earlier = (
        Action.objects.for_biller(biller)
        .filter(finding__entry_id=entry.pk, kind__in=(Action.Kind.MATCH, Action.Kind.REFUND))
        .select_related("finding")
        .first()
    )
    if earlier is not None:
        raise ActionRefused(
            _("This payment was already %(what)s (finding %(finding)s): it is never counted twice.")
            % {"what": earlier.get_kind_display().lower(), "finding": earlier.finding.key}
        )
    return entry


def finding_match(*, actor: User | None, biller: Biller, finding_id: int, invoice_id: int) -> Action:
    """Put the payment of a finding (one that reached no bill, or the wrong one) on the biller's invoice
    ``invoice_id``: billing records it as a paid fact on that bill (``entry_ref=-action.pk``) and the bill
    becomes paid. Refused unless the finding is open and about a payment still held, and the bill is
    payable with exactly the payment's amount."""
    with transaction.atomic():
        finding = _locked(biller, finding_id)
        _open(finding)
        if finding.kind not in MATCHABLE_KINDS or finding.entry_id is None:
            raise ActionRefused(
                _("A %(kind)s is not a payment that can be matched to a bill.")
                % {"kind": finding.get_kind_display()}
            )
        entry = _held_entry(biller, finding)
        assert entry is not None
        invoice = Invoice.objects.for_biller(biller).select_for_update().filter(pk=invoice_id).first()
        if invoice is None:
            raise ValidationFailed({"invoice": [_("No such invoice.")]})
        notice = entry.notice
        action = action_record(
            finding=finding, kind=Action.Kind.MATCH, actor=actor, amount=entry.amount, invoice=invoice
        )
        invoice_payment_assign(
            biller=biller,
            invoice=invoice,
            amount=entry.amount,
            paid_at=notice.paid_at,
            bank_code=notice.bank_code,
            channel=CHANNELS[notice.channel],
            payment_key=notice.transaction_key,
            ref=-action.pk,
        )
        return action


def _payee_clean(payee: Payee) -> tuple[Payee, dict[str, list[str]]]:
    """The payee normalised for the 全銀 file (account number zero-padded to 7, the holder in half-width
    全銀 kana) and the errors per field."""
    errors: dict[str, list[str]] = {}
    bank_code = payee.bank_code.strip()
    branch_code = payee.branch_code.strip()
    if not re.fullmatch(r"[0-9]{4}", bank_code):
        errors["bank_code"] = [_("A bank code is 4 digits.")]
    elif bank_get(bank_code) is None:
        errors["bank_code"] = [_("No bank %(code)s in the 全銀 bank directory.") % {"code": bank_code}]
    if not re.fullmatch(r"[0-9]{3}", branch_code):
        errors["branch_code"] = [_("A branch code is 3 digits.")]
    elif "bank_code" not in errors and branch_get(bank_code, branch_code) is None:
        errors["branch_code"] = [
            _("Bank %(bank)s has no branch %(branch)s.") % {"bank": bank_code, "branch": branch_code}
        ]
    if payee.account_type not in AccountType.values:
        errors["account_type"] = [_("Choose an account type.")]
    number = payee.account_number.strip()
    if not re.fullmatch(r"[0-9]{1,7}", number):
        errors["account_number"] = [_("An account number is 1 to 7 digits.")]
    holder = to_zengin_kana(payee.holder_kana)
    bad = zengin_kana_errors(holder)
    if not holder:
        errors["holder_kana"] = [_("Enter the account holder's name in kana.")]
    elif bad:
        errors["holder_kana"] = [
            _("These characters have no 全銀 half-width kana form: %(chars)s.")
            % {
                "chars": ", ".join(
                    _("“%(ch)s” at position %(pos)d") % {"ch": ch, "pos": i + 1} for i, ch in bad
                )
            }
        ]
    elif len(holder) > HOLDER_MAX:
        errors["holder_kana"] = [
            _("At most %(max)d characters in half-width kana (this is %(n)d).")
            % {"max": HOLDER_MAX, "n": len(holder)}
        ]
    clean = Payee(
        bank_code=bank_code,
        branch_code=branch_code,
        account_type=payee.account_type,
        account_number=number.zfill(7),
        holder_kana=holder,
    )
    return clean, errors


def finding_refund(
    *, actor: User | None, biller: Biller, finding_id: int, payee: Payee, transfer_date: datetime.date
) -> Refund:
    """Refund the money of a finding (a double payment, a payment to a cancelled bill, …) by bank transfer
    to ``payee`` on ``transfer_date`` (a business day, today or later): a ``refund`` action and its
    ``Refund`` row, which the next 全銀 総合振込 file of that date carries."""
    clean, errors = _payee_clean(payee)
    today = timezone.localdate()
    if transfer_date < today:
        errors["transfer_date"] = [_("The transfer date cannot be in the past.")]
    elif not is_business_day(transfer_date):
        errors["transfer_date"] = [
            _("%(day)s is not a business day of the banks.") % {"day": transfer_date.isoformat()}
        ]
    with transaction.atomic():
        finding = _locked(biller, finding_id)
        _open(finding)
        if finding.kind not in REFUNDABLE_KINDS or finding.amount <= 0:
            raise ActionRefused(
                _("A %(kind)s is not money to give back: it cannot be refunded.")
                % {"kind": finding.get_kind_display()}
            )
        _held_entry(biller, finding)
        if errors:
            raise ValidationFailed(errors)
        action = action_record(
            finding=finding,
            kind=Action.Kind.REFUND,
            actor=actor,
            amount=finding.amount,
            invoice=finding.invoice,
        )
        return Refund.objects.create(
            biller=biller,
            finding=finding,
            action=action,
            amount=finding.amount,
            bank_code=clean.bank_code,
            branch_code=clean.branch_code,
            account_type=clean.account_type,
            account_number=clean.account_number,
            holder_kana=clean.holder_kana,
            transfer_date=transfer_date,
        )


def _reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise ValidationFailed({"reason": [_("Give a reason.")]})
    if len(text) > REASON_MAX:
        raise ValidationFailed(
            {
                "reason": [
                    _("At most %(max)d characters (this is %(n)d).") % {"max": REASON_MAX, "n": len(text)}
                ]
            }
        )
    return text


def finding_write_off(*, actor: User | None, biller: Biller, finding_id: int, reason: str) -> Action:
    """Close an open finding with nothing done to the money, for ``reason`` (required, ≤ 300 chars)."""
    text = _reason(reason)
    with transaction.atomic():
        finding = _locked(biller, finding_id)
        _open(finding)
        return action_record(
            finding=finding, kind=Action.Kind.WRITE_OFF, actor=actor, amount=finding.amount, reason=text
        )


def finding_reopen(*, actor: User | None, biller: Biller, finding_id: int, reason: str) -> Action:
    """Open a written-off or cleared finding again, for ``reason``. A matched or refunded one is refused:
    its money is on a bill or on its way back, which reopening would not undo."""
    text = _reason(reason)
    with transaction.atomic():
        finding = _locked(biller, finding_id)
        if finding.is_open:
            raise ActionRefused(_("This finding is already open."))
        if finding.state not in REOPENABLE_STATES:
            raise ActionRefused(
                _("A finding that is %(state)s cannot be reopened: its money was already moved.")
                % {"state": finding.get_state_display()}
            )
        return action_record(finding=finding, kind=Action.Kind.REOPEN, actor=actor, reason=text)


__all__ = [
    "MATCHABLE_KINDS",
    "REFUNDABLE_KINDS",
    "REOPENABLE_STATES",
    "Payee",
    "actions_available",
    "finding_match",
    "finding_refund",
    "finding_reopen",
    "finding_write_off",
]
