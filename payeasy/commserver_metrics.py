"""The communication server's own figures: Prometheus metrics served by the commserver process, and the
last minute's acknowledgement latency for its heartbeat row (payeasy.line_nodes).

- ``payeasy_commserver_ack_latency_seconds{message_type}``: from a frame's arrival (its bytes read off
  the connection) to its answer handed to the connection, stored or 9001;
- ``payeasy_commserver_frames_total{message_type,response_code}``: frames answered (``closed``: the
  connection was closed instead, a header that cannot be read);
- ``payeasy_commserver_role``: 1 while this process is the active one (holds the line lock, listens and
  stores), 0 while it stands by or, its lock session broken, answers 9001.

Labels are the message type (the spec's, or ``other``) and the response code (the spec's §4 codes): never
a tenant, a biller code, a customer number or an amount.

Served on ``COMMSERVER_METRICS_ADDR`` (HOST:PORT; empty: off) by a thread of the process, answering
``GET /metrics`` — to ``Authorization: Bearer <PAYEASY_METRICS_TOKEN>`` only when that token is set, as the
web's ``/metrics`` (404 to anyone else). prometheus_client's own ``start_http_server`` has no such check.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from payeasy.metrics import bearer_matches, message_type_label

log = logging.getLogger("payeasy.commserver")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0)
WINDOW_SECONDS = 60
# the minute's latencies are counted in fixed buckets (10 % apart, 0.05 ms to ~30 s): a percentile is
# read from one second's counts per second of the window, not from every frame's figure
_MINUTE_BOUNDS = tuple(0.05 * 1.1**i for i in range(140))


def frame_type_label(body: bytes) -> str:
    """The frame's message type when it is one of the spec's, otherwise ``other``."""
    try:
        value = body[:4].decode("ascii")
    except UnicodeDecodeError:
        return "other"
    return message_type_label(value)


class LineStats:
    """What the commserver's loop records for every answer (cheap: a histogram observation, a counter,
    one bucket count), read by the metrics endpoint and the heartbeat thread."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "payeasy_commserver_ack_latency_seconds",
            "Time from a frame's arrival to its answer written, by message type.",
            ["message_type"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.frames = Counter(
            "payeasy_commserver_frames",
            "Frames answered, by message type and response code (closed: the connection was closed).",
            ["message_type", "response_code"],
            registry=self.registry,
        )
        self.role = Gauge(
            "payeasy_commserver_role",
            "1 while this commserver is the active one (holds the line lock and listens), 0 otherwise.",
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._seconds: dict[int, list[int]] = {}  # second → counts per _MINUTE_BOUNDS bucket (+1 over)

    def answered(self, body: bytes, code: str, arrived: float, now: float | None = None) -> None:
        """One frame answered ``code`` (empty: connection closed) ``now - arrived`` seconds after it came."""
        now = time.monotonic() if now is None else now
        seconds = max(0.0, now - arrived)
        kind = frame_type_label(body)
        self.latency.labels(message_type=kind).observe(seconds)
        self.frames.labels(message_type=kind, response_code=code or "closed").inc()
        bucket = bisect.bisect_left(_MINUTE_BOUNDS, seconds * 1000)
        second = int(now)
        with self._lock:
            counts = self._seconds.get(second)
            if counts is None:
                counts = self._seconds[second] = [0] * (len(_MINUTE_BOUNDS) + 1)
                for old in [s for s in self._seconds if s <= second - WINDOW_SECONDS]:
                    del self._seconds[old]
            counts[bucket] += 1

    def set_role(self, active: bool) -> None:
        self.role.set(1 if active else 0)

    def last_minute(self, now: float | None = None) -> tuple[int, float | None, float | None]:
        """Frames answered in the last minute and their latency's p50 and p99 in ms (None: none),
        each to within 10 %: the upper bound of the bucket it falls in."""
        now = time.monotonic() if now is None else now
        total = [0] * (len(_MINUTE_BOUNDS) + 1)
        with self._lock:
            for second, counts in self._seconds.items():
                if second > now - WINDOW_SECONDS:
                    for i, n in enumerate(counts):
                        if n:
                            total[i] += n
        frames = sum(total)
        if not frames:
            return 0, None, None
        return frames, _percentile(total, frames, 0.50), _percentile(total, frames, 0.99)


def _percentile(counts: list[int], frames: int, q: float) -> float:
    rank = q * frames
    seen = 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank and n:
            return round(_MINUTE_BOUNDS[min(i, len(_MINUTE_BOUNDS) - 1)], 3)
    return round(_MINUTE_BOUNDS[-1], 3)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line each."""


def metrics_app(registry: CollectorRegistry, token: str) -> Callable[..., Iterable[bytes]]:
    """A WSGI app answering ``/metrics`` from ``registry``; with a ``token``, only to its bearer."""
    inner = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = (environ.get("PATH_INFO") or "/").rstrip("/") or "/"
        allowed = path == "/metrics"
        if allowed and token:
            allowed = bearer_matches(str(environ.get("HTTP_AUTHORIZATION", "")), token)
        if not allowed:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not Found\n"]
        return inner(environ, start_response)

    return app


def parse_addr(addr: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT``; a bare ``PORT`` listens on 127.0.0.1)."""
    host, sep, port = addr.strip().rpartition(":")
    if not sep:
        host, port = "127.0.0.1", addr.strip()
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"COMMSERVER_METRICS_ADDR must be HOST:PORT (e.g. 127.0.0.1:9108), not {addr!r}")
    return host, int(port)


def serve_metrics(stats: LineStats, addr: str, token: str) -> ThreadingWSGIServer:
    """Serve ``stats`` on ``addr`` from a daemon thread; returns the server (``shutdown()`` stops it)."""
    host, port = parse_addr(addr)
    server = make_server(
        host,
        port,
        metrics_app(stats.registry, token),
        server_class=ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, name="commserver-metrics", daemon=True)
    thread.start()
    bound = server.server_address
    log.info(
        "commserver metrics on http://%s:%d/metrics (%s)",
        bound[0],
        bound[1],
        "bearer token required" if token else "no token set: open",
    )
    return server
