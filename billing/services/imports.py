"""Invoice CSV imports as jobs: upload → preview (nothing written) → import (all or nothing) → result."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing import events, imports
from billing.errors import InvalidTransition, NotFound, ValidationFailed
from billing.models import ApiKey, Biller, ImportJob, Invoice, User
from billing.services.audit import audit_record

ENCODINGS = {"": "detect", "utf-8": "UTF-8", "utf-8-sig": "UTF-8 (BOM)", "cp932": "Shift_JIS (cp932)"}
NOTIFY_CHUNK = 1000


def _store_upload(*, biller: Biller, upload: IO[bytes]) -> tuple[Path, int, str]:
    folder = Path(settings.IMPORT_DIR) / str(biller.pk)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.csv"
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as out:
        while chunk := upload.read(1 << 20):
            size += len(chunk)
            if size > settings.IMPORT_MAX_BYTES:
                out.close()
                path.unlink(missing_ok=True)
                raise ValidationFailed(
                    {
                        "file": [
                            _("the file is larger than %(max)s bytes")
                            % {"max": f"{settings.IMPORT_MAX_BYTES:,}"}
                        ]
                    }
                )
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        path.unlink(missing_ok=True)
        raise ValidationFailed({"file": [_("the file is empty")]})
    return path, size, digest.hexdigest()


def import_job_create(
    *,
    actor: User | ApiKey | None,
    biller: Biller,
    upload: IO[bytes],
    file_name: str,
    encoding: str = "",
    publish: bool = True,
    run_now: bool = False,
    mode: str = ImportJob.Mode.PREVIEW,
    language: str = "",
) -> ImportJob:
    """Store the upload and queue its preview (or, with mode import, the import itself: it checks every
    row as it goes and writes nothing on error). ``run_now`` runs it in this process (the command line)."""
    if encoding not in ENCODINGS:
        raise ValidationFailed(
            {
                "encoding": [
                    _("choose one of %(choices)s") % {"choices": ", ".join(e or "detect" for e in ENCODINGS)}
                ]
            }
        )
    if biller.is_suspended:
        raise InvalidTransition(_("A suspended biller cannot import invoices."))
    path, size, sha = _store_upload(biller=biller, upload=upload)
    with transaction.atomic():
        job = ImportJob.objects.create(
            biller=biller,
            created_by=actor if isinstance(actor, User) else None,
            mode=mode,
            file_path=str(path),
            file_name=file_name[:255],
            file_size=size,
            file_sha256=sha,
            encoding=encoding,
            publish=publish,
            language=language or translation.get_language() or settings.LANGUAGE_CODE,
        )
        if not run_now:
            events.after_commit("billing.tasks.import_job_run", job.pk)
    if run_now:
        job = import_job_run(job_id=job.pk)
    return job


def import_job_confirm(
    *, actor: User | ApiKey | None, biller: Biller, preview_id: int, run_now: bool = False
) -> ImportJob:
    """Import what a clean preview checked. The file is checked again as it is written."""
    with transaction.atomic():
        preview = ImportJob.objects.select_for_update().filter(pk=preview_id, biller=biller).first()
        if preview is None:
            raise NotFound(_("No such import."))
        if preview.mode != ImportJob.Mode.PREVIEW or preview.status != ImportJob.Status.SUCCEEDED:
            raise InvalidTransition(_("Only a preview without errors and with new invoices can be imported."))
        if ImportJob.objects.filter(preview_of=preview).exists():
            raise InvalidTransition(_("This preview was already imported."))
        job = ImportJob.objects.create(
            biller=biller,
            created_by=actor if isinstance(actor, User) else None,
            mode=ImportJob.Mode.IMPORT,
            file_path=preview.file_path,
            file_name=preview.file_name,
            file_size=preview.file_size,
            file_sha256=preview.file_sha256,
            encoding=preview.encoding,
            publish=preview.publish,
            language=preview.language,
            preview_of=preview,
        )
        if not run_now:
            events.after_commit("billing.tasks.import_job_run", job.pk)
    if run_now:
        job = import_job_run(job_id=job.pk)
    return job


def _job_message(job: ImportJob, result: imports.ImportResult, *, write: bool) -> str:
    if not result.ok:
        if write:
            return _("%(n)s error(s): nothing was imported") % {"n": f"{result.error_count:,}"}
        return _("%(n)s error(s): fix them and upload the file again") % {"n": f"{result.error_count:,}"}
    if result.invoices_new == 0:
        return _("nothing to import: all %(n)s invoices were already imported") % {
            "n": f"{result.invoices_unchanged:,}"
        }
    values = {
        "new": f"{result.invoices_new:,}",
        "yen": f"{result.total_amount:,}",
        "unchanged": f"{result.invoices_unchanged:,}",
    }
    if write:
        return _("imported %(new)s invoices (%(yen)s yen); %(unchanged)s unchanged") % values
    return _("would import %(new)s invoices (%(yen)s yen); %(unchanged)s unchanged") % values


def import_job_run(*, job_id: int) -> ImportJob:
    """Run a job (safe to run twice: a finished job is left as it is)."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().select_related("biller").get(pk=job_id)
        if job.is_finished or job.status == ImportJob.Status.RUNNING:
            return job
        job.status, job.started_at = ImportJob.Status.RUNNING, timezone.now()
        job.save(update_fields=["status", "started_at"])
    write = job.mode == ImportJob.Mode.IMPORT
    try:
        with open(job.file_path, "rb") as raw, translation.override(job.language):
            result = imports.run(
                raw,
                biller=job.biller,
                write=write,
                publish=job.publish,
                encoding=job.encoding,
                job_id=job.pk,
                file_size=job.file_size,
            )
    except imports.ImportFailed as exc:
        job.status, job.error_count = ImportJob.Status.FAILED, 1
        job.errors = [{"row": exc.row, "column": exc.column, "message": exc.message}]
        job.message = exc.message[:300]
    except FileNotFoundError:
        job.status, job.message = (
            ImportJob.Status.FAILED,
            _("The uploaded file is no longer there; upload it again."),
        )
    else:
        job.rows, job.invoices_new, job.invoices_unchanged = (
            result.rows,
            result.invoices_new,
            result.invoices_unchanged,
        )
        job.total_amount, job.error_count = result.total_amount, result.error_count
        job.errors = [e.as_dict() for e in result.errors]
        job.encoding = job.encoding or result.encoding
        with translation.override(job.language):
            job.message = _job_message(job, result, write=write)
        if not result.ok:
            job.status = ImportJob.Status.FAILED
        elif result.invoices_new == 0:
            job.status = ImportJob.Status.NOTHING
        else:
            job.status = ImportJob.Status.SUCCEEDED
    job.finished_at = timezone.now()
    with transaction.atomic():
        job.save()
        if write:
            audit_record(
                actor=job.created_by,
                action="invoice.import",
                biller=job.biller,
                target=job,
                summary=f"{job.file_name}: {job.message}"[:300],
                after={
                    "sha256": job.file_sha256,
                    "new": job.invoices_new,
                    "unchanged": job.invoices_unchanged,
                    "errors": job.error_count,
                },
            )
        if write and job.status == ImportJob.Status.SUCCEEDED and job.publish:
            events.after_commit("billing.tasks.import_notify", job.pk)
    # a large import refreshes the planner's statistics itself (billing.imports.flow)
    return job


def import_notify_enqueue(*, job_id: int) -> int:
    """Queue the publication e-mails of an import's invoices, in chunks."""
    job = ImportJob.objects.get(pk=job_id)
    ids = (
        Invoice.objects.filter(
            biller_id=job.biller_id,
            created_at__gte=job.started_at,
            created_at__lte=job.finished_at,
            status=Invoice.Status.PUBLISHED,
            notified_at__isnull=True,
        )
        .exclude(recipient_email="")
        .values_list("pk", flat=True)
    )
    chunk: list[int] = []
    queued = 0
    for pk in ids.iterator(chunk_size=NOTIFY_CHUNK):
        chunk.append(pk)
        if len(chunk) == NOTIFY_CHUNK:
            events.send("billing.tasks.invoice_published_notify", chunk)
            queued += len(chunk)
            chunk = []
    if chunk:
        events.send("billing.tasks.invoice_published_notify", chunk)
        queued += len(chunk)
    return queued


__all__ = ["ENCODINGS", "import_job_confirm", "import_job_create", "import_job_run", "import_notify_enqueue"]
