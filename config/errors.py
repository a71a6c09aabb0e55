"""What the site answers when a request fails past its view's own handling (``handler500`` of both
URLconfs).

A request that failed because PostgreSQL could not be reached or answered in time (a restart, a
fail-over, a statement timeout) is answered **503 Service Unavailable** with ``Retry-After``: the load
balancer and the browser learn that it is worth asking again, and the customer reads that nothing was
lost, not that something broke. Anything else is a 500. Both pages are rendered from a standalone
template without the request's context processors, so that they render without the database; both
show the request id (``config.logs``), which is on every log line of the request, for the support desk.
A request of the API gets the API's one error shape instead (billing.api.errors).
"""

from __future__ import annotations

import sys

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext as _

from billing.api.errors import error_body

RETRY_AFTER_SECONDS = 5


def database_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` (or an error it was raised from) says the database could not be used at all —
    connection refused or lost, server shutting down, statement cancelled — rather than that a
    statement was wrong."""
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, OperationalError | InterfaceError):
            return True
        if isinstance(error, DatabaseError):
            return False  # integrity, programming and data errors are the product's, not the server's
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def server_error(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    """``handler500``: a 503 with ``Retry-After`` while the database is unavailable, else a 500."""
    unavailable = database_unavailable(sys.exc_info()[1])
    status = 503 if unavailable else 500
    request_id = str(getattr(request, "request_id", "") or "")
    if "/api/" in request.path:
        code, message = (
            ("unavailable", _("The service is temporarily unavailable. Please try again shortly."))
            if unavailable
            else ("server_error", _("The server could not complete the request."))
        )
        body = error_body(code, message)
        body["error"]["request_id"] = request_id
        response: HttpResponse = JsonResponse(body, status=status)
    else:
        template = loader.get_template("503.html" if unavailable else "500.html")
        response = HttpResponse(template.render({"request_id": request_id}), status=status)
    if unavailable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response
