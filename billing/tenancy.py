"""Tenant resolution: which biller a request is for.

A tenant is reached at ``<slug>.<PORTAL_DOMAIN>`` (host mode) or at
``/b/<slug>/`` on any host (path mode, for single-host deployments and
development). Both lead to the same tenant URLconf (``settings.TENANT_URLCONF``):
in path mode the middleware moves ``/b/<slug>`` into the script prefix, so
every ``reverse()`` inside the tenant produces URLs of the mode the request
came in. Unknown and suspended billers answer 404.

The tenant is ``request.biller`` and nothing else: no thread-local "current
tenant". Domain code takes the biller as an argument.

The database checks it too (PostgreSQL row-level security, billing.dbsecurity): every request runs in
a transaction whose ``app.biller_id`` is its tenant (``tenant_scope``; none outside a tenant), and a
tenant table shows and takes only that tenant's rows. The paths that must cross tenants (the line, the
workers, the staff console, management commands) say so by name (``cross_tenant``); nothing else can.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.urls import get_script_prefix, reverse, set_script_prefix

from billing.models import Biller, User

# the named cross-tenant paths, shared with the models' ``cross_tenant`` (read here by tests and callers)
from billing.scoping import BYPASS_REASONS, CrossTenantRefused, bypass_reason_check  # noqa: F401


class TenantRequest(HttpRequest):
    """What the views see after the middlewares: a console user and, on tenant pages, the biller."""

    user: User
    biller: Biller | None
    tenant_mode: str | None


# DOTALL: a path with a newline in it (%0A) is still the tenant's (its API answers 404 in its own shape)
PATH_PREFIX = re.compile(r"^/b/(?P<slug>[a-z0-9][a-z0-9-]{1,38}[a-z0-9])(?P<rest>/.*)?\Z", re.DOTALL)


def _host_slug(request: HttpRequest) -> str | None:
    domain = settings.PORTAL_DOMAIN
    if not domain:
        return None
    host = request.get_host().lower().rsplit(":", 1)[0] if "]" not in request.get_host() else ""
    suffix = "." + domain
    if host.endswith(suffix):
        label = host[: -len(suffix)]
        if label and "." not in label:
            return label
    return None


# Every tenant request reads its biller by slug; billers change rarely. Each process keeps what it read
# for BILLER_SECONDS: a suspension (or any change of a biller) shows in every process within that time,
# at once in the process that saved it (``_biller_saved``). Each request gets a copy of its own.
BILLER_SECONDS = 2.0
_billers: dict[str, tuple[Biller, float]] = {}


def biller_for_slug(slug: str) -> Biller:
    now = time.monotonic()
    held = _billers.get(slug)
    if held is not None and now - held[1] < BILLER_SECONDS:
        biller = _copy(held[0])
    else:
        found = _billers_by_slug().filter(slug=slug).first()
        if found is None:
            _billers.pop(slug, None)
            raise Http404("No such biller.")
        if len(_billers) >= 10_000:  # a bound, not a working size: hundreds of billers per installation
            _billers.clear()
        _billers[slug] = (_copy(found), now)
        biller = found
    if biller.status == Biller.Status.SUSPENDED:
        raise Http404("No such biller.")
    return biller


def _billers_by_slug() -> QuerySet[Biller]:
    """Billers with the version of the row they were read from (``row_version``, PostgreSQL's ``xmin``):
    a kept page is kept only when the copy it was rendered with is the row (billing.page_cache)."""
    if connection.vendor != "postgresql":
        return Biller.objects.all()
    return Biller.objects.annotate(row_version=RawSQL('"billing_biller"."xmin"::text', ()))


def _copy(biller: Biller) -> Biller:
    clone = copy.copy(biller)
    clone._state = copy.copy(biller._state)
    clone._state.fields_cache = {}
    return clone


def forget_billers() -> None:
    """Drop every biller this process holds (tests start each from the database)."""
    _billers.clear()


@receiver(post_save, sender=Biller)
def _biller_saved(sender: Any, instance: Biller, **kwargs: Any) -> None:
    forget_billers()  # the slug may have changed too; the next request of each biller reads it again


def _settings_swap(biller_id: str, bypass: str, *, local: bool) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(current_setting('app.biller_id', true), ''), "
            "COALESCE(current_setting('app.bypass', true), ''), "
            "set_config('app.biller_id', %s, %s), set_config('app.bypass', %s, %s)",
            [biller_id, local, bypass, local],
        )
        row = cursor.fetchone()
    return row[0], row[1]


# The pages billing.page_cache keeps (the portal's bill page and invoice list, the console's invoice
# list): their GET runs in one snapshot (REPEATABLE READ), so that the fingerprint read in it describes
# exactly the rows the page is rendered from. Also where billing.page_replay looks for a kept page.
SNAPSHOT_PATHS = re.compile(r"/(?:my/invoices/(?:[0-9]+/)?|console/invoices/)\Z")


@contextmanager
def tenant_scope(biller: Biller | int | None, *, snapshot: bool = False) -> Iterator[None]:
    """Run the block in a transaction whose tenant is ``biller`` (None: no tenant, so no tenant row is
    visible), whatever cross-tenant bypass the connection had. ``set_config(…, true)``: the setting ends
    with the transaction, and the previous one is put back when the block is nested in another.
    ``snapshot``: every statement of the block sees the database as of its first (REPEATABLE READ; for
    reading only, and not when nested in a transaction already begun)."""
    if connection.vendor != "postgresql":
        yield
        return
    biller_id = "" if biller is None else str(biller if isinstance(biller, int) else biller.pk)
    nested = connection.in_atomic_block
    with transaction.atomic():
        if snapshot and not nested:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        previous = _settings_swap(biller_id, "", local=True)
        yield
        if nested:
            _settings_swap(*previous, local=True)


@contextmanager
def cross_tenant(reason: str) -> Iterator[None]:
    """The one way across tenants: every tenant row is visible and writable in the block, which is
    named by ``reason`` (one of ``BYPASS_REASONS``). Inside a transaction the setting is local to it;
    outside one, it is the connection's until the block ends (and the connection is closed if it cannot
    be put back)."""
    bypass_reason_check(reason)
    if connection.vendor != "postgresql":
        yield
        return
    local = connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(current_setting('app.bypass', true), ''), set_config('app.bypass', %s, %s)",
            [reason, local],
        )
        previous = cursor.fetchone()[0]
    try:
        yield
    finally:
        if local and connection.needs_rollback:
            pass  # the rollback the enclosing atomic() is about to do puts the setting back
        else:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('app.bypass', %s, %s)", [previous, local])
            except Exception:
                if not connection.in_atomic_block:
                    connection.close()  # a connection must not keep a bypass nobody asked for
                    raise
                # inside a failed transaction: its rollback puts the setting back


_task_bypasses: dict[str, ExitStack] = {}


def task_started(task_id: str) -> None:
    """Celery's task_prerun (config/celery.py): the task runs under ``cross_tenant("worker")``."""
    stack = ExitStack()
    stack.enter_context(cross_tenant("worker"))
    _task_bypasses[task_id] = stack


