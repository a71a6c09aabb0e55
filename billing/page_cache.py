"""Rendered pages kept in the shared cache, under a fingerprint the database computes.

The portal's bill page and invoice list are what a biller's customers open in bursts (a reminder
e-mail, a due date at month end); the console's invoice list is what its staff reload all day. Rendering
one is most of its cost; reading whether anything it shows has changed is one statement. A page is kept
(in the Redis cache, :data:`SECONDS`, zlib-compressed) under a key made of:

- a *fingerprint* read from PostgreSQL in the request's own transaction (:data:`PAGES`, one statement
  per page): the row versions (``xmin``) of every row the page shows — for the bill page the invoice,
  the customer account, the customer, its balance account, the user, the biller, the payments, receipts
  and approval decisions of the invoice, the original of a credit note; for the customer's list the
  frame's rows and the sum of the customer's change counters (``billing.models.CustomerChange``: a
  trigger adds to it with every write to the customer's invoices and decisions); for the console's
  list the user, the membership, the second factor, every membership of the user (the biller switcher),
  the first page's invoices and the sum of the biller's counter of customer rows (a trigger adds to it
  with every update of the biller's customers). Any write by any path (a form, the API, the
  payments worker, an import by COPY, a reversal, an operator's SQL) gives the row a new ``xmin`` (and
  the customer a change), so the key changes with
  the data and a page is never served from before a change: a bill paid and reloaded shows *paid*
  (tests/integration/test_page_freshness.py). The request of a kept page runs in one snapshot
  (``billing.tenancy.SNAPSHOT_PATHS``: REPEATABLE READ), so the fingerprint describes exactly the rows the
  page was rendered from; the biller, which a process keeps for two seconds, must be the row the
  fingerprint read, or the page is not kept;
- the user, the biller, the page and its query string, the language and today's date (overdue and
  late-payment rules change at midnight);
- the *release*: the sizes and times of the templates, translations and code, and the environment the
  settings are read from, so a deploy or a new setting never serves a page of the previous one.

The fingerprint statement joins the account (or membership) of *this* user: a page is only ever looked
up for a user whom the database itself shows to be that customer's (that biller's member), and the page
was rendered for that same user by the view (the view's rules decide what it shows; the cache only
remembers the answer). Served from the cache, the page's CSRF tokens are replaced by fresh ones of the
request. Not cached: anything but a GET answered 200, a query string other than the page's own few
values (:data:`QUERIES`: a search or any made-up parameter would let one user fill Redis, which also
holds the task queues, with pages nobody opens again), a request with messages waiting to be shown, a
page with a CSP nonce, SQLite (no ``xmin``: the embedded default renders every time), and any request
while the cache is unreachable (rendered as usual). The short life (:data:`SECONDS`) bounds the memory
to the pages opened in the last minutes. ``billing.page_replay`` serves a kept page again before the
request reaches Django's middlewares, to the same session only.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import logging
import os
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
from django.utils import timezone, translation

from billing import tenancy
from billing.models import CustomerChange
from billing.portal.selectors import TABS
from billing.selectors import INVOICE_PAGE_SIZE, INVOICE_SORTS, InvoiceFilters

logger = logging.getLogger(__name__)

SECONDS = 120
# the query strings a kept page may have, per page (view name): parameter → allowed values
QUERIES: dict[str, dict[str, re.Pattern[str]]] = {
    "portal:invoice_detail": {"returned": re.compile(r"1")},
    "portal:invoice_list": {
        "tab": re.compile("|".join(TABS)),
        "page": re.compile(r"[1-9][0-9]{0,2}"),
    },
    "console:invoice_list": {},  # the first page, as the console opens it
}
HEADER = "X-Page-Cache"  # "hit", "miss" or "replay": what happened, for operators and tests
# A kept page has its forms' CSRF tokens replaced by MARK (NUL: no page has one, PostgreSQL's text cannot
# hold it), each answer puts a token of its request there.
_TOKEN = re.compile(rb'(name="csrfmiddlewaretoken" value=")[^"]*(")')
MARK = b"\x00"
_ROOT = Path(__file__).resolve().parents[1]
_RELEASE_PARTS = ("templates", "billing", "payeasy", "config", "static")
_RELEASE_SUFFIXES = (".html", ".py", ".mo", ".txt")

# Each statement answers one row of two columns, the fingerprint and the biller's row version, or no
# row: the user is not a portal user of the invoice's customer (a member of the biller), or there is no
# such invoice of this biller — the view decides.

BILL_SQL = """
SELECT concat_ws('/', i.xmin, o.xmin, a.xmin, a.role, c.xmin, ba.xmin, u.xmin, b.xmin,
  (SELECT string_agg(concat_ws('.', p.id, p.xmin, r.id, r.xmin), ',' ORDER BY p.id, r.id)
     FROM billing_invoicepayment p LEFT JOIN billing_receipt r ON r.payment_id = p.id
    WHERE p.invoice_id = i.id),
  (SELECT string_agg(concat_ws('.', ap.id, ap.xmin, du.xmin), ',' ORDER BY ap.id)
     FROM billing_invoiceapproval ap LEFT JOIN billing_user du ON du.id = ap.decided_by_id
    WHERE ap.invoice_id = i.id)), b.xmin::text
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

