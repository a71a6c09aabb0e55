"""Pay-later links (ATM後払い): a signed, expiring URL to a payment request's numbers, no account needed.

The token carries the invoice's id, its biller's id and the last day the link works (the due date plus
:data:`GRACE_DAYS`), signed with the project's secret and a salt of its own (django.core.signing), so
it cannot be altered or made for another invoice, and a token of one biller is refused on another's
URL. The page itself is payeasy's (payeasy.paylater, mounted at ``pay/<token>/`` in the tenant URLconf,
namespace ``paylater``): it speaks the live status.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.errors import NotFound
from billing.models import Biller, Invoice
from billing.tenancy import tenant_reverse

SALT = "billing.paylater.v1"
GRACE_DAYS = 7
URL_NAME = "paylater:page"


class PayLaterLinkInvalid(NotFound):
    """Altered, made up, or another biller's: answered exactly like a link that never existed."""

    code = "paylater_invalid"


class PayLaterLinkExpired(NotFound):
    code = "paylater_expired"


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def link_expires(invoice: Invoice) -> datetime.date:
    """The last day (JST) the link opens."""
    return invoice.due_date + datetime.timedelta(days=GRACE_DAYS)


def token_for(invoice: Invoice) -> str:
    """The link's token: the same for the same invoice (e-mail, console and API show one link)."""
    payload = {"i": invoice.pk, "b": invoice.biller_id, "x": link_expires(invoice).isoformat()}
    return _signer().sign_object(payload)


def paylater_link(request: HttpRequest, invoice: Invoice) -> str:
    """The pay-later link the console and the API show: the e-mail's (:func:`paylater_url`, on
    PORTAL_BASE_URL), so every place gives the payer the same link; only without PORTAL_BASE_URL (a
    production that has not set it) the page on the host ``request`` came to."""
    if settings.PORTAL_BASE_URL:
        return paylater_url(invoice)
    return request.build_absolute_uri(reverse(URL_NAME, kwargs={"token": token_for(invoice)}))


def paylater_url(invoice: Invoice) -> str:
    """The absolute link for e-mails, paper and `demo_info` (PORTAL_BASE_URL, path mode)."""
    from billing.portal.services.access import absolute_url

    return absolute_url(tenant_reverse(invoice.biller, URL_NAME, kwargs={"token": token_for(invoice)}))


def _payload(token: str) -> dict[str, Any]:
    try:
        payload = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise PayLaterLinkInvalid(_("This payment link is not valid.")) from exc
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("i"), int)
        or not isinstance(payload.get("b"), int)
        or not isinstance(payload.get("x"), str)
    ):
        raise PayLaterLinkInvalid(_("This payment link is not valid."))
    return payload


def invoice_for_token(*, biller: Biller, token: str) -> Invoice:
    """The payment request a token opens at ``biller``.

    Raises PayLaterLinkInvalid for an altered token or another biller's, PayLaterLinkExpired after the
    last day.
    """
    payload = _payload(token)
    if payload["b"] != biller.pk:
        raise PayLaterLinkInvalid(_("This payment link is not valid."))
    try:
        expires = datetime.date.fromisoformat(payload["x"])
    except ValueError as exc:
        raise PayLaterLinkInvalid(_("This payment link is not valid.")) from exc
    if timezone.localdate() > expires:
        raise PayLaterLinkExpired(
            _("This payment link expired on %(date)s. Please contact %(biller)s.")
            % {"date": expires.isoformat(), "biller": biller.legal_name}
        )
    invoice = (
        Invoice.objects.select_related("biller", "customer")
        .filter(pk=payload["i"], biller=biller, kind=Invoice.Kind.PAYMENT_REQUEST)
        .exclude(status=Invoice.Status.DRAFT)
        .first()
    )
    if invoice is None:
        raise PayLaterLinkInvalid(_("This payment link is not valid."))
    return invoice
