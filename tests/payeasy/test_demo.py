import pytest

from billing.models import AuditEntry, Biller, Customer, Membership, User
from payeasy.demo import seed_demo
from payeasy.models import ContractedBank

pytestmark = pytest.mark.django_db


def test_seed_demo_is_deterministic_and_idempotent() -> None:
    seed_demo()
    counts = [m.objects.count() for m in (Biller, User, Membership, Customer, ContractedBank, AuditEntry)]
    seed_demo()
    assert [
        m.objects.count() for m in (Biller, User, Membership, Customer, ContractedBank, AuditEntry)
    ] == counts
    toto = Biller.objects.get(biller_code="58191001")
    assert toto.slug == "toto-denryoku" and toto.status == "active"
    assert Biller.objects.get(biller_code="58192001").late_payment_policy == "refuse"
    assert User.objects.get(login="staff@idc.example").check_password("demo-pass-2026")
    assert counts[0] == 2 and counts[3] >= 4


def test_demo_invoices_are_published_with_fixed_confirmation_numbers() -> None:
    from billing.models import Invoice
    from billing.numbers import NumberIssuer
    from payeasy.demo import _demo_confirmation, demo_number_key

    seed_demo()
    toto = Biller.objects.get(biller_code="58191001")
    assert toto.number_key == demo_number_key("58191001")
    published = Invoice.objects.filter(biller=toto, status="published", kind="invoice")
    assert published.count() == 3
    assert (
        Invoice.objects.filter(biller__biller_code="58192001", status="published", kind="invoice").count()
        == 2
    )
    # and each biller one pay-later order (billing.balances_demo)
    assert Invoice.objects.filter(status="published", kind="payment_request").count() == 2
    big = Invoice.objects.get(biller=toto, number="2026-11-900001")
    assert big.total == 244112 and big.tax_8 == 172  # 2,160 × 8 % at the reduced rate, rounded once
    assert big.confirmation_number == _demo_confirmation("2026-11-900001") == "795058"
    assert big.customer_number == NumberIssuer(toto.number_key).customer_number(big.pk)
