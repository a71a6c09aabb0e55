"""The work queue of the tenant console: the findings (oldest first, with their age) and one finding's
page with what it involves and the actions staff take on it (match, refund, write off, reopen).

The actions are POST endpoints of their own (PRG: a message and a redirect); a form with errors renders
the finding's page again with the errors next to its fields. Operators see no forms and may not post.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.errors import NotFound, ProductError, ValidationFailed
from billing.forms import form_errors_add
from billing.models import Invoice
from billing.tenancy import TenantRequest
from payeasy.banks import bank_all
from reconciliation.forms import FindingFilterForm, MatchForm, ReasonForm, RefundForm
from reconciliation.models import Action, Finding
from reconciliation.selectors import findings as selectors
from reconciliation.services import actions as services
from reconciliation.views.base import ReconciliationConsoleView

PAGE_SIZE = 50
FORMS: dict[str, type[Any]] = {
    Action.Kind.MATCH: MatchForm,
    Action.Kind.REFUND: RefundForm,
    Action.Kind.WRITE_OFF: ReasonForm,
    Action.Kind.REOPEN: ReasonForm,
}


def payment_href(entry_id: int) -> str:
    """The console page of a ledger entry (``console:payment_detail``), or "" while it does not exist."""
    try:
        return reverse("console:payment_detail", args=[entry_id])
    except NoReverseMatch:
        return ""


@dataclass(frozen=True, slots=True)
class QueueRow:
    finding: Finding
    age_days: int
    detail_label: str
    bank_label: str


class QueueView(ReconciliationConsoleView):
    model = Finding

    def scoped_queryset(self, qs: QuerySet[Finding]) -> QuerySet[Finding]:
        return qs.select_related("invoice")


class FindingListView(QueueView):
    template_name = "reconciliation/queue/finding_list.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        form = FindingFilterForm(request.GET or None)
        today = timezone.localdate()
        page = None
        rows: list[QueueRow] = []
        counts: list[tuple[selectors.AgeBucket, int]] = []
        status = 200
        if form.is_bound and not form.is_valid():
            status = 400
        else:
            filters = form.filters()
            counts = selectors.finding_age_counts(biller=self.biller, filters=filters, today=today)
            qs = selectors.finding_list(biller=self.biller, filters=filters, today=today)
            page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
            rows = [
                QueueRow(
                    finding=f,
                    age_days=selectors.age_days(f, today=today),
                    detail_label=selectors.detail_label(f.detail),
                    bank_label=selectors.bank_label(f.bank_code),
                )
                for f in page.object_list
            ]
        query = request.GET.copy()
        query.pop("page", None)
        query.pop("age", None)
        context = self.get_context_data(
            form=form, page=page, rows=rows, counts=counts, bucket_query=query.urlencode()
        )
        return render(request, self.template_name, context, status=status)


class FindingDetailView(QueueView):
    template_name = "reconciliation/queue/finding_detail.html"

    def render_detail(
        self,
        request: TenantRequest,
        finding: Finding,
        *,
        bound: dict[str, Any] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        view = selectors.finding_view(biller=self.biller, finding=finding)
        allowed = services.actions_available(finding) if self.membership.can_write else frozenset()
        forms = {kind: FORMS[kind](prefix=kind) for kind in allowed}
        invoice = finding.invoice
        if Action.Kind.MATCH in forms and (
            invoice is not None
            and invoice.status == Invoice.Status.PUBLISHED
            and invoice.total == finding.amount
        ):
            # a late payment: its own bill, still unpaid and of the same amount, is the first candidate
            forms[Action.Kind.MATCH] = MatchForm(
                prefix=Action.Kind.MATCH, initial={"invoice_number": invoice.number}
            )
        forms.update(bound or {})
        context = self.get_context_data(
            finding=finding,
            detail=view,
            detail_label=selectors.detail_label(finding.detail),
            bank_label=selectors.bank_label(finding.bank_code),
            age_days=selectors.age_days(finding),
            entries=[(pk, payment_href(pk)) for pk in view.entry_ids],
            forms=forms,
            banks=bank_all() if Action.Kind.REFUND in forms else [],
        )
        return render(request, self.template_name, context, status=status)

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        return self.render_detail(request, self.get_object(pk))


class FindingActionView(FindingDetailView):
    """POST one action on a finding: on success a message and the queue (reopen: the finding's page)."""

    kind: str = ""
    http_method_names = ["post"]

    def act(self, request: TenantRequest, finding: Finding, data: dict[str, Any]) -> str:
        raise NotImplementedError

    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        finding: Finding = self.get_object(pk)
        form = FORMS[self.kind](request.POST, prefix=self.kind)
        if form.is_valid():
            try:
                done = self.act(request, finding, form.cleaned_data)
            except NotFound as exc:
                raise Http404 from exc
            except ValidationFailed as exc:
                form_errors_add(form, exc, named=True)
            except ProductError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, done)
                if self.kind == Action.Kind.REOPEN:
                    return redirect("console:finding_detail", pk=finding.pk)
                return redirect("console:finding_list")
        finding.refresh_from_db()
        return self.render_detail(request, finding, bound={self.kind: form}, status=400)


