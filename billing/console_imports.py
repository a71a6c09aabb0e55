"""Console pages of invoice CSV imports: upload, preview, import, progress, result, error report, and
the import's help page with its sample file."""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from billing import csvsafe, imports, services
from billing.errors import InvalidTransition, NotFound, ValidationFailed
from billing.invoicing import MAX_LINES_PER_INVOICE
from billing.models import ImportJob
from billing.tenancy import TenantRequest
from billing.views import TenantConsoleView

SAMPLE_NAME = "invoices-sample.csv"


def sample_path() -> Path:
    """The documented sample file (docs/samples/invoices-sample.csv), which the help page offers."""
    return Path(settings.BASE_DIR) / "docs" / "samples" / SAMPLE_NAME


@dataclass(frozen=True)
class Badge:
    """What an import job's badge says: its state as the person reading it needs it, not the job's
    status alone (a clean preview has imported nothing: it is checked and waiting, never "done")."""

    state: str  # what the badge says, as a class: import-<state>
    tone: str  # the shared status class it is drawn with (status-<tone>): neutral, waiting, done, wrong
    label: str


def job_badge(job: ImportJob, *, imported: bool = False) -> Badge:
    """The badge of ``job``; ``imported``: the job is a preview whose import was started."""
    status, preview = job.status, job.mode == ImportJob.Mode.PREVIEW
    if status == ImportJob.Status.NOTHING:
        return Badge("nothing", "nothing", pgettext("import status", "Nothing to import"))
    if preview:
        if status == ImportJob.Status.PENDING:
            return Badge("waiting", "pending", pgettext("import status", "Waiting to be checked"))
        if status == ImportJob.Status.RUNNING:
            return Badge("running", "running", pgettext("import status", "Checking"))
        if status == ImportJob.Status.SUCCEEDED and imported:
            return Badge("checked-imported", "nothing", pgettext("import status", "Checked: import started"))
        if status == ImportJob.Status.SUCCEEDED:  # waiting for someone to import it: not done
            return Badge("ready", "published", pgettext("import status", "Checked: ready to import"))
        return Badge("errors", "failed", pgettext("import status", "Errors found"))
    if status == ImportJob.Status.PENDING:
        return Badge("waiting", "pending", pgettext("import status", "Waiting to import"))
    if status == ImportJob.Status.RUNNING:
        return Badge("running", "running", pgettext("import status", "Importing"))
    if status == ImportJob.Status.SUCCEEDED:
        return Badge("imported", "succeeded", pgettext("import status", "Imported"))
    return Badge("errors", "failed", pgettext("import status", "Errors: nothing imported"))


def badge_guide() -> list[tuple[Badge, str]]:
    """The badges a job can show, each with what it means (the help page), drawn by ``job_badge``."""
    preview, run, status = ImportJob.Mode.PREVIEW, ImportJob.Mode.IMPORT, ImportJob.Status
    return [
        (
            job_badge(ImportJob(mode=preview, status=status.SUCCEEDED)),
            _("The check found no problem. Nothing has been imported yet: import it from the check result."),
        ),
        (
            job_badge(ImportJob(mode=preview, status=status.FAILED)),
            _("The check found problems. Fix the file and upload it again."),
        ),
        (
            job_badge(ImportJob(mode=preview, status=status.SUCCEEDED), imported=True),
            _("The checked file was then imported: its import has a line of its own."),
        ),
        (job_badge(ImportJob(mode=run, status=status.SUCCEEDED)), _("The invoices were stored.")),
        (
            job_badge(ImportJob(mode=run, status=status.FAILED)),
            _("The import found problems and stored nothing."),
        ),
        (
            job_badge(ImportJob(mode=run, status=status.NOTHING)),
            _("Every invoice in the file was already imported."),
        ),
    ]


def error_rows(errors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A job's stored problems with their column as people read it (``imports.column_label``)."""
    return [
        {
            "row": error.get("row"),
            "column": imports.column_label(error.get("column") or ""),
            "message": error.get("message") or "",
        }
        for error in errors
    ]


class UploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy(
            "One row per invoice line; the rows of an invoice together. Columns: see the import guide."
        ),
    )
    encoding = forms.ChoiceField(
        label=gettext_lazy("Encoding"),
        choices=[
            ("", gettext_lazy("Detect (UTF-8 with or without BOM, else Shift_JIS)")),
            ("utf-8", "UTF-8"),
            ("utf-8-sig", "UTF-8 (BOM)"),
            ("cp932", "Shift_JIS (cp932, Excel)"),
        ],
        required=False,
    )
    publish = forms.BooleanField(
        label=gettext_lazy("Publish the invoices (assign payment numbers, e-mail customers)"),
        required=False,
        initial=True,
    )


