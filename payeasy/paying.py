"""Paying by 情報リンク from the customer portal: the bank chooser and the hand-off page.

The customer portal mounts these pages: ``path("…", include("payeasy.paying_urls"))`` inside its own
namespace (no app namespace of their own), in the tenant URLconf. Contract with the portal:

- ``request.biller`` is the tenant (billing.tenancy); the logged-in user must pass the portal's rule,
  ``billing.portal.services.can_pay``. Anything else answers 404, exactly like an invoice that does
  not exist (a visitor who is not logged in is sent to the login page).
- URL names (in the portal's namespace): ``pay`` (the chooser) and ``pay_handoff`` (the hand-off).
- The portal has a URL named ``invoice_detail`` taking ``pk`` in the same namespace: the bank sends the
  payer back there with ``?returned=1`` (the page then says "processing"; the return changes nothing —
  only a payment from the line does). Without one, the chooser page is the return page.
- The pages extend the portal's frame (``billing/portal/base.html``, with ``portal_account`` from
  ``billing.portal.services.account_of``); ``base_template`` (the view classes' attribute, or the
  keyword of :func:`bank_chooser` / :func:`handoff_page`, which take an invoice the caller has already
  loaded and checked) chooses another.

The hand-off page POSTs one field, ``envelope`` (payeasy.handoff, docs/handoff.md), to the bank's entry
URL: a small script (static/js/handoff.js, no inline script) submits it at once, and a visible button
does the same without JavaScript.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.cache import add_never_cache_headers
from django.views import View

from billing.models import Invoice
from billing.portal.services import account_of, can_pay
from payeasy import handoff, selectors
from payeasy.banks import bank_name_matches
from payeasy.csp import allow_form_action

RETURN_URL_NAME = "invoice_detail"
CHOOSER_URL_NAME = "pay"
HANDOFF_URL_NAME = "pay_handoff"
BASE_TEMPLATE = "billing/portal/base.html"


def invoice_for(request: HttpRequest, pk: int) -> Invoice:
    """The invoice ``pk`` of the request's tenant that the user may pay, else Http404."""
    biller = getattr(request, "biller", None)
    if biller is None:
        raise Http404
    invoice = Invoice.objects.select_related("biller").filter(biller=biller, pk=pk).first()
    if invoice is None or not can_pay(request.user, invoice):
        raise Http404
    return invoice


def _name(request: HttpRequest, name: str) -> str:
    match = getattr(request, "resolver_match", None)
    namespace = match.namespace if match is not None else ""
    return f"{namespace}:{name}" if namespace else name


def return_url(request: HttpRequest, invoice: Invoice) -> str:
    """The absolute URL the bank sends the payer back to: the invoice page with ``?returned=1``."""
    try:
        path = reverse(_name(request, RETURN_URL_NAME), kwargs={"pk": invoice.pk})
    except NoReverseMatch:
        path = reverse(_name(request, CHOOSER_URL_NAME), kwargs={"pk": invoice.pk})
    return request.build_absolute_uri(f"{path}?returned=1")


def entry_action(request: HttpRequest, entry_url: str) -> str:
    """Where the form posts. A path (the sandbox bank) is on the root site: below the root script prefix
    in path mode, and on ``PORTAL_BASE_URL`` in host mode (a tenant host serves tenant pages only)."""
    if not entry_url.startswith("/"):
        return entry_url
    if getattr(request, "tenant_mode", None) == "host" and settings.PORTAL_BASE_URL:
        return settings.PORTAL_BASE_URL.rstrip("/") + entry_url
    return (getattr(request, "root_script_prefix", None) or "/").rstrip("/") + entry_url


def _matches(choice: selectors.HandoffBank, query: str) -> bool:
    """The search of the chooser: code, the master's name, kana (any width), hiragana, romaji, or the
    readable name in any width and case (三菱UFJ, ｐａｙｐａｙ)."""
    return selectors.bank_matches(choice.bank, query) or bank_name_matches(choice.bank, query)


