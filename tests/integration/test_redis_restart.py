"""Payments keep being applied through Redis restarts and a flush, with nobody restarting anything.

Real processes: a redis-server of the test's own, the payments worker as config/Procfile runs it
(prefork, two processes, gossip/mingle/heartbeat on) and beat. Notices are committed by the line code
the commserver runs (``LineProcessor``) and the workers are woken as the commserver wakes them
(``notices_apply.delay()``). Each restart comes while the worker is in the middle of applying a
backlog — an unacknowledged task on one process, the other idle, a ``BRPOP`` in flight: what made
celery 5.7 + kombu 5.7 exit with ``Unrecoverable error: AttributeError … 'hostname'``
(config/celery.py, ``WorkerConsumer``). While Redis is down more payments arrive; beat's sweeper, which
needs only PostgreSQL, applies them before Redis is back (``BeatScheduler``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from payeasy.models import LedgerEntry, Notice
from tests.integration.conftest import PAYMENTS_QUEUES, RedisServer
from tests.payeasy import line_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# a notice waiting 2 s is the sweeper's, looked for every second (production: 30 s, every 10 s)
SWEEP = {"PAYEASY_SWEEP_AFTER_SECONDS": "2", "PAYEASY_SWEEP_EVERY_SECONDS": "1"}
RESTARTS = 3
BACKLOG = 1500  # payments committed at once before each restart: about a second of one worker's work
DURING_OUTAGE = 120  # payments that arrive while Redis is down


def wait_until(condition: Callable[[], bool], timeout: float, what: str, *logs: object) -> float:
    """Wait for ``condition``; return the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.05)
    detail = "\n".join(getattr(log, "output", lambda: "")()[-6000:] for log in logs)
    raise AssertionError(f"{what}: not within {timeout:.0f} s\n{detail}")


def waiting() -> int:
    return Notice.objects.filter(applied_at__isnull=True).count()


def test_payments_are_applied_through_redis_restarts_and_a_flush_without_a_person(  # type: ignore[no-untyped-def]
    postgres, redis_server: RedisServer, redis_server_broker, worker_factory, beat_factory, tmp_path: Path
) -> None:
    from payeasy import tasks

    env = {**redis_server_broker, **SWEEP}
    # the payments worker as config/Procfile runs it
    worker = worker_factory(queues=PAYMENTS_QUEUES, pool="prefork", concurrency=2, **env)
    beat = beat_factory(**env)

    biller = h.line_biller()
    invoices = [h.published_invoice(biller, price=1000 + i) for i in range(20)]
    h.send(h.open_day(biller))
    committed = 0

    def commit(n: int) -> None:
        """``n`` payments through the line code, in the commserver's batches (each one transaction)."""
        nonlocal committed
        messages = [h.payment(biller, invoices[(committed + i) % len(invoices)]) for i in range(n)]
        for start in range(0, n, 256):
            h.send(*messages[start : start + 256])
        committed += n

    def wake() -> bool:
        try:
            tasks.notices_apply.delay()  # the commserver's wake-up
            return True
        except Exception:  # Redis is down: the commserver logs it and goes on
            return False

    def applied() -> int:
        return committed - waiting()

    def connected() -> int:
        return worker.output().count("Connected to ")

    outage_waits: list[float] = []
    reconnects: list[float] = []
    back = 0.0
    for restart in range(RESTARTS):
        reconnected = wait_until(
            lambda n=restart: connected() > n, 40, "the worker did not reconnect", worker
        )
        if restart:
            reconnects.append(reconnected - back)
        before = applied()
        commit(BACKLOG)
        assert wake()
        wait_until(
            lambda n=before: applied() > n + 100, 15, "the worker never started on the backlog", worker
        )
        redis_server.stop()  # mid-application: one process busy, its message unacknowledged
        down = time.monotonic()
        wait_until(lambda: waiting() == 0, 15, "the backlog being applied when Redis went away", worker)
        commit(DURING_OUTAGE)  # the line goes on; its wake-ups fail
        assert not wake()
        done = wait_until(
            lambda: waiting() == 0,
            15,
            f"restart {restart + 1}: payments were not applied while Redis was down",
            worker,
            beat,
        )
        outage_waits.append(done - down)
        assert worker.proc.poll() is None, f"the worker exited:\n{worker.output()[-6000:]}"
        back = redis_server.start()

    # Redis is back, and empty: the line's wake-ups reach the worker again.
    commit(300)
    wait_until(wake, 30, "no wake-up could be published after Redis came back")
    recovered = wait_until(lambda: waiting() == 0, 30, "payments left waiting after Redis came back", worker)
    # A flush loses wake-ups (and the worker's unacknowledged messages), never a payment.
    commit(BACKLOG)
    wake()
    commit(300)
    wake()
    redis_server.client().flushall()
    wait_until(lambda: waiting() == 0, 30, "payments left waiting after the flush", worker, beat)
    flushed = time.monotonic()
    redis_server.client().flushall()
    commit(100)  # the worker is idle, and their wake-up is lost: only the sweeper knows about them
    last = wait_until(lambda: waiting() == 0, 30, "payments whose wake-up was lost", worker, beat)

    assert LedgerEntry.objects.count() == Notice.objects.count() == committed  # each once, none twice
    assert worker.proc.poll() is None, f"the worker exited:\n{worker.output()[-6000:]}"
    assert "Unrecoverable error" not in worker.output()
    assert beat.proc.poll() is None, f"beat exited:\n{beat.output()[-6000:]}"
    print(
        f"\n{committed} payments through {RESTARTS} Redis restarts (each while the worker was applying a "
        f"backlog) and 2 flushes, all applied, each once; the worker alive throughout. "
        f"Payments that arrived while Redis was down: applied {max(outage_waits):.1f} s after it went down "
        f"at the latest (beat's sweeper, notices older than {SWEEP['PAYEASY_SWEEP_AFTER_SECONDS']} s). "
        f"Worker reconnected {max(reconnects):.1f} s after Redis was back at the latest. "
        f"Recovery: payments committed after the last restart all applied {recovered - back:.1f} s after "
        f"Redis was back; payments whose wake-up a FLUSHALL lost, {last - flushed:.1f} s after the flush."
    )
