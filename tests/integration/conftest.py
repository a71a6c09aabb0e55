"""Real worker processes for integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the database the test run is using (the test database, not the configured one)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    auth = s.get("USER") or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CELERY_")) and k not in {"REDIS_URL", "PAYEASY_RUN_DIR"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="1",
        DATABASE_URL=database_url(),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Worker:
    def __init__(self, proc: subprocess.Popen[str], log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(tmp: Path, **env: str) -> Worker:
    log = tmp / "worker.log"
    handle = log.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--queues=celery,notify",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            f"test-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=process_env(**env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker = Worker(proc, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if " ready." in worker.output():
            return worker
        if proc.poll() is not None:
            raise AssertionError(f"worker exited with {proc.returncode}:\n{worker.output()}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"worker did not become ready in 30 s:\n{worker.output()}")


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator:
    started: list[Worker] = []

    def factory(**env: str) -> Worker:
        worker = start_worker(tmp_path, **env)
        started.append(worker)
        return worker

    yield factory
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.terminate()
            try:
                worker.proc.wait(10)
            except subprocess.TimeoutExpired:
                worker.proc.kill()


@pytest.fixture
def celery_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Point this process's Celery app at a real broker (not eager) for the test; yields the worker's env."""
    from config.celery import app

    kind = getattr(request, "param", "filesystem")
    saved = {k: app.conf[k] for k in ("task_always_eager", "broker_url", "broker_transport_options")}
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        env = {"REDIS_URL": url}
        app.conf.broker_url = url
        app.conf.broker_transport_options = {"visibility_timeout": 3600}
    else:
        run_dir = tmp_path / "run"
        env = {"PAYEASY_RUN_DIR": str(run_dir)}
        queue = run_dir / "broker" / "queue"
        queue.mkdir(parents=True)
        (run_dir / "broker" / "control").mkdir()
        app.conf.broker_url = "filesystem://"
        app.conf.broker_transport_options = {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "control_folder": str(run_dir / "broker" / "control"),
            "store_processed": False,
        }
    app.conf.task_always_eager = False
    _reset_connections(app)
    try:
        yield env
    finally:
        for k, v in saved.items():
            app.conf[k] = v
        _reset_connections(app)


def _reset_connections(app) -> None:  # type: ignore[no-untyped-def]
    """Drop pooled broker connections so the next publish uses the broker configured now."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


class CommServerProcess:
    def __init__(self, proc: subprocess.Popen[str], log: Path, port: int) -> None:
        self.proc = proc
        self.log = log
        self.port = port

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_commserver(tmp: Path, **env: str) -> CommServerProcess:
    log = tmp / f"commserver-{time.monotonic_ns()}.log"
    handle = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "commserver", "--port", "0"],
        cwd=ROOT,
        env=process_env(**env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        for line in text.splitlines():
            if "commserver listening on" in line:
                port = int(line.split("listening on ")[1].split(" ")[0].rsplit(":", 1)[1])
                return CommServerProcess(proc, log, port)
        if proc.poll() is not None:
            raise AssertionError(f"commserver exited with {proc.returncode}:\n{text}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"commserver did not listen in 30 s:\n{log.read_text(errors='replace')}")


@pytest.fixture
def commserver_factory(tmp_path: Path) -> Iterator:
    started: list[CommServerProcess] = []

    def factory(**env: str) -> CommServerProcess:
        server = start_commserver(tmp_path, **env)
        started.append(server)
        return server

    yield factory
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)
