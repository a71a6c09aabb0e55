"""Business days for funds (reconciliation.calendar): weekends, national holidays from jpholiday (substitute
holidays and 国民の休日 included), and the banks' New Year 12/31–1/3 — on the real calendar of 2026–2027."""

from __future__ import annotations

import datetime

import pytest

from reconciliation.calendar import business_day_add, business_days_between, is_business_day
from reconciliation.services.deposits import lag_for, value_date_for

D = datetime.date


@pytest.mark.parametrize(
    ("day", "open_"),
    [
        (D(2026, 12, 30), True),  # Wednesday, the last business day of 2026
        (D(2026, 12, 31), False),  # Thursday, the banks' New Year
        (D(2027, 1, 1), False),  # 元日 (Friday)
        (D(2027, 1, 2), False),  # Saturday
        (D(2027, 1, 3), False),  # Sunday
        (D(2027, 1, 4), True),  # Monday, the first business day of 2027
        (D(2027, 1, 11), False),  # 成人の日
        (D(2026, 5, 6), False),  # 憲法記念日 振替休日 (5/3 was a Sunday)
        (D(2026, 5, 7), True),
        (D(2026, 9, 22), False),  # 国民の休日 between 敬老の日 and 秋分の日
        (D(2027, 3, 22), False),  # 春分の日 振替休日 (3/21 is a Sunday)
        (D(2026, 10, 10), False),  # Saturday
        (D(2026, 10, 11), False),  # Sunday
        (D(2026, 10, 12), False),  # スポーツの日
        (D(2026, 10, 13), True),
    ],
)
def test_is_business_day(day: datetime.date, open_: bool) -> None:
    assert is_business_day(day) is open_


@pytest.mark.parametrize(
    ("processing", "days", "expected"),
    [
        (D(2026, 12, 28), 2, D(2026, 12, 30)),  # Mon → Tue (1), Wed (2)
        (D(2026, 12, 29), 2, D(2027, 1, 4)),  # → 12/30 (1), closed until 1/4 (2)
        (D(2026, 12, 30), 2, D(2027, 1, 5)),  # → 1/4 (1), 1/5 (2)
        (D(2026, 12, 31), 2, D(2027, 1, 5)),  # a closed day counts from the next business day
        (D(2027, 1, 2), 0, D(2027, 1, 4)),  # 0 days on a closed day: the next business day
        (D(2026, 12, 30), 0, D(2026, 12, 30)),  # 0 days on a business day: that day
        (D(2026, 4, 30), 2, D(2026, 5, 7)),  # Golden Week: 5/1 (1), then 5/2–5/6 closed, 5/7 (2)
        (D(2026, 4, 28), 1, D(2026, 4, 30)),  # 昭和の日 4/29 is skipped
        (D(2026, 9, 18), 1, D(2026, 9, 24)),  # Friday → the silver week 9/19–9/23 → Thursday
        (D(2027, 3, 19), 1, D(2027, 3, 23)),  # Friday → weekend and the substitute holiday → Tuesday
        (D(2026, 10, 9), 3, D(2026, 10, 15)),  # Friday → 10/13 (1), 10/14 (2), 10/15 (3)
    ],
)
def test_value_date_for(processing: datetime.date, days: int, expected: datetime.date) -> None:
    assert value_date_for(processing_date=processing, business_days=days) == expected
    assert business_day_add(processing, days) == expected
    if days:
        assert business_days_between(processing, expected) == days
        assert is_business_day(expected)


def test_business_days_of_the_new_year_week() -> None:
    # 12/28 (Mon) up to 1/8 (Fri): 12/29, 12/30, 1/4, 1/5, 1/6, 1/7, 1/8
    assert business_days_between(D(2026, 12, 28), D(2027, 1, 8)) == 7
    assert business_days_between(D(2027, 1, 8), D(2026, 12, 28)) == 0


def test_lag_for_falls_back_to_the_default_then_the_built_in() -> None:
    assert lag_for({}, "0005") == 2
    assert lag_for({"": 3}, "0005") == 3
    assert lag_for({"": 3, "0005": 1}, "0005") == 1
    assert lag_for({"0005": 0}, "0005") == 0
    assert lag_for({"0005": 0}, "0009") == 2
