"""The demo data set: deterministic codes, logins and numbers (docs/demo.md lists them)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import transaction

from billing import services as billing_services
from billing.models import Biller, Customer, Membership, User, console_login
from payeasy import services
from payeasy.services import ContractInput

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - the published demo login (docs/demo.md)
STAFF_EMAIL = "staff@idc.example"
CONTRACT_START = datetime.date(2026, 4, 1)


@dataclass(frozen=True)
class DemoBiller:
    data: dict
    admin_email: str
    operator_email: str
    contracts: tuple[ContractInput, ...]
    customers: tuple[dict, ...]


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


def _user(email: str, name: str, *, staff: bool = False) -> User:
    user = User.objects.filter(login=console_login(email)).first()
    if user is None:
        with transaction.atomic():
            user = User.objects.create_user(email, DEMO_PASSWORD, name=name, is_idc_staff=staff)
            billing_services.audit_record(
                actor=None, action="user.create", target=user, summary=f"demo {email}"
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
            biller = services.biller_onboard(actor=staff, biller_data=demo.data, contracts=demo.contracts)
            biller = billing_services.biller_set_status(
                actor=staff, biller=biller, status=Biller.Status.ACTIVE
            )
        for email, role, name in (
            (demo.admin_email, Membership.Role.ADMIN, "管理者"),
            (demo.operator_email, Membership.Role.OPERATOR, "担当者"),
        ):
            user = _user(email, f"{demo.data['short_name']} {name}")
            billing_services.membership_create(actor=staff, biller=biller, user=user, role=role)
        for customer in demo.customers:
            if not Customer.objects.filter(biller=biller, code=customer["code"]).exists():
                billing_services.customer_create(actor=staff, biller=biller, data=customer)
        billers.append(biller)
    return billers