# The invoice list of a customer: the sum of its change counters (billing.models.CustomerChange: every
# statement that writes its invoices or approval decisions adds to it, by trigger), read from one index
# whatever the number of its invoices, and the rows of the page frame.
LIST_SQL = """
SELECT concat_ws('/', a.xmin, a.role, c.xmin, ba.xmin, u.xmin, b.xmin,
  (SELECT COALESCE(sum(x.weight), 0) FROM billing_customerchange x
    WHERE x.biller_id = a.biller_id AND x.customer_id = a.customer_id)),
  b.xmin::text
FROM billing_customeraccount a
JOIN billing_customer c ON c.id = a.customer_id AND c.biller_id = a.biller_id
JOIN billing_user u ON u.id = a.user_id
JOIN billing_biller b ON b.id = a.biller_id
LEFT JOIN billing_balanceaccount ba ON ba.customer_id = c.id
WHERE a.user_id = %(user)s AND a.biller_id = %(biller)s
ORDER BY a.id LIMIT 1
"""


def _order(sort: str) -> str:
    return ", ".join(f"i.{f[1:]} DESC" if f.startswith("-") else f"i.{f}" for f in INVOICE_SORTS[sort])


# The console's invoice list as it opens (no filter, the default sort, the first page and the row that
# says there is a next one), its customers — the sum of the biller's counter of customer rows
# (CustomerChange.CUSTOMER_ROWS: a trigger adds to it with every update of a customer of the biller), one
# index read instead of the versions of fifty customers — and the frame: the user, the membership (the
# role decides the actions), the second factor (billing.two_factor), every membership of the user and its
# biller (the switcher, which crosses tenants: read under the "pages" bypass, versions only).
CONSOLE_LIST_SQL = f"""
SELECT concat_ws('/', u.xmin, m.xmin, m.role, b.xmin,
  (SELECT string_agg(concat_ws('.', t.id, t.xmin), ',' ORDER BY t.id)
     FROM billing_consoletwofactor t WHERE t.user_id = u.id),
  (SELECT string_agg(concat_ws('.', om.id, om.xmin, ob.xmin), ',' ORDER BY om.id)
     FROM billing_membership om JOIN billing_biller ob ON ob.id = om.biller_id WHERE om.user_id = u.id),
  (SELECT COALESCE(sum(x.weight), 0) FROM billing_customerchange x
    WHERE x.biller_id = m.biller_id AND x.customer_id = {CustomerChange.CUSTOMER_ROWS}),
  (SELECT string_agg(concat_ws('.', p.id, p.xmin), ',' ORDER BY p.id)
     FROM (SELECT i.id, i.xmin FROM billing_invoice i WHERE i.biller_id = m.biller_id
           ORDER BY {_order(InvoiceFilters().sort)} LIMIT {INVOICE_PAGE_SIZE + 1}) p)), b.xmin::text
FROM billing_user u
JOIN billing_membership m ON m.user_id = u.id AND m.biller_id = %(biller)s
JOIN billing_biller b ON b.id = m.biller_id
WHERE u.id = %(user)s
"""  # noqa: S608 (the constants of this module, billing.models and billing.selectors only)


