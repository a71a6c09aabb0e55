"""The Celery application shared by the worker, beat and every process that enqueues.

Two pieces of it keep payments flowing when Redis restarts or is flushed (docs/line.md, "When Redis
goes away"); the settings in config/settings/tasks.py select them:

- :class:`WorkerConsumer` — the worker's consumer, on a Redis transport that does not kill the worker
  when the broker goes away with tasks in flight (celery 5.7.0 with kombu 5.7.0 did:
  ``Unrecoverable error: AttributeError … 'hostname'``; see :class:`RedisTransport`).
- :class:`BeatScheduler` — beat, which runs the payment sweeper itself against the database instead of
  sending it through Redis to a worker, so that it works when nothing but PostgreSQL and beat is alive;
  and which sends (and sweeps) only while it holds the beat lock, so that a second beat stands by.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import redis
from celery import Celery
from celery.beat import PersistentScheduler, ScheduleEntry
from celery.signals import (
    after_setup_task_logger,
    beat_init,
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
)
from celery.worker.consumer import Consumer
from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import filesystem as kombu_filesystem
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps as kombu_dumps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Celery's Django fix-up closes the database connection after every task by
# default; reusing it is 3x faster (measured on a 2-vCPU machine: a new PostgreSQL connection per
# task cost more than the task itself).
# CONN_HEALTH_CHECKS is on, and a task's hard time limit (config/settings/tasks.py) kills its whole
# worker process, its connection with it: no reused connection is ever left in the middle of a query.
os.environ.setdefault("CELERY_DB_REUSE_MAX", "1000")


class _FilesystemChannel(kombu_filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # kombu's two bases disagree on the name
        """Write the message under a name no reader takes, then rename it into the queue: kombu writes
        it in place, and a worker that listed the folder between the open and the write read an empty
        file and exited ("Unrecoverable error: JSONDecodeError"). A rename is atomic."""
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(kombu_dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class FilesystemTransport(kombu_filesystem.Transport):
    """The embedded default's broker (no server to install): kombu's filesystem transport, writing each
    message atomically (:class:`_FilesystemChannel`)."""

    Channel = _FilesystemChannel


TRANSPORT_ALIASES["filesystem"] = "config.celery:FilesystemTransport"

app = Celery("payeasy_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@worker_process_init.connect
@beat_init.connect
def _process_crosses_tenants(**kwargs: Any) -> None:
    """Workers and beat are cross-tenant by nature: a task takes ids of any tenant (payments,
    notifications, webhooks, imports). Each of their database connections runs under the named path
    ``worker`` (billing.tenancy.bind_cross_tenant), set when it opens, so a recycled connection has it too."""
    from billing.tenancy import bind_cross_tenant

    bind_cross_tenant("worker")


@task_prerun.connect
def _eager_task_crosses_tenants(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    """A task run in the caller's process (CELERY_TASK_ALWAYS_EAGER) crosses tenants as in a worker."""
    if getattr(getattr(task, "request", None), "is_eager", False):
        from billing.tenancy import task_started

        task_started(task_id or "")


@task_postrun.connect
def _eager_task_done(task_id: str | None = None, **kwargs: Any) -> None:
    from billing.tenancy import task_finished

    task_finished(task_id or "")


