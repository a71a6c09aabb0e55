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
