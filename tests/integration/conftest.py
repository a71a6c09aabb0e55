"""Real worker processes for integration tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

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


# The queues of config/settings/tasks.py, and the workers of the documented layout (docs/operators.md).
ALL_QUEUES = ("payments", "notifications", "webhooks", "imports", "maintenance")
PAYMENTS_QUEUES = ("payments",)
BACKGROUND_QUEUES = ("notifications", "webhooks", "imports", "maintenance")


class Worker:
    def __init__(self, proc: subprocess.Popen[str], log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _wait_ready(proc: subprocess.Popen[str], log: Path, marker: str, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if marker in text:
            return
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{text}")
        time.sleep(0.2)
    proc.kill()
    text = log.read_text(errors="replace")
    raise AssertionError(f"{what} did not become ready in {timeout:.0f} s:\n{text}")


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Return once ``condition()`` holds; fail after ``timeout`` seconds (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def celery_worker_argv(
    *, queues: str, hostname: str, pool: str = "solo", concurrency: int | None = None, lean: bool = True
) -> list[str]:
    """The command line of ``celery -A config worker`` on ``queues`` (comma-separated). ``lean``: no
    gossip, mingle or heartbeat (starts fastest). Also the benchmarks' workers (tests/bench)."""
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        f"--pool={pool}",
        f"--queues={queues}",
        "--loglevel=INFO",
        "--hostname",
        hostname,
    ]
    if concurrency is not None:
        args.append(f"--concurrency={concurrency}")
    if lean:
        args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return args


def start_worker(
    tmp: Path,
    *,
    queues: Sequence[str] = ALL_QUEUES,
    pool: str = "solo",
    concurrency: int | None = None,
    name: str = "worker",
    lean: bool = True,
    **env: str,
) -> Worker:
    """``celery -A config worker`` on ``queues``. ``pool="prefork", concurrency=2, lean=False`` is the
    worker as config/Procfile runs it; the default (one process, no gossip, mingle or heartbeat) starts
    fastest."""
    log = tmp / f"{name}-{time.monotonic_ns()}.log"
    handle = log.open("w")
    args = celery_worker_argv(
        queues=",".join(queues),
        hostname=f"test-{name}-{os.getpid()}@%h",
        pool=pool,
        concurrency=concurrency,
        lean=lean,
    )
    proc = subprocess.Popen(
        args, cwd=ROOT, env=process_env(**env), stdout=handle, stderr=subprocess.STDOUT, text=True
    )
    _wait_ready(proc, log, " ready.", "worker")
    return Worker(proc, log)


def start_beat(tmp: Path, **env: str) -> Worker:
    """``celery -A config beat`` with its schedule file under ``tmp``."""
    log = tmp / f"beat-{time.monotonic_ns()}.log"
    handle = log.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(tmp / f"celerybeat-schedule-{time.monotonic_ns()}"),
        ],
        cwd=ROOT,
        env=process_env(**env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_ready(proc, log, "beat: Starting...", "beat")
    return Worker(proc, log)


def _stop(processes: list[Worker]) -> None:
    for process in processes:
        if process.proc.poll() is None:
            process.proc.terminate()
    for process in processes:
        try:
            process.proc.wait(10)
        except subprocess.TimeoutExpired:
            process.proc.kill()
            process.proc.wait(10)


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator:
    started: list[Worker] = []

    def factory(**kwargs: Any) -> Worker:
        worker = start_worker(tmp_path, **kwargs)
        started.append(worker)
        return worker

    yield factory
    _stop(started)


@pytest.fixture
def beat_factory(tmp_path: Path) -> Iterator:
    started: list[Worker] = []

    def factory(**env: str) -> Worker:
        beat = start_beat(tmp_path, **env)
        started.append(beat)
        return beat

    yield factory
    _stop(started)


class RedisServer:
    """A ``redis-server`` of the test's own on a free port, to stop, kill, restart and flush at will (the
    machine's shared Redis is never touched). No persistence: a restart loses everything, as a crash of
    an in-memory Redis does."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "redis"
        self.dir.mkdir(exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start it; returns the monotonic time at which it answered PING."""
        import redis

        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.dir)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return time.monotonic()
            except redis.ConnectionError:
                time.sleep(0.02)
        raise AssertionError(f"redis-server on {self.port} did not answer in 10 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_connect_timeout=1)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    from tests.conftest import need

    need(shutil.which("redis-server") is not None, "this test needs redis-server on PATH")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop(signal.SIGKILL)


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


@pytest.fixture
def redis_server_broker(redis_server: RedisServer) -> Iterator[dict[str, str]]:
    """``celery_broker`` on the test's own ``redis_server``: yields the env for worker and beat processes."""
    from config.celery import app

    saved = {k: app.conf[k] for k in ("task_always_eager", "broker_url", "broker_transport_options")}
    app.conf.broker_url = redis_server.url
    app.conf.broker_transport_options = {"visibility_timeout": 3600}
    app.conf.task_always_eager = False
    _reset_connections(app)
    try:
        yield {"REDIS_URL": redis_server.url}
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


def start_commserver(tmp: Path, *args: str, **env: str) -> CommServerProcess:
    """``manage.py commserver --port 0 ARGS…`` with ``env`` added to the test's process environment."""
    log = tmp / f"commserver-{time.monotonic_ns()}.log"
    handle = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "commserver", "--port", "0", *args],
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

    def factory(*args: str, **env: str) -> CommServerProcess:
        server = start_commserver(tmp_path, *args, **env)
        started.append(server)
        return server

    yield factory
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)


def free_port(ports: range, taken: set[int]) -> int:
    """A port of ``ports`` (a suite's share) not in ``taken`` that binds now; added to ``taken``."""
    for port in ports:
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise AssertionError(f"no free port in {ports.start}-{ports.stop - 1}")
