"""gunicorn's configuration for the portal in production: ``gunicorn -c config/gunicorn.conf.py``.

It serves ``config.wsgi:application`` (set here: no module argument is needed) with sync workers.
Every value below that an operator may need to change comes from the environment:

``WEB_BIND`` (default ``127.0.0.1:8000``)
    Where to listen: ``HOST:PORT``, ``[IPv6]:PORT``, ``unix:/path/to.sock``; several separated by commas.
    The default serves the loopback only: a reverse proxy (TLS, static files) stands in front.
``WEB_WORKERS`` (default ``2 × cores + 1``, at most ``WEB_WORKERS_MAX``)
    How many worker processes. Each serves one request at a time (``worker_class = "sync"``): the
    pages are short, database-bound requests, and a sync worker that hangs is killed and replaced
    after ``timeout`` instead of holding a thread of a busy process.
``WEB_WORKERS_MAX`` (default 12)
    The cap of the default above: each worker holds a PostgreSQL connection (``DATABASE_CONN_MAX_AGE``),
    and a many-core host must not take every connection the database allows.
``WEB_TIMEOUT`` (default 30 s)
    A worker silent for this long (a request stuck, a database that does not answer) is killed and
    replaced. ``WEB_GRACEFUL_TIMEOUT`` (default 30 s): how long a worker may finish its requests after
    a restart (``HUP``) or a stop (``TERM``) before it is killed.
``WEB_KEEPALIVE`` (default 5 s)
    How long an idle keep-alive connection from the proxy stays open.
``WEB_MAX_REQUESTS`` (default 2000) and ``WEB_MAX_REQUESTS_JITTER`` (default 200)
    A worker is replaced after that many requests plus a random 0–jitter, so that a slow leak never
    grows without bound and the workers do not all restart at the same moment. ``0`` turns it off.

The access log goes to standard output, one line a request: client, method and path with query,
status, response bytes, duration in milliseconds, the request id the proxy sent (``X-Request-ID``) and
the user agent. The error log (gunicorn's own messages) goes to standard error.

``preload_app = False``: each worker imports the application itself, after the fork. No database
connection, Redis pool or thread is shared between workers, and a ``HUP`` reloads new code without a
restart of the master. gunicorn's control socket (``gunicornc``, gunicorn 25 and later) is off.
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int, minimum: int = 0) -> int:
    """An integer from the environment; a malformed one stops gunicorn with the variable's name."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, not {value!r}") from None
    if number < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, not {number}")
    return number


def default_workers(cores: int, cap: int) -> int:
    """``2 × cores + 1``, at most ``cap`` (and at least 1)."""
    return max(1, min(2 * cores + 1, cap))


wsgi_app = "config.wsgi:application"

bind = [part.strip() for part in os.environ.get("WEB_BIND", "127.0.0.1:8000").split(",") if part.strip()]
workers = _int(
    "WEB_WORKERS",
    default_workers(multiprocessing.cpu_count(), _int("WEB_WORKERS_MAX", 12, minimum=1)),
    minimum=1,
)
worker_class = "sync"
timeout = _int("WEB_TIMEOUT", 30, minimum=1)
graceful_timeout = _int("WEB_GRACEFUL_TIMEOUT", 30, minimum=1)
keepalive = _int("WEB_KEEPALIVE", 5)
max_requests = _int("WEB_MAX_REQUESTS", 2000)
max_requests_jitter = _int("WEB_MAX_REQUESTS_JITTER", 200) if max_requests else 0
preload_app = False
# gunicorn ≥ 25 opens a control socket (``gunicornc``) at ~/.gunicorn/gunicorn.ctl by default: one path
# per user, which two instances on one host would share. Off; older versions ignore the setting.
control_socket_disable = True

# No access log of gunicorn's own: the product writes one JSON line per request (``payeasy.access``, from
# config.logs.RequestIdMiddleware) with the URL's name instead of its path — paths carry tenant slugs and
# pay-later tokens, query strings search terms — and with the request, trace and tenant ids.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("WEB_LOG_LEVEL", "info")


def post_worker_init(worker: object) -> None:
    """After a worker loaded the application: resolve the URLconfs and compile the page templates once
    (Django does both on first use, which would fall on a customer's request), then move everything
    loaded so far out of the garbage collector's view (``gc.freeze``): a full collection then walks
    only what requests allocate, not the ~150,000 long-lived objects of Django, the URLconfs and the
    templates — it was ~6 % of a page's CPU time."""
    import gc

    from config.warmup import warm_up

    warm_up()
    gc.collect()
    gc.freeze()
