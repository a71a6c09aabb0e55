"""Teller batch files in the iDC staff console: upload, the list of files offered, one file's report."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from billing.tenancy import TenantRequest
from payeasy.models import LedgerEntry, Notice, TellerFile
from payeasy.services import teller
from payeasy.staff.views import StaffView

MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # a bank's day of teller payments is far smaller
MAX_FILES = 50


class TellerFileListView(StaffView):
    template = "payeasy/staff/teller_list.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        status = request.GET.get("status", "")
        files = TellerFile.objects.cross_tenant("staff").select_related("biller").defer("content")
        if status in TellerFile.Status.values:
            files = files.filter(status=status)
        query = request.GET.get("q", "").strip()
        if query:
            files = files.filter(name__icontains=query)
        page = Paginator(files, 50).get_page(request.GET.get("page"))
        return render(
            request,
            self.template,
            {"page": page, "status": status, "q": query, "statuses": TellerFile.Status.choices},
        )

    def post(self, request: TenantRequest) -> HttpResponse:
        uploads = request.FILES.getlist("files")
        if not uploads:
            messages.error(request, _("Choose one or more teller batch files."))
            return redirect("staff:teller_files")
        if len(uploads) > MAX_FILES:
            messages.error(request, _("At most %(n)s files at a time.") % {"n": MAX_FILES})
            return redirect("staff:teller_files")
        for upload in uploads:
            if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
                messages.error(
                    request,
                    _("%(name)s: larger than %(mb)s MB, not imported.")
                    % {"name": upload.name, "mb": MAX_UPLOAD_BYTES // (1024 * 1024)},
                )
                continue
            result = teller.teller_file_import(
                str(upload.name), upload.read(), via=TellerFile.Via.UPLOAD, user=request.user
            )
            (messages.success if result.accepted else messages.error)(request, result.report())
        return redirect("staff:teller_files")


class TellerFileDetailView(StaffView):
    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        f = get_object_or_404(
            TellerFile.objects.cross_tenant("staff").select_related("biller", "received_by"), pk=pk
        )
        notices = Notice.objects.cross_tenant("staff").filter(teller_file=f).order_by("id")
        entries = {
            e.notice_id: e
            for e in LedgerEntry.objects.cross_tenant("staff")
            .filter(notice__in=notices)
            .select_related("invoice")
        }
        rows = [(n, entries.get(n.pk)) for n in notices]
        return render(request, "payeasy/staff/teller_detail.html", {"file": f, "rows": rows})