# page → (its fingerprint statement, the cross-tenant reason it is read under: "" for none)
PAGES: dict[str, tuple[str, str]] = {
    "portal:invoice_detail": (BILL_SQL, ""),
    "portal:invoice_list": (LIST_SQL, ""),
    "console:invoice_list": (CONSOLE_LIST_SQL, "pages"),
}

# The statements above, as one function of the database (installed by ``manage.py migrate``, ``install``):
# it reads a page's fingerprint in the page's tenant (or under its bypass) and, given a session key, the
# session row's data, and puts the caller's tenant and bypass back. The views read fingerprints with it,
# ``billing.page_replay``'s function checks kept answers with it: the same statements for both.
FUNCTION = "payeasy_kept_page"
_FUNCTION_ARGS = "p_page text, p_biller bigint, p_user bigint, p_invoice bigint, p_session text"
FINGERPRINT_SQL = f"SELECT kept_fingerprint, kept_biller FROM {FUNCTION}(%s, %s, %s, %s, NULL)"  # noqa: S608


def function_sql() -> str:
    """``CREATE OR REPLACE FUNCTION`` of :data:`FUNCTION`, from :data:`PAGES` (constants of this module)."""
    branches: list[str] = []
    for page, (sql, bypass) in PAGES.items():
        body = sql.replace("%(user)s", "p_user").replace("%(invoice)s", "p_invoice")
        body = body.replace("%(biller)s", "p_biller").strip()
        branches.append(
            f"  {'IF' if not branches else 'ELSIF'} p_page = '{page}' THEN\n"  # noqa: S608
            f"    PERFORM set_config('app.biller_id', p_biller::text, true), "
            f"set_config('app.bypass', '{bypass}', true);\n"
            f"    RETURN QUERY SELECT session_found, kept.* FROM (\n{body}\n) kept;"
        )
    return f"""CREATE OR REPLACE FUNCTION {FUNCTION}({_FUNCTION_ARGS})
RETURNS TABLE(kept_session text, kept_fingerprint text, kept_biller text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, public AS $fn$
#variable_conflict use_column
DECLARE
  was_biller text := COALESCE(current_setting('app.biller_id', true), '');
  was_bypass text := COALESCE(current_setting('app.bypass', true), '');
  session_found text;
BEGIN
  IF p_session IS NOT NULL THEN
    SELECT s.session_data INTO session_found FROM django_session s
     WHERE s.session_key = p_session AND s.expire_date > now();
  END IF;
{chr(10).join(branches)}
  END IF;
  PERFORM set_config('app.biller_id', was_biller, true), set_config('app.bypass', was_bypass, true);
END $fn$"""  # noqa: S608


def install(connection: Any) -> None:
    """Create or replace :data:`FUNCTION` as it is in this release (PostgreSQL only; run by migrate)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(function_sql())


@dataclass(frozen=True)
class KeptPage:
    """What a request's page was kept under, for ``billing.page_replay``."""

    page: str
    params: dict[str, Any]  # the fingerprint's: user, biller (and invoice)
    fingerprint: str
    day: str


