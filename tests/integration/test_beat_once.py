"""Beat runs exactly once: two real ``celery -A config beat`` processes on PostgreSQL and Redis, one sends,
the other stands by and takes over when the first dies or loses its lock (config.celery.BeatScheduler)."""

from __future__ import annotations

import datetime
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from tests.integration.conftest import Worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SEND = "Scheduler: Sending due task payeasy-webhooks-retry"
LEADER = "beat: leader"
STANDBY = "beat: standing by (another beat holds the lock)"
LOST = "beat: lost the lock"
WEBHOOKS_QUEUE = "webhooks"  # the Redis list kombu keeps the queue's messages in
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def beat_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """A beat that sends a cheap task (the webhook retry, nothing to post) every second, and tries the
    lock every second; the sweeper and the other entries as rarely as possible."""
    return {
        "REDIS_URL": redis_url,
        "PAYEASY_RUN_DIR": str(tmp_path / "run"),
        "PAYEASY_WEBHOOK_RETRY_EVERY_SECONDS": "1",
        "PAYEASY_BEAT_LOCK_RETRY_SECONDS": "1",
        "PAYEASY_SWEEP_EVERY_SECONDS": "3600",
        "PAYEASY_TELLER_DROP_EVERY": "3600",
        "RECONCILE_EVERY_SECONDS": "3600",
    }


def events(beat: Worker, marker: str) -> list[datetime.datetime]:
    """When ``beat`` logged a line containing ``marker``."""
    out = []
    for line in beat.output().splitlines():
        match = _STAMP.match(line)
        if match and marker in line:
            out.append(datetime.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f"))
    return out


def sends(beat: Worker) -> int:
    return beat.output().count(SEND)


def assert_queue_holds(client: Any, *beats: Worker) -> None:
    """The broker's queue holds exactly what the beats logged sending. A beat logs a send just before
    it publishes, so at most one logged send may not have reached the queue yet: read the logs before
    and after the queue, and a doubled or foreign message still shows (the queue above what was logged)."""
    before = sum(sends(b) for b in beats)
    held = client.llen(WEBHOOKS_QUEUE)
    after = sum(sends(b) for b in beats)
    assert before - 1 <= held <= after, f"the queue holds {held}, the beats logged {before}..{after} sends"


def leader_and_standby(a: Worker, b: Worker) -> tuple[Worker, Worker]:
    """Wait until one beat leads and the other stands by; return them in that order."""
    wait_for(
        lambda: (
            bool(events(a, LEADER) or events(b, LEADER)) and bool(events(a, STANDBY) or events(b, STANDBY))
        )
    )
    leader, standby = (a, b) if events(a, LEADER) else (b, a)
    assert not events(standby, LEADER), f"both lead:\n{a.output()}\n---\n{b.output()}"
    assert events(standby, STANDBY)
    return leader, standby


@pytest.fixture
def redis_client(redis_url: str) -> Any:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.delete(WEBHOOKS_QUEUE)
    yield client
    client.delete(WEBHOOKS_QUEUE)


def test_two_beats_send_once_and_the_standby_takes_over_when_the_leader_is_killed(
    postgres: None, redis_url: str, redis_client: Any, beat_factory: Any, tmp_path: Path
) -> None:
    env = beat_env(tmp_path, redis_url)
    leader, standby = leader_and_standby(beat_factory(**env), beat_factory(**env))

    # ~6 s: the leader sends every second, the other nothing; the queue holds exactly the leader's sends
    start = sends(leader)
    time.sleep(6)
    sent = sends(leader) - start
    assert sent >= 4, f"the leader sent {sent} times in 6 s:\n{leader.output()}"
    assert sends(standby) == 0, standby.output()
    assert_queue_holds(redis_client, leader, standby)

    # the leader dies without a word: the other takes the lock and sends within ~10 s
    leader.proc.send_signal(signal.SIGKILL)
    leader.proc.wait(10)
    killed = time.monotonic()
    wait_for(lambda: sends(standby) > 0, timeout=10)
    took = time.monotonic() - killed
    assert events(standby, LEADER), standby.output()
    assert took < 10, f"the standby took {took:.1f} s to send"
    assert_queue_holds(redis_client, leader, standby)


def test_a_leader_whose_lock_connection_breaks_stops_sending(
    postgres: None, redis_url: str, redis_client: Any, beat_factory: Any, tmp_path: Path
) -> None:
    """As when PostgreSQL restarts: the leader's lock session ends. It sends nothing more until it holds
    the lock again; whichever beat holds it next sends, and never while the other leads."""
    env = beat_env(tmp_path, redis_url)
    a, b = beat_factory(**env), beat_factory(**env)
    leader, _ = leader_and_standby(a, b)
    wait_for(lambda: sends(leader) >= 2)

    key = settings.PAYEASY_BEAT_LOCK_KEY
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 1",
            [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
        )
        assert [row[0] for row in cursor.fetchall()] == [True], "no session held the beat lock"
    terminated = datetime.datetime.now()  # the beats' log times are local times of this machine too

    wait_for(lambda: bool(events(leader, LOST)), timeout=10)
    # a leader again within a few seconds (either beat: both try every second), and it sends
    wait_for(lambda: any(t > terminated for beat in (a, b) for t in events(beat, LEADER)), timeout=10)
    new = [beat for beat in (a, b) if any(t > terminated for t in events(beat, LEADER))]
    assert len(new) == 1, f"both took the lock:\n{a.output()}\n---\n{b.output()}"
    (new_leader,) = new
    other = b if new_leader is a else a
    wait_for(lambda: sum(t > terminated for t in events(new_leader, SEND)) >= 2, timeout=10)

    # never two at once: after its session ended the old leader sent nothing until it held the lock
    # again, and the beat not holding it sent nothing at all
    took_over = min(t for t in events(new_leader, LEADER) if t > terminated)
    assert not [t for t in events(new_leader, SEND) if terminated < t < took_over], new_leader.output()
    assert not [t for t in events(other, SEND) if t > terminated], other.output()
    assert_queue_holds(redis_client, a, b)