class ImportListView(TenantConsoleView):
    nav_section = "imports"
    model = ImportJob

    def get(self, request: TenantRequest, form: UploadForm | None = None) -> HttpResponse:
        jobs = list(self.get_queryset().select_related("created_by")[:30])
        imported = set(
            ImportJob.objects.for_biller(self.biller)
            .filter(preview_of__in=[job.pk for job in jobs if job.mode == ImportJob.Mode.PREVIEW])
            .values_list("preview_of_id", flat=True)
        )
        rows = [(job, job_badge(job, imported=job.pk in imported)) for job in jobs]
        return render(
            request,
            "billing/console/import_list.html",
            self.get_context_data(rows=rows, form=form or UploadForm()),
            status=400 if form is not None and form.errors else 200,
        )

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = UploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.get(request, form=form)
        upload = form.cleaned_data["file"]
        try:
            job = services.import_job_create(
                actor=request.user,
                biller=self.biller,
                upload=upload,
                file_name=upload.name,
                encoding=form.cleaned_data["encoding"],
                publish=form.cleaned_data["publish"],
            )
        except (ValidationFailed, InvalidTransition) as exc:
            form.add_error("file" if isinstance(exc, ValidationFailed) else None, exc.message)
            return self.get(request, form=form)
        return redirect("console:import_detail", pk=job.pk)


class ImportDetailView(TenantConsoleView):
    nav_section = "imports"
    model = ImportJob

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        job: ImportJob = self.get_object(pk)
        progress = None
        if not job.is_finished:
            progress = cache.get(imports.progress_key(job.pk)) or {
                "rows": 0,
                "bytes": 0,
                "size": job.file_size,
            }
            size = progress.get("size") or job.file_size or 1
            progress["percent"] = min(99, int(100 * progress.get("bytes", 0) / size))
        imported = None
        if job.mode == ImportJob.Mode.PREVIEW:
            imported = ImportJob.objects.for_biller(self.biller).filter(preview_of=job).first()
        errors = error_rows(job.errors)
        return render(
            request,
            "billing/console/import_detail.html",
            self.get_context_data(
                job=job,
                progress=progress,
                imported=imported,
                badge=job_badge(job, imported=imported is not None),
                errors=errors,
                error_rows_count=len({e["row"] for e in errors if e["row"]}),
            ),
        )


class ImportConfirmView(TenantConsoleView):
    nav_section = "imports"
    model = ImportJob

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        preview: ImportJob = self.get_object(pk)
        try:
            job = services.import_job_confirm(actor=request.user, biller=self.biller, preview_id=preview.pk)
        except (InvalidTransition, NotFound) as exc:
            messages.error(request, exc.message)
            return redirect("console:import_detail", pk=preview.pk)
        return redirect("console:import_detail", pk=job.pk)


class ImportErrorsView(TenantConsoleView):
    """The error report as CSV (UTF-8 with BOM, so Excel opens it): row, column (as the page names it),
    problem."""

    model = ImportJob

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        job: ImportJob = self.get_object(pk)
        out = io.StringIO()
        writer = csvsafe.writer(out)
        writer.writerow([_("Row"), _("Column"), _("Problem")])
        for error in error_rows(job.errors):
            writer.writerow([error["row"] or "", error["column"], error["message"]])
        response = HttpResponse("\ufeff" + out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
        return response


class ImportHelpView(TenantConsoleView):
    """The CSV import guide, in the console: the columns (named as the pages name them), their formats,
    the limits, and the sample file to download."""

    nav_section = "imports"

    def get(self, request: TenantRequest) -> HttpResponse:
        return render(
            request,
            "billing/console/help_csv_import.html",
            self.get_context_data(
                columns=imports.column_help(),
                badges=badge_guide(),
                max_bytes=settings.IMPORT_MAX_BYTES,
                max_lines=MAX_LINES_PER_INVOICE,
                errors_kept=imports.limits.MAX_ERRORS_KEPT,
                sample_name=SAMPLE_NAME,
            ),
        )


class ImportSampleView(TenantConsoleView):
    """The sample file of the guide (docs/samples/invoices-sample.csv), as the product ships it, with a
    BOM in front if it has none so that Excel reads it as UTF-8."""

    def get(self, request: TenantRequest) -> HttpResponse:
        try:
            data = sample_path().read_bytes()
        except FileNotFoundError as exc:
            raise Http404(_("The sample file is not available.")) from exc
        if not data.startswith(codecs.BOM_UTF8):
            data = codecs.BOM_UTF8 + data
        response = HttpResponse(data, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{SAMPLE_NAME}"'
        return response
