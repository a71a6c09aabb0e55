"""``manage.py db_restore_check --from DIR --database NAME``: restore a ``db_backup`` into a new database
and compare what it holds with the backup's manifest (payments and reversals per biller, the last
acknowledged payment frame, bills paid, reconciliation state). Exits 1 when anything the manifest lists
is missing or different. ``--no-restore`` checks a database restored before (or by PITR)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from reconciliation import backups


class Command(BaseCommand):
    help = (
        "Restore a db_backup directory into a new database and check it holds every payment of the "
        "manifest; exit 1 if not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="source", required=True, type=Path, help="a db_backup directory")
        parser.add_argument("--database", required=True, help="the new database's name")
        parser.add_argument(
            "--no-restore", action="store_true", help="only compare an existing database with the manifest"
        )
        parser.add_argument("--jobs", type=int, default=1, help="pg_restore parallel jobs (default 1)")
        parser.add_argument(
            "--maintenance-db",
            default="",
            help="database to connect to for CREATE DATABASE (default: the configured one)",
        )
        parser.add_argument("--alias", default=DEFAULT_DB_ALIAS, help="Django database alias of the server")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        source: Path = options["source"]
        database: str = options["database"]
        try:
            server = backups.configured_server(options["alias"])
            restored: dict[str, Any] = {}
            if not options["no_restore"]:
                restored = backups.restore(
                    source,
                    server,
                    database,
                    maintenance_db=options["maintenance_db"] or server.dbname,
                    app_role=backups.application_role(options["alias"]),
                    jobs=options["jobs"],
                )
            report = backups.check(source, server, database)
        except backups.BackupError as exc:
            raise CommandError(str(exc)) from exc
        report["restore"] = restored
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            self._write(report)
        if not report["ok"]:
            raise CommandError(
                f"{database} lacks what the backup holds: {len(report['problems'])} difference(s)",
                returncode=1,
            )

    def _write(self, report: dict[str, Any]) -> None:
        found = report["found"]
        last = found["last_acknowledged_payment"]
        restored = report["restore"]
        if restored:
            self.stdout.write(
                f"Restored {report['backup']} into {report['database']} in {restored['seconds']:.2f} s"
                + (f"; CONNECT granted to {restored['application_role']}" if restored["granted"] else "")
            )
        self.stdout.write(
            f"{report['database']} (backup snapshot {report['snapshot_at']}):\n"
            f"  payments: {found['payments']:,} notices, {found['payments_sum']:,} yen; "
            f"{found['acknowledged_payment_messages']:,} acknowledged payment frames, the last "
            f"#{last['id']} {last['transaction_key']} at {last['received_at']}"
        )
        for code, biller in found["billers"].items():
            self.stdout.write(
                f"  {code}: {biller['payments']:,} payments ({biller['payments_sum']:,} yen), "
                f"{biller['reversals']:,} reversals ({biller['reversals_sum']:,} yen), "
                f"{biller['applied']:,} applied, {biller['invoices_paid']:,} bills paid, "
                f"{biller['open_findings']:,} open findings, {biller['reconciliation_runs']:,} "
                f"reconciliation runs (last day {biller['last_reconciled_day'] or '-'})"
            )
        if report["ok"]:
            self.stdout.write("OK: every payment and figure of the manifest is there.")
        for problem in report["problems"]:
            self.stderr.write(f"MISSING/DIFFERENT: {problem}")
