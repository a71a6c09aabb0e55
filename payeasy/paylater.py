"""The pay-later page (ATM後払い): a payment request's numbers behind a signed link, no account needed.

Mounted in the tenant URLconf at ``pay/`` with the namespace ``paylater`` (payeasy.paylater_urls):

- ``page`` (``<token>/``): 収納機関番号, お客様番号, 確認番号, amount, due date, how to pay at an ATM or in
  internet banking, and the state, which turns "paid" live when the payment arrives over the line;
- ``status`` (``<token>/status/``): the state as JSON (payeasy.live.status_of), what the page polls;
- ``events`` (``<token>/events/``): the state as server-sent events when Redis is configured.

The token (billing.paylater) opens one payment request of the biller whose URL it is used on: an
altered token, another biller's, or one for an invoice that is not a payment request answers 404 like
a link that never existed; an expired one 410.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from billing.errors import NotFound
from billing.models import Biller, Invoice
from billing.numbers import ATM_CASH_LIMIT
from billing.paylater import PayLaterLinkExpired, invoice_for_token, link_expires
from payeasy import live

TEMPLATE = "payeasy/paylater/page.html"
INVALID_TEMPLATE = "payeasy/paylater/invalid.html"


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


def _invoice(request: HttpRequest, token: str) -> Invoice:
    biller: Biller | None = getattr(request, "biller", None)
    if biller is None:
        raise _Refused(404, "")
    try:
        return invoice_for_token(biller=biller, token=token)
    except PayLaterLinkExpired as exc:
        raise _Refused(410, exc.message) from exc
    except NotFound as exc:
        raise _Refused(404, exc.message) from exc


def _no_store(response: HttpResponseBase) -> HttpResponseBase:
    add_never_cache_headers(response)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


class PayLaterPageView(View):
    def get(self, request: HttpRequest, token: str) -> HttpResponseBase:
        try:
            invoice = _invoice(request, token)
        except _Refused as refused:
            context: dict[str, Any] = {"status": refused.status, "message": refused.message}
            return _no_store(render(request, INVALID_TEMPLATE, context, status=refused.status))
        context = {
            "invoice": invoice,
            "biller": invoice.biller,
            "token": token,
            "expires": link_expires(invoice),
            "payable": invoice.status == Invoice.Status.PUBLISHED,
            "over_atm_limit": invoice.total > ATM_CASH_LIMIT,
            "atm_cash_limit": ATM_CASH_LIMIT,
        }
        return _no_store(render(request, TEMPLATE, context))


def _json_refusal(refused: _Refused) -> JsonResponse:
    code = "gone" if refused.status == 410 else "not_found"
    return JsonResponse({"error": {"code": code, "message": refused.message}}, status=refused.status)


@never_cache
@require_GET
def paylater_status(request: HttpRequest, token: str) -> HttpResponse:
    """The payment request's state as JSON: {"invoice", "status", "label", "message", "paid_at"}."""
    try:
        invoice = _invoice(request, token)
    except _Refused as refused:
        return _json_refusal(refused)
    return JsonResponse(live.status_dict(invoice))


@never_cache
@require_GET
def paylater_events(request: HttpRequest, token: str) -> HttpResponseBase:
    """The state as server-sent events (404 without Redis: the page polls ``status`` instead)."""
    try:
        invoice = _invoice(request, token)
    except _Refused as refused:
        return _json_refusal(refused)
    return live.events_response(request, invoice.pk)
