"""Chosen amounts (任意金額): account balances, the payment requests that repay them, and allocation.

- The tenant states a customer's balance (``balance_account_set``): a minimum payment and dated items
  (monthly statements) with what is outstanding on each.
- A payer chooses an amount between the minimum and the balance (``balance_request_create``) and gets a
  fresh payment request with its own numbers (Pay-easy amounts are fixed per number).
- When the line pays that request, payeasy's payment application calls ``balance_payment_allocate`` in
  its transaction: the amount goes to the items oldest first and any excess becomes credit. A reversal
  that makes the request payable again calls ``balance_payment_unallocate``, which appends the opposite
  allocations. Allocations are append-only and unique per transaction key: a payment applied twice
  allocates once, and money is never lost or counted twice.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.errors import InvalidTransition, NotFound, ValidationFailed
from billing.models import (
    ApiKey,
    BalanceAccount,
    BalanceAllocation,
    BalanceItem,
    BalancePaymentRequest,
    Biller,
    Customer,
    Invoice,
    User,
)
from billing.selectors import balance_range
from billing.services.audit import audit_record
from billing.services.payment_requests import build_payment_request, clean_amount, save_published

Actor = User | ApiKey | None

MAX_BALANCE_ITEMS = 200
REPAYMENT_DESCRIPTION = "ご返済"
REPAYMENT_TAX_CATEGORY = "exempt"  # repaying a balance is not a taxable sale
REQUEST_VALID_DAYS = 7


# --- the tenant states the balance --------------------------------------------------------------------


@dataclass(frozen=True)
class _ItemInput:
    date: datetime.date
    description: str
    amount: int
    outstanding: int | None


def _clean_items(raw_items: Any) -> list[_ItemInput]:
    if not isinstance(raw_items, list):
        raise ValidationFailed({"items": [_("must be a list of items")]})
    if len(raw_items) > MAX_BALANCE_ITEMS:
        raise ValidationFailed({"items": [_("at most %(max)d items") % {"max": MAX_BALANCE_ITEMS}]})
    errors: dict[str, list[str]] = {}
    out: list[_ItemInput] = []
    seen: set[tuple[datetime.date, str]] = set()
    for i, raw in enumerate(raw_items):
        prefix = f"items[{i}]"
        if not isinstance(raw, dict):
            errors[prefix] = [_("must be an object")]
            continue
        day = raw.get("date")
        if isinstance(day, str):
            try:
                day = datetime.date.fromisoformat(day.strip())
            except ValueError:
                day = None
        if not isinstance(day, datetime.date):
            errors[f"{prefix}.date"] = [_("is required: a date YYYY-MM-DD")]
        description = str(raw.get("description") or "").strip()
        if not description:
            errors[f"{prefix}.description"] = [_("is required")]
        elif len(description) > 100:
            errors[f"{prefix}.description"] = [_("must be at most 100 characters")]
        amount = outstanding = None
        try:
            amount = clean_amount(raw.get("amount"), f"{prefix}.amount")
        except ValidationFailed as exc:
            errors.update(exc.errors)
        if raw.get("outstanding") not in (None, ""):
            value = raw.get("outstanding")
            if isinstance(value, bool) or not str(value).strip().replace(",", "").isdigit():
                errors[f"{prefix}.outstanding"] = [_("must be a whole number of yen")]
            else:
                outstanding = int(str(value).strip().replace(",", ""))
                if amount is not None and outstanding > amount:
                    errors[f"{prefix}.outstanding"] = [_("must not be more than the item's amount")]
        if isinstance(day, datetime.date) and description:
            if (day, description) in seen:
                errors[f"{prefix}.description"] = [_("the same date and description are given twice")]
            seen.add((day, description))
        if not any(k == prefix or k.startswith(prefix + ".") for k in errors):
            assert isinstance(day, datetime.date) and amount is not None
            out.append(_ItemInput(day, description, amount, outstanding))
    if errors:
        raise ValidationFailed(errors)
    return out


def balance_account_set(
    *,
    actor: Actor,
    biller: Biller,
    customer: Customer,
    minimum_payment: Any,
    items: Any,
) -> BalanceAccount:
    """State a customer's balance: the minimum payment and the items (the whole list, as of now).

    An item is known by its date and description. A new one is outstanding for its whole amount unless
    ``outstanding`` says otherwise; a known one keeps what payments left outstanding unless
    ``outstanding`` is given; a known one missing from the list is settled (nothing outstanding).
    Credit from earlier payments stays.
    """
    if customer.biller_id != biller.pk:
        raise NotFound(_("No such customer."))
    errors: dict[str, list[str]] = {}
    try:
        minimum = clean_amount(minimum_payment, "minimum_payment")
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        cleaned = _clean_items(items)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    now = timezone.now()
    with transaction.atomic():
        locked_customer = Customer.objects.select_for_update().get(pk=customer.pk, biller=biller)
        account = BalanceAccount.objects.select_for_update().filter(customer=locked_customer).first()
        created = account is None
        if account is None:
            account = BalanceAccount.objects.create(
                biller=biller, customer=locked_customer, minimum_payment=minimum
            )
        before = {"minimum_payment": account.minimum_payment, "balance": balance_range(account).balance}
        existing = {
            (item.date, item.description): item
            for item in BalanceItem.objects.select_for_update().filter(account=account).order_by("id")
        }
        for entry in cleaned:
            item = existing.pop((entry.date, entry.description), None)
            if item is None:
                BalanceItem.objects.create(
                    biller=biller,
                    account=account,
                    date=entry.date,
                    description=entry.description,
                    amount=entry.amount,
                    outstanding=entry.amount if entry.outstanding is None else entry.outstanding,
                    created_at=now,
                    updated_at=now,
                )
                continue
            outstanding = (
                min(item.outstanding, entry.amount) if entry.outstanding is None else entry.outstanding
            )
            if (item.amount, item.outstanding) != (entry.amount, outstanding):
                item.amount, item.outstanding, item.updated_at = entry.amount, outstanding, now
                item.save(update_fields=["amount", "outstanding", "updated_at"])
        for item in existing.values():  # not in the list: settled
            if item.outstanding:
                item.outstanding, item.updated_at = 0, now
                item.save(update_fields=["outstanding", "updated_at"])
        account.minimum_payment, account.updated_at = minimum, now
        account.save(update_fields=["minimum_payment", "updated_at"])
        after = {"minimum_payment": minimum, "balance": balance_range(account).balance}
        audit_record(
            actor=actor,
            action="balance.create" if created else "balance.set",
            biller=biller,
            target=account,
            summary=f"{locked_customer.code} {after['balance']:,}円",
            before=None if created else before,
            after=after,
        )
    return account


# --- the payer chooses an amount ------------------------------------------------------------------------


def balance_request_create(*, actor: Actor, biller: Biller, customer: Customer, amount: Any) -> Invoice:
    """A fresh payment request for an amount the payer chose, within the range, linked to the balance.

    Due in :data:`REQUEST_VALID_DAYS` days; its numbers are its own. No e-mail: the payer is on the
    page that shows them.
    """
    if customer.biller_id != biller.pk:
        raise NotFound(_("No such customer."))
    if biller.status != Biller.Status.ACTIVE:
        raise InvalidTransition(_("Payments cannot be made to this biller at the moment."))
    account = BalanceAccount.objects.filter(biller=biller, customer=customer).first()
    if account is None:
        raise NotFound(_("This customer has no balance to pay."))
    chosen = clean_amount(amount)
    limits = balance_range(account)
    if not limits.payable:
        raise ValidationFailed({"amount": [_("there is no balance to pay")]})
    if chosen < limits.low:
        raise ValidationFailed(
            {"amount": [_("must be at least the minimum payment, %(low)s yen") % {"low": f"{limits.low:,}"}]}
        )
    if chosen > limits.high:
        raise ValidationFailed(
            {"amount": [_("must be at most the balance, %(high)s yen") % {"high": f"{limits.high:,}"}]}
        )
    invoice = build_payment_request(
        biller=biller,
        amount=chosen,
        description=REPAYMENT_DESCRIPTION,
        due_date=timezone.localdate() + datetime.timedelta(days=REQUEST_VALID_DAYS),
        tax_category=REPAYMENT_TAX_CATEGORY,
        customer=customer,
        require_email=False,
    )
    with transaction.atomic():
        save_published(invoice)
        BalancePaymentRequest.objects.create(
            biller=biller,
            account=account,
            invoice=invoice,
            created_by=actor if isinstance(actor, User) else None,
        )
        audit_record(
            actor=actor,
            action="balance.request",
            biller=biller,
            target=invoice,
            summary=f"{customer.code} {invoice.number} {chosen:,}円",
            after={"customer_number": invoice.customer_number, "amount": chosen},
        )
    return invoice


# --- the line paid (or reversed) ---------------------------------------------------------------------------


def _account_for(invoice: Invoice) -> BalanceAccount | None:
    link = BalancePaymentRequest.objects.filter(invoice_id=invoice.pk).only("account_id").first()
    if link is None:
        return None
    return (
        BalanceAccount.objects.select_for_update(of=("self",))
        .select_related("biller")
        .get(pk=link.account_id)
    )


def _unkeyed_account(
    invoice: Invoice, payment_key: str
) -> tuple[BalanceAccount, QuerySet[BalanceAllocation]] | None:
    """The locked balance account a payment request repays, with its allocations; None when it repays
    none or ``payment_key`` was applied already (each key allocates or undoes once)."""
    account = _account_for(invoice)
    if account is None:
        return None
    allocations = BalanceAllocation.objects.filter(biller_id=account.biller_id)
    if allocations.filter(payment_key=payment_key).exists():
        return None
    return account, allocations


def balance_allocations_append(
    *,
    account: BalanceAccount,
    invoice: Invoice,
    payment_key: str,
    rows: list[BalanceAllocation],
    now: datetime.datetime,
) -> None:
    """Append ``rows`` (in order) to the locked ``account`` as ``payment_key``'s allocations for
    ``invoice``, and save the account's credit. Inside the allocating (or undoing) transaction."""
    for position, row in enumerate(rows):
        row.biller_id, row.account, row.invoice_id = account.biller_id, account, invoice.pk
        row.payment_key, row.position, row.created_at = payment_key, position, now
    BalanceAllocation.objects.bulk_create(rows)
    account.updated_at = now
    account.save(update_fields=["credit", "updated_at"])


