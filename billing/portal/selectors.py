"""Reads of the customer portal. Every one takes the biller and the customer and filters by both."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from billing.errors import ValidationFailed
from billing.models import Biller, Customer, Invoice, InvoiceApproval, InvoicePayment, Receipt

TABS = {
    "open": pgettext_lazy("invoices not yet paid", "Open"),
    "overdue": _("Overdue"),
    "paid": _("Paid"),
    "cancelled": _("Cancelled"),
    "all": _("All"),
}
DEFAULT_TAB = "open"


def portal_invoices(*, biller: Biller, customer: Customer) -> QuerySet[Invoice]:
    """The documents the customer may see: its own, of this biller, published at some point."""
    return (
        Invoice.objects.filter(biller=biller, customer=customer, customer__biller=biller)
        .exclude(status=Invoice.Status.DRAFT)
        .select_related("biller", "customer")
    )


@dataclass
class PortalFilters:
    tab: str = DEFAULT_TAB
    q: str = ""
    issued_from: datetime.date | None = None
    issued_to: datetime.date | None = None

    @property
    def tab_only(self) -> bool:
        """Nothing but a tab is chosen: the list is that tab's rows, counted by ``tab_counts``."""
        return not (self.q or self.issued_from or self.issued_to)

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> PortalFilters:
        errors: dict[str, list[str]] = {}
        out = cls()
        tab = str(params.get("tab", "") or DEFAULT_TAB).strip()
        if tab not in TABS:
            errors["tab"] = [str(_("Unknown tab."))]
        out.tab = tab
        out.q = str(params.get("q", "") or "").strip()[:100]
        for name in ("issued_from", "issued_to"):
            value = str(params.get(name, "") or "").strip()
            if value:
                try:
                    setattr(out, name, datetime.date.fromisoformat(value))
                except ValueError:
                    errors[name] = [str(_("Enter a date as YYYY-MM-DD."))]
        if out.issued_from and out.issued_to and out.issued_to < out.issued_from:
            errors["issued_to"] = [str(_("The end of the period is before its start."))]
        if errors:
            raise ValidationFailed(errors)
        return out


def _tab_filter(qs: QuerySet[Invoice], tab: str) -> QuerySet[Invoice]:
    today = timezone.localdate()
    unpaid = Q(status=Invoice.Status.PUBLISHED) & ~Q(kind=Invoice.Kind.CREDIT_NOTE)
    if tab == "open":
        return qs.filter(unpaid)
    if tab == "overdue":
        return qs.filter(unpaid, due_date__lt=today)
    if tab == "paid":
        return qs.filter(status=Invoice.Status.PAID)
    if tab == "cancelled":
        return qs.filter(status=Invoice.Status.CANCELLED)
    return qs


def invoice_list(*, biller: Biller, customer: Customer, filters: PortalFilters) -> QuerySet[Invoice]:
    qs = _tab_filter(portal_invoices(biller=biller, customer=customer), filters.tab)
    if filters.q:
        qs = qs.filter(Q(number__icontains=filters.q) | Q(description__icontains=filters.q))
    if filters.issued_from:
        qs = qs.filter(issue_date__gte=filters.issued_from)
    if filters.issued_to:
        qs = qs.filter(issue_date__lte=filters.issued_to)
    return qs.order_by("-issue_date", "-id")


def tab_counts(*, biller: Biller, customer: Customer) -> dict[str, int]:
    """The numbers beside the open and overdue tabs, in one read (each is ``_tab_filter``'s rule)."""
    today = timezone.localdate()
    unpaid = Q(status=Invoice.Status.PUBLISHED) & ~Q(kind=Invoice.Kind.CREDIT_NOTE)
    return portal_invoices(biller=biller, customer=customer).aggregate(
        open=Count("pk", filter=unpaid), overdue=Count("pk", filter=unpaid & Q(due_date__lt=today))
    )


def awaiting_approval(*, biller: Biller, customer: Customer) -> list[tuple[Invoice, InvoiceApproval | None]]:
    """The corporate customer's unpaid invoices whose latest decision is not an approval."""
    if not customer.is_corporate:
        return []
    invoices = list(
        _tab_filter(portal_invoices(biller=biller, customer=customer), "open")
        .exclude(kind=Invoice.Kind.PAYMENT_REQUEST)  # a payment request needs no approval
        .order_by("due_date", "id")
    )
    latest: dict[int, InvoiceApproval] = {}
    for approval in (
        InvoiceApproval.objects.filter(biller=biller, invoice__in=[i.pk for i in invoices])
        .select_related("decided_by")
        .order_by("id")
    ):
        latest[approval.invoice_id] = approval
    return [
        (invoice, latest.get(invoice.pk))
        for invoice in invoices
        if latest.get(invoice.pk) is None or latest[invoice.pk].decision != InvoiceApproval.Decision.APPROVED
    ]


def approvals_of(*, biller: Biller, invoice: Invoice) -> QuerySet[InvoiceApproval]:
    return (
        InvoiceApproval.objects.filter(biller=biller, invoice=invoice)
        .select_related("decided_by")
        .order_by("id")
    )


# --- payments and receipts: billing's own record of the payments on the customer's bills -------------


def payment_list(*, biller: Biller, customer: Customer) -> QuerySet[InvoicePayment]:
    """The payments on the customer's bills (paid, double payments, provisional, reversals), newest first."""
    return (
        InvoicePayment.objects.filter(biller=biller, invoice__biller=biller, invoice__customer=customer)
        .select_related("invoice")
        .order_by("-created_at", "-id")
    )


def receipt_list(*, biller: Biller, customer: Customer) -> QuerySet[Receipt]:
    """The receipts of the payments on the customer's bills, newest first."""
    return (
        Receipt.objects.filter(
            biller=biller,
            payment__biller=biller,
            payment__invoice__biller=biller,
            payment__invoice__customer=customer,
        )
        .select_related("payment", "payment__invoice__biller", "payment__invoice__customer")
        .order_by("-sent_at", "-id")
    )


def invoice_receipts(*, biller: Biller, customer: Customer, invoice: Invoice) -> list[Receipt]:
    """The receipts of the payments on one of the customer's bills, oldest first. ``invoice`` is one the
    customer may see (``portal_invoices``): its receipts are read by it alone, without the joins of
    ``receipt_list`` that find a customer's receipts among the biller's."""
    if invoice.biller_id != biller.pk or invoice.customer_id != customer.pk:
        return []
    return list(
        Receipt.objects.filter(biller=biller, payment__biller=biller, payment__invoice=invoice)
        .select_related("payment")
        .order_by("id")
    )


def known_parents(invoices: Iterable[Invoice], *, biller: Biller, customer: Customer) -> None:
    """Give invoices read by ``portal_invoices(...).select_related(None)`` their biller and customer, which
    the read's filter made ``biller`` and ``customer``: no join, no second read of either."""
    for invoice in invoices:
        if invoice.biller_id != biller.pk or invoice.customer_id != customer.pk:
            raise ValueError(f"invoice {invoice.pk} is not {customer.pk}'s at {biller.pk}")
        Invoice.biller.field.set_cached_value(invoice, biller)
        Invoice.customer.field.set_cached_value(invoice, customer)


def bank_name(code: str) -> str:
    """The bank's name from the 全銀 master (the zengin-code package); the code when unknown."""
    try:
        import zengin_code

        bank = zengin_code.Bank.all.get(code)
    except Exception:  # the master is a convenience here, never a reason to fail a page
        return code
    return f"{bank.name}" if bank is not None else code