# Log ids (config/logs.py): a task's lines in the worker carry the request, trace and tenant ids of
# the request that sent it; the task logger writes through the root's handlers (JSON, masking).
@before_task_publish.connect
def _task_carries_log_ids(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    from config.logs import task_headers_add

    task_headers_add(headers)


@task_prerun.connect
def _task_log_ids(task: Any = None, **kwargs: Any) -> None:
    from config.logs import task_started

    task_started(task)


@task_postrun.connect
def _task_log_ids_done(task: Any = None, **kwargs: Any) -> None:
    from config.logs import task_finished

    task_finished(task)


@after_setup_task_logger.connect
def _task_logger_through_root(logger: logging.Logger | None = None, **kwargs: Any) -> None:
    if logger is not None:
        logger.handlers.clear()
        logger.propagate = True


log = logging.getLogger("config.celery")


class _RedisChannel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is None:
            raise redis.exceptions.ConnectionError("the broker connection of this channel was closed")
        return super()._connparams(asynchronous=asynchronous)


class RedisTransport(kombu_redis.Transport):
    """kombu's Redis transport, except that a channel whose connection is gone says so with a
    connection error, which every caller handles, instead of an ``AttributeError``, which kills the
    worker.

    When the broker connection breaks, celery 5.7.0 ``collect()``s it — kombu then drops the transport
    (``Transport.client = None``) — and, since celery/celery#10242 (for #9705), ``close()``s it as well.
    If the channel could not finish closing during ``collect()`` (a ``BRPOP`` was in flight and reading
    its answer failed), the second close runs it again: it restores the unacknowledged messages
    through a new connection pool built from the dropped transport, and
    ``AttributeError: 'NoneType' object has no attribute 'hostname'`` (celery/kombu#582, reached by a
    new path) escapes ``ignore_errors``: "Unrecoverable error", the worker exits. If that close gets
    through, acknowledging a task of the old connection that finishes later fails the same way, in
    the event loop, and the worker exits too. Both need a prefork worker with some but not all of its
    processes busy with acks-late tasks when Redis goes away: a worker under load.

    With a connection error instead, the close is skipped as celery 5.6 skipped it, the late
    acknowledgement is logged ("Couldn't ack") and the message comes back after the visibility
    timeout — harmless: every task runs safely twice, and the sweeper re-drives payments from the
    database without waiting for it.
    """

    Channel = _RedisChannel


class WorkerConsumer(Consumer):
    """The worker's consumer: on :class:`RedisTransport` when the broker is Redis, and trying to
    reconnect every 1–2 s for as long as the broker is away (kombu waits 2, 4, … up to 30 s between
    attempts: a payment woken through a Redis that is back could wait that long)."""

    def connection_for_read(self, heartbeat: float | None = None) -> Any:
        connection = self.app.connection_for_read(heartbeat=heartbeat)
        if connection.transport_cls in ("redis", "rediss"):  # the same kombu transport, TLS or not
            connection = self.app.connection_for_read(heartbeat=heartbeat, transport=RedisTransport)
        connection.ensure_connection = functools.partial(
            connection.ensure_connection, interval_start=1, interval_step=1, interval_max=2
        )
        return self.ensure_connected(connection)


class BeatScheduler(PersistentScheduler):
    """Beat, sending only while it holds the beat lock, and running the tasks named in
    ``PAYEASY_BEAT_RUNS_ITSELF`` in its own threads.

    Exactly one beat sends: each tick first makes sure this process holds the beat lock
    (:func:`beat_lock`: a PostgreSQL session advisory lock, or a ``flock`` on SQLite). A beat that does
    not hold it sends nothing and runs nothing, logs "beat: standing by (another beat holds the lock)"
    and tries again every ``PAYEASY_BEAT_LOCK_RETRY_SECONDS``; when the holder dies (or its lock
    connection to PostgreSQL breaks) the lock is free and the next try logs "beat: leader". A leader
    whose lock connection broke stops sending at its next tick, before any send: two beats never send
    at once. A new leader sends each entry that is due by its own schedule file, so a task the old one
    sent just before it died may run once more (every scheduled task is safe to run twice).

    Entries of ``CELERY_BEAT_SCHEDULE`` named in ``PAYEASY_BEAT_RUNS_ITSELF`` (interval schedules only)
    are not sent to a worker: a thread of this process runs each at its interval, calling the task's
    code directly, while this beat is the leader. For the payment sweeper that means it needs PostgreSQL
    and this process, nothing else — not Redis (down, restarted or flushed), not a worker (dead, or
    alive but no longer consuming). Every other entry is sent as usual. Runs of an entry never overlap:
    the next starts one interval after the last ended.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from django.conf import settings

        self._local: list[_LocalRunner] = []
        self._leading = threading.Event()
        self._lock = beat_lock()
        self._lock_retry = float(settings.PAYEASY_BEAT_LOCK_RETRY_SECONDS)
        self._standby_reason: str | None = None
        super().__init__(*args, **kwargs)
        for runner in self._local:
            runner.start()

    def setup_schedule(self) -> None:
        super().setup_schedule()
        from django.conf import settings

        local = set(settings.PAYEASY_BEAT_RUNS_ITSELF)
        for name, entry in list(self.schedule.items()):
            if entry.task in local:
                del self.schedule[name]
                self._local.append(_LocalRunner(self.app, name, entry, self._leading))

    @property
    def is_leader(self) -> bool:
        """Whether this beat held the lock at its last tick."""
        return self._leading.is_set()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One iteration: nothing but a short sleep unless this beat holds the lock (checked every tick,
        so before every send); the leader wakes at least every retry interval to check it again."""
        if not self._hold_lock():
            return self._lock_retry
        return min(super().tick(*args, **kwargs), self._lock_retry)

    def _hold_lock(self) -> bool:
        was = self._leading.is_set()
        try:
            held = self._lock.hold()
            reason = "another beat holds the lock"
        except Exception as exc:  # the database is down or restarting: no lock, try again later
            held = False
            reason = f"the lock is out of reach: {type(exc).__name__}: {' '.join(str(exc).split())}"
        if held:
            if not was:
                self._leading.set()
                log.info("beat: leader (%s)", self._lock.describe())
            self._standby_reason = None
            return True
        self._leading.clear()
        if was:
            log.warning("beat: lost the lock (%s)", reason)
        if reason != self._standby_reason:  # said once, and again when the reason changes
            log.info("beat: standing by (%s)", reason)
            self._standby_reason = reason
        return False

    def close(self) -> None:
        for runner in self._local:
            runner.stop()
        self._leading.clear()
        try:
            super().close()
        finally:
            self._lock.release()


class BeatLock:
    """The lock that makes one beat the leader. ``hold()`` returns whether this process holds it now
    (taking it if it is free), never waits; ``release()`` lets it go."""

    def hold(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class PostgresAdvisoryLock(BeatLock):
    """A session-level ``pg_try_advisory_lock(key)`` on a connection of its own (not Django's), opened
    with the credentials of ``settings.DATABASES["default"]``. The lock lives as long as that session:
    when the holder dies, or PostgreSQL restarts, it is free. The holder checks its connection on every
    ``hold()``; a broken connection means the lock is lost (another beat may have it by now)."""

    def __init__(self, connect_kwargs: dict[str, Any], key: int) -> None:
        self.connect_kwargs = connect_kwargs
        self.key = key
        self._conn: Any = None
        self._held = False

    @classmethod
    def from_settings(
        cls, key: int | None = None, application_name: str = "payeasy-beat-lock"
    ) -> PostgresAdvisoryLock:
        """The lock ``key`` (the beat's, ``PAYEASY_BEAT_LOCK_KEY``, by default) on a connection of its own
        named ``application_name`` (how ``pg_stat_activity`` shows it)."""
        from django.conf import settings

        db = settings.DATABASES["default"]
        options = dict(db.get("OPTIONS") or {})
        for django_only in ("pool", "server_side_binding", "assume_role", "isolation_level"):
            options.pop(django_only, None)
        kwargs: dict[str, Any] = {
            "dbname": db.get("NAME") or None,
            "user": db.get("USER") or None,
            "password": db.get("PASSWORD") or None,
            "host": db.get("HOST") or None,
            "port": db.get("PORT") or None,
            "application_name": application_name,
            "connect_timeout": 5,
            # a dead peer (network cut, host gone) shows as an error in seconds, not the OS's minutes
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "tcp_user_timeout": 10000,
            **options,
        }
        if key is None:
            key = int(settings.PAYEASY_BEAT_LOCK_KEY)
        return cls({k: v for k, v in kwargs.items() if v is not None}, key)

    def hold(self) -> bool:
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._held = False
                self._conn = psycopg.connect(autocommit=True, **self.connect_kwargs)
            if self._held:
                self._conn.execute("SELECT 1")  # the session, and so the lock, is still there
            else:
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
                self._held = bool(row and row[0])
        except psycopg.Error:
            self._drop()
            raise
        return self._held

    def release(self) -> None:
        if self._conn is not None and self._held:
            with contextlib.suppress(Exception):  # closing the session below frees it anyway
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self._drop()

    def _drop(self) -> None:
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.close()

    def describe(self) -> str:
        return f"PostgreSQL advisory lock {self.key:#x}"


class FileLock(BeatLock):
    """An exclusive ``flock`` on a file (the embedded default, where every process is on one host).
    The kernel frees it when the holder's process ends, however it ends."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fd: int | None = None

    def hold(self) -> bool:
        import fcntl

        if self._fd is not None:
            return True
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor of the open file frees the flock

    def describe(self) -> str:
        return f"flock on {self.path}"


def beat_lock() -> BeatLock:
    """The beat lock for the configured database: an advisory lock on PostgreSQL, a file lock in the
    run directory otherwise (SQLite: every process of the product is on this host)."""
    from django.db import connections

    if connections["default"].vendor == "postgresql":
        return PostgresAdvisoryLock.from_settings()
    return FileLock(sqlite_lock_path())


def sqlite_lock_path(
    database: str | None = None,
    *,
    prefix: str = "celerybeat",
    directory: str | os.PathLike[str] | None = None,
) -> str:
    """``PAYEASY_BEAT_LOCK_DIR/celerybeat-<database file>-<hash of its path>.lock`` for ``database``
    (the configured one by default): one beat per database file (the beats of two test runs, each on
    its own database, do not wait for each other). Other leaders (the commserver) name their own
    ``prefix`` and ``directory``."""
    from django.conf import settings

    database = os.path.abspath(database or os.fspath(settings.DATABASES["default"]["NAME"]))
    digest = hashlib.sha256(database.encode()).hexdigest()[:8]
    name = f"{prefix}-{os.path.basename(database)}-{digest}.lock"
    return os.path.join(os.fspath(directory or settings.PAYEASY_BEAT_LOCK_DIR), name)


class _LocalRunner(threading.Thread):
    """Runs one beat entry's task in this process every ``entry.schedule.run_every`` while ``leading``
    is set (the beat holds the beat lock)."""

    def __init__(self, app: Celery, name: str, entry: ScheduleEntry, leading: threading.Event) -> None:
        every = getattr(entry.schedule, "run_every", None)
        if not isinstance(every, timedelta):
            raise ValueError(f"beat runs {entry.task} itself only on an interval, not {entry.schedule!r}")
        super().__init__(name=f"beat:{name}", daemon=True)
        self.app = app
        self.task_name = entry.task
        self.every = every.total_seconds()
        self.leading = leading
        self._stopped = threading.Event()

    def run(self) -> None:
        log.info("beat runs %s itself every %s s", self.task_name, self.every)
        while not self._stopped.wait(self.every):
            if self.leading.is_set():  # a beat standing by runs nothing
                self.run_once()

    def run_once(self) -> None:
        from django.db import close_old_connections

        close_old_connections()
        try:
            result = self.app.tasks[self.task_name]()
        except Exception:  # the next run comes; a database that is down now may be back then
            log.exception("%s failed in beat", self.task_name)
        else:
            if result:
                log.info("%s (run by beat): %r", self.task_name, result)
        finally:
            close_old_connections()

    def stop(self) -> None:
        self._stopped.set()
