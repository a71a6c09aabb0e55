"""``manage.py prod_check``: is this installation fit for production? Django's deployment checks, the
security settings, PostgreSQL, Redis and Celery as the product will use them, each item OK or FAIL with
what to change (payeasy.prodcheck). Exit status 1 when anything fails; ``--json`` for machines.

Run it with the production environment (no DJANGO_DEBUG): ``make prod-check``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payeasy import prodcheck


class Command(BaseCommand):
    help = "Check the production settings, PostgreSQL, Redis and Celery; fail on anything unsafe."
    # the deployment checks are one of the items here, reported like the others instead of stopping
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the items as JSON")
        parser.add_argument(
            "--waive",
            action="append",
            default=[],
            metavar="ID",
            help=f"accept a failing item on purpose (repeatable; also {prodcheck.WAIVE_SETTING}=ID,ID): "
            "it is still printed, as WAIVED",
        )

    def handle(self, *args: Any, json: bool = False, waive: list[str], **options: Any) -> None:
        from billing.tenancy import bind_cross_tenant

        bind_cross_tenant("command")  # a command is not a tenant's request
        waivers = [w for item in waive for w in item.split(",")] + prodcheck.waivers_from_environment()
        items = prodcheck.run(waivers)
        failed = [i for i in items if i.status == prodcheck.FAIL]
        if json:
            self.stdout.write(_json(items, failed))
        else:
            self._table(items)
        if failed:
            raise CommandError(
                f"{len(failed)} item(s) failed: {', '.join(i.id for i in failed)}", returncode=1
            )

    def _table(self, items: list[prodcheck.Item]) -> None:
        width = max(len(i.id) for i in items)
        style = {
            prodcheck.OK: self.style.SUCCESS,
            prodcheck.FAIL: self.style.ERROR,
            prodcheck.WAIVED: self.style.WARNING,
        }
        for item in items:
            self.stdout.write(
                f"{style[item.status](item.status.ljust(6))} {item.id.ljust(width)}  {item.found}"
            )
            if not item.ok:
                self.stdout.write(f"{'':6} {'':{width}}  → {item.fix}")
        counts = {
            s: sum(i.status == s for i in items) for s in (prodcheck.OK, prodcheck.FAIL, prodcheck.WAIVED)
        }
        self.stdout.write(
            f"\n{counts[prodcheck.OK]} OK, {counts[prodcheck.FAIL]} FAIL, {counts[prodcheck.WAIVED]} WAIVED"
        )


def _json(items: list[prodcheck.Item], failed: list[prodcheck.Item]) -> str:
    return json.dumps({"ok": not failed, "items": [i.as_dict() for i in items]}, ensure_ascii=False, indent=2)
