"""The day a kept page is of (billing.page_cache.today): the site's date, read once a day and exact at
midnight in the site's time zone."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone

from billing import page_cache


def test_today_is_the_sites_date_and_turns_exactly_at_midnight(monkeypatch: Any) -> None:
    assert page_cache.today() == timezone.localdate().isoformat()
    zone = timezone.get_default_timezone()  # Asia/Tokyo
    midnight = datetime.datetime(2026, 12, 31, 0, 0, tzinfo=zone).timestamp()
    now = [midnight - 0.001]
    monkeypatch.setattr(page_cache.time, "time", lambda: now[0])
    monkeypatch.setattr(page_cache, "_day", (0.0, 0.0, ""))
    assert page_cache.today() == "2026-12-30"
    now[0] = midnight  # the first instant of the 31st in Tokyo (15:00 UTC on the 30th)
    assert page_cache.today() == "2026-12-31"
    now[0] = midnight - 3600  # a clock set back: the day is read again, not kept
    assert page_cache.today() == "2026-12-30"
