"""manage.py reconcile_check [--biller CODE] [--date YYYY-MM-DD]: check the invariants; exit 1 on failure."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.models import Biller
from billing.tenancy import bind_cross_tenant
from reconciliation.services.checks import reconcile_check


def parse_day(value: str | None) -> datetime.date | None:
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--date {value!r}: not a date (YYYY-MM-DD)") from exc


def billers_named(code: str | None) -> list[Biller]:
    billers = Biller.objects.order_by("biller_code")
    if code:
        billers = billers.filter(biller_code=code)
        if not billers.exists():
            raise CommandError(f"--biller {code!r}: no such biller code")
    return list(billers)


class Command(BaseCommand):
    help = (
        "Check that every yen is accounted for: sums match, every payment has its frame, no bill is paid "
        "twice without a double-payment finding, every reversal points to a payment. Exits 1 and lists "
        "what fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--biller", help="biller code (収納機関コード); default: every biller")
        parser.add_argument("--date", help="processing date YYYY-MM-DD; default: every date")

    def handle(self, *args: Any, **options: Any) -> None:
        bind_cross_tenant("command")
        day = parse_day(options["date"])
        billers = billers_named(options["biller"])
        failures = reconcile_check(billers=billers, day=day)
        scope = f"{len(billers)} biller(s)" + (f", {day}" if day else "")
        if failures:
            for failure in failures:
                self.stderr.write(str(failure))
            raise CommandError(
                f"reconcile_check: {len(failures)} invariant(s) failed ({scope})", returncode=1
            )
        self.stdout.write(f"reconcile_check: all invariants hold ({scope})")
