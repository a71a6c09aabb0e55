"""Rendered portal pages kept in the shared cache, under a fingerprint the database computes.

The bill page and the invoice list are what a biller's customers open in bursts (a reminder e-mail,
a due date at month end). Rendering one is most of its cost; reading whether anything it shows has
changed is one statement. A page is kept (in the Redis cache, :data:`SECONDS`, zlib-compressed) under a
key made of:

- a *fingerprint* read from PostgreSQL in the request's own tenant transaction: the row versions
  (``xmin``) of every row the page shows — the invoice(s), the customer account, the customer, its
  balance account, the user, the biller, the payments, receipts and approval decisions of the
  invoice(s), the original of a credit note. Any write by any path (a form, the API, the payments
  worker, an import by COPY, a reversal, an operator's SQL) gives the row a new ``xmin``, so the key
  changes with the data and a page is never served from before a change: a bill paid and reloaded
  shows *paid* (tests/integration/test_page_freshness.py);
- the user, the biller, the page and its query string, the language and today's date (overdue and
  late-payment rules change at midnight);
- the *release*: the sizes and times of the templates, translations and code, so a deploy never
  serves a page of the previous one.

The fingerprint statement joins the account of *this* user to the invoice's customer: a page is only
ever looked up for a user whom the database itself shows to be that customer's, and the page was
rendered for that same user by the view (the view's rules decide what it shows; the cache only
remembers the answer). Served from the cache, the page's CSRF tokens are replaced by fresh ones of the
request. Not cached: anything but a GET answered 200, a query string other than the page's own few
values (:data:`QUERIES`: a search or any made-up parameter would let one user fill Redis, which also
holds the task queues, with pages nobody opens again), a request with messages waiting to be shown, a
page with a CSP nonce, SQLite (no ``xmin``: the embedded default renders every time), and any request
while the cache is unreachable (rendered as usual). The short life (:data:`SECONDS`) bounds the memory
to the pages opened in the last minutes.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import zlib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils import timezone, translation

from billing.portal.selectors import TABS

logger = logging.getLogger(__name__)

SECONDS = 120
# the query strings a kept page may have, per page (view name): parameter → allowed values
QUERIES: dict[str, dict[str, re.Pattern[str]]] = {
    "portal:invoice_detail": {"returned": re.compile(r"1")},
    "portal:invoice_list": {
        "tab": re.compile("|".join(TABS)),
        "page": re.compile(r"[1-9][0-9]{0,2}"),
    },
}
HEADER = "X-Page-Cache"  # "hit" or "miss": what happened, for operators and tests
_TOKEN = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*(")')
_ROOT = Path(__file__).resolve().parents[2]
_RELEASE_PARTS = ("templates", "billing", "payeasy", "config", "static")
_RELEASE_SUFFIXES = (".html", ".py", ".mo", ".txt")

# The row versions of everything the bill page shows (see the module docstring). No row: the user is not
# a portal user of the invoice's customer, or there is no such invoice of this biller — the view decides.
BILL_SQL = """
SELECT concat_ws('/', i.xmin, o.xmin, a.xmin, a.role, c.xmin, ba.xmin, u.xmin, b.xmin,
  (SELECT string_agg(concat_ws('.', p.id, p.xmin, r.id, r.xmin), ',' ORDER BY p.id, r.id)
     FROM billing_invoicepayment p LEFT JOIN billing_receipt r ON r.payment_id = p.id
    WHERE p.invoice_id = i.id),
  (SELECT string_agg(concat_ws('.', ap.id, ap.xmin, du.xmin), ',' ORDER BY ap.id)
     FROM billing_invoiceapproval ap LEFT JOIN billing_user du ON du.id = ap.decided_by_id
    WHERE ap.invoice_id = i.id))
FROM billing_invoice i
JOIN billing_customeraccount a
  ON a.user_id = %(user)s AND a.customer_id = i.customer_id AND a.biller_id = i.biller_id