def task_finished(task_id: str) -> None:
    stack = _task_bypasses.pop(task_id, None)
    if stack is not None:
        stack.close()


def bind_cross_tenant(reason: str) -> None:
    """Every database connection of this process crosses tenants for ``reason`` from now on: for
    processes that are cross-tenant by nature (the commserver answers for every biller on the line; a
    worker takes ids of any tenant; a management command). Set once per connection when it opens (and
    now on the open one), nothing per query."""
    bypass_reason_check(reason)
    from django.db.backends.signals import connection_created

    def _bypass(sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('app.bypass', %s, false)", [reason])

    connection_created.connect(_bypass, weak=False, dispatch_uid=f"payeasy-cross-tenant-{reason}")
    if connection.vendor == "postgresql" and connection.connection is not None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('app.bypass', %s, false)", [reason])


@contextmanager
def tenant_session(biller: Biller | None) -> Iterator[None]:
    """The tenant as the connection's setting (not the transaction's) for the block, whatever bypass it
    had: for work of one tenant that commits as it goes (a command's import) and for the chunks of a
    streaming body, which wait between database reads and must not hold a transaction open meanwhile.
    The previous setting is put back; a connection where that fails is closed."""
    if connection.vendor != "postgresql":
        yield
        return
    previous = _settings_swap("" if biller is None else str(biller.pk), "", local=False)
    try:
        yield
    finally:
        try:
            _settings_swap(*previous, local=False)
        except Exception:
            if not connection.in_atomic_block:
                connection.close()
            raise


def _scoped_stream(content: Iterator[bytes], biller: Biller | None) -> Iterator[bytes]:
    """A streaming body (the payment-status event stream): each chunk is produced in the tenant's scope."""
    iterator = iter(content)
    while True:
        with tenant_session(biller):
            try:
                chunk = next(iterator)
            except StopIteration:
                return
        yield chunk


def _respond_in_scope(
    get_response: Callable[[HttpRequest], HttpResponse], request: HttpRequest, biller: Biller | None
) -> HttpResponse:
    """A tenant's request runs in one transaction whose setting is its tenant (``tenant_scope``). A page
    outside any tenant runs as before, without a transaction of its own (the sandbox bank waits on the
    line while the commserver writes), with no tenant and no bypass set on the connection for its
    duration (``tenant_session``), unless its part of the site crosses tenants (``process_view``)."""
    if biller is None:
        with tenant_session(None):
            response = get_response(request)
    else:
        snapshot = request.method == "GET" and SNAPSHOT_PATHS.search(request.path_info) is not None
        with tenant_scope(biller, snapshot=snapshot):
            response = get_response(request)
    if getattr(response, "streaming", False) and not getattr(response, "is_async", False):
        response.streaming_content = _scoped_stream(response.streaming_content, biller)  # type: ignore[attr-defined]
    return response


# Pages outside any tenant (the root URLconf) that cross tenants, by URL namespace; the root URLconf's
# own pages (sign-in, sign-out, invitations, the home page that lists a user's billers) are "accounts".
ROOT_NAMESPACES_CROSSING_TENANTS = {"staff": "staff", "admin": "staff", "sandbox_bank": "payer"}
ROOT_PAGES_REASON = "accounts"


def _root_reason(request: HttpRequest) -> str | None:
    match = request.resolver_match
    if match is None:
        return None
    if match.namespaces:
        return ROOT_NAMESPACES_CROSSING_TENANTS.get(match.namespaces[0])
    return ROOT_PAGES_REASON


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.biller = None  # type: ignore[attr-defined]
        request.tenant_mode = None  # type: ignore[attr-defined]
        slug = _host_slug(request)
        if slug is not None:
            if slug in {"www"}:
                return _respond_in_scope(self.get_response, request, None)
            request.biller = biller_for_slug(slug)  # type: ignore[attr-defined]
            request.tenant_mode = "host"  # type: ignore[attr-defined]
            request.urlconf = settings.TENANT_URLCONF  # type: ignore[attr-defined]
            return _respond_in_scope(self.get_response, request, request.biller)  # type: ignore[attr-defined]

        match = PATH_PREFIX.match(request.path_info)
        if match is None:
            return _respond_in_scope(self.get_response, request, None)
        if match["rest"] is None:
            return HttpResponsePermanentRedirect(request.path + "/")
        request.biller = biller_for_slug(match["slug"])  # type: ignore[attr-defined]
        request.tenant_mode = "path"  # type: ignore[attr-defined]
        request.urlconf = settings.TENANT_URLCONF  # type: ignore[attr-defined]
        outer_prefix = get_script_prefix()
        # STATIC_URL is relative ("static/"): Django prefixes it with the script prefix of its first read
        # and keeps that for the process. Read it under the outer prefix, before the tenant's is set, or
        # a tenant page rendered first would move every static URL under /b/<slug>/ (404s, no CSS, no JS).
        settings.STATIC_URL  # noqa: B018
        request.root_script_prefix = outer_prefix  # type: ignore[attr-defined]
        request.path_info = match["rest"]
        set_script_prefix(outer_prefix.rstrip("/") + f"/b/{match['slug']}/")
        try:
            return _respond_in_scope(self.get_response, request, request.biller)  # type: ignore[attr-defined]
        finally:
            set_script_prefix(outer_prefix)

    def process_view(self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any) -> None:
        """A page outside any tenant crosses tenants by the named path of its part of the site (the staff
        console, the accounts pages): set on the connection for the request (``tenant_session`` puts
        the previous setting back when the request ends)."""
        if getattr(request, "biller", None) is not None or connection.vendor != "postgresql":
            return None
        reason = _root_reason(request)
        if reason is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('app.bypass', %s, false)", [reason])
        return None


@contextmanager
def _script_prefix(prefix: str) -> Iterator[None]:
    saved = get_script_prefix()
    set_script_prefix(prefix)
    try:
        yield
    finally:
        set_script_prefix(saved)


def root_reverse(name: str, *, request: HttpRequest | None = None, **kwargs: Any) -> str:
    """A URL of the root URLconf (staff console, accounts) from anywhere, tenant pages included."""
    prefix = getattr(request, "root_script_prefix", None) or "/"
    with _script_prefix(prefix):
        return reverse(name, urlconf=settings.ROOT_URLCONF, **kwargs)


def tenant_reverse(biller: Biller, name: str, **kwargs: Any) -> str:
    """A path inside a biller's tenant URLconf, in path mode (``/b/<slug>/…``), from anywhere."""
    with _script_prefix(f"/b/{biller.slug}/"):
        return reverse(name, urlconf=settings.TENANT_URLCONF, **kwargs)
