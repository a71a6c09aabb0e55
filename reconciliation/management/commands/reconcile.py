"""manage.py reconcile [--biller CODE] [--date YYYY-MM-DD]: run the reconciliation now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from billing.tenancy import bind_cross_tenant
from reconciliation.management.commands.reconcile_check import billers_named, parse_day
from reconciliation.models import Run
from reconciliation.services.reconcile import reconcile
from reconciliation.tasks import day_to_reconcile


class Command(BaseCommand):
    help = "Reconcile a processing date (default: the line's last closed day) for one or every biller."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--biller", help="biller code (収納機関コード); default: every active biller")
        parser.add_argument("--date", help="processing date YYYY-MM-DD; default: the line's processing date")

    def handle(self, *args: Any, **options: Any) -> None:
        bind_cross_tenant("command")
        day = parse_day(options["date"]) or day_to_reconcile()
        for biller in billers_named(options["biller"]):
            run = reconcile(biller=biller, processing_date=day, trigger=Run.Trigger.COMMAND)
            self.stdout.write(
                f"{biller.biller_code} {day}: {run.found} new finding(s), {run.cleared} cleared, "
                f"{run.open_total} open"
            )
