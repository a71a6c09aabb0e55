"""The portal's reads that every page and the paying code rely on: whose account, who may see the
payment numbers, who may pay, and the portal's links in e-mails and on paper.

The rule of the payment numbers (:func:`numbers_visibility`) and of paying (:func:`can_pay`) lives
here alone; ``billing.portal.services`` re-exports both (payeasy's paying code imports them there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Biller, Customer, CustomerAccount, Invoice, InvoiceApproval, User, customer_login
from billing.tenancy import tenant_reverse

Role = CustomerAccount.Role


# --- reads every page relies on ------------------------------------------------------------------------


def account_of(user: Any, biller: Biller) -> CustomerAccount | None:
    """The portal account of ``user`` at ``biller``; None for anyone else (console users included)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.realm != User.Realm.CUSTOMER or user.customer_biller_id != biller.pk:
        return None
    account = (
        CustomerAccount.objects.select_related("customer", "customer__balance_account")
        .filter(user=user, biller=biller, customer__biller=biller)
        .first()
    )
    if account is not None:
        # the filter's own user: no join
        CustomerAccount.user.field.set_cached_value(account, getattr(user, "_wrapped", user))
    return account


def customer_of(user: Any, biller: Biller) -> Customer | None:
    """The customer ``user`` sees in ``biller``'s portal, or None."""
    account = account_of(user, biller)
    return account.customer if account is not None else None


def latest_decision(invoice: Invoice) -> InvoiceApproval | None:
    return (
        InvoiceApproval.objects.filter(invoice=invoice, biller_id=invoice.biller_id)
        .select_related("decided_by")
        .order_by("-id")
        .first()
    )


def approval_state(invoice: Invoice) -> str:
    """``not_required`` (not a corporate customer's, or a payment request: an order's pay-later numbers
    or an amount the payer chose), ``pending``, ``approved`` or ``rejected``."""
    customer = invoice.customer
    if customer is None or not customer.is_corporate:
        return "not_required"
    if invoice.kind == Invoice.Kind.PAYMENT_REQUEST:
        return "not_required"
    latest = latest_decision(invoice)
    return latest.decision if latest is not None else "pending"


def past_due_refused(invoice: Invoice) -> bool:
    """The biller refuses payments after the due date (B003) and the date has passed."""
    return (
        invoice.biller.late_payment_policy == Biller.LatePaymentPolicy.REFUSE
        and invoice.due_date < timezone.localdate()
    )


# --- who sees the payment numbers ------------------------------------------------------------------------


@dataclass(frozen=True)
class NumbersVisibility:
    """What a reader may see of an invoice's payment numbers: the お客様番号, the 確認番号, and the
    portal registration code (and its link) printed beside them on the PDF.

    ``visible`` is all or nothing; ``reason`` says why they are withheld ("" when shown), so every
    output can say so plainly instead of leaving a blank:

    - ``approval``: a payer of a corporate customer, before an approver approved the invoice (or after
      a rejection withdrew the approval);
    - ``payers_after_approval``: a viewer or approver of a corporate customer's invoice that needs
      approval (only payers ever see them, and only once it is approved);
    - ``payers``: a viewer or approver, for a payment request (which needs no approval);
    - ``paid``, ``cancelled``: nothing is left to pay;
    - ``no_numbers``: the document has none (a credit note, a draft, an invoice without numbers);
    - ``not_yours``: anyone who is not a portal user of the invoice's customer.
    """

    visible: bool
    reason: str = ""

    @property
    def withheld_text(self) -> str:
        """What a page or a CSV shows in place of a withheld number ("" when there is none to show)."""
        if self.visible:
            return ""
        texts = {
            "approval": _("Shown after your company's approval"),
            "payers_after_approval": _("Shown to your company's payers after approval"),
            "payers": _("Shown to your company's payers"),
            "paid": _("Not shown: paid"),
            "cancelled": _("Not shown: cancelled"),
            "not_yours": _("Not shown"),
        }
        return str(texts.get(self.reason, ""))


NUMBERS_SHOWN = NumbersVisibility(True)


