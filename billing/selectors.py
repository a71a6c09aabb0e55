"""Reads of the billing app that carry a rule."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone

from billing.errors import ValidationFailed
from billing.models import (
    AuditEntry,
    BalanceAccount,
    BalanceAllocation,
    BalanceItem,
    Biller,
    Customer,
    Invitation,
    Invoice,
    InvoicePayment,
    Membership,
    User,
)
from billing.numbers import issuer_for


def membership_for(*, user: User, biller: Biller) -> Membership | None:
    return Membership.objects.filter(user=user, biller=biller).first()


def memberships_of(*, user: User) -> list[Membership]:
    return list(
        Membership.objects.filter(user=user)
        .exclude(biller__status=Biller.Status.SUSPENDED)
        .select_related("biller")
        .order_by("biller__legal_name")
    )


def member_list(*, biller: Biller) -> QuerySet[Membership]:
    return Membership.objects.filter(biller=biller).select_related("user").order_by("user__email")


def invitation_list(*, biller: Biller) -> QuerySet[Invitation]:
    return Invitation.objects.filter(biller=biller).select_related("created_by", "accepted_by")


def biller_counts(*, biller: Biller) -> dict[str, int]:
    return {
        "customers": Customer.objects.filter(biller=biller).count(),
        "members": Membership.objects.filter(biller=biller).count(),
    }


def biller_list(*, query: str = "", status: str = "") -> QuerySet[Biller]:
    qs = Biller.objects.all()
    if status:
        qs = qs.filter(status=status)
    q = query.strip()
    if q:
        from billing.kana import to_zengin_kana

        qs = qs.filter(
            Q(legal_name__icontains=q)
            | Q(short_name__icontains=q)
            | Q(name_kana__icontains=to_zengin_kana(q))
            | Q(biller_code__startswith=q)
            | Q(payee_number__startswith=q)
            | Q(slug__icontains=q.lower())
        )
    return qs.order_by("biller_code")


def audit_list(*, biller: Biller | None = None, action: str = "", actor: str = "") -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.select_related("biller")
    if biller is not None:
        qs = qs.filter(biller=biller)
    if action:
        qs = qs.filter(action__startswith=action)
    if actor:
        qs = qs.filter(actor_label__icontains=actor)
    return qs


def invoice_history(*, biller: Biller, invoice: Invoice) -> QuerySet[AuditEntry]:
    """What was done to one invoice (or payment request), oldest first."""
    return (
        AuditEntry.objects.filter(biller=biller, target_type="billing.Invoice", target_id=str(invoice.pk))
        .select_related("actor")
        .order_by("created_at", "id")
    )


INVOICE_PAGE_SIZE = 50  # the console's invoice list (and its kept first page, billing.page_cache)
INVOICE_SORTS = {
    "issue_date": ("issue_date", "id"),
    "-issue_date": ("-issue_date", "-id"),
    "due_date": ("due_date", "id"),
    "-due_date": ("-due_date", "-id"),
    "total": ("total", "id"),
    "-total": ("-total", "-id"),
    "number": ("number",),
    "-number": ("-number",),
}


@dataclass
class InvoiceFilters:
    """The filters the console and the API share. Unknown or malformed values are errors, not ignored."""

    status: str = ""
    kind: str = ""
    due_from: datetime.date | None = None
    due_to: datetime.date | None = None
    customer: str = ""
    amount_min: int | None = None
    amount_max: int | None = None
    q: str = ""
    sort: str = "-issue_date"

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> InvoiceFilters:
        errors: dict[str, list[str]] = {}
        out = cls()
        status = params.get("status", "").strip()
        if status and status not in {*Invoice.Status.values, "overdue"}:
            errors["status"] = [f"unknown status {status!r}"]
        out.status = status
        kind = params.get("kind", "").strip()
        if kind and kind not in Invoice.Kind.values:
            errors["kind"] = [f"unknown kind {kind!r}"]
        out.kind = kind
        for name in ("due_from", "due_to"):
            value = params.get(name, "").strip()
            if value:
                try:
                    setattr(out, name, datetime.date.fromisoformat(value))
                except ValueError:
                    errors[name] = [f"must be a date YYYY-MM-DD, not {value!r}"]
        for name in ("amount_min", "amount_max"):
            value = params.get(name, "").strip().replace(",", "")
            if value:
                if not (value.isascii() and value.isdigit()):  # "²".isdigit(), but int("²") fails
                    errors[name] = [f"must be a whole number of yen, not {value!r}"]
                else:
                    setattr(out, name, int(value))
        out.customer = params.get("customer", "").strip()
        out.q = params.get("q", "").strip()
        sort = params.get("sort", "").strip() or "-issue_date"
        if sort not in INVOICE_SORTS:
            errors["sort"] = [f"sort by one of {', '.join(INVOICE_SORTS)}"]
        out.sort = sort
        if errors:
            raise ValidationFailed(errors)
        return out


def invoice_list(*, biller: Biller, filters: InvoiceFilters | None = None) -> QuerySet[Invoice]:
    """Invoices of one biller, filtered and sorted; every filter runs on an index led by the biller."""
    f = filters or InvoiceFilters()
    qs = Invoice.objects.filter(biller=biller)
    if f.status == "overdue":
        qs = qs.filter(status=Invoice.Status.PUBLISHED, due_date__lt=timezone.localdate())
    elif f.status:
        qs = qs.filter(status=f.status)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.due_from:
        qs = qs.filter(due_date__gte=f.due_from)
    if f.due_to:
        qs = qs.filter(due_date__lte=f.due_to)
    if f.amount_min is not None:
        qs = qs.filter(total__gte=f.amount_min)
    if f.amount_max is not None:
        qs = qs.filter(total__lte=f.amount_max)
    if f.customer:
        customer_ids = (
            Customer.objects.filter(biller=biller)
            .filter(Q(code=f.customer) | (Q(pk=int(f.customer)) if f.customer.isdigit() else Q(pk__in=[])))
            .values("pk")
        )
        qs = qs.filter(customer__in=customer_ids)
    if f.q:
        counter = issuer_for(biller.number_key).counter_of(f.q) if f.q.isdigit() else None
        by_number = Q(pk=counter, confirmation_number__isnull=False) if counter is not None else Q(pk__in=[])
        qs = qs.filter(
            Q(number=f.q)
            | by_number
            | Q(external_id=f.q)
            | Q(customer__in=Customer.objects.filter(biller=biller, name__icontains=f.q).values("pk"))
        )
    return qs.order_by(*INVOICE_SORTS[f.sort])


def invoice_payments(*, biller: Biller, invoice: Invoice) -> QuerySet[InvoicePayment]:
    """The payments recorded on ``invoice`` (paid, double payments, provisional, reversals) in the order
    they were paid, each with its receipt number (``receipt_number``, None without a receipt)."""
    return (
        InvoicePayment.objects.filter(biller=biller, invoice=invoice)
        .annotate(receipt_number=F("receipt__number"))
        .order_by("paid_at", "id")
    )


def invoice_by_payment_numbers(*, biller: Biller, customer_number: str) -> Invoice | None:
    """The payable document with this お客様番号 (a primary-key lookup; None for a mistyped number)."""
    counter = issuer_for(biller.number_key).counter_of(customer_number)
    if counter is None:
        return None
    return (
        Invoice.objects.select_related("biller")
        .filter(pk=counter, biller=biller, confirmation_number__isnull=False)
        .first()
    )


# --- balances (chosen amounts) ------------------------------------------------------------------------


@dataclass(frozen=True)
class BalanceRange:
    """What a payer may choose now: ``low`` to ``high`` yen (both 0 when there is nothing to pay)."""

    balance: int
    low: int
    high: int

    @property
    def payable(self) -> bool:
        return self.high > 0


def balance_range(account: BalanceAccount) -> BalanceRange:
    """The balance (sum of what is outstanding) and the range a payer may choose: the minimum payment
    (or the whole balance when it is smaller) up to the balance."""
    balance = (
        BalanceItem.objects.filter(account=account, outstanding__gt=0).aggregate(s=Sum("outstanding"))["s"]
        or 0
    )
    return BalanceRange(balance=balance, low=min(account.minimum_payment, balance), high=balance)


def balance_account_of(*, biller: Biller, customer: Customer) -> BalanceAccount | None:
    return BalanceAccount.objects.filter(biller=biller, customer=customer).first()


def balance_items(*, account: BalanceAccount, open_only: bool = False) -> QuerySet[BalanceItem]:
    qs = BalanceItem.objects.filter(account=account, biller_id=account.biller_id)
    if open_only:
        qs = qs.filter(outstanding__gt=0)
    return qs.order_by("date", "id")


def balance_requests(*, account: BalanceAccount) -> QuerySet[Invoice]:
    """The chosen-amount payment requests of a balance, newest first."""
    return (
        Invoice.objects.filter(
            biller_id=account.biller_id, kind=Invoice.Kind.PAYMENT_REQUEST, balance_request__account=account
        )
        .select_related("biller")
        .order_by("-id")
    )


def balance_allocations(*, account: BalanceAccount) -> QuerySet[BalanceAllocation]:
    return (
        BalanceAllocation.objects.filter(account=account, biller_id=account.biller_id)
        .select_related("item", "invoice")
        .order_by("-id")
    )


def payment_request_list(*, biller: Biller, status: str = "", q: str = "") -> QuerySet[Invoice]:
    """A biller's payment requests (pay-later orders and chosen amounts), newest first."""
    qs = Invoice.objects.filter(biller=biller, kind=Invoice.Kind.PAYMENT_REQUEST)
    if status == "overdue":
        qs = qs.filter(status=Invoice.Status.PUBLISHED, due_date__lt=timezone.localdate())
    elif status:
        qs = qs.filter(status=status)
    q = q.strip()
    if q:
        counter = issuer_for(biller.number_key).counter_of(q) if q.isdigit() else None
        by_number = Q(pk=counter, confirmation_number__isnull=False) if counter is not None else Q(pk__in=[])
        qs = qs.filter(
            Q(number=q) | by_number | Q(external_id=q) | Q(recipient_email__iexact=q) | Q(customer__code=q)
        )
    return qs.select_related("biller", "customer").order_by("-issue_date", "-id")
