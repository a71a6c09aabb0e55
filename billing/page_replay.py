"""A kept page served again before Django's middlewares, to the same request of the same session.

``billing.page_cache`` keeps a rendered page under its fingerprint, but to look it up a request still
goes through every middleware: the session and user rows, the tenant's transaction, the second factor,
the view's own reads — most of what a kept page costs. This middleware, placed before them
(``config.settings.core.MIDDLEWARE``), keeps the answer the whole stack gave to a GET of a kept page
(``billing.models.KeptAnswer``: body, headers, the session row it was rendered with, the fingerprint)
under a key made of everything in the request that any middleware or view may read: the path and query
string, the scheme, the client address, every header but those that change from one request to the next
of a same page (:data:`PER_REQUEST`), every cookie but the CSRF one (its tokens are made again), and the
release.

The next request with that key is answered after **one** statement, sent to PostgreSQL as a prepared
statement through libpq (:func:`kept_answer`): the database function :data:`FUNCTION` gives the kept
answer only while the session row still exists, is unexpired and holds exactly the bytes the page was
rendered with (``billing.sessions``), and the page's fingerprint — the versions of every row it shows,
the user's, the account's or membership's and the biller's included — is the one it was kept under, on
the same day. Then every input of the first answer is unchanged, and so is the answer: it is the stack's
answer replayed, never a second rule of who may see what. A logged-out, expired or changed session, a
suspended biller, a deactivated user, a removed membership, a paid bill: each changes a row the check
reads, and the request goes through the stack as usual. The answer and its check are in one place, the
database, so a replay costs one round trip (the kept answers were in Redis before: a second round trip,
a third of a replay's time on a busy host).

The CSRF cookie and tokens are made by Django's own middleware as the stack would (a new secret when
the request has none). Not replayed: anything but GET, a request without a session cookie or with
messages waiting, an answer that set any other cookie, SQLite, and any request while PostgreSQL fails
(it goes through the stack, which answers as it does). Header ``X-Page-Cache: replay``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import ResolverMatch
from django.utils import timezone
from django.utils.http import http_date
from psycopg import pq

from billing import page_cache
from billing.models import KeptAnswer
from billing.tenancy import SNAPSHOT_PATHS, tenant_scope

logger = logging.getLogger(__name__)

# Headers that differ between two requests of the same page and that nothing of the product reads.
PER_REQUEST = frozenset(
    {
        "HTTP_CACHE_CONTROL",  # a reload
        "HTTP_PRAGMA",
        "HTTP_CONNECTION",
        "HTTP_KEEP_ALIVE",
        "HTTP_REFERER",
        "HTTP_PRIORITY",
        "HTTP_IF_MODIFIED_SINCE",
        "HTTP_IF_NONE_MATCH",
        "HTTP_X_REQUEST_ID",  # config.logs: a new one is made for each request
        "HTTP_TRACEPARENT",
        "HTTP_TRACESTATE",
        "HTTP_COOKIE",  # read cookie by cookie (below)
    }
)
# Headers of the first answer not replayed as they were: made for each answer.
_NOT_KEPT = frozenset({"content-length", "x-page-cache", "date"})

FUNCTION = "payeasy_replay"
# One statement: the kept answer under the request's key, given only while it is the same session's, of
# the same day and unexpired, the session row still holds exactly the data the page was rendered with,
# and the page's fingerprint is unchanged (billing.page_cache's function, in the page's tenant). The row
# is found by its key under the "pages" bypass (the key is a hash of the session cookie among the rest,
# and the session key is compared as well); the caller's bypass is put back.
FUNCTION_SQL = f"""CREATE OR REPLACE FUNCTION {FUNCTION}(p_key text, p_session text, p_day date)
RETURNS TABLE(replay_page text, replay_headers text, replay_body bytea)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, public AS $fn$
DECLARE
  was_bypass text := COALESCE(current_setting('app.bypass', true), '');
  kept record;
  now_session text;
  now_fingerprint text;
BEGIN
  PERFORM set_config('app.bypass', 'pages', true);
  SELECT k.page, k.biller_id, k.user_pk, k.invoice_pk, k.session_data, k.fingerprint INTO kept
    FROM billing_keptanswer k
   WHERE k.key = p_key AND k.session_key = p_session AND k.day = p_day AND k.kept_until > now();
  IF FOUND THEN
    SELECT f.kept_session, f.kept_fingerprint INTO now_session, now_fingerprint
      FROM {page_cache.FUNCTION}(kept.page, kept.biller_id, kept.user_pk, kept.invoice_pk, p_session) f;
    IF now_session = kept.session_data AND now_fingerprint = kept.fingerprint THEN
      RETURN QUERY SELECT k.page::text, k.headers, k.body FROM billing_keptanswer k WHERE k.key = p_key;
    END IF;
  END IF;
  PERFORM set_config('app.bypass', was_bypass, true);
