"""The demo data set: deterministic codes, logins and numbers (docs/demo.md lists them)."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from billing import services as billing_services
from billing.balances_demo import seed_balance_demo
from billing.models import Biller, ConsoleTwoFactor, Customer, Invoice, Membership, User, console_login
from billing.portal.demo import seed_portal_demo
from payeasy.services.contracts import ContractInput, biller_onboard, contracted_bank_add

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - the published demo login (docs/demo.md)
STAFF_EMAIL = "staff@idc.example"
# The published key of the demo's two-step verification (docs/demo.md): iDC staff and administrators must
# use it. Add it to an authenticator app, or `manage.py demo_info --code` prints the current code.
DEMO_TOTP_SECRET = "PAYEASYDEMOCONSOLEKEYFORMAKERUNQ"  # noqa: S105 - published, demo only
CONTRACT_START = datetime.date(2026, 4, 1)


@dataclass(frozen=True)
class DemoBiller:
    data: dict
    admin_email: str
    operator_email: str
    contracts: tuple[ContractInput, ...]
    customers: tuple[dict, ...]


def _line(description: str, quantity: int, unit_price: int, tax_category: str = "10") -> dict:
    return {
        "description": description,
        "quantity": quantity,
        "unit_price": unit_price,
        "tax_category": tax_category,
    }


ISSUED = datetime.date(2026, 11, 20)


DEMO_BILLERS = (
    DemoBiller(
        data={
            "legal_name": "東都電力株式会社",
            "short_name": "東都電力",
            "name_kana": "ﾄｳﾄﾃﾞﾝﾘﾖｸ(ｶ",
            "payee_number": "58191",
            "biller_code": "58191001",
            "registration_number": "T7000012050002",
            "slug": "toto-denryoku",
            "contact_name": "料金センター 佐藤",
            "contact_email": "billing@toto-denryoku.example",
            "contact_phone": "03-1234-5678",
            "late_payment_policy": Biller.LatePaymentPolicy.ACCEPT,
            "tax_rounding": Biller.TaxRounding.FLOOR,
        },
        admin_email="admin@toto-denryoku.example",
        operator_email="operator@toto-denryoku.example",
        contracts=(
            ContractInput("0001", ("01", "02", "03", "04", "05", "06"), CONTRACT_START),
            ContractInput("0005", ("01", "02", "03", "05"), CONTRACT_START),
            ContractInput("0009", ("01", "02", "03", "05"), CONTRACT_START),
            ContractInput("9900", ("02", "03"), CONTRACT_START),
        ),
        customers=(
            {
                "code": "D-000101",
                "name": "山田 太郎",
                "name_kana": "ヤマダ タロウ",
                "email": "taro@example.jp",
                "kind": "consumer",
                "postal_code": "100-0001",
                "address": "東京都千代田区千代田1-1",
            },
            {
                "code": "D-000102",
                "name": "佐藤 花子",
                "name_kana": "サトウ ハナコ",
                "email": "hanako@example.jp",
                "kind": "consumer",
                "postal_code": "150-0002",
                "address": "東京都渋谷区渋谷2-2-2",
            },
            {
                "code": "C-900001",
                "name": "株式会社青葉商事",
                "name_kana": "アオバシヨウジ",
                "email": "keiri@aoba.example.jp",
                "kind": "corporate",
                "postal_code": "530-0001",
                "address": "大阪府大阪市北区梅田3-3-3",
            },
        ),
    ),
    DemoBiller(
        data={
            "legal_name": "株式会社みどり通販",
            "short_name": "みどり通販",
            "name_kana": "ﾐﾄﾞﾘﾂｳﾊﾝ(ｶ",
            "payee_number": "58192",
            "biller_code": "58192001",
            "registration_number": "T6010001000001",
            "slug": "midori-tsuhan",
            "contact_name": "お客様係 鈴木",
            "contact_email": "support@midori-tsuhan.example",
            "contact_phone": "06-9876-5432",
            "late_payment_policy": Biller.LatePaymentPolicy.REFUSE,
            "tax_rounding": Biller.TaxRounding.HALF_UP,
        },
        admin_email="admin@midori-tsuhan.example",
        operator_email="operator@midori-tsuhan.example",
        contracts=(
            ContractInput("0001", ("02", "03", "05"), CONTRACT_START),
            ContractInput("0010", ("02", "03", "04", "05"), CONTRACT_START),
            ContractInput("0036", ("03", "04", "05"), CONTRACT_START),
        ),
        customers=(
            {
                "code": "M-1001",
                "name": "鈴木 一郎",
                "name_kana": "スズキ イチロウ",
                "email": "ichiro@example.jp",
                "kind": "consumer",
            },
            {
                "code": "M-1002",
                "name": "高橋 さくら",
                "name_kana": "タカハシ サクラ",
                "email": "sakura@example.jp",
                "kind": "consumer",
            },
        ),
    ),
)


# Invoices of the demo billers, by biller code. The 東都電力 ones are a utility's monthly bills (one is
# over ¥100,000: the ATM cash limit applies); みどり通販's are mail-order orders with reduced-rate food.
DEMO_INVOICES: dict[str, tuple[dict, ...]] = {
    "58191001": (
        {
            "customer": "D-000101",
            "number": "2026-11-000101",
            "description": "11月分電気料金",
            "due_date": datetime.date(2026, 12, 25),
            "publish": True,
            "lines": [
                _line("基本料金", 1, 1200),
                _line("電力量料金 300kWh", 300, 31),
                _line("再エネ賦課金", 1, 1047),
            ],
        },
        {
            "customer": "D-000102",
            "number": "2026-11-000102",
            "description": "11月分電気料金",
            "due_date": datetime.date(2026, 12, 25),
            "publish": True,
            "lines": [_line("基本料金", 1, 1200), _line("電力量料金 120kWh", 120, 31)],
        },
        {
            "customer": "C-900001",
            "number": "2026-11-900001",
            "description": "11月分高圧電力料金",
            "due_date": datetime.date(2026, 12, 10),
            "publish": True,
            "lines": [
                _line("高圧電力 基本料金", 1, 98000),
                _line("高圧電力 電力量料金", 4200, 29),
                _line("事務所用飲料（軽減税率）", 20, 108, "8"),
            ],
        },
        {
            "customer": "D-000101",
            "number": "2026-12-000101",
            "description": "12月分電気料金",
            "due_date": datetime.date(2027, 1, 25),
            "publish": False,
            "lines": [_line("基本料金", 1, 1200), _line("電力量料金 340kWh", 340, 31)],
        },
    ),
    "58192001": (
        {
            "customer": "M-1001",
            "number": "MD-20261120-0001",
            "description": "ご注文代金",
            "due_date": datetime.date(2026, 12, 4),
            "publish": True,
            "lines": [
                _line("有機野菜セット", 2, 2980, "8"),
                _line("オリーブオイル", 1, 1600, "8"),
                _line("キッチンタオル", 3, 450),
                _line("送料", 1, 800),
            ],
        },
        {
            "customer": "M-1002",
            "number": "MD-20261120-0002",
            "description": "ご注文代金",
            "due_date": datetime.date(2026, 12, 4),
            "publish": True,
            "lines": [_line("電気ケトル", 1, 5980), _line("送料", 1, 800)],
        },
    ),
}

# A bill the biller published and then cancelled (the customer kept its numbers): `mpn_simulate day` pays
# it, and reconciliation finds the payment. Made after every other demo invoice and payment request, so
# theirs keep their ids.
DEMO_CANCELLED: dict[str, dict] = {
    "58191001": {
        "customer": "D-000102",
        "number": "2026-10-000102",
        "description": "10月分電気料金（請求取消）",
        "due_date": datetime.date(2026, 11, 25),
        "publish": True,
        "lines": [_line("基本料金", 1, 1200), _line("電力量料金 100kWh", 100, 31)],
    },
}


def _user(email: str, name: str, *, staff: bool = False, totp: bool = False) -> User:
    user = User.objects.filter(login=console_login(email)).first()
    if user is None:
        with transaction.atomic():
            user = User.objects.create_user(email, DEMO_PASSWORD, name=name, is_idc_staff=staff)
            billing_services.audit_record(
                actor=None, action="user.create", target=user, summary=f"demo {email}"
            )
    if (staff or totp) and not ConsoleTwoFactor.objects.filter(user=user).exists():
        ConsoleTwoFactor.objects.create(user=user, secret=DEMO_TOTP_SECRET, enabled_at=timezone.now())
        billing_services.audit_record(
            actor=None, action="console.totp_on", target=user, summary=f"demo {email}: the published demo key"
        )
    return user


@transaction.atomic
def seed_demo() -> list[Biller]:
    """Create the demo data; running it again changes nothing."""
    staff = _user(STAFF_EMAIL, "iDC 運用 太田", staff=True)
    billers = []
    for demo in DEMO_BILLERS:
        biller = Biller.objects.filter(biller_code=demo.data["biller_code"]).first()
        if biller is None:
            biller = biller_onboard(actor=staff, biller_data=demo.data, contracts=demo.contracts)
            Biller.objects.filter(pk=biller.pk).update(number_key=demo_number_key(biller.biller_code))
            biller = billing_services.biller_set_status(
                actor=staff, biller=biller, status=Biller.Status.ACTIVE
            )
        for email, role, name in (
            (demo.admin_email, Membership.Role.ADMIN, "管理者"),
            (demo.operator_email, Membership.Role.OPERATOR, "担当者"),
        ):
            user = _user(email, f"{demo.data['short_name']} {name}", totp=role == Membership.Role.ADMIN)
            billing_services.membership_create(actor=staff, biller=biller, user=user, role=role)
        for customer in demo.customers:
            if not Customer.objects.filter(biller=biller, code=customer["code"]).exists():
                billing_services.customer_create(actor=staff, biller=biller, data=customer)
        for spec in DEMO_INVOICES.get(biller.biller_code, ()):
            _demo_invoice(staff, biller, spec)
        billers.append(biller)
    # after every biller's invoices: the demo invoices keep their ids, so their お客様番号 stay as in
    # docs/demo.md on a fresh database
    for biller in billers:
        seed_portal_demo(biller)  # the customers' portal logins (consumer; corporate viewer/approver/payer)
        seed_balance_demo(biller)  # a chosen-amount balance and a pay-later order
    for biller in billers:
        cancelled = DEMO_CANCELLED.get(biller.biller_code)
        invoice = _demo_invoice(staff, biller, cancelled) if cancelled else None
        if invoice is not None:
            billing_services.invoice_cancel(
                actor=staff, biller=biller, invoice=invoice, reason="デモ: 請求内容の誤りにより取消"
            )
    seed_sandbox_bank(staff, billers)
    return billers


def _demo_invoice(staff: User, biller: Biller, spec: dict) -> Invoice | None:
    """Create (and publish, as ``spec`` says) one demo invoice; None when it exists already."""
    if Invoice.objects.filter(biller=biller, number=spec["number"]).exists():
        return None
    invoice = billing_services.invoice_create(
        actor=staff,
        biller=biller,
        publish=spec["publish"],
        data={
            "customer": Customer.objects.get(biller=biller, code=spec["customer"]),
            "number": spec["number"],
            "issue_date": ISSUED,
            "due_date": spec["due_date"],
            "description": spec["description"],
            "lines": spec["lines"],
            "external_id": f"demo-{spec['number']}",
        },
    )
    if spec["publish"]:
        # Demo only: a fixed confirmation number so docs/demo.md can list it (real ones are random).
        Invoice.objects.filter(pk=invoice.pk).update(confirmation_number=_demo_confirmation(spec["number"]))
    return invoice


def _demo_confirmation(number: str) -> str:
    return f"{int(hashlib.sha256(number.encode()).hexdigest(), 16) % 10**6:06d}"


def demo_number_key(biller_code: str) -> str:
    """Demo billers get a fixed number key, so their customer numbers are the same on every machine."""
    return hashlib.sha256(f"demo-number-key-{biller_code}".encode()).hexdigest()[:32]


SANDBOX_ENTRY_URL = "/sandbox-bank/entry/"
SANDBOX_CHANNELS = ("02", "03", "05")  # ATM, internet banking, 情報リンク


def sandbox_entry_url(bank_code: str) -> str:
    """The sandbox bank's 情報リンク entry when it plays bank ``bank_code``: its own code at
    /sandbox-bank/entry/, any other at /sandbox-bank/entry/<code>/ (payeasy.sandbox.urls)."""
    from django.conf import settings

    if bank_code == settings.PAYEASY_SANDBOX_BANK_CODE:
        return SANDBOX_ENTRY_URL
    return f"{SANDBOX_ENTRY_URL}{bank_code}/"


def seed_sandbox_bank(staff: User, billers: list[Biller]) -> None:
    """When the sandbox bank is on: its 情報リンク endpoint with an active key, and a contract of every
    demo biller with it (ATM, internet banking, 情報リンク). The other banks ``billers`` have 情報リンク
    contracts with (the demo's みずほ, 三菱UFJ, 三井住友 …) are wired to the sandbox bank too, each at
    its own entry with its own key, so the bank chooser lists exactly the contracted banks and each
    hands off to the sandbox, which plays that bank. A bank that has an endpoint already keeps it.
    Running it again changes nothing."""
    from django.conf import settings

    from payeasy.models import ContractedBank, HandoffEndpoint, HandoffKey
    from payeasy.services import handoff as handoff_services

    if not settings.PAYEASY_SANDBOX_BANK:
        return
    code = settings.PAYEASY_SANDBOX_BANK_CODE
    for biller in billers:
        if not ContractedBank.objects.filter(biller=biller, bank_code=code).exists():
            contracted_bank_add(
                actor=staff, biller=biller, contract=ContractInput(code, SANDBOX_CHANNELS, CONTRACT_START)
            )
    played = ContractedBank.objects.filter(biller__in=billers, allows_info_link=True)
    for bank_code in sorted({code, *played.values_list("bank_code", flat=True)}):
        endpoint = HandoffEndpoint.objects.filter(bank_code=bank_code).first()
        if endpoint is None:
            endpoint = handoff_services.handoff_endpoint_create(
                actor=staff, bank_code=bank_code, entry_url=sandbox_entry_url(bank_code), enabled=True
            )
        if endpoint.entry_url != sandbox_entry_url(bank_code):
            continue  # the bank's own (real) entry: not the sandbox's to key
        if not endpoint.keys.filter(status=HandoffKey.Status.ACTIVE).exists():
            handoff_services.handoff_key_create(actor=staff, endpoint=endpoint)  # the bank reads it from here
