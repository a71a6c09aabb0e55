"""The yardstick's one page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path


def ping(request: HttpRequest) -> HttpResponse:
    """A short response and nothing else: the floor of a Django page on this machine."""
    return HttpResponse(b"ok\n", content_type="text/plain")


urlpatterns = [path("ping/", ping)]