def balance_payment_allocate(
    *, invoice: Invoice, amount: int, paid_at: datetime.datetime, payment_key: str
) -> list[BalanceAllocation]:
    """Allocate a payment of a chosen-amount request: to the items oldest first, the excess to credit.

    Called by payeasy's payment application inside its transaction when the request becomes paid.
    Nothing for a payment request that repays no balance. Idempotent: a payment key allocates once
    (unique constraint), and a request that stands allocated is not allocated again.
    """
    if invoice.kind != Invoice.Kind.PAYMENT_REQUEST or amount <= 0:
        return []
    found = _unkeyed_account(invoice, payment_key)
    if found is None:
        return []
    account, allocations = found
    if (allocations.filter(invoice_id=invoice.pk).aggregate(s=Sum("amount"))["s"] or 0) > 0:
        return []  # allocated by a payment that still stands
    now = timezone.now()
    rows: list[BalanceAllocation] = []
    remaining = amount
    items = BalanceItem.objects.select_for_update().filter(account=account, outstanding__gt=0)
    for item in items.order_by("date", "id"):
        if remaining <= 0:
            break
        take = min(item.outstanding, remaining)
        item.outstanding, item.updated_at = item.outstanding - take, now
        item.save(update_fields=["outstanding", "updated_at"])
        rows.append(BalanceAllocation(item=item, amount=take))
        remaining -= take
    if remaining > 0:
        account.credit += remaining
        rows.append(BalanceAllocation(item=None, amount=remaining))
    balance_allocations_append(account=account, invoice=invoice, payment_key=payment_key, rows=rows, now=now)
    audit_record(
        actor=None,
        action="balance.allocate",
        biller=account.biller,
        target=account,
        summary=f"{invoice.number} {amount:,}円 → items {amount - remaining:,}円, credit {remaining:,}円",
        after={"payment": payment_key, "paid_at": paid_at, "credit": account.credit},
    )
    return rows


