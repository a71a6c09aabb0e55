"""The Content-Security-Policy's ``form-action`` for pages whose form leaves this site.

The site-wide policy (``settings.SECURE_CSP``, config/settings/security.py) lets forms post to this site
only. Two pages post elsewhere, to an address that lives in the database or in a hand-off:

- the 情報リンク hand-off page posts the envelope to its bank's entry URL (``HandoffEndpoint.entry_url``,
  per bank, set by iDC staff); in host mode the sandbox bank's entry is on ``PORTAL_BASE_URL``;
- the sandbox bank's confirm page posts to itself, and the bank answers with a redirect to the payer's
  return URL, which on a tenant host is another origin (browsers apply ``form-action`` to redirects).

Each such response gets the site-wide policy with that one origin added to ``form-action``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csp import csp_override

FORM_ACTION = "form-action"


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL; None for a path on this site."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def allow_form_action(response: HttpResponse, *urls: str) -> HttpResponse:
    """``response`` with the site-wide policy whose ``form-action`` also allows the origins of ``urls``
    (paths on this site are already allowed by ``'self'``). Without a site-wide policy: unchanged."""
    site: dict[str, Any] = dict(settings.SECURE_CSP or {})
    if not site:
        return response
    allowed: list[str] = [str(value) for value in site.get(FORM_ACTION) or []]
    for url in urls:
        found = origin_of(url)
        if found is not None and found not in allowed:
            allowed.append(found)
    policy = {**site, FORM_ACTION: allowed}

    def view(_request: HttpRequest) -> HttpResponse:
        return response

    # Django's per-view override, applied to this one response: the middleware still fills in the nonce.
    return csp_override(policy)(view)(HttpRequest())
