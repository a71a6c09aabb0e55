import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing import services
from billing.errors import ProductError
from billing.models import Biller, ImportJob


class Command(BaseCommand):
    help = (
        "Import a CSV of invoices for a biller (docs/csv-import.md): checks the whole file first, "
        "then imports it all or nothing. With --preview only checks."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--biller", required=True, help="収納機関コード (8 digits) or portal slug")
        parser.add_argument(
            "--encoding",
            default="",
            choices=list(services.ENCODINGS),
            help="default: detect (UTF-8 with or without BOM, else cp932)",
        )
        parser.add_argument("--preview", action="store_true", help="check only; write nothing")
        parser.add_argument("--draft", action="store_true", help="import as drafts instead of publishing")
        parser.add_argument(
            "--skip-preview",
            action="store_true",
            help="import in one pass (the import checks every row anyway and writes nothing on error)",
        )

    def handle(
        self,
        *args: object,
        file: Path,
        biller: str,
        encoding: str,
        preview: bool,
        draft: bool,
        skip_preview: bool,
        **options: object,
    ) -> None:
        from billing.tenancy import tenant_session

        found = (
            Biller.objects.filter(biller_code=biller).first() or Biller.objects.filter(slug=biller).first()
        )
        if found is None:
            raise CommandError(f"--biller: no biller with code or slug {biller!r}")
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        started = time.perf_counter()
        with tenant_session(found):  # the import is the biller's: its rows only (billing.tenancy)
            job = self.import_file(found, file, encoding, preview, draft, skip_preview)
        self.report(job)
        self.stdout.write(f"{time.perf_counter() - started:.1f} s")
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(job.message or "the import failed")

    def import_file(
        self, found: Biller, file: Path, encoding: str, preview: bool, draft: bool, skip_preview: bool
    ) -> ImportJob:
        try:
            mode = ImportJob.Mode.IMPORT if skip_preview and not preview else ImportJob.Mode.PREVIEW
            with file.open("rb") as upload:
                job = services.import_job_create(
                    actor=None,
                    biller=found,
                    upload=upload,
                    file_name=file.name,
                    encoding=encoding,
                    publish=not draft,
                    run_now=True,
                    mode=mode,
                )
            if mode == ImportJob.Mode.PREVIEW and not preview and job.status == ImportJob.Status.SUCCEEDED:
                self.report(job)
                job = services.import_job_confirm(actor=None, biller=found, preview_id=job.pk, run_now=True)
        except ProductError as exc:
            raise CommandError(exc.message) from exc
        return job

    def report(self, job: ImportJob) -> None:
        self.stdout.write(
            f"[{job.mode}] {job.file_name} ({job.encoding or 'detected'}): {job.status} — {job.message}"
        )
        for error in job.errors[:50]:
            self.stdout.write(f"  row {error['row']}, {error['column'] or '-'}: {error['message']}")
        if job.error_count > 50:
            self.stdout.write(f"  … and {job.error_count - 50:,} more")