class FindingMatchView(FindingActionView):
    kind = Action.Kind.MATCH

    def act(self, request: TenantRequest, finding: Finding, data: dict[str, Any]) -> str:
        number = data["invoice_number"].strip()
        invoice = selectors.invoice_by_number(biller=self.biller, number=number)
        if invoice is None:
            raise ValidationFailed({"invoice_number": [_("No invoice %(number)s.") % {"number": number}]})
        try:
            services.finding_match(
                actor=request.user, biller=self.biller, finding_id=finding.pk, invoice_id=invoice.pk
            )
        except ValidationFailed as exc:  # the service names the bill "invoice": the form's field
            raise ValidationFailed(
                {("invoice_number" if k == "invoice" else k): v for k, v in exc.errors.items()}
            ) from exc
        return _("The payment of ¥%(amount)s was matched to invoice %(number)s, which is now paid.") % {
            "amount": f"{finding.amount:,}",
            "number": invoice.number,
        }


class FindingRefundView(FindingActionView):
    kind = Action.Kind.REFUND

    def act(self, request: TenantRequest, finding: Finding, data: dict[str, Any]) -> str:
        refund = services.finding_refund(
            actor=request.user,
            biller=self.biller,
            finding_id=finding.pk,
            payee=services.Payee(
                bank_code=data["bank_code"],
                branch_code=data["branch_code"],
                account_type=data["account_type"],
                account_number=data["account_number"],
                holder_kana=data["holder_kana"],
            ),
            transfer_date=data["transfer_date"],
        )
        return _("A refund of ¥%(amount)s to %(holder)s on %(day)s was requested.") % {
            "amount": f"{refund.amount:,}",
            "holder": refund.holder_kana,
            "day": refund.transfer_date.isoformat(),
        }


class FindingWriteOffView(FindingActionView):
    kind = Action.Kind.WRITE_OFF

    def act(self, request: TenantRequest, finding: Finding, data: dict[str, Any]) -> str:
        services.finding_write_off(
            actor=request.user, biller=self.biller, finding_id=finding.pk, reason=data["reason"]
        )
        return _("The finding was written off.")


class FindingReopenView(FindingActionView):
    kind = Action.Kind.REOPEN

    def act(self, request: TenantRequest, finding: Finding, data: dict[str, Any]) -> str:
        services.finding_reopen(
            actor=request.user, biller=self.biller, finding_id=finding.pk, reason=data["reason"]
        )
        return _("The finding is open again.")


urlpatterns: list[URLPattern] = [
    path("findings/", FindingListView.as_view(), name="finding_list"),
    path("findings/<int:pk>/", FindingDetailView.as_view(), name="finding_detail"),
    path("findings/<int:pk>/match/", FindingMatchView.as_view(), name="finding_match"),
    path("findings/<int:pk>/refund/", FindingRefundView.as_view(), name="finding_refund"),
    path("findings/<int:pk>/write-off/", FindingWriteOffView.as_view(), name="finding_write_off"),
    path("findings/<int:pk>/reopen/", FindingReopenView.as_view(), name="finding_reopen"),
]
