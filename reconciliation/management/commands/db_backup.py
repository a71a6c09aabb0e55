"""``manage.py db_backup --to DIR``: a consistent logical backup of the PostgreSQL database (``pg_dump -Fc``
of one exported snapshot), the cluster's roles, and a manifest of what the snapshot holds (payments per
biller, the last acknowledged payment frame, sha256 of the dump). ``db_restore_check`` restores it into
a new database and proves the figures are all there. See docs/operations.md, "Backup and point-in-time
restore"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from reconciliation import backups


class Command(BaseCommand):
    help = (
        "Dump the database (pg_dump custom format, one snapshot) with its roles and a manifest of the "
        "payments it holds, into a new directory."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, type=Path, help="a new (or empty) directory")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Django database alias")
        parser.add_argument(
            "--no-roles", action="store_true", help="skip pg_dumpall --roles-only (roles.sql)"
        )
        parser.add_argument("--json", action="store_true", help="print the manifest as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        missing = backups.client_programs_missing()
        if missing:
            raise CommandError(f"PostgreSQL client programs not on PATH: {', '.join(missing)}")
        try:
            server = backups.configured_server(options["database"])
            manifest = backups.take_backup(
                options["to"],
                server,
                app_role=backups.application_role(options["database"]),
                roles=not options["no_roles"],
            )
        except backups.BackupError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(manifest, indent=2, ensure_ascii=False))
            return
        held = manifest["figures"]
        last = held["last_acknowledged_payment"]
        dump = manifest["dump"]
        self.stdout.write(
            f"Backup of {manifest['database']} at snapshot {manifest['snapshot_at']} in {options['to']}\n"
            f"  dump: {dump['bytes']:,} bytes in {dump['seconds']:.2f} s, sha256 {dump['sha256']}\n"
            f"  roles: {manifest['roles']['dumped'] or 'not dumped (recreate them with db_roles)'}\n"
            f"  payments: {held['payments']:,} notices, {held['payments_sum']:,} yen; "
            f"{held['acknowledged_payment_messages']:,} acknowledged payment frames, the last "
            f"#{last['id']} {last['transaction_key']} at {last['received_at']}"
        )
        for code, biller in held["billers"].items():
            self.stdout.write(
                f"  {code}: {biller['payments']:,} payments ({biller['payments_sum']:,} yen), "
                f"{biller['reversals']:,} reversals, {biller['invoices_paid']:,} bills paid, "
                f"{biller['open_findings']:,} open findings"
            )
