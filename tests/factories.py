"""Factories for tests. Every tenant-owned object takes its biller explicitly."""

from __future__ import annotations

import datetime
import itertools
from typing import Any

from django.utils import timezone

from billing.models import Biller, ConsoleTwoFactor, Customer, Invoice, Membership, User
from billing.validators import corporate_check_digit
from payeasy.models import ContractedBank

_seq = itertools.count(1)

# An electricity bill of both tax rates: 10,500 yen at 10 % and 4,400 yen at 8 %, 16,302 yen in all.
MIXED_RATE_LINES: list[dict[str, Any]] = [
    {"description": "基本料金", "quantity": 1, "unit_price": 1200, "tax_category": "10"},
    {"description": "電力量料金", "quantity": 300, "unit_price": 31, "tax_category": "10"},
    {"description": "定期購読 新聞", "quantity": 1, "unit_price": 4400, "tax_category": "8"},
]


def registration_number(base12: str) -> str:
    return f"T{corporate_check_digit(base12)}{base12}"


def biller_data(**overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    payee = f"{60000 + n:05d}"
    data = {
        "legal_name": f"テスト収納企業{n}株式会社",
        "short_name": f"テスト{n}",
        "name_kana": f"ﾃｽﾄ{n}(ｶ",
        "payee_number": payee,
        "biller_code": f"{payee}001",
        "registration_number": registration_number(f"{n:012d}"),
        "slug": f"biller-{n}",
        "contact_name": "担当 一郎",
        "contact_email": f"contact{n}@example.jp",
        "contact_phone": "03-0000-0000",
        "late_payment_policy": Biller.LatePaymentPolicy.ACCEPT,
        "tax_rounding": Biller.TaxRounding.FLOOR,
        "reminder_days": 3,
    }
    data.update(overrides)
    return data


def make_biller(*, status: str = Biller.Status.ACTIVE, **overrides: Any) -> Biller:
    from billing.kana import to_double_byte

    data = biller_data(**overrides)
    data["short_name"] = to_double_byte(data["short_name"])
    return Biller.objects.create(status=status, **data)


def make_user(
    email: str | None = None, *, password: str = "correct horse battery", totp: bool = True, **extra: Any
) -> User:
    """A console user; with ``totp`` (the default) enrolled in two-step verification, as every iDC staff
    member and tenant admin must be (log in with ``totp_code(user)``)."""
    email = email or f"user{next(_seq)}@example.jp"
    user = User.objects.create_user(email, password, name=extra.pop("name", "Test User"), **extra)
    if totp:
        enrol_totp(user)
    return user


def enrol_totp(user: User) -> ConsoleTwoFactor:
    from billing import totp

    return ConsoleTwoFactor.objects.create(user=user, secret=totp.new_secret(), enabled_at=timezone.now())


def totp_code(user: User | str) -> str:
    """A code the login will accept now: the next time step after the last one used (codes are single use)."""
    from billing import totp

    factor = ConsoleTwoFactor.objects.get(user__login=user if isinstance(user, str) else user.login)
    current = int(timezone.now().timestamp() // totp.INTERVAL)
    step = current if factor.last_step is None or factor.last_step < current else factor.last_step + 1
    if step > current + 1:
        raise AssertionError("two logins of one user within one time step: wait for the next one")
    return str(totp.totp(factor.secret).at(step * totp.INTERVAL))


def make_member(biller: Biller, *, role: str = Membership.Role.ADMIN, email: str | None = None) -> User:
    user = make_user(email)
    Membership.objects.create(biller=biller, user=user, role=role)
    return user


def make_customer(biller: Biller, **overrides: Any) -> Customer:
    n = next(_seq)
    data = {"code": f"C{n:06d}", "name": f"顧客 {n}", "email": f"c{n}@example.jp"}
    data.update(overrides)
    return Customer.objects.create(biller=biller, **data)


def make_contract(
    biller: Biller,
    bank_code: str = "0001",
    *,
    channels: tuple[str, ...] = ("02", "05"),
    valid_from: datetime.date = datetime.date(2026, 4, 1),
    valid_to: datetime.date | None = None,
) -> ContractedBank:
    from payeasy.models import CHANNEL_FIELDS

    flags = {field: code in channels for code, field in CHANNEL_FIELDS.items()}
    return ContractedBank.objects.create(
        biller=biller, bank_code=bank_code, valid_from=valid_from, valid_to=valid_to, **flags
    )


def make_portal_account(
    biller: Biller,
    customer: Customer | None = None,
    *,
    role: str = "",
    email: str | None = None,
    password: str = "correct horse battery",
    name: str = "Portal User",
) -> Any:
    """A customer-portal account (billing.portal): a customer-realm user linked to ``customer``."""
    from billing.models import CustomerAccount, customer_login

    customer = customer or make_customer(biller)
    role = role or (
        CustomerAccount.Role.PAYER if customer.kind == "consumer" else CustomerAccount.Role.VIEWER
    )
    email = email or f"portal{next(_seq)}@example.jp"
    user = User(
        login=customer_login(biller, email),
        email=email,
        name=name,
        realm=User.Realm.CUSTOMER,
        customer_biller=biller,
    )
    user.set_password(password)
    user.save()
    return CustomerAccount.objects.create(biller=biller, user=user, customer=customer, role=role)


def make_invoice(
    *,
    biller: Biller,
    customer: Customer | None = None,
    kind: str = Invoice.Kind.INVOICE,
    number: str | None = None,
    amount: int = 1000,
    lines: list[dict[str, Any]] | None = None,
    published: bool = True,
    issue_date: datetime.date = datetime.date(2026, 11, 1),
    due_date: datetime.date | None = None,
    description: str | None = None,
    actor: Any = None,
    **overrides: Any,
) -> Invoice:
    """An invoice of ``biller`` made by the product's services, so that its totals, audit entry and
    payment numbers (お客様番号, 確認番号) are the ones production gives it; returned as stored.

    ``kind="invoice"`` (the default): ``invoice_create``, published unless ``published=False`` (a
    draft); a new customer of the biller unless ``customer``; one line 基本料金 of ``amount`` yen plus
    10 % tax unless ``lines``; due 2026-12-31 unless ``due_date``.
    ``kind="payment_request"``: ``payment_request_create`` (published on creation), ``amount`` yen tax
    included, due in 14 days unless ``due_date`` (it may not be past), e-mailed to the customer's address
    or a new one unless ``email=`` is among ``overrides``.
    ``overrides`` are further fields of the service's input (``external_id``, ``tax_inclusive``; ``email``,
    ``name``, ``tax_category`` for a payment request).
    """
    from billing import services

    if kind == Invoice.Kind.PAYMENT_REQUEST:
        if not published or number is not None or lines is not None:
            raise ValueError("a payment request is published on creation, numbered by it and has no lines")
        data = {
            "amount": amount,
            "description": description or "カタログ通販ご注文",
            "due_date": due_date or timezone.localdate() + datetime.timedelta(days=14),
            **({"customer": customer} if customer is not None else {}),
            **overrides,
        }
        if customer is None:
            data.setdefault("email", f"order{next(_seq)}@example.jp")
        invoice = services.payment_request_create(actor=actor, biller=biller, data=data)
    elif kind == Invoice.Kind.INVOICE:
        data = {
            "customer": customer or make_customer(biller),
            "number": number or f"INV-{next(_seq):05d}",
            "issue_date": issue_date,
            "due_date": due_date or datetime.date(2026, 12, 31),
            "description": description or "11月分電気料金",
            "lines": lines
            if lines is not None
            else [{"description": "基本料金", "quantity": 1, "unit_price": amount, "tax_category": "10"}],
            **overrides,
        }
        invoice = services.invoice_create(actor=actor, biller=biller, data=data, publish=published)
    else:
        raise ValueError(f"make_invoice makes invoices and payment requests, not {kind!r}")
    invoice.refresh_from_db()
    return invoice


def make_credit_note(
    invoice: Invoice, *, number: str = "CN-1", amount: int = 1000, reason: str = "値引き", **overrides: Any
) -> Invoice:
    """A credit note (返還請求書) of one line of ``amount`` yen plus 10 % tax on ``invoice``, through
    ``billing.services.credit_note_issue`` (which refuses what it refuses)."""
    from billing import services

    return services.credit_note_issue(
        actor=None,
        biller=invoice.biller,
        invoice=invoice,
        number=number,
        reason=reason,
        lines=[{"description": reason, "quantity": 1, "unit_price": amount, "tax_category": "10"}],
        **overrides,
    )


def make_payment(
    invoice: Invoice,
    *,
    outcome: str = "paid",
    amount: int | None = None,
    channel: str = "atm",
    bank_code: str = "0001",
    reason: str = "",
    paid_at: datetime.datetime | None = None,
) -> Any:
    """A payment on ``invoice`` as billing records it, through the service payeasy's applier calls in its
    ledger transaction (billing.services.payments): a ``paid`` one makes the bill paid. Returns the
    ``InvoicePayment``; the receipt task is announced after commit as in production."""
    from billing.services.payments import PaymentFact, invoice_payments_record

    paid_at = paid_at or timezone.now()
    paid: list[Invoice] = []
    if outcome == "paid":
        invoice.status, invoice.paid_at, invoice.updated_at = Invoice.Status.PAID, paid_at, timezone.now()
        paid.append(invoice)
    ref = next(_seq) + 10_000_000  # stands for the network's ledger entry
    fact = PaymentFact(
        biller_id=invoice.biller_id,
        invoice_id=invoice.pk,
        entry_ref=ref,
        amount=invoice.total if amount is None else amount,
        paid_at=paid_at,
        bank_code=bank_code,
        channel=channel,
        outcome=outcome,
        reason=reason,
        payment_key=f"T{ref:025d}",
    )
    (payment,) = invoice_payments_record(payments=[fact], invoices=paid)
    return payment
