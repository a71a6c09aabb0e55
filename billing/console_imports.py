"""Console pages of invoice CSV imports: upload, preview, import, progress, result, error report."""

from __future__ import annotations

import io

from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import csvsafe, imports, services
from billing.errors import InvalidTransition, NotFound, ValidationFailed
from billing.models import ImportJob
from billing.tenancy import TenantRequest
from billing.views import TenantConsoleView


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
        jobs = self.get_queryset().select_related("created_by")[:30]
        return render(
            request,
            "billing/console/import_list.html",
            self.get_context_data(jobs=jobs, form=form or UploadForm()),
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
        return render(
            request,
            "billing/console/import_detail.html",
            self.get_context_data(job=job, progress=progress, imported=imported),
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
    """The error report as CSV (UTF-8 with BOM, so Excel opens it): row, column, message."""

    model = ImportJob

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        job: ImportJob = self.get_object(pk)
        out = io.StringIO()
        writer = csvsafe.writer(out)
        writer.writerow([_("Row"), _("Column"), _("Problem")])
        for error in job.errors:
            writer.writerow([error.get("row") or "", error.get("column") or "", error.get("message")])
        response = HttpResponse("\ufeff" + out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
        return response
