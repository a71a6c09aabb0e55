"""The customer portal's pages: accounts (log in, TOTP, register, invitations, password reset) and
invoices, approvals, payments and receipts.

Every page after login inherits ``PortalView``: it needs a tenant request and a portal account of
the logged-in user at that biller, and ``invoices()`` is the only way to reach invoices: filtered
by ``request.biller`` and the account's customer, so another biller's or another customer's
invoice answers 404 exactly like a missing one.
"""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.views import PasswordResetConfirmView as DjangoPasswordResetConfirmView
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse, reverse_lazy
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views import View

from billing import csvsafe
from billing.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from billing.login_forms import LoginForm, TotpForm
from billing.models import Biller, Customer, CustomerAccount, Invoice, InvoiceApproval, User, customer_login
from billing.numbers import ATM_CASH_LIMIT
from billing.portal import selectors, services, throttling
from billing.portal.forms import (
    ChosenAmountForm,
    DecisionForm,
    InvoiceFilterForm,
    NewAccountForm,
    PasswordResetRequestForm,
    PortalSetPasswordForm,
    RegistrationForm,
)
from billing.qr import qr_svg
from billing.tenancy import TenantRequest

PAGE_SIZE = 20
MAX_DOWNLOAD = 200
TOTP_PENDING = "portal_totp_pending"
TOTP_PENDING_SECONDS = 300
BACKEND = "django.contrib.auth.backends.ModelBackend"


def _apply_errors(form: Any, exc: ValidationFailed) -> None:
    for field, errs in exc.errors.items():
        form.add_error(field if field in form.fields else None, errs)


def _safe_next(request: TenantRequest, value: str) -> str:
    if value and url_has_allowed_host_and_scheme(value, {request.get_host()}, request.is_secure()):
        return value
    return ""


def _lock_message(lock: throttling.Lock) -> str:
    return _(
        "Too many failed attempts. For your security, logging in is paused: try again in %(minutes)d minutes."
    ) % {"minutes": lock.minutes}


# --- bases ---------------------------------------------------------------------------------------------


