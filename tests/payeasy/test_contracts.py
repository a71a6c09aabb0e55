import datetime

import pytest

from billing.errors import ValidationFailed
from billing.models import AuditEntry, Biller, User
from payeasy import selectors
from payeasy.models import ContractedBank
from payeasy.services.contracts import (
    ContractInput,
    biller_onboard,
    contracted_bank_add,
    contracted_bank_update,
)
from tests.factories import biller_data, make_biller

pytestmark = pytest.mark.django_db
D = datetime.date


def test_onboard_creates_biller_and_banks_atomically(staff_user: User) -> None:
    biller = biller_onboard(
        actor=staff_user,
        biller_data=biller_data(),
        contracts=[
            ContractInput("0001", ["02", "05"], D(2026, 4, 1)),
            ContractInput("0009", ["01"], D(2026, 4, 1)),
        ],
    )
    assert [(c.bank_code, c.channels) for c in selectors.contracted_bank_list(biller=biller)] == [
        ("0001", ["02", "05"]),
        ("0009", ["01"]),
    ]
    assert AuditEntry.objects.filter(biller=biller, action="contract.add").count() == 2


def test_onboard_with_a_bad_bank_creates_nothing_and_names_the_row(staff_user: User) -> None:
    with pytest.raises(ValidationFailed) as exc:
        biller_onboard(
            actor=staff_user,
            biller_data=biller_data(),
            contracts=[
                ContractInput("0001", ["02"], D(2026, 4, 1)),
                ContractInput("0002", ["02"], D(2026, 4, 1)),
            ],
        )
    assert "not in the 全銀 bank master" in exc.value.errors["contracts.1.bank_code"][0]
    assert (
        not Biller.objects.exists()
        and not ContractedBank.objects.exists()
        and not AuditEntry.objects.exists()
    )


@pytest.mark.parametrize(
    ("start", "end", "overlaps"),
    [
        (D(2026, 9, 30), None, True),  # starts on the last day of the first
        (D(2026, 10, 1), None, False),  # the day after
        (D(2025, 1, 1), D(2026, 4, 1), True),  # ends on the first day of the first
        (D(2025, 1, 1), D(2026, 3, 31), False),
    ],
)
def test_overlapping_periods_for_the_same_bank_are_refused(
    staff_user: User, start: D, end: D | None, overlaps: bool
) -> None:
    biller = make_biller()
    contracted_bank_add(
        actor=staff_user, biller=biller, contract=ContractInput("0001", ["02"], D(2026, 4, 1), D(2026, 9, 30))
    )
    contract = ContractInput("0001", ["03"], start, end)
    if overlaps:
        with pytest.raises(ValidationFailed, match="overlaps"):
            contracted_bank_add(actor=staff_user, biller=biller, contract=contract)
        assert ContractedBank.objects.filter(biller=biller).count() == 1
    else:
        contracted_bank_add(actor=staff_user, biller=biller, contract=contract)
        assert ContractedBank.objects.filter(biller=biller).count() == 2


def test_other_banks_and_other_billers_do_not_overlap(staff_user: User) -> None:
    a, b = make_biller(), make_biller()
    contracted_bank_add(actor=staff_user, biller=a, contract=ContractInput("0001", ["02"], D(2026, 4, 1)))
    contracted_bank_add(actor=staff_user, biller=a, contract=ContractInput("0005", ["02"], D(2026, 4, 1)))
    contracted_bank_add(actor=staff_user, biller=b, contract=ContractInput("0001", ["02"], D(2026, 4, 1)))


def test_end_before_start_and_no_channel_are_refused(staff_user: User) -> None:
    biller = make_biller()
    with pytest.raises(ValidationFailed, match="must not be before"):
        contracted_bank_add(
            actor=staff_user,
            biller=biller,
            contract=ContractInput("0001", ["02"], D(2026, 4, 1), D(2026, 3, 1)),
        )
    with pytest.raises(ValidationFailed, match="at least one channel"):
        contracted_bank_add(
            actor=staff_user, biller=biller, contract=ContractInput("0001", [], D(2026, 4, 1))
        )


def test_contract_check_answers_mpn_codes(staff_user: User) -> None:
    biller = make_biller()
    contracted_bank_add(
        actor=staff_user,
        biller=biller,
        contract=ContractInput("0001", ["02", "05"], D(2026, 4, 1), D(2027, 3, 31)),
    )
    check = selectors.contracted_bank_check
    assert check(biller=biller, bank_code="0001", channel="02", day=D(2026, 11, 26)) is None
    assert check(biller=biller, bank_code="0001", channel="01", day=D(2026, 11, 26)) == "A010"
    assert check(biller=biller, bank_code="0005", channel="02", day=D(2026, 11, 26)) == "A002"
    assert check(biller=biller, bank_code="0001", channel="02", day=D(2027, 4, 1)) == "A002"
    assert check(biller=biller, bank_code="0001", channel="02", day=D(2026, 3, 31)) == "A002"


def test_update_keeps_history_in_the_audit(staff_user: User) -> None:
    biller = make_biller()
    row = contracted_bank_add(
        actor=staff_user, biller=biller, contract=ContractInput("0001", ["02"], D(2026, 4, 1))
    )
    contracted_bank_update(
        actor=staff_user,
        biller=biller,
        contract_id=row.pk,
        contract=ContractInput("0001", ["02"], D(2026, 4, 1), D(2026, 12, 31)),
    )
    entry = AuditEntry.objects.get(action="contract.update")
    assert entry.before == {"valid_to": None} and entry.after == {"valid_to": "2026-12-31"}