END $fn$"""  # noqa: S608
STATEMENT = b"payeasy_replay"  # its name, prepared once on each connection (libpq's)
REPLAY_SQL = f"SELECT replay_page, replay_headers, replay_body FROM {FUNCTION}($1, $2, $3)".encode()  # noqa: S608
_prepared: weakref.WeakSet[Any] = weakref.WeakSet()  # the libpq connections REPLAY_SQL is prepared on
_UPSERTED = [f.name for f in KeptAnswer._meta.concrete_fields if not f.primary_key]  # a kept key's new row


def install(connection: Any) -> None:
    """Create or replace :data:`FUNCTION` (PostgreSQL only; run by migrate after billing.page_cache's)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(FUNCTION_SQL)


def request_key(request: HttpRequest) -> str | None:
    """The key of everything in ``request`` the stack may read (None: not a request to replay)."""
    meta = request.META
    if not SNAPSHOT_PATHS.search(meta.get("PATH_INFO", "")):
        return None
    cookies = request.COOKIES
    if settings.SESSION_COOKIE_NAME not in cookies or "messages" in cookies:
        return None
    csrf = settings.CSRF_COOKIE_NAME
    parts = [
        page_cache.release(),
        meta.get("SCRIPT_NAME", ""),
        meta.get("PATH_INFO", ""),
        meta.get("QUERY_STRING", ""),
        meta.get("wsgi.url_scheme", ""),
        meta.get("REMOTE_ADDR", ""),
        *sorted(
            f"{name}={value}"
            for name, value in meta.items()
            if name[:5] == "HTTP_" and name not in PER_REQUEST and name[:9] != "HTTP_SEC_"
        ),
        *sorted(f"cookie {name}={value}" for name, value in cookies.items() if name != csrf),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _failed(result: Any) -> psycopg.Error:
    return psycopg.OperationalError((result.error_message or b"").decode(errors="replace").strip())


def kept_answer(key: str, session_key: str, day: str) -> tuple[str, str, bytes] | None:
    """The page, headers (JSON) and body kept under ``key`` when they may be given again (see
    :data:`FUNCTION_SQL`), or None: one prepared statement on the request's connection, sent through
    libpq itself (psycopg's cursor took more of the worker's time than the statement did)."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    if pgconn not in _prepared:
        result = pgconn.prepare(STATEMENT, REPLAY_SQL)
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise _failed(result)
        _prepared.add(pgconn)
    result = pgconn.exec_prepared(
        STATEMENT, [key.encode(), session_key.encode(), day.encode()], result_format=pq.Format.BINARY
    )
    if result.status != pq.ExecStatus.TUPLES_OK:
        raise _failed(result)
    if result.ntuples == 0:
        return None
    page, headers, body = (result.get_value(0, column) or b"" for column in range(3))
    return page.decode(), headers.decode(), body


class PageReplayMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.csrf = CsrfViewMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = None
        if request.method == "GET" and connection.vendor == "postgresql":
            key = request_key(request)
        if key is not None:
            replayed = self.replay(request, key)
            if replayed is not None:
                return replayed
        response = self.get_response(request)
        if key is not None:
            self.remember(request, key, response)
        return response

    def replay(self, request: HttpRequest, key: str) -> HttpResponse | None:
        session_key = request.COOKIES[settings.SESSION_COOKIE_NAME]
        try:
            answer = kept_answer(key, session_key, page_cache.today())
        except Exception as exc:
            logger.warning("kept page not checked: %s", type(exc).__name__)
            connection.close()  # whatever state the failure left it in: the stack opens a new one
            return None
        if answer is None:
            return None
        page, headers, body = answer
        self.csrf.process_request(request)  # the cookie's secret, or a new one: as the stack does
        response = HttpResponse(page_cache.with_token(body, page_cache.csrf_token(request)))
        for name, value in json.loads(headers):
            response[name] = value
        if "Expires" in response:
            response["Expires"] = http_date(time.time())
        response[page_cache.HEADER] = "replay"
        response["Content-Length"] = str(len(response.content))  # as CommonMiddleware does
        namespace, _, url_name = page.partition(":")
        request.resolver_match = ResolverMatch(  # for the access log and the metrics: the page's name
            self.__call__, (), {}, url_name=url_name, app_names=[namespace], namespaces=[namespace]
        )
        self.csrf.process_response(request, response)
        return response

    def remember(self, request: HttpRequest, key: str, response: HttpResponse) -> None:
        kept = getattr(request, "kept_page", None)
        body = getattr(response, "kept_body", None)
        session = getattr(request, "session", None)
        data = getattr(session, "loaded_data", None)
        if kept is None or body is None or data is None or response.status_code != 200:
            return
        if any(name != settings.CSRF_COOKIE_NAME for name in response.cookies):
            return  # the answer changed the session, the messages or the language: not the same again
        headers = [(k, v) for k, v in response.items() if k.lower() not in _NOT_KEPT]
        if any("nonce-" in value for _, value in headers):
            return
        answer = KeptAnswer(
            key=key,
            biller_id=kept.params["biller"],
            page=kept.page,
            user_pk=kept.params["user"],
            invoice_pk=kept.params.get("invoice"),
            session_key=request.COOKIES[settings.SESSION_COOKIE_NAME],
            session_data=data,
            fingerprint=kept.fingerprint,
            day=datetime.date.fromisoformat(kept.day),
            headers=json.dumps(headers, ensure_ascii=False),
            body=body,
            kept_until=timezone.now() + datetime.timedelta(seconds=page_cache.SECONDS),
        )
        try:
            with tenant_scope(answer.biller_id):
                KeptAnswer.objects.bulk_create(
                    [answer], update_conflicts=True, unique_fields=["key"], update_fields=_UPSERTED
                )
        except Exception as exc:  # a shortcut for the next request, never a reason to fail this one
            logger.warning("kept page not kept: %s", type(exc).__name__)
