"""Beat runs once: the beat lock of config.celery.BeatScheduler (the flock of the embedded default, and
PostgreSQL's advisory lock). Real processes: tests/integration/test_beat_once.py."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery.beat import ScheduleEntry
from celery.schedules import schedule as interval
from django.db import connection

from config import celery as beat_module
from config.celery import (
    BeatScheduler,
    FileLock,
    PostgresAdvisoryLock,
    _LocalRunner,
    app,
    beat_lock,
    sqlite_lock_path,
)

CHEAP_TASK = "billing.tasks.sessions_clear"  # never run here: sends are recorded, not made


@pytest.fixture
def lock_file(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The beat lock is a flock on a file under ``tmp_path`` (the embedded default's lock; on a
    PostgreSQL run of the suite it is chosen explicitly, so that the flock path is tested there too)."""
    settings.PAYEASY_BEAT_LOCK_DIR = tmp_path / "run"
    settings.PAYEASY_BEAT_LOCK_RETRY_SECONDS = 2
    path = Path(sqlite_lock_path())
    if connection.vendor != "sqlite":
        monkeypatch.setattr(beat_module, "beat_lock", lambda: FileLock(path))
    return path


class Recorded:
    """A BeatScheduler whose sends are recorded instead of published, with one entry due every 50 ms."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        self.sent: list[str] = []
        self.scheduler = BeatScheduler(app=app, schedule_filename=str(tmp_path / f"schedule-{name}"))
        self.scheduler.__dict__["producer"] = None  # cached_property: no broker connection
        self.scheduler.apply_entry = self._record  # type: ignore[method-assign]
        self.scheduler.update_from_dict({"cheap": {"task": CHEAP_TASK, "schedule": 0.05}})

    def _record(self, entry: ScheduleEntry, producer: Any = None) -> None:
        self.sent.append(entry.name)

    def run_for(self, seconds: float) -> list[float]:
        """Tick as celery's beat service does, without its sleeps longer than 50 ms; the tick results."""
        results = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            results.append(self.scheduler.tick())
            time.sleep(max(0.0, min(results[-1], 0.05)))
        return results


@pytest.fixture
def schedulers(lock_file: Path, tmp_path: Path) -> Iterator[list[Recorded]]:
    made: list[Recorded] = []
    yield made
    for one in made:
        one.scheduler.close()


def test_the_embedded_default_locks_a_file_in_the_run_directory(settings: Any) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the flock is the lock of the SQLite default")
    lock = beat_lock()
    assert isinstance(lock, FileLock)
    assert Path(lock.path).parent == Path(settings.RUN_DIR)
    database = Path(settings.DATABASES["default"]["NAME"]).name
    assert Path(lock.path).name.startswith(f"celerybeat-{database}-")
    # another database file, another lock: two test runs' beats never wait for each other
    assert sqlite_lock_path(settings.DATABASES["default"]["NAME"]) == lock.path
    assert sqlite_lock_path("/elsewhere/db.sqlite3") != lock.path


def test_a_second_scheduler_stands_by_and_takes_over_when_the_first_lets_go(
    schedulers: list[Recorded], tmp_path: Path, lock_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="config.celery")
    first = Recorded(tmp_path, "first")
    schedulers.append(first)
    first.run_for(0.4)
    assert first.scheduler.is_leader
    assert first.sent, "the leader sent nothing"
    assert lock_file.read_text().strip().isdigit()  # the holder's pid, for an operator

    second = Recorded(tmp_path, "second")
    schedulers.append(second)
    sent_before = len(first.sent)
    results = second.run_for(0.4)
    first.run_for(0.4)
    assert not second.scheduler.is_leader
    assert second.sent == []
    assert set(results) == {2.0}, "a beat standing by sleeps the retry interval and does nothing else"
    assert len(first.sent) > sent_before
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("beat: standing by (another beat holds the lock)") == 1, messages  # said once

    first.scheduler.close()
    schedulers.remove(first)
    second.run_for(0.4)
    assert second.scheduler.is_leader
    assert second.sent, "the second scheduler did not take over"
    leaders = [r.getMessage() for r in caplog.records if r.getMessage().startswith("beat: leader")]
    assert leaders == [f"beat: leader (flock on {lock_file})"] * 2


def test_a_file_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    one, two = FileLock(tmp_path / "lock"), FileLock(tmp_path / "lock")
    assert one.hold()
    assert one.hold()  # still ours
    assert not two.hold()
    one.release()
    assert two.hold()
    assert not one.hold()
    two.release()


def test_the_local_runner_runs_only_while_beat_leads() -> None:
    leading = threading.Event()
    entry = ScheduleEntry(name="sweep", task=CHEAP_TASK, schedule=interval(timedelta(seconds=0.02)), app=app)
    runner = _LocalRunner(app, "sweep", entry, leading)
    runs: list[float] = []
    runner.run_once = lambda: runs.append(time.monotonic())  # type: ignore[method-assign]
    runner.start()
    try:
        time.sleep(0.3)
        assert runs == [], "a beat standing by ran the sweeper"
        leading.set()
        time.sleep(0.3)
        assert len(runs) >= 3
        leading.clear()
        time.sleep(0.1)
        stopped_at = len(runs)
        time.sleep(0.2)
        assert len(runs) == stopped_at
    finally:
        runner.stop()
        runner.join(2)


def test_the_advisory_lock_is_held_by_one_session(postgres: None, settings: Any) -> None:
    """PostgreSQL: one session holds it; the other gets it when the first lets go or its session ends."""
    one, two = PostgresAdvisoryLock.from_settings(), PostgresAdvisoryLock.from_settings()
    assert one.connect_kwargs["dbname"] == connection.settings_dict["NAME"]
    assert one.key == settings.PAYEASY_BEAT_LOCK_KEY
    try:
        assert one.hold()
        assert one.hold()
        assert not two.hold()
        one.release()
        assert two.hold()
        assert not one.hold()
        # the holder's session ends (as when PostgreSQL restarts): it knows at its next hold()
        pid = two._conn.info.backend_pid
        one._conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(Exception):  # noqa: B017 - whichever error the broken connection gives
            two.hold()
        assert one.hold()
        assert not two.hold()
    finally:
        one.release()
        two.release()
