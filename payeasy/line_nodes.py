"""The communication server's nodes: which commserver is active and which stand by (payeasy.line_lock).

Each commserver process writes its row of :class:`payeasy.models.line.LineNode` every
``COMMSERVER_HEARTBEAT_SECONDS`` (:class:`Heartbeat`, a thread of its own: no lane ever waits for it), a
standby too. :func:`line_nodes` reads them for the operations page and ``/metrics``
(:func:`line_node_metrics`): a node not seen for ``STALE_AFTER_BEATS`` heartbeats is shown as gone (it
died, or cannot reach the database), and rows of nodes gone for a day are deleted by the others' heartbeats.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from payeasy.models.line import LineNode

log = logging.getLogger("payeasy.commserver")

STALE_AFTER_BEATS = 3  # heartbeats missed before a node is shown as gone
FORGET_AFTER = datetime.timedelta(days=1)


def node_name() -> str:
    """``COMMSERVER_NODE_NAME``, or ``<host name>:<pid>``."""
    return str(settings.COMMSERVER_NODE_NAME or f"{socket.gethostname()}:{os.getpid()}")[:100]


def stale_after() -> datetime.timedelta:
    return datetime.timedelta(seconds=STALE_AFTER_BEATS * float(settings.COMMSERVER_HEARTBEAT_SECONDS))


@dataclass(frozen=True)
class NodeView:
    name: str
    role: str  # LineNode.Role, as the node last wrote it
    started_at: datetime.datetime
    role_since: datetime.datetime
    seen_at: datetime.datetime
    # seen within the last STALE_AFTER_BEATS heartbeats, and not an active one another node has taken
    # over from since (it died, its last heartbeat still fresh)
    alive: bool
    ack_p50_ms: float | None
    ack_p99_ms: float | None
    frames_last_minute: int


@dataclass(frozen=True)
class LineNodes:
    nodes: list[NodeView]  # alive ones first (active first), then the gone ones; newest first

    @property
    def active(self) -> list[NodeView]:
        """The live nodes that say they are active: one, normally; none while the line is down."""
        return [n for n in self.nodes if n.alive and n.role == LineNode.Role.ACTIVE]

    @property
    def standbys(self) -> list[NodeView]:
        return [n for n in self.nodes if n.alive and n.role == LineNode.Role.STANDBY]


def line_nodes(now: datetime.datetime | None = None) -> LineNodes:
    """Every node seen in the last day, live ones first: the active, then the standbys."""
    now = now or timezone.now()
    fresh = now - stale_after()
    rows = list(LineNode.objects.filter(seen_at__gte=now - FORGET_AFTER).order_by("-seen_at"))
    live = [r for r in rows if r.seen_at >= fresh and r.role != LineNode.Role.STOPPED]
    newest_active = max((r.role_since for r in live if r.role == LineNode.Role.ACTIVE), default=None)
    views = [
        NodeView(
            name=row.name,
            role=row.role,
            started_at=row.started_at,
            role_since=row.role_since,
            seen_at=row.seen_at,
            alive=row in live and not (row.role == LineNode.Role.ACTIVE and row.role_since != newest_active),
            ack_p50_ms=row.ack_p50_ms,
            ack_p99_ms=row.ack_p99_ms,
            frames_last_minute=row.frames_last_minute,
        )
        for row in rows
    ]
    views.sort(key=lambda n: (not n.alive, n.role != LineNode.Role.ACTIVE))
    return LineNodes(nodes=views)


def line_node_metrics(now: datetime.datetime) -> list:  # type: ignore[type-arg]
    """A part for ``payeasy.metrics`` (``register_part`` or ``DATABASE_PARTS``): the live nodes by role,
    labelled by role only."""
    from prometheus_client.core import GaugeMetricFamily

    found = line_nodes(now)
    family = GaugeMetricFamily(
        "payeasy_line_nodes",
        "Communication server nodes alive (heartbeat within 3 intervals), by role.",
        labels=["role"],
    )
    family.add_metric([LineNode.Role.ACTIVE], len(found.active))
    family.add_metric([LineNode.Role.STANDBY], len(found.standbys))
    return [family]


class Heartbeat(threading.Thread):
    """Writes this node's row every ``every`` seconds from its own thread and database connection;
    ``role()`` and ``figures()`` are read from the commserver's state each time. A database that is away
    costs a log line; the next beat tries again."""

    def __init__(
        self,
        *,
        name: str,
        role: Callable[[], str],
        figures: Callable[[], tuple[int, float | None, float | None]],
        every: float,
    ) -> None:
        super().__init__(name="line-node-heartbeat", daemon=True)
        self.node = name
        self.role = role
        self.figures = figures
        self.every = every
        self.started_at = timezone.now()
        self._role: tuple[str, datetime.datetime] | None = None  # the role written last, and since when
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._failing = False

    def run(self) -> None:
        try:
            while not self._stopped.is_set():
                self.beat()
                self._wake.wait(self.every)
                self._wake.clear()
            self.beat(LineNode.Role.STOPPED)
        finally:
            connection.close()

    def poke(self) -> None:
        """Write the row now (the role changed)."""
        self._wake.set()

    def stop(self, timeout: float = 3.0) -> None:
        self._stopped.set()
        self._wake.set()
        self.join(timeout)

    def beat(self, role: str | None = None) -> None:
        close_old_connections()
        frames, p50, p99 = self.figures()
        now = timezone.now()
        role = role or self.role()
        if self._role is None or self._role[0] != role:
            self._role = (role, now)
        try:
            LineNode.objects.update_or_create(
                name=self.node,
                defaults={
                    "role": role,
                    "started_at": self.started_at,
                    "role_since": self._role[1],
                    "seen_at": now,
                    "ack_p50_ms": p50,
                    "ack_p99_ms": p99,
                    "frames_last_minute": frames,
                },
            )
            LineNode.objects.filter(seen_at__lt=now - FORGET_AFTER).delete()
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "node heartbeat not written: %s: %s", type(exc).__name__, " ".join(str(exc).split())
                )
            self._failing = True
            with contextlib.suppress(Exception):  # broken: the next beat opens a new one
                connection.close()
            return
        if self._failing:
            log.info("node heartbeat written again")
        self._failing = False
