"""A kept page served again before Django's middlewares, to the same request of the same session.

``billing.page_cache`` keeps a rendered page under its fingerprint, but to look it up a request still
goes through every middleware: the session and user rows, the tenant's transaction, the second factor,
the view's own reads — most of what a kept page costs. This middleware, placed before them
(``config.settings.core.MIDDLEWARE``), remembers the answer the whole stack gave to a GET of a kept page
(``Replay``: body, headers, the session row it was rendered with, the fingerprint) under a key made of
everything in the request that any middleware or view may read: the path and query string, the scheme,
the client address, every header but those that change from one request to the next of a same page
(:data:`PER_REQUEST`), every cookie but the CSRF one (its tokens are made again), and the release.

The next request with that key is answered from the entry after **one** round trip to PostgreSQL, in a
transaction of the page's tenant: the session row must still exist, be unexpired and hold exactly the
bytes the page was rendered with (``billing.sessions``), and the page's fingerprint — the versions of
every row it shows, the user's, the account's or membership's and the biller's included — must be the
one it was kept under, on the same day. Then every input of the first answer is unchanged, and so is the
answer: it is the stack's answer replayed, never a second rule of who may see what. A logged-out,
expired or changed session, a suspended biller, a deactivated user, a removed membership, a paid bill:
each changes a row the check reads, and the request goes through the stack as usual.

The CSRF cookie and tokens are made by Django's own middleware as the stack would (a new secret when
the request has none). Not replayed: anything but GET, a request without a session cookie or with
messages waiting, an answer that set any other cookie, and any request while Redis or PostgreSQL fails
(it goes through the stack, which answers as it does). Header ``X-Page-Cache: replay``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.urls import ResolverMatch
from django.utils import timezone
from django.utils.http import http_date

from billing import page_cache
from billing.tenancy import SNAPSHOT_PATHS

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

_ONLY_WHEN_ASKED = 1 << 30


@dataclass(frozen=True)
class Replay:
    """A kept answer and what must still hold to give it again."""

    kept: page_cache.KeptPage  # the page, its fingerprint and day
    session_key: str
    session_data: str
    headers: tuple[tuple[str, str], ...]
    body: bytes  # billing.page_cache.kept_form


def request_key(request: HttpRequest) -> str | None:
    """The key of everything in ``request`` the stack may read (None: not a request to replay)."""
    meta = request.META
    if not SNAPSHOT_PATHS.search(meta.get("PATH_INFO", "")):
        return None
    cookies = request.COOKIES
    if settings.SESSION_COOKIE_NAME not in cookies or "messages" in cookies:
        return None
    parts = [
        page_cache.release(),
        meta.get("SCRIPT_NAME", ""),
        meta.get("PATH_INFO", ""),
        meta.get("QUERY_STRING", ""),
        meta.get("wsgi.url_scheme", ""),
        meta.get("REMOTE_ADDR", ""),
    ]
    for name in sorted(meta):
        if name.startswith("HTTP_") and name not in PER_REQUEST and not name.startswith("HTTP_SEC_"):
            parts.append(f"{name}={meta[name]}")
    for name in sorted(cookies):
        if name != settings.CSRF_COOKIE_NAME:
            parts.append(f"cookie {name}={cookies[name]}")
    return "page:replay:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _current(entry: Replay) -> tuple[Any, ...] | None:
    """The session row's data and the page's fingerprint now: one prepared statement
    (``billing.page_cache.FUNCTION``) on the request's connection."""
    connection.ensure_connection()
    raw = connection.connection
    # Django opens connections with prepare_threshold None: psycopg would not prepare even when asked.
    # Asked only here; every other statement runs as Django runs it.
    raw.prepare_threshold = _ONLY_WHEN_ASKED
    arguments = [*page_cache.arguments(entry.kept.page, entry.kept.params), entry.session_key]
    with psycopg.Cursor(raw) as cursor:  # server-side binding, so that it can be prepared
        cursor.execute(page_cache.CHECK_SQL, arguments, prepare=True)
        return cursor.fetchone()


class PageReplayMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.csrf = CsrfViewMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = None
        if request.method == "GET" and connection.vendor == "postgresql" and settings.REDIS_URL:
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
        entry = page_cache.cache_get(key)
        if not isinstance(entry, Replay) or entry.kept.day != timezone.localdate().isoformat():
            return None
        try:
            row = _current(entry)
        except Exception as exc:
            logger.warning("kept page not checked: %s", type(exc).__name__)
            connection.close()  # whatever state the failure left it in: the stack opens a new one
            return None
        if row is None or row[0] != entry.session_data or row[1] != entry.kept.fingerprint:
            return None
        self.csrf.process_request(request)  # the cookie's secret, or a new one: as the stack does
        response = HttpResponse(page_cache.with_token(entry.body, get_token(request)))
        for name, value in entry.headers:
            response[name] = value
        if "Expires" in response:
            response["Expires"] = http_date(time.time())
        response[page_cache.HEADER] = "replay"
        response["Content-Length"] = str(len(response.content))  # as CommonMiddleware does
        namespace, _, url_name = entry.kept.page.partition(":")
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
        headers = tuple((k, v) for k, v in response.items() if k.lower() not in _NOT_KEPT)
        if any("nonce-" in value for _, value in headers):
            return
        entry = Replay(
            kept=kept,
            session_key=request.COOKIES[settings.SESSION_COOKIE_NAME],
            session_data=data,
            headers=headers,
            body=body,
        )
        page_cache.cache_put(key, entry)
