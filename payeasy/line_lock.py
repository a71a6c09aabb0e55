"""Active/standby communication servers: only the holder of the line lock listens (spec §1's port).

Several ``manage.py commserver`` processes may run for one line: in production one on each of two hosts,
which the MPN side reaches through a virtual address (VIP, DNS name) that follows the active host, or
through its own list of the servers' addresses, tried in turn (a standby refuses connections: nothing
listens on its port). On one host the processes may share the port, one at a time. Exactly one listens:
the holder of the line lock. The others stand by, holding neither the port nor a connection of the MPN
side, log "commserver: standing by (…)" and try the lock every ``COMMSERVER_LOCK_RETRY_SECONDS``.

The lock (reusing the beat's, ``config.celery``): on PostgreSQL a session-level advisory lock
(``pg_try_advisory_lock(COMMSERVER_LOCK_KEY)``) on a connection of its own, not Django's, whose session
PostgreSQL ends — freeing the lock — when the holder's process dies (closed socket: at once; a host or
network gone: the server-side TCP keepalives this connection asks for, about 10 s). On SQLite, the
embedded single-machine default, an exclusive ``flock`` on a file in ``COMMSERVER_LOCK_DIR``, which the
kernel frees when the holder's process ends. A commserver on ``--port 0`` (an ephemeral port: tests,
benchmarks) is nobody's replica and takes no lock.

Failover. The active process killed (SIGKILL, a crash): its session ends, the lock is free; a standby
takes it at its next try (within ``COMMSERVER_LOCK_RETRY_SECONDS``), binds the port (again and again
while the old process's socket still holds it) and answers. No acknowledged payment is lost: a frame is
answered 0000 only after its commit (payeasy.commserver), and the MPN side resends whatever was not
answered, which the new node stores, or answers 0000 for the transaction key already stored (spec §5.4).

The holder's lock session breaks (PostgreSQL restarted, its backend terminated, the network to it cut):
it can no longer prove that it is the only one. From that moment it stores nothing new — every frame
read after is answered 9001 without touching the database (nothing stored, nothing acknowledged: the MPN
side resends); a batch already being committed is answered as committed — and it tries to take the lock
again at once, then every ``FENCED_RETRY`` seconds:

- taken again (the session was killed but nobody else took the lock): it stores again, its connections
  never dropped;
- another commserver holds it: it stops listening, answers what it has read, closes its connections
  and stands by;
- the database is unreachable: it keeps its connections and answers 9001 — what the line answers
  anyway while its database is away (payeasy.commserver) — for ``COMMSERVER_LOCK_GRACE_SECONDS`` at
  most, then stops listening and stands by.

So when the database is down for everyone, nobody stores (nothing could be), short outages (a restart,
a terminated backend, a failover of PostgreSQL itself) are answered 9001 on the open connections as
before, and a long one leaves nobody listening: the MPN side sees refused connections and retries, as
it would for 9001. Why not serve 9001 for as long as the database is away: a holder cut off from the
database alone (a network partition) would keep the MPN side's connections to itself, answering 9001,
while the other node, which reaches the database, holds the lock and stores; stepping down after the
grace sends the MPN side to the node that can store. Two listeners would not double any money (each
payment is stored under its unique transaction key, and a second one is answered 0000 without storing
anything), but they would split the line's traffic; so two never store at once, and two listen at once
only in that partition and only for the grace at most (one host: never, the kernel lets one bind).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import select
import threading
import time
from collections.abc import Callable
from typing import Protocol

from config.celery import BeatLock, FileLock, PostgresAdvisoryLock, sqlite_lock_path

log = logging.getLogger("payeasy.commserver")


class CommServer(Protocol):
    """What a node needs of :class:`payeasy.commserver.CommServer` (which imports this module)."""

    port: int
    stopping: asyncio.Event
    fenced: bool

    @property
    def listening(self) -> bool: ...

    async def listen(self) -> None: ...

    async def unlisten(self, within: float = 3.0) -> None: ...


HELD, OTHER, UNREACHABLE = "held", "other", "unreachable"
CHECK_EVERY = 0.5  # how often the holder proves its lock session (a broken one is seen at once anyway)
FENCED_RETRY = 0.2  # how often a holder whose session broke tries to take the lock again
BIND_RETRY = 0.05  # how often a new holder tries the port an old process on this host still holds
# the holder's session, as PostgreSQL sees it: a client host gone (no FIN) ends it in ~10 s, not hours
SERVER_KEEPALIVES = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"


class _PostgresLineLock(PostgresAdvisoryLock):
    def wait(self, timeout: float) -> None:
        """Return after ``timeout`` seconds, or as soon as the lock's session has something to say (the
        server's goodbye when its backend is terminated or it shuts down, a closed socket)."""
        conn = self._conn
        if conn is None or conn.closed:
            time.sleep(timeout)
            return
        with contextlib.suppress(OSError, ValueError):
            select.select([conn.fileno()], [], [], timeout)

    def describe(self) -> str:
        return f"PostgreSQL advisory lock {self.key:#x}"


class _FileLineLock(FileLock):
    def wait(self, timeout: float) -> None:
        time.sleep(timeout)