@functools.cache
def release() -> str:
    """What this process renders with: every template, translation and module, by path, size and time,
    and the environment the settings come from."""
    digest = hashlib.sha256()
    for part in _RELEASE_PARTS:
        for dirpath, dirnames, filenames in os.walk(_ROOT / part):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(_RELEASE_SUFFIXES):
                    stat = os.stat(os.path.join(dirpath, name))
                    digest.update(f"{dirpath}/{name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    for name, value in sorted(os.environ.items()):
        digest.update(f"{name}={value}\n".encode())
    return digest.hexdigest()[:16]


_day: tuple[float, float, str] = (0.0, 0.0, "")  # this day's start and end, in seconds, and its date


def today() -> str:
    """Today in the site's time zone (``TIME_ZONE``) as ISO text: the day a kept page is of, for the key
    and for the replay alike. Computed once a day per process (``timezone.localdate()`` converts the time
    on every call: 3 % of a replayed page's CPU); exact at midnight, as the cached day ends when the next
    one starts, and read again if the clock is set back before it began."""
    global _day
    now = time.time()
    starts, ends, day = _day
    if starts <= now < ends:
        return day
    zone = timezone.get_default_timezone()
    date = datetime.datetime.fromtimestamp(now, zone).date()
    start = datetime.datetime.combine(date, datetime.time(), zone).timestamp()
    end = datetime.datetime.combine(date + datetime.timedelta(days=1), datetime.time(), zone).timestamp()
    _day = (start, end, date.isoformat())
    return _day[2]


def _usable(request: HttpRequest, page: str) -> bool:
    if connection.vendor != "postgresql" or not settings.REDIS_URL or request.method != "GET":
        return False
    allowed = QUERIES.get(page)
    if allowed is None:
        return False
    for name, values in request.GET.lists():
        if name not in allowed or len(values) != 1 or not allowed[name].fullmatch(values[0]):
            return False
    if getattr(request, "biller", None) is None or not request.user.is_authenticated:
        return False
    # messages waiting to be shown are shown (and consumed) by a rendering
    return "messages" not in request.COOKIES and "_messages" not in request.session


def arguments(page: str, params: dict[str, Any]) -> list[Any]:
    """:data:`FUNCTION`'s arguments for ``page`` but the session key."""
    return [page, params["biller"], params["user"], params.get("invoice")]


def fingerprint_of(page: str, params: dict[str, Any]) -> tuple[str, str] | None:
    """The page's fingerprint and the biller's row version, in the current transaction; None: no row."""
    with connection.cursor() as cursor:
        cursor.execute(FINGERPRINT_SQL, arguments(page, params))
        row = cursor.fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def cache_get(key: str) -> Any:
    """``key``'s value in the shared cache, or None — also while the cache cannot be reached: a kept page
    is a shortcut, never a reason to fail one."""
    try:
        return cache.get(key)
    except Exception as exc:
        logger.warning("page cache unavailable: %s", type(exc).__name__)
        return None


def cache_put(key: str, value: Any) -> bool:
    """Keep ``value`` under ``key`` for :data:`SECONDS`; False when the cache cannot be reached."""
    try:
        cache.set(key, value, SECONDS)
    except Exception as exc:
        logger.warning("page cache unavailable: %s", type(exc).__name__)
        return False
    return True


def kept_form(content: bytes) -> bytes | None:
    """A page as kept: its CSRF tokens replaced by MARK (None: it cannot be kept). Compressed in Redis
    (zlib, :func:`keep`); a kept answer's body is compressed by PostgreSQL (lz4, migration 0022), which
    costs the web worker nothing when it is replayed (zlib's decompression of a 50 kB page was a tenth
    of a replay's CPU time)."""
    if MARK in content:
        return None
    return _TOKEN.sub(rb"\1" + MARK + rb"\2", content)


_BASE = len(CSRF_ALLOWED_CHARS)
_UNBIASED = 256 - 256 % _BASE  # random bytes below this map onto the characters evenly
_TO_CHARACTER = bytes(ord(CSRF_ALLOWED_CHARS[b % _BASE]) for b in range(256))  # bytes.translate's table
_BIASED = bytes(range(_UNBIASED, 256))  # dropped
# Django's _mask_cipher_secret, character by character: (secret's, mask's) → the cipher's
_CIPHER = {
    (s, m): CSRF_ALLOWED_CHARS[(i + j) % _BASE]
    for i, s in enumerate(CSRF_ALLOWED_CHARS)
    for j, m in enumerate(CSRF_ALLOWED_CHARS)
}


def _random_characters(count: int) -> str:
    """``count`` characters of the CSRF alphabet, each equally likely, from one read of the system's
    random source (two if too many bytes were dropped): bytes at or above the largest multiple of the
    alphabet's size are dropped, as Django's ``get_random_string`` draws each character evenly."""
    drawn = b""
    while len(drawn) < count:
        drawn += os.urandom(2 * count).translate(_TO_CHARACTER, _BIASED)
    return drawn[:count].decode("ascii")


def csrf_token(request: HttpRequest) -> str:
    """``django.middleware.csrf.get_token``: the request's CSRF secret masked by a fresh random mask (the
    token differs in every answer), the cookie to be renewed by the middleware's ``process_response``.
    A request without a secret gets a new one, set as the cookie, as Django's ``_add_new_csrf_cookie``
    does. The same secret and token in the same format, drawn from one read of the system's random
    source (``_random_characters``) rather than from one read per character (Django's
    ``get_random_string``: 33 system calls for a token, 65 with a new secret — a fifth of a replayed
    page's CPU time)."""
    secret = request.META.get("CSRF_COOKIE")
    if not isinstance(secret, str) or len(secret) != CSRF_SECRET_LENGTH:
        drawn = _random_characters(2 * CSRF_SECRET_LENGTH)
        secret, mask = drawn[:CSRF_SECRET_LENGTH], drawn[CSRF_SECRET_LENGTH:]
        request.META["CSRF_COOKIE"] = secret
    else:
        mask = _random_characters(CSRF_SECRET_LENGTH)
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True  # as get_token does: the cookie is set or renewed
    return mask + "".join(map(_CIPHER.__getitem__, zip(secret, mask, strict=True)))


def with_token(kept: bytes, token: str) -> bytes:
    """A kept page (``kept_form``) with ``token`` in its forms."""
    return kept.replace(MARK, token.encode())


def lookup(
    request: HttpRequest, *, page: str, params: dict[str, Any]
) -> tuple[str | None, HttpResponse | None]:
    """The key the page is kept under (None: not to be kept) and, when its fingerprint is unchanged, the
    page from the cache with fresh CSRF tokens."""
    if not _usable(request, page):
        return None, None
    read = fingerprint_of(page, params)
    if read is None:
        return None, None
    fingerprint, biller_version = read
    biller = request.biller  # type: ignore[attr-defined]
    if getattr(biller, "row_version", None) != biller_version:
        return None, None  # this process's copy of the biller is older than the row: render, keep nothing
    day = today()
    parts = (
        release(),
        page,
        str(biller.pk),
        str(request.user.pk),
        translation.get_language() or "",
        day,
        request.get_full_path(),
        fingerprint,
    )
    key = "page:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    request.kept_page = KeptPage(page, params, fingerprint, day)  # type: ignore[attr-defined]
    compressed = cache_get(key)
    if not isinstance(compressed, bytes):
        return key, None
    html = zlib.decompress(compressed)
    response = HttpResponse(with_token(html, csrf_token(request)), content_type="text/html; charset=utf-8")
    response[HEADER] = "hit"
    response.kept_body = html  # type: ignore[attr-defined]  # for billing.page_replay
    return key, response


def keep(key: str, response: HttpResponse) -> None:
    """Keep a page just rendered under ``key`` (from :func:`lookup`) when it may be kept."""
    if response.status_code != 200 or response.streaming or b'nonce="' in response.content:
        return
    body = kept_form(response.content)
    if body is None:
        return
    if not cache_put(key, zlib.compress(body, 1)):
        return
    response[HEADER] = "miss"
    response.kept_body = body  # type: ignore[attr-defined]  # for billing.page_replay


# The customers written since the last run (their rows not yet folded: a partial index), a batch at a
# time, each folded into one row of its summed weight (the sums stay as they were: a snapshot sees either
# the rows or their sum). A row written while this runs is not among those deleted, so it stays; two
# runs at once delete each row once.
COMPACT_SQL = """
WITH busy AS (
  SELECT DISTINCT biller_id, customer_id FROM billing_customerchange WHERE NOT folded LIMIT %(batch)s
), gone AS (
  DELETE FROM billing_customerchange x USING busy
   WHERE x.biller_id = busy.biller_id AND x.customer_id = busy.customer_id
  RETURNING x.biller_id, x.customer_id, x.weight
)
INSERT INTO billing_customerchange (biller_id, customer_id, weight, folded)
SELECT biller_id, customer_id, sum(weight), true FROM gone GROUP BY biller_id, customer_id
"""
COMPACT_BATCH = 10_000


def changes_compact(batch: int = COMPACT_BATCH) -> int:
    """Fold the change counters of every customer written since the last run into one (by beat: the
    invoice list's fingerprint reads a customer's rows, which would otherwise grow with every payment).
    One transaction per ``batch`` customers; the number of customers folded. PostgreSQL only (no
    trigger writes them elsewhere)."""
    if connection.vendor != "postgresql":
        return 0
    folded = 0
    while True:
        with transaction.atomic(), tenancy.cross_tenant("worker"), connection.cursor() as cursor:
            cursor.execute(COMPACT_SQL, {"batch": batch})
            done = cursor.rowcount
        folded += done
        if done < batch:
            return folded
