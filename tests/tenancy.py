"""The cross-tenant check every view and API test module reuses.

Another tenant's object must answer exactly like a missing one: same status,
same body once the id in it is replaced. ``assert_cross_tenant_hidden``
requests the URL of tenant B's object as tenant A's user, and the URL of an
id that does not exist, and compares the two.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.test import Client

MISSING_ID = 987654321


def _normalise(body: bytes, *ids: Any) -> bytes:
    text = body.decode("utf-8", "replace")
    for value in ids:
        text = re.sub(rf"\b{re.escape(str(value))}\b", "<ID>", text)
    # CSRF tokens differ on every render
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken" value=""', text)
    return text.encode()


def assert_cross_tenant_hidden(
    client: Client,
    url_for: Callable[[Any], str],
    other_tenant_id: Any,
    *,
    method: str = "get",
    data: dict[str, Any] | None = None,
    missing_id: Any = MISSING_ID,
    **extra: Any,
) -> None:
    send = getattr(client, method)
    kwargs: dict[str, Any] = dict(extra)
    if data is not None:
        kwargs["data"] = data
        if method != "get" and "content_type" not in kwargs and url_for(0).find("/api/") >= 0:
            kwargs["content_type"] = "application/json"
    other = send(url_for(other_tenant_id), **kwargs)
    missing = send(url_for(missing_id), **kwargs)
    assert other.status_code == 404, f"another tenant's object answered {other.status_code}, not 404"
    assert missing.status_code == 404, f"a missing object answered {missing.status_code}, not 404"
    # both ids out of both pages: an id such as 1 also stands in text both pages share (initial-scale=1)
    ids = (other_tenant_id, missing_id)
    assert _normalise(other.content, *ids) == _normalise(missing.content, *ids), (
        "another tenant's object and a missing one answer differently"
    )