def line_lock(port: int) -> BeatLock | None:
    """The line lock of the configured database for a commserver on ``port``; None on ``--port 0``."""
    from django.conf import settings
    from django.db import connections

    if port == 0:
        return None
    if connections["default"].vendor == "postgresql":
        lock = _PostgresLineLock.from_settings(
            key=int(settings.COMMSERVER_LOCK_KEY), application_name="payeasy-commserver-lock"
        )
        lock.connect_kwargs.setdefault("options", SERVER_KEEPALIVES)
        return lock
    return _FileLineLock(sqlite_lock_path(prefix="commserver", directory=settings.COMMSERVER_LOCK_DIR))


class _LockWatch(threading.Thread):
    """Tries and proves the lock from a thread of its own (the lock's calls block), and reports every
    outcome to the event loop: ``report(status, reason)``."""

    def __init__(
        self,
        lock: BeatLock,
        report: Callable[[str, str], None],
        *,
        retry: float,
        hurry: Callable[[], bool],
    ) -> None:
        super().__init__(name="line-lock", daemon=True)
        self.lock = lock
        self.report = report
        self.retry = retry
        self.hurry = hurry  # True while a holder whose session broke still listens: try more often
        self._stopped = threading.Event()

    def run(self) -> None:
        last = ""
        while not self._stopped.is_set():
            try:
                status = HELD if self.lock.hold() else OTHER
                reason = "another commserver holds the line lock"
            except Exception as exc:  # the database is down or restarting: no lock, try again
                status = UNREACHABLE
                reason = f"the line lock is out of reach: {type(exc).__name__}: {' '.join(str(exc).split())}"
            self.report(status, reason)
            if status == HELD:
                self.lock.wait(CHECK_EVERY)  # type: ignore[attr-defined]
            elif status == UNREACHABLE and last == HELD:
                pass  # the session just broke: on a new connection at once, before anyone else
            else:
                self._stopped.wait(FENCED_RETRY if self.hurry() else self.retry)
            last = status

    def stop(self, timeout: float = 5.0) -> None:
        """Stop trying and proving; the lock, if held, stays held until ``lock.release()``."""
        self._stopped.set()
        self.join(timeout)


class Leadership:
    """Runs a :class:`payeasy.commserver.CommServer` as a node of the line: listening only while this
    process holds the line lock (module docstring)."""

    def __init__(
        self,
        lock: BeatLock,
        *,
        retry: float,
        grace: float,
        on_role: Callable[[bool], None] | None = None,
    ) -> None:
        self.lock = lock
        self.retry = retry
        self.grace = grace
        self.on_role = on_role
        self._said = ""

    async def run(self, server: CommServer) -> None:
        """Until ``server.stopping``: listen while holding the lock, stand by otherwise."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

        def report(status: str, reason: str) -> None:
            loop.call_soon_threadsafe(events.put_nowait, (status, reason))

        watch = _LockWatch(self.lock, report, retry=self.retry, hurry=lambda: server.listening)
        watch.start()
        stopping = asyncio.create_task(server.stopping.wait())
        fenced_since: float | None = None
        self._role(False)
        try:
            while not server.stopping.is_set():
                timeout = (
                    None if fenced_since is None else max(0.0, fenced_since + self.grace - time.monotonic())
                )
                getting = asyncio.create_task(events.get())
                done, _ = await asyncio.wait(
                    {getting, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if getting not in done:
                    getting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getting
                    if stopping in done:
                        break
                    log.error(
                        "commserver: the line lock could not be taken again for %.0f s: no longer listening",
                        self.grace,
                    )
                    await server.unlisten()
                    fenced_since = None
                    self._role(False)
                    continue
                status, reason = getting.result()
                if status == HELD:
                    fenced_since = None
                    if server.listening:
                        if server.fenced:
                            server.fenced = False
                            log.warning(
                                "commserver: the line lock is held again (%s): storing again",
                                self.lock.describe(),
                            )
                            self._role(True)
                    elif await self._bind(server):
                        self._said = ""
                        self._role(True)
                elif status == OTHER:
                    if server.listening:
                        server.fenced = True
                        log.warning("commserver: %s: no longer listening", reason)
                        fenced_since = None
                        self._role(False)
                        await server.unlisten()
                    self._standing_by(reason)
                else:
                    if server.listening and not server.fenced:
                        server.fenced = True
                        fenced_since = time.monotonic()
                        self._role(False)
                        log.error(
                            "commserver: lost the line lock (%s); answering 9001 while taking it again "
                            "(for %.0f s at most)",
                            reason,
                            self.grace,
                        )
                    elif not server.listening:
                        self._standing_by(reason)
        finally:
            stopping.cancel()
            await asyncio.to_thread(watch.stop)
            self._role(False)

    def release(self) -> None:
        """Let the lock go: once this node has stopped listening and answered what it read, so that a
        standby that takes it finds the port free."""
        self.lock.release()

    async def _bind(self, server: CommServer) -> bool:
        """Listen; while an old process on this host still holds the port, try again for one lock check
        (the next check, if the lock is still held, tries on)."""
        deadline = time.monotonic() + CHECK_EVERY
        while not server.stopping.is_set():
            try:
                await server.listen()
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                if self._said != "port":
                    log.warning(
                        "commserver: holds the line lock; port %d still in use, trying again", server.port
                    )
                    self._said = "port"
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(BIND_RETRY)
                continue
            log.info("commserver: active (%s)", self.lock.describe())
            return True
        return False

    def _standing_by(self, reason: str) -> None:
        if reason != self._said:  # said once, and again when the reason changes
            log.info("commserver: standing by (%s)", reason)
            self._said = reason

    def _role(self, active: bool) -> None:
        if self.on_role is not None:
            self.on_role(active)


__all__ = ["Leadership", "line_lock"]
