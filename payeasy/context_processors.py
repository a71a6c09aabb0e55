from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def live(request: HttpRequest) -> dict[str, Any]:
    """``live_events``: open pages listen to server-sent events (Redis), else they poll (payeasy.live)."""
    return {"live_events": bool(settings.REDIS_URL)}
