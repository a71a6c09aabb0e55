"""Invoice arithmetic and payment numbers (pure, no database)."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.invoicing import LineError, clean_line, compute_totals, round_div
from billing.numbers import (
    CUSTOMER_NUMBER_LENGTH,
    NumberIssuer,
    check_digits_valid,
    confirmation_numbers,
    new_number_key,
)


def line(amount: int, category: str, quantity: int = 1) -> dict:
    return clean_line(
        {"description": "x", "quantity": quantity, "unit_price": amount, "tax_category": category}
    )


def test_tax_is_rounded_once_per_rate_not_per_line() -> None:
    # Three 8 % lines of 105 yen: per line 8.4 → 8 each = 24; per rate 315 × 8 % = 25.2 → 25.
    totals = compute_totals([line(105, "8")] * 3, rounding="floor")
    assert (totals.subtotal_8, totals.tax_8) == (315, 25)
    assert totals.total == 340


@pytest.mark.parametrize(("rule", "tax"), [("floor", 25), ("ceiling", 26), ("half_up", 25)])
def test_rounding_rules(rule: str, tax: int) -> None:
    assert compute_totals([line(315, "8")], rounding=rule).tax_8 == tax


def test_half_up_rounds_half_away_from_zero() -> None:
    assert round_div(5, 10, "half_up") == 1 and round_div(4, 10, "half_up") == 0
    assert round_div(-5, 10, "half_up") == -1


def test_mixed_rates_exempt_and_discount() -> None:
    lines = [line(1000, "10", 3), line(-500, "10"), line(540, "8", 2), line(200, "exempt")]
    totals = compute_totals(lines, rounding="floor")
    assert totals.as_fields() == {
        "subtotal_10": 2500,
        "tax_10": 250,
        "subtotal_8": 1080,
        "tax_8": 86,
        "subtotal_exempt": 200,
        "total": 4116,
    }


def test_tax_inclusive_prices() -> None:
    totals = compute_totals([line(1100, "10"), line(1080, "8")], rounding="floor", tax_inclusive=True)
    assert (totals.subtotal_10, totals.tax_10, totals.subtotal_8, totals.tax_8) == (1000, 100, 1000, 80)
    assert totals.total == 2180


def test_a_negative_rate_sum_is_refused() -> None:
    with pytest.raises(LineError, match="cannot be negative"):
        compute_totals([line(100, "10"), line(-200, "10")], rounding="floor")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"description": "", "quantity": 1, "unit_price": 1, "tax_category": "10"}, "description"),
        ({"description": "x", "quantity": 0, "unit_price": 1, "tax_category": "10"}, "quantity"),
        ({"description": "x", "quantity": "1.5", "unit_price": 1, "tax_category": "10"}, "quantity"),
        ({"description": "x", "quantity": 1, "unit_price": "12a", "tax_category": "10"}, "unit_price"),
        ({"description": "x", "quantity": 1, "unit_price": 1, "tax_category": "5"}, "tax_category"),
    ],
)
def test_bad_lines_name_the_field(raw: dict, field: str) -> None:
    with pytest.raises(LineError) as exc:
        clean_line(raw)
    assert exc.value.field == field


@given(
    st.lists(st.tuples(st.integers(0, 10**7), st.sampled_from(["10", "8", "exempt"])), max_size=20),
    st.sampled_from(["floor", "ceiling", "half_up"]),
    st.booleans(),
)
def test_totals_add_up(items: list, rule: str, inclusive: bool) -> None:
    lines = [line(amount, cat) for amount, cat in items]
    t = compute_totals(lines, rounding=rule, tax_inclusive=inclusive)
    assert t.total == t.subtotal_10 + t.tax_10 + t.subtotal_8 + t.tax_8 + t.subtotal_exempt
    gross = sum(x["amount"] for x in lines)
    if inclusive:
        assert t.total == gross
    else:
        assert t.total >= gross
    assert 0 <= t.tax_10 <= t.subtotal_10 // 10 + 1 and 0 <= t.tax_8 <= t.subtotal_8 // 12 + 1


def test_customer_numbers_are_unique_non_sequential_and_checked() -> None:
    issuer = NumberIssuer(new_number_key())
    numbers = [issuer.customer_number(i) for i in range(20000)]
    assert len(set(numbers)) == 20000
    assert all(len(n) == CUSTOMER_NUMBER_LENGTH and check_digits_valid(n) for n in numbers)
    # neighbours are far apart: no two consecutive counters give numbers within 1,000,000 of each other
    assert min(abs(int(a) - int(b)) for a, b in itertools.pairwise(numbers)) > 10**6
    assert [issuer.counter_of(n) for n in numbers[:100]] == list(range(100))


def test_another_biller_key_gives_other_numbers() -> None:
    a, b = NumberIssuer(new_number_key()), NumberIssuer(new_number_key())
    assert [a.customer_number(i) for i in range(100)] != [b.customer_number(i) for i in range(100)]


@given(st.integers(0, 10**14 - 1), st.integers(0, 15), st.integers(1, 9))
def test_a_mistyped_digit_is_detected(counter: int, position: int, delta: int) -> None:
    number = NumberIssuer("00" * 16).customer_number(counter)
    typo = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    assert not check_digits_valid(typo)


def test_confirmation_numbers_are_random_six_digits() -> None:
    values = confirmation_numbers(50000)
    assert all(len(v) == 6 and v.isdigit() for v in values)
    assert len(set(values)) > 48000  # ~1.2 % birthday collisions expected at 50k of 10^6
    first_digits = [v[0] for v in values]
    assert all(4000 < first_digits.count(d) < 6000 for d in "0123456789")