class PortalPublicView(View):
    """A page of a biller's portal that needs no login (log in, register, reset a password)."""

    biller: Biller
    login_required = False

    def dispatch(self, request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        if request.biller is None:
            raise Http404
        self.biller = request.biller
        self.account = services.account_of(request.user, self.biller)
        if self.login_required:
            if self.account is None:
                login = reverse("portal:login")
                return HttpResponseRedirect(f"{login}?{urlencode({'next': request.get_full_path()})}")
            self.customer = self.account.customer
        response = super().dispatch(request, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    def render(
        self, request: TenantRequest, template: str, context: dict[str, Any], status: int = 200
    ) -> HttpResponse:
        context.setdefault("biller", self.biller)
        context.setdefault("portal_account", self.account)
        return render(request, template, context, status=status)


class PortalView(PortalPublicView):
    """Base of every page after login; see the module docstring."""

    nav_section = ""
    login_required = True
    account: CustomerAccount
    customer: Customer

    def invoices(self) -> QuerySet[Invoice]:
        return selectors.portal_invoices(biller=self.biller, customer=self.customer)

    def get_invoice(self, pk: Any) -> Invoice:
        try:
            return self.invoices().get(pk=pk)
        except (Invoice.DoesNotExist, ValueError, TypeError) as exc:
            raise Http404 from exc

    def render(
        self, request: TenantRequest, template: str, context: dict[str, Any], status: int = 200
    ) -> HttpResponse:
        context.setdefault("customer", self.customer)
        context.setdefault("view", self)
        return super().render(request, template, context, status)


# --- log in, TOTP, log out -----------------------------------------------------------------------------


class LoginView(PortalPublicView):
    template_name = "billing/portal/login.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        next_url = _safe_next(request, request.GET.get("next", ""))
        if self.account is not None:
            return redirect(next_url or reverse("portal:home"))
        return self.render(request, self.template_name, {"form": LoginForm(), "next": next_url})

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = LoginForm(request.POST)
        next_url = _safe_next(request, request.POST.get("next", ""))
        context = {"form": form, "next": next_url}
        if not form.is_valid():
            return self.render(request, self.template_name, context, status=400)
        email, ip = form.cleaned_data["email"], throttling.client_ip(request)
        lock = throttling.lock_for(biller=self.biller, login=email, ip=ip)
        if lock is not None:
            form.add_error(None, _lock_message(lock))
            return self.render(request, self.template_name, context, status=429)
        user = authenticate(
            request, username=customer_login(self.biller, email), password=form.cleaned_data["password"]
        )
        account = services.account_of(user, self.biller) if user is not None else None
        if account is None:
            throttling.record(biller=self.biller, login=email, ip=ip, succeeded=False)
            form.add_error(None, _("The e-mail or password is not correct."))
            return self.render(request, self.template_name, context, status=400)
        if account.totp_enabled:
            request.session[TOTP_PENDING] = {
                "user": account.user_id,
                "biller": self.biller.pk,
                "at": int(time.time()),
                "next": next_url,
            }
            return redirect("portal:login_totp")
        throttling.record(biller=self.biller, login=email, ip=ip, succeeded=True)
        auth_login(request, account.user, backend=BACKEND)
        return redirect(next_url or reverse("portal:home"))


class LoginTotpView(PortalPublicView):
    """The second step for accounts with TOTP: a code from the authenticator app."""

    template_name = "billing/portal/login_totp.html"

    def pending(self, request: TenantRequest) -> tuple[CustomerAccount, dict[str, Any]] | None:
        data = request.session.get(TOTP_PENDING)
        if not isinstance(data, dict) or data.get("biller") != self.biller.pk:
            return None
        if int(time.time()) - int(data.get("at", 0)) > TOTP_PENDING_SECONDS:
            request.session.pop(TOTP_PENDING, None)
            return None
        user_id = data.get("user")
        user = User.objects.filter(pk=user_id).first() if isinstance(user_id, int) else None
        account = services.account_of(user, self.biller) if user is not None else None
        if account is None or not account.totp_enabled:
            return None
        return account, data

    def get(self, request: TenantRequest) -> HttpResponseBase:
        if self.pending(request) is None:
            return redirect("portal:login")
        return self.render(request, self.template_name, {"form": TotpForm()})

    def post(self, request: TenantRequest) -> HttpResponseBase:
        pending = self.pending(request)
        if pending is None:
            messages.error(request, _("The login took too long. Please log in again."))
            return redirect("portal:login")
        account, data = pending
        form = TotpForm(request.POST)
        context = {"form": form}
        if not form.is_valid():
            return self.render(request, self.template_name, context, status=400)
        email, ip = account.user.email, throttling.client_ip(request)
        lock = throttling.lock_for(biller=self.biller, login=email, ip=ip)
        if lock is not None:
            request.session.pop(TOTP_PENDING, None)
            form.add_error(None, _lock_message(lock))
            return self.render(request, self.template_name, context, status=429)
        if not services.totp_verify(account=account, code=form.cleaned_data["code"]):
            throttling.record(biller=self.biller, login=email, ip=ip, succeeded=False)
            form.add_error("code", _("The code is not correct. Check the time on your phone."))
            return self.render(request, self.template_name, context, status=400)
        throttling.record(biller=self.biller, login=email, ip=ip, succeeded=True)
        request.session.pop(TOTP_PENDING, None)
        auth_login(request, account.user, backend=BACKEND)
        return redirect(_safe_next(request, data.get("next", "")) or reverse("portal:home"))


class LogoutView(PortalPublicView):
    def get(self, request: TenantRequest) -> HttpResponseBase:
        return redirect("portal:login")

    def post(self, request: TenantRequest) -> HttpResponseBase:
        if self.account is not None:
            auth_logout(request)
            messages.success(request, _("You have logged out."))
        return redirect("portal:login")


# --- registration, invitations, password reset ---------------------------------------------------------


class RegisterView(PortalPublicView):
    """Self-registration with an お客様番号 and the registration code printed on the paper bill."""

    template_name = "billing/portal/register.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        return self.render(request, self.template_name, {"form": RegistrationForm()})

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = RegistrationForm(request.POST)
        context = {"form": form}
        if not form.is_valid():
            return self.render(request, self.template_name, context, status=400)
        data = form.cleaned_data
        key = "register:" + "".join(ch for ch in data["customer_number"] if ch.isdigit())
        ip = throttling.client_ip(request)
        lock = throttling.lock_for(biller=self.biller, login=key, ip=ip)
        if lock is not None:
            form.add_error(None, _lock_message(lock))
            return self.render(request, self.template_name, context, status=429)
        try:
            account = services.customer_register(
                biller=self.biller,
                customer_number=data["customer_number"],
                registration_code=data["registration_code"],
                email=data["email"],
                name=data["name"],
                password=data["password"],
            )
        except ValidationFailed as exc:
            if "registration_code" in exc.errors:
                throttling.record(biller=self.biller, login=key, ip=ip, succeeded=False)
            _apply_errors(form, exc)
            return self.render(request, self.template_name, context, status=400)
        except Conflict as exc:
            form.add_error(None, exc.message)
            return self.render(request, self.template_name, context, status=409)
        auth_login(request, account.user, backend=BACKEND)
        messages.success(request, _("Your account is ready. Welcome."))
        return redirect("portal:home")


class InvitationAcceptView(PortalPublicView):
    template_name = "billing/portal/invitation_accept.html"

    def invalid(self, request: TenantRequest, exc: NotFound) -> HttpResponse:
        return self.render(
            request,
            "billing/portal/invitation_invalid.html",
            {"reason": exc.message, "code": exc.code},
            status=404,
        )

    def get(self, request: TenantRequest, token: str) -> HttpResponse:
        try:
            invitation = services.customer_invitation_get_pending(biller=self.biller, token=token)
        except NotFound as exc:
            return self.invalid(request, exc)
        return self.render(request, self.template_name, {"invitation": invitation, "form": NewAccountForm()})

    def post(self, request: TenantRequest, token: str) -> HttpResponseBase:
        try:
            invitation = services.customer_invitation_get_pending(biller=self.biller, token=token)
        except NotFound as exc:
            return self.invalid(request, exc)
        form = NewAccountForm(request.POST)
        context = {"invitation": invitation, "form": form}
        if not form.is_valid():
            return self.render(request, self.template_name, context, status=400)
        try:
            account = services.customer_invitation_accept(
                biller=self.biller,
                token=token,
                name=form.cleaned_data["name"],
                password=form.cleaned_data["password"],
            )
        except ValidationFailed as exc:
            _apply_errors(form, exc)
            return self.render(request, self.template_name, context, status=400)
        except NotFound as exc:
            return self.invalid(request, exc)
        except Conflict as exc:
            form.add_error(None, exc.message)
            return self.render(request, self.template_name, context, status=409)
        auth_login(request, account.user, backend=BACKEND)
        messages.success(request, _("Your account is ready. Welcome."))
        return redirect("portal:home")


class PasswordResetView(PortalPublicView):
    template_name = "billing/portal/password_reset.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        return self.render(request, self.template_name, {"form": PasswordResetRequestForm()})

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = PasswordResetRequestForm(request.POST)
        if not form.is_valid():
            return self.render(request, self.template_name, {"form": form}, status=400)
        # The same answer whether or not the address has an account here.
        services.password_reset_request(biller=self.biller, email=form.cleaned_data["email"])
        return redirect("portal:password_reset_done")


class PasswordResetDoneView(PortalPublicView):
    def get(self, request: TenantRequest) -> HttpResponse:
        return self.render(request, "billing/portal/password_reset_done.html", {})


class PasswordResetConfirmView(DjangoPasswordResetConfirmView):
    """Django's view, for this biller's customer accounts only."""

    template_name = "billing/portal/password_reset_confirm.html"
    form_class = PortalSetPasswordForm
    success_url = reverse_lazy("portal:password_reset_complete")

    def dispatch(self, request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        if request.biller is None:
            raise Http404
        self.biller = request.biller
        return super().dispatch(request, *args, **kwargs)

    def get_user(self, uidb64: str) -> Any:
        user = super().get_user(uidb64)
        if user is None or user.realm != User.Realm.CUSTOMER or user.customer_biller_id != self.biller.pk:
            return None
        return user

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["biller"] = self.biller
        return context


class PasswordResetCompleteView(PortalPublicView):
    def get(self, request: TenantRequest) -> HttpResponse:
        return self.render(request, "billing/portal/password_reset_complete.html", {})


# --- account security (TOTP) ---------------------------------------------------------------------------


class SecurityView(PortalView):
    nav_section = "security"
    template_name = "billing/portal/security.html"

    def page(self, request: TenantRequest, form: TotpForm | None = None, status: int = 200) -> HttpResponse:
        account = self.account
        enrolling = bool(account.totp_secret) and not account.totp_enabled
        uri = services.totp_provisioning_uri(account) if enrolling else ""
        context = {
            "account": account,
            "enrolling": enrolling,
            "secret": account.totp_secret if enrolling else "",
            "secret_grouped": " ".join(
                account.totp_secret[i : i + 4] for i in range(0, len(account.totp_secret), 4)
            )
            if enrolling
            else "",
            "provisioning_uri": uri,
            "qr": qr_svg(uri, title=_("QR code for the authenticator app")) if enrolling else "",
            "form": form or TotpForm(),
        }
        return self.render(request, self.template_name, context, status=status)

    def get(self, request: TenantRequest) -> HttpResponse:
        return self.page(request)

    def post(self, request: TenantRequest) -> HttpResponseBase:
        action = request.POST.get("action", "")
        try:
            if action == "begin":
                self.account = services.totp_enrol_begin(account=self.account)
                return self.page(request)
            form = TotpForm(request.POST)
            if action not in {"confirm", "disable"} or not form.is_valid():
                return self.page(request, form=form, status=400)
            if action == "confirm":
                services.totp_enrol_confirm(account=self.account, code=form.cleaned_data["code"])
                messages.success(
                    request, _("Two-step verification is on. You will need a code at every login.")
                )
            else:
                services.totp_disable(account=self.account, code=form.cleaned_data["code"])
                messages.success(request, _("Two-step verification is off."))
        except ValidationFailed as exc:
            _apply_errors(form, exc)
            self.account.refresh_from_db()
            return self.page(request, form=form, status=400)
        except InvalidTransition as exc:
            messages.error(request, exc.message)
        return redirect("portal:security")


# --- invoices ------------------------------------------------------------------------------------------


def pay_url(invoice: Invoice) -> str:
    """The 情報リンク bank chooser for this invoice (payeasy.paying_urls), or "" while it is not mounted."""
    try:
        return reverse("portal:pay", args=[invoice.pk])
    except NoReverseMatch:
        return ""


class HomeView(PortalView):
    def get(self, request: TenantRequest) -> HttpResponseBase:
        return redirect("portal:invoice_list")


class InvoiceListView(PortalView):
    nav_section = "invoices"
    template_name = "billing/portal/invoice_list.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        form = InvoiceFilterForm(request.GET or None)
        status = 200
        try:
            filters = selectors.PortalFilters.parse(request.GET)
        except ValidationFailed as exc:
            form.is_valid()
            _apply_errors(form, exc)
            filters = selectors.PortalFilters(tab=selectors.DEFAULT_TAB)
            status = 400
            qs = Invoice.objects.none()
        else:
            qs = selectors.invoice_list(biller=self.biller, customer=self.customer, filters=filters)
        page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
        counts = selectors.tab_counts(biller=self.biller, customer=self.customer)
        base = request.GET.copy()
        for name in ("tab", "page"):
            base.pop(name, None)
        tabs = []
        for key, label in selectors.TABS.items():
            query = base.copy()
            query["tab"] = key
            tabs.append(
                {
                    "key": key,
                    "label": label,
                    "url": f"?{query.urlencode()}",
                    "count": counts.get(key),
                    "current": key == filters.tab,
                }
            )
        rows = [(invoice, invoice.is_overdue) for invoice in page]
        context = {
            "form": form,
            "filters": filters,
            "page": page,
            "rows": rows,
            "tabs": tabs,
            "current_tab": selectors.TABS[filters.tab],
            "max_download": MAX_DOWNLOAD,
        }
        return self.render(request, self.template_name, context, status=status)


class InvoiceDetailView(PortalView):
    nav_section = "invoices"
    template_name = "billing/portal/invoice_detail.html"

    def get(
        self, request: TenantRequest, pk: int, decision_form: DecisionForm | None = None, status: int = 200
    ) -> HttpResponse:
        invoice = self.get_invoice(pk)
        state = services.approval_state(invoice)
        payable = invoice.is_payable and invoice.confirmation_number is not None
        may_pay = services.can_pay(request.user, invoice)
        reason = ""
        if payable and not may_pay:
            if services.past_due_refused(invoice):
                reason = _(
                    "The due date has passed and %(biller)s does not accept late payments. "
                    "Please contact them."
                ) % {"biller": self.biller.legal_name}
            elif state == "rejected":
                reason = _(
                    "This invoice was rejected in your company's approval. "
                    "It can be paid once an approver approves it."
                )
            elif state == "pending":
                reason = _("This invoice needs your company's approval before it can be paid.")
            elif self.account.role != CustomerAccount.Role.PAYER:
                reason = _("Your role (%(role)s) cannot pay invoices. A payer of your company can.") % {
                    "role": self.account.get_role_display()
                }
        context = {
            "invoice": invoice,
            "lines": invoice.lines,
            "rate_rows": invoice.rate_rows(),
            "has_reduced_rate": any(str(line.get("tax_category")) == "8" for line in invoice.lines),
            "payable": payable,
            "can_pay": may_pay,
            "cannot_pay_reason": reason,
            "pay_url": pay_url(invoice) if may_pay else "",
            "over_atm_limit": invoice.total > ATM_CASH_LIMIT,
            "atm_cash_limit": ATM_CASH_LIMIT,
            "returned": request.GET.get("returned") == "1",
            "approval_state": state,
            "approvals": selectors.approvals_of(biller=self.biller, invoice=invoice)
            if state != "not_required"
            else [],
            "can_decide": payable and self.account.can_approve,
            "decision_form": decision_form or DecisionForm(),
            "original": self.invoices().filter(pk=invoice.original_id).first()
            if invoice.original_id
            else None,
        }
        return self.render(request, self.template_name, context, status=status)


class InvoicePdfView(PortalView):
    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        invoice = self.get_invoice(pk)
        from billing.pdf import invoice_pdf, pdf_filename

        numbers = services.numbers_visibility(request.user, invoice, account=self.account)
        response = HttpResponse(invoice_pdf(invoice, numbers=numbers), content_type="application/pdf")
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=pdf_filename(invoice)
        )
        return response


CSV_COLUMNS = (
    ("number", lambda: _("Invoice number")),
    ("kind", lambda: _("Kind")),
    ("issue_date", lambda: _("Issue date")),
    ("due_date", lambda: _("Due date")),
    ("description", lambda: _("Description")),
    ("status", lambda: _("Status")),
    ("subtotal_10", lambda: _("Subtotal 10%")),
    ("tax_10", lambda: _("Tax 10%")),
    ("subtotal_8", lambda: _("Subtotal 8% (reduced)")),
    ("tax_8", lambda: _("Tax 8% (reduced)")),
    ("subtotal_exempt", lambda: _("Tax exempt")),
    ("total", lambda: _("Total (tax included)")),
    ("issuer", lambda: _("Issuer")),
    ("registration_number", lambda: _("Registration number")),
    ("customer_number", lambda: _("Customer number (お客様番号)")),
)


def _csv_row(invoice: Invoice, numbers: services.NumbersVisibility) -> list[Any]:
    """One invoice's CSV row; the お客様番号 only where ``numbers`` (the reader's) shows it."""
    return [
        invoice.number,
        invoice.get_kind_display(),
        invoice.issue_date.isoformat(),
        invoice.due_date.isoformat(),
        invoice.description,
        _("Overdue") if invoice.is_overdue else invoice.get_status_display(),
        invoice.subtotal_10,
        invoice.tax_10,
        invoice.subtotal_8,
        invoice.tax_8,
        invoice.subtotal_exempt,
        invoice.total,
        invoice.biller.legal_name,
        invoice.biller.registration_number,
        (invoice.customer_number or "") if numbers.visible else numbers.withheld_text,
    ]


class InvoiceDownloadView(PortalView):
    """The selected invoices as one ZIP of PDFs, or as CSV in UTF-8 or cp932 (Shift_JIS)."""

    def get(self, request: TenantRequest) -> HttpResponseBase:
        raw = request.GET.getlist("ids")
        fmt = request.GET.get("format", "zip")
        back = reverse("portal:invoice_list")
        if fmt not in {"zip", "csv-utf8", "csv-cp932"}:
            messages.error(request, _("Choose a download format."))
            return redirect(back)
        if not raw:
            messages.error(request, _("Select at least one invoice."))
            return redirect(back)
        if len(raw) > MAX_DOWNLOAD:
            messages.error(request, _("Select at most %(max)d invoices at a time.") % {"max": MAX_DOWNLOAD})
            return redirect(back)
        if not all(v.isdigit() for v in raw):
            raise Http404
        ids = list(dict.fromkeys(int(v) for v in raw))
        invoices = list(self.invoices().filter(pk__in=ids).order_by("issue_date", "id"))
        if len(invoices) != len(ids):  # another customer's or biller's id answers like a missing one
            raise Http404
        stamp = timezone.localdate().strftime("%Y%m%d")
        if fmt == "zip":
            body, content_type, filename = self.zip(invoices), "application/zip", f"invoices-{stamp}.zip"
        else:
            encoding = "cp932" if fmt == "csv-cp932" else "utf-8"
            body, content_type = (
                self.csv(invoices, encoding),
                f"text/csv; charset={'Shift_JIS' if encoding == 'cp932' else 'utf-8'}",
            )
            filename = f"invoices-{stamp}.csv"
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
        return response

    def zip(self, invoices: list[Invoice]) -> bytes:
        from billing.pdf import invoice_pdf, pdf_filename

        buffer = io.BytesIO()
        used: set[str] = set()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for invoice in invoices:
                name = pdf_filename(invoice)
                if name in used:
                    name = f"{name[:-4]}-{invoice.pk}.pdf"
                used.add(name)
                info = zipfile.ZipInfo(name, date_time=invoice.issue_date.timetuple()[:6])
                info.compress_type = zipfile.ZIP_DEFLATED
                info.flag_bits |= 0x800  # names are UTF-8
                numbers = services.numbers_visibility(self.request.user, invoice, account=self.account)
                archive.writestr(info, invoice_pdf(invoice, numbers=numbers))
        return buffer.getvalue()

    def csv(self, invoices: list[Invoice], encoding: str) -> bytes:
        out = io.StringIO(newline="")
        writer = csvsafe.writer(out, lineterminator="\r\n")
        writer.writerow([str(label()) for _name, label in CSV_COLUMNS])
        for invoice in invoices:
            numbers = services.numbers_visibility(self.request.user, invoice, account=self.account)
            writer.writerow(_csv_row(invoice, numbers))
        # Shift_JIS cannot carry every character a name may hold: those few become "?", the rest is exact.
        return out.getvalue().encode(encoding, errors="replace")


# --- approvals -----------------------------------------------------------------------------------------


class ApprovalListView(PortalView):
    nav_section = "approvals"
    template_name = "billing/portal/approval_list.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        if not self.customer.is_corporate:
            raise Http404
        rows = selectors.awaiting_approval(biller=self.biller, customer=self.customer)
        return self.render(
            request, self.template_name, {"rows": rows, "can_decide": self.account.can_approve}
        )


class InvoiceDecisionView(PortalView):
    def post(self, request: TenantRequest, pk: int) -> HttpResponseBase:
        invoice = self.get_invoice(pk)
        form = DecisionForm(request.POST)
        if not form.is_valid():
            return InvoiceDetailView(
                request=request, biller=self.biller, account=self.account, customer=self.customer
            ).get(request, pk, decision_form=form, status=400)
        try:
            approval = services.invoice_decide(
                actor=request.user,
                biller=self.biller,
                invoice=invoice,
                decision=form.cleaned_data["decision"],
                comment=form.cleaned_data["comment"],
            )
        except NotFound as exc:
            raise Http404 from exc
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from exc
        except ValidationFailed as exc:
            _apply_errors(form, exc)
            return InvoiceDetailView(
                request=request, biller=self.biller, account=self.account, customer=self.customer
            ).get(request, pk, decision_form=form, status=400)
        except (Conflict, InvalidTransition) as exc:
            messages.error(request, exc.message)
            return redirect("portal:invoice_detail", pk=pk)
        if approval.decision == InvoiceApproval.Decision.APPROVED:
            messages.success(request, _("Invoice %(number)s was approved.") % {"number": invoice.number})
        else:
            messages.success(request, _("Invoice %(number)s was rejected.") % {"number": invoice.number})
        return redirect("portal:invoice_detail", pk=pk)


# --- payments and receipts -----------------------------------------------------------------------------


class PaymentHistoryView(PortalView):
    nav_section = "payments"
    template_name = "billing/portal/payment_list.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        page = Paginator(
            selectors.ledger_entries(biller=self.biller, customer=self.customer), PAGE_SIZE
        ).get_page(request.GET.get("page"))
        rows = [(entry, selectors.bank_name(entry.notice.bank_code)) for entry in page]
        return self.render(request, self.template_name, {"page": page, "rows": rows})


class ReceiptListView(PortalView):
    nav_section = "receipts"
    template_name = "billing/portal/receipt_list.html"

    def get(self, request: TenantRequest) -> HttpResponse:
        page = Paginator(selectors.receipts(biller=self.biller, customer=self.customer), PAGE_SIZE).get_page(
            request.GET.get("page")
        )
        return self.render(request, self.template_name, {"page": page})


class ReceiptDetailView(PortalView):
    nav_section = "receipts"
    template_name = "billing/portal/receipt_detail.html"

    def get(self, request: TenantRequest, pk: int) -> HttpResponse:
        qs = selectors.receipts(biller=self.biller, customer=self.customer)
        receipt = qs.filter(pk=pk).first() if not isinstance(qs, list) else None
        if receipt is None:
            raise Http404
        entry = receipt.entry
        context = {
            "receipt": receipt,
            "entry": entry,
            "invoice": entry.invoice,
            "notice": entry.notice,
            "bank": selectors.bank_name(entry.notice.bank_code),
        }
        return self.render(request, self.template_name, context)


# --- balance: chosen amounts (任意金額) ---------------------------------------------------------------


class BalanceView(PortalView):
    """The customer's balance (e.g. a card's): its items, and a form where a payer chooses an amount
    between the minimum and the balance. Choosing makes a fresh payment request with its own numbers and
    opens its page (``invoice_detail``), where 情報リンク and the numbers are. 404 without a balance."""

    nav_section = "balance"
    template_name = "billing/portal/balance.html"

    def page(
        self, request: TenantRequest, form: ChosenAmountForm | None = None, status: int = 200
    ) -> HttpResponse:
        from billing import selectors as billing_selectors

        account = billing_selectors.balance_account_of(biller=self.biller, customer=self.customer)
        if account is None:
            raise Http404
        limits = billing_selectors.balance_range(account)
        requests = billing_selectors.balance_requests(account=account).filter(customer=self.customer)
        context = {
            "account": account,
            "limits": limits,
            "items": billing_selectors.balance_items(account=account, open_only=True),
            "open_requests": [inv for inv in requests.filter(status=Invoice.Status.PUBLISHED)[:10]],
            "paid_requests": [inv for inv in requests.filter(status=Invoice.Status.PAID)[:10]],
            "may_pay": self.account.role == CustomerAccount.Role.PAYER
            and self.biller.status == Biller.Status.ACTIVE,
            "form": form or ChosenAmountForm(initial={"amount": limits.low or ""}),
        }
        return self.render(request, self.template_name, context, status=status)

    def get(self, request: TenantRequest) -> HttpResponse:
        return self.page(request)

    def post(self, request: TenantRequest) -> HttpResponseBase:
        form = ChosenAmountForm(request.POST)
        if not form.is_valid():
            return self.page(request, form, status=400)
        try:
            invoice = services.chosen_amount_request(
                user=request.user, biller=self.biller, amount=form.cleaned_data["amount"]
            )
        except NotFound as exc:
            raise Http404 from exc
        except Forbidden as exc:
            form.add_error(None, exc.message)
            return self.page(request, form, status=403)
        except ValidationFailed as exc:
            _apply_errors(form, exc)
            return self.page(request, form, status=400)
        except InvalidTransition as exc:
            form.add_error(None, exc.message)
            return self.page(request, form, status=409)
        messages.success(
            request,
            _("Your payment request for %(amount)s yen is ready: pay by 情報リンク or with the numbers.")
            % {"amount": f"{invoice.total:,}"},
        )
        return redirect("portal:invoice_detail", pk=invoice.pk)
