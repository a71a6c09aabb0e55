"""Japanese business days (営業日) for funds: not a Saturday or Sunday, not a national holiday
(``jpholiday``: the Cabinet Office's list, substitute holidays and 国民の休日 included), and not 12/31–1/3,
when the banks are closed."""

from __future__ import annotations

import datetime

import jpholiday

BANK_NEW_YEAR = {(12, 31), (1, 1), (1, 2), (1, 3)}


def is_business_day(day: datetime.date) -> bool:
    """Whether the banks settle on ``day``."""
    if day.weekday() >= 5 or (day.month, day.day) in BANK_NEW_YEAR:
        return False
    return not jpholiday.is_holiday(day)


def business_day_add(day: datetime.date, days: int) -> datetime.date:
    """The ``days``-th business day after ``day`` (``day`` itself need not be one; 0: ``day`` if it is a
    business day, else the next one)."""
    current = day
    if days == 0:
        while not is_business_day(current):
            current += datetime.timedelta(days=1)
        return current
    left = days
    while left > 0:
        current += datetime.timedelta(days=1)
        if is_business_day(current):
            left -= 1
    return current


def business_days_between(start: datetime.date, end: datetime.date) -> int:
    """Business days after ``start`` up to and including ``end`` (0 when ``end`` <= ``start``)."""
    count = 0
    current = start
    while current < end:
        current += datetime.timedelta(days=1)
        if is_business_day(current):
            count += 1
    return count