JOIN billing_customer c ON c.id = i.customer_id AND c.biller_id = i.biller_id
JOIN billing_user u ON u.id = a.user_id
JOIN billing_biller b ON b.id = i.biller_id
LEFT JOIN billing_balanceaccount ba ON ba.customer_id = c.id
LEFT JOIN billing_invoice o ON o.id = i.original_id
WHERE i.id = %(invoice)s AND i.biller_id = %(biller)s
"""

# The invoice list of a customer: every invoice's version summed and counted (an insert, an update and
# a delete each change it), with the decisions on them, and the rows of the page frame.
LIST_SQL = """
SELECT concat_ws('/', a.xmin, a.role, c.xmin, ba.xmin, u.xmin, b.xmin,
  (SELECT concat_ws('.', count(*), sum(i.xmin::text::bigint), max(i.xmin::text::bigint))
     FROM billing_invoice i WHERE i.biller_id = a.biller_id AND i.customer_id = a.customer_id),
  (SELECT concat_ws('.', count(*), sum(ap.xmin::text::bigint))
     FROM billing_invoiceapproval ap JOIN billing_invoice i ON i.id = ap.invoice_id
    WHERE i.biller_id = a.biller_id AND i.customer_id = a.customer_id))
FROM billing_customeraccount a
JOIN billing_customer c ON c.id = a.customer_id AND c.biller_id = a.biller_id
JOIN billing_user u ON u.id = a.user_id
JOIN billing_biller b ON b.id = a.biller_id
LEFT JOIN billing_balanceaccount ba ON ba.customer_id = c.id
WHERE a.user_id = %(user)s AND a.biller_id = %(biller)s
ORDER BY a.id LIMIT 1
"""


@functools.cache
def release() -> str:
    """What this process renders with: every template, translation and module, by path, size and time."""
    digest = hashlib.sha256()
    for part in _RELEASE_PARTS:
        for dirpath, dirnames, filenames in os.walk(_ROOT / part):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(_RELEASE_SUFFIXES):
                    stat = os.stat(os.path.join(dirpath, name))
                    digest.update(f"{dirpath}/{name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _usable(request: HttpRequest, page: str) -> bool:
    if connection.vendor != "postgresql" or not settings.REDIS_URL or request.method != "GET":
        return False
    allowed = QUERIES.get(page, {})
    for name, values in request.GET.lists():
        if name not in allowed or len(values) != 1 or not allowed[name].fullmatch(values[0]):
            return False
    if getattr(request, "biller", None) is None or not request.user.is_authenticated:
        return False
    # messages waiting to be shown are shown (and consumed) by a rendering
    return "messages" not in request.COOKIES and "_messages" not in request.session


def _fingerprint(sql: str, params: dict[str, Any]) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else str(row[0])


def _fresh_tokens(html: str, request: HttpRequest) -> str:
    return _TOKEN.sub(lambda m: f"{m.group(1)}{get_token(request)}{m.group(2)}", html)


def lookup(
    request: HttpRequest, *, page: str, sql: str, params: dict[str, Any]
) -> tuple[str | None, HttpResponse | None]:
    """The key the page is kept under (None: not to be kept) and, when its fingerprint is unchanged, the
    page from the cache with fresh CSRF tokens."""
    if not _usable(request, page):
        return None, None
    fingerprint = _fingerprint(sql, params)
    if fingerprint is None:
        return None, None
    biller = request.biller  # type: ignore[attr-defined]
    parts = (
        release(),
        page,
        str(biller.pk),
        str(request.user.pk),
        translation.get_language() or "",
        timezone.localdate().isoformat(),
        request.get_full_path(),
        fingerprint,
    )
    key = "portal:page:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    try:
        html = cache.get(key)
    except Exception as exc:  # a shortcut, never a reason to fail a page
        logger.warning("page cache unavailable: %s", type(exc).__name__)
        return None, None
    if not isinstance(html, bytes):
        return key, None
    text = zlib.decompress(html).decode()
    response = HttpResponse(_fresh_tokens(text, request), content_type="text/html; charset=utf-8")
    response[HEADER] = "hit"
    return key, response


def keep(key: str, response: HttpResponse) -> None:
    """Keep a page just rendered under ``key`` (from :func:`lookup`) when it may be kept."""
    if response.status_code != 200 or response.streaming or b'nonce="' in response.content:
        return
    try:
        cache.set(key, zlib.compress(response.content, 1), SECONDS)
    except Exception as exc:
        logger.warning("page cache unavailable: %s", type(exc).__name__)
        return
    response[HEADER] = "miss"