def balance_payment_unallocate(*, invoice: Invoice, payment_key: str) -> list[BalanceAllocation]:
    """Undo the allocation of a chosen-amount request whose payment was reversed (it is payable again).

    Appends the opposite of what stands allocated for the request: the items are owed again, the credit
    it made is taken back. ``payment_key`` is the reversal's transaction key: it undoes once.
    """
    if invoice.kind != Invoice.Kind.PAYMENT_REQUEST:
        return []
    found = _unkeyed_account(invoice, payment_key)
    if found is None:
        return []
    account, allocations = found
    standing: dict[int | None, int] = defaultdict(int)
    for item_id, total in (
        allocations.filter(invoice_id=invoice.pk).values_list("item_id").annotate(s=Sum("amount")).order_by()
    ):
        standing[item_id] += total or 0
    now = timezone.now()
    rows: list[BalanceAllocation] = []
    locked = {
        item.pk: item
        for item in BalanceItem.objects.select_for_update()
        .filter(pk__in=[pk for pk in standing if pk is not None])
        .order_by("id")
    }
    for item_id in sorted(standing, key=lambda pk: (pk is None, pk or 0)):
        net = standing[item_id]
        if net <= 0:
            continue
        if item_id is None:
            account.credit -= net
        else:
            item = locked[item_id]
            # owed again; never more than the item's amount (the tenant may have restated it meanwhile)
            item.outstanding = min(item.amount, item.outstanding + net)
            item.updated_at = now
            item.save(update_fields=["outstanding", "updated_at"])
        rows.append(BalanceAllocation(item_id=item_id, amount=-net))
    if not rows:
        return []
    balance_allocations_append(account=account, invoice=invoice, payment_key=payment_key, rows=rows, now=now)
    undone = -sum(r.amount for r in rows)
    audit_record(
        actor=None,
        action="balance.unallocate",
        biller=account.biller,
        target=account,
        summary=f"{invoice.number} reversed: {undone:,}円 owed again",
        after={"reversal": payment_key, "credit": account.credit},
    )
    return rows


__all__ = [
    "MAX_BALANCE_ITEMS",
    "REPAYMENT_DESCRIPTION",
    "balance_account_set",
    "balance_payment_allocate",
    "balance_payment_unallocate",
    "balance_request_create",
]