def numbers_visibility(
    user: Any, invoice: Invoice | None, *, account: CustomerAccount | None = None
) -> NumbersVisibility:
    """May ``user`` see ``invoice``'s payment numbers? The one rule for every portal output.

    A bank shows the numbers only to whoever may pay: a payer account of the invoice's own biller and
    customer, for an unpaid, published invoice with numbers that is not a credit note, and for a
    corporate customer's invoice (not a payment request) whose latest decision is an approval. This is
    :func:`can_pay` without what does not depend on the reader or the company's decision (the biller
    being active, a due date the biller enforces): those are the network's to refuse, and the payer's
    numbers stay the payer's. ``account``: ``account_of(user, invoice.biller)`` when the caller holds
    it already (a page of many invoices); it is never trusted for another user.
    """
    if invoice is None or invoice.pk is None:
        return NumbersVisibility(False, "not_yours")
    if account is None or account.user_id != getattr(user, "pk", None):
        account = account_of(user, invoice.biller)
    if (
        account is None
        or account.biller_id != invoice.biller_id
        or account.customer_id != invoice.customer_id
        or not account.user.is_active
    ):
        return NumbersVisibility(False, "not_yours")
    if (
        invoice.kind == Invoice.Kind.CREDIT_NOTE
        or not invoice.customer_number
        or not invoice.confirmation_number
        or invoice.status == Invoice.Status.DRAFT
    ):
        return NumbersVisibility(False, "no_numbers")
    if invoice.status == Invoice.Status.PAID:
        return NumbersVisibility(False, "paid")
    if invoice.status == Invoice.Status.CANCELLED:
        return NumbersVisibility(False, "cancelled")
    needs_approval = account.customer.is_corporate and invoice.kind != Invoice.Kind.PAYMENT_REQUEST
    if account.role != Role.PAYER:
        return NumbersVisibility(False, "payers_after_approval" if needs_approval else "payers")
    if needs_approval and approval_state(invoice) != InvoiceApproval.Decision.APPROVED:
        return NumbersVisibility(False, "approval")
    return NUMBERS_SHOWN


def may_see_numbers(user: Any, invoice: Invoice | None) -> bool:
    return numbers_visibility(user, invoice).visible


def email_numbers_visibility(invoice: Invoice) -> NumbersVisibility:
    """What an invoice e-mail to ``invoice.recipient_email`` may carry of the numbers.

    The address of a portal user of this biller is that user: :func:`numbers_visibility` decides. An
    address without an account, for an invoice that needs the approval of a corporate customer who has
    portal accounts (the company approves in the portal), gets no numbers: nobody knows it is a payer's.
    Any other address gets them, as on the paper bill (a customer who does not use the portal).
    """
    biller = invoice.biller
    email = invoice.recipient_email
    user = (
        User.objects.filter(
            login=customer_login(biller, email), realm=User.Realm.CUSTOMER, customer_biller=biller
        ).first()
        if email
        else None
    )
    if user is not None:
        return numbers_visibility(user, invoice)
    customer = invoice.customer
    if (
        customer is not None
        and customer.is_corporate
        and invoice.kind != Invoice.Kind.PAYMENT_REQUEST
        and customer.accounts.exists()
    ):
        return NumbersVisibility(False, "payers_after_approval")
    return NUMBERS_SHOWN


def can_pay(user: Any, invoice: Invoice | None, *, account: CustomerAccount | None = None) -> bool:
    """May ``user`` pay ``invoice`` now?

    Yes only when the user may see its numbers (:func:`numbers_visibility`: a payer account of the
    invoice's own biller and customer, a published, unpaid invoice that is not a credit note, approved
    when a corporate customer's), of an active biller, and not past a due date the biller enforces.
    """
    if invoice is None or not numbers_visibility(user, invoice, account=account).visible:
        return False
    biller = invoice.biller
    return biller.status == Biller.Status.ACTIVE and not past_due_refused(invoice)


def absolute_url(path: str) -> str:
    """``path`` (absolute, from the site's root) as a link that works outside a request: in e-mails, on
    paper, in the console's and the API's links, in `demo_info`. Every such link is built here, on the
    one setting PORTAL_BASE_URL (which follows WEB_ADDR in development, config/settings/product.py)."""
    if not path.startswith("/"):
        raise ValueError(f"absolute_url takes a path from the site's root, not {path!r}")
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def portal_url(biller: Biller, name: str, **kwargs: Any) -> str:
    """An absolute link into ``biller``'s portal for e-mails and paper (PORTAL_BASE_URL, path mode)."""
    return absolute_url(tenant_reverse(biller, name, **kwargs))


__all__ = [
    "NUMBERS_SHOWN",
    "NumbersVisibility",
    "absolute_url",
    "account_of",
    "approval_state",
    "can_pay",
    "customer_of",
    "email_numbers_visibility",
    "latest_decision",
    "may_see_numbers",
    "numbers_visibility",
    "past_due_refused",
    "portal_url",
]