def _context(
    request: HttpRequest, invoice: Invoice, base_template: str | None, extra: dict[str, Any] | None
) -> dict:
    return {
        "invoice": invoice,
        "biller": invoice.biller,
        "base_template": base_template or BASE_TEMPLATE,
        "portal_account": account_of(request.user, invoice.biller),
        "view": {"nav_section": "invoices"},
        "payable": invoice.is_payable and invoice.confirmation_number is not None,
        "chooser_url": reverse(_name(request, CHOOSER_URL_NAME), kwargs={"pk": invoice.pk}),
        **(extra or {}),
    }


def bank_chooser(
    request: HttpRequest,
    invoice: Invoice,
    *,
    base_template: str | None = None,
    extra_context: dict[str, Any] | None = None,
) -> HttpResponse:
    """The banks this biller's payers may be handed over to (search ``?q=`` by name or kana; frequently
    used first), each a link to the hand-off page, shown by its readable name
    (``payeasy.banks.bank_display_name``) beside its logo or monogram. ``?returned=1`` adds the
    "processing" notice."""
    query = request.GET.get("q", "").strip()[:40]
    context = _context(request, invoice, base_template, extra_context)
    day = selectors.jst_today()
    every_bank = selectors.handoff_banks(invoice.biller, day) if context["payable"] else []
    banks = [b for b in every_bank if _matches(b, query)] if query else every_bank
    handoff_name = _name(request, HANDOFF_URL_NAME)
    context.update(
        q=query,
        returned=request.GET.get("returned") == "1",
        banks=[(b, reverse(handoff_name, kwargs={"pk": invoice.pk, "bank_code": b.code})) for b in banks],
        any_banks=bool(every_bank),
    )
    return render(request, "payeasy/paying/bank_chooser.html", context)


def handoff_page(
    request: HttpRequest,
    invoice: Invoice,
    bank_code: str,
    *,
    base_template: str | None = None,
    extra_context: dict[str, Any] | None = None,
) -> HttpResponse:
    """A fresh envelope for ``bank_code`` (which must be in the chooser) in a form that POSTs itself to
    the bank's entry URL. Never cached: every visit seals a new one (new nonce, 30 minutes)."""
    context = _context(request, invoice, base_template, extra_context)
    if not context["payable"]:
        response = render(request, "payeasy/paying/bank_chooser.html", {**context, "banks": []}, status=409)
        add_never_cache_headers(response)
        return response
    choice = selectors.handoff_bank(invoice.biller, selectors.jst_today(), bank_code)
    if choice is None:
        raise Http404
    try:
        sealed = handoff.handoff_seal(
            invoice=invoice, bank_code=bank_code, return_url=return_url(request, invoice)
        )
    except handoff.HandoffUnavailable as exc:  # its key was retired a moment ago
        raise Http404 from exc
    entry_url = entry_action(request, sealed.endpoint.entry_url)
    context.update(bank=choice.bank, entry_url=entry_url, envelope=sealed.envelope)
    response = render(request, "payeasy/paying/handoff.html", context)
    add_never_cache_headers(response)
    return allow_form_action(response, entry_url)  # the Content-Security-Policy lets the form post there


class PayingView(LoginRequiredMixin, View):
    """Base of the two pages: login required, then the invoice of the tenant the user may pay (404)."""

    base_template: str | None = None  # None: the portal's frame (BASE_TEMPLATE)

    def get_login_url(self) -> str:
        """The portal's login page (``login`` in the same namespace), else settings.LOGIN_URL."""
        try:
            return reverse(_name(self.request, "login"))
        except NoReverseMatch:
            return super().get_login_url()


class BankChooserView(PayingView):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return bank_chooser(request, invoice_for(request, pk), base_template=self.base_template)


class HandoffView(PayingView):
    def get(self, request: HttpRequest, pk: int, bank_code: str) -> HttpResponse:
        return handoff_page(request, invoice_for(request, pk), bank_code, base_template=self.base_template)
