"""Tenant resolution: which biller a request is for.

A tenant is reached at ``<slug>.<PORTAL_DOMAIN>`` (host mode) or at
``/b/<slug>/`` on any host (path mode, for single-host deployments and
development). Both lead to the same tenant URLconf (``settings.TENANT_URLCONF``):
in path mode the middleware moves ``/b/<slug>`` into the script prefix, so
every ``reverse()`` inside the tenant produces URLs of the mode the request
came in. Unknown and suspended billers answer 404.

The tenant is ``request.biller`` and nothing else: no thread-local "current
tenant". Domain code takes the biller as an argument.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.urls import get_script_prefix, reverse, set_script_prefix

from billing.models import Biller, User


class TenantRequest(HttpRequest):
    """What the views see after the middlewares: a console user and, on tenant pages, the biller."""

    user: User
    biller: Biller | None
    tenant_mode: str | None


PATH_PREFIX = re.compile(r"^/b/(?P<slug>[a-z0-9][a-z0-9-]{1,38}[a-z0-9])(?P<rest>/.*)?$")


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


def biller_for_slug(slug: str) -> Biller:
    biller = Biller.objects.filter(slug=slug).exclude(status=Biller.Status.SUSPENDED).first()
    if biller is None:
        raise Http404("No such biller.")
    return biller


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.biller = None  # type: ignore[attr-defined]
        request.tenant_mode = None  # type: ignore[attr-defined]
        slug = _host_slug(request)
        if slug is not None:
            if slug in {"www"}:
                return self.get_response(request)
            request.biller = biller_for_slug(slug)  # type: ignore[attr-defined]
            request.tenant_mode = "host"  # type: ignore[attr-defined]
            request.urlconf = settings.TENANT_URLCONF  # type: ignore[attr-defined]
            return self.get_response(request)

        match = PATH_PREFIX.match(request.path_info)
        if match is None:
            return self.get_response(request)
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
            return self.get_response(request)
        finally:
            set_script_prefix(outer_prefix)


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
