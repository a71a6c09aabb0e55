"""``manage.py import_teller_batch FILE…``: import teller batch files (spec §6), each whole or not at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payeasy.models import TellerFile
from payeasy.services import teller


class Command(BaseCommand):
    help = (
        "Import teller batch files (一括消込データ). Each file is applied whole or rejected with the record, "
        "field and byte offset of its first problem; importing a file again changes nothing. Exit status 1 "
        "if any file was rejected."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path, help="teller batch files 01_BBBBB_SSSSS_MMDD_NNN")

    def handle(self, *args: Any, **options: Any) -> None:
        from billing.tenancy import bind_cross_tenant

        bind_cross_tenant("command")  # a command is not a tenant's request
        rejected = 0
        for path in options["files"]:
            try:
                data = path.read_bytes()
            except OSError as exc:
                self.stderr.write(f"rejected {path}: {exc.strerror}")
                rejected += 1
                continue
            result = teller.teller_file_import(path.name, data, via=TellerFile.Via.COMMAND)
            if result.accepted:
                self.stdout.write(result.report())
            else:
                self.stderr.write(result.report())
                rejected += 1
        if rejected:
            raise CommandError(f"{rejected} of {len(options['files'])} files rejected")
