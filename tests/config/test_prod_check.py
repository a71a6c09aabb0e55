"""``manage.py prod_check``: a real ``manage.py`` in a subprocess with production settings (no
DJANGO_DEBUG), against the PostgreSQL of DATABASE_URL (as its application role) and a redis-server of
the test's own, so that its configuration can be made unsafe without touching the shared Redis.

A complete, safe production environment passes, except what this machine's PostgreSQL cannot give
(WAL archiving, a standby): those must then fail by name, and pass only when waived. Each unsafe setting
fails the check, naming the item, where the safe run had it OK.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]
# the ports of this test's own redis-server
PORTS = range(7400, 7500)


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {PORTS}")


class Redis:
    """A redis-server of the test's own, configured as production wants it: noeviction, append-only."""

    def __init__(self, directory: Path) -> None:
        import redis

        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory)),
                *("--save", "", "--appendonly", "yes", "--appendfsync", "everysec"),
                *("--maxmemory-policy", "noeviction"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def configured(self, name: str, value: str) -> Any:
        """A context in which this server has ``name`` set to ``value``, restored after."""
        import contextlib

        @contextlib.contextmanager
        def change() -> Iterator[None]:
            before = str(self.client.config_get(name)[name])
            self.client.config_set(name, value)
            try:
                yield
            finally:
                self.client.config_set(name, before)

        return change()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    need(shutil.which("redis-server") is not None, "this test needs redis-server on PATH")
    server = Redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def _database_urls() -> tuple[str, str]:
    app, owner = os.environ.get("DATABASE_URL", ""), os.environ.get("DATABASE_OWNER_URL", "")
    need(app.startswith("postgres"), "this test needs PostgreSQL (set DATABASE_URL=postgres://…)")
    need(bool(owner), "this test needs DATABASE_OWNER_URL apart from the application role's DATABASE_URL")
    return app, owner


def _owner_connect() -> Any:
    import dj_database_url
    import psycopg

    app, owner = _database_urls()
    db, who = dj_database_url.parse(app), dj_database_url.parse(owner)
    return psycopg.connect(
        dbname=db["NAME"],
        user=who["USER"],
        password=who["PASSWORD"] or None,
        host=who["HOST"] or "127.0.0.1",
        port=who["PORT"] or 5432,
        autocommit=True,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.payeasy.tls_helpers import make_pki

    return make_pki(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def production(redis_server: Redis, pki: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A complete, safe production environment, on a database migrated as the operator would."""
    app, owner = _database_urls()
    run_dir = str(tmp_path_factory.mktemp("run"))
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PAYEASY_", "COMMSERVER_", "CELERY_", "PORTAL_", "WEB_", "GUNICORN_"))
        and k not in ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL")
    }
    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": app,
            "DATABASE_OWNER_URL": owner,
            "PAYEASY_RUN_DIR": run_dir,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return {
        **base,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "portal.example.jp,.portal.example.jp",
        "PORTAL_DOMAIN": "portal.example.jp",
        "PORTAL_BASE_URL": "https://portal.example.jp",
        "DATABASE_URL": app,
        "REDIS_URL": redis_server.url,
        "PAYEASY_RUN_DIR": run_dir,
        "PAYEASY_HANDOFF_KEK": secrets.token_hex(32),
        "PAYEASY_METRICS_TOKEN": secrets.token_urlsafe(32),
        "DJANGO_EMAIL_HOST": "smtp.example.jp",
        "DJANGO_EMAIL_PORT": "587",
        "DJANGO_EMAIL_USE_TLS": "1",
        "DJANGO_DEFAULT_FROM_EMAIL": "Pay-easy portal <no-reply@portal.example.jp>",
        **pki.server_env(),
    }


class Result:
    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.returncode = done.returncode
        data = json.loads(done.stdout)
        # what an assertion shows: one line an item, then the command's error output
        self.output = "\n".join(
            f"{item['status']:6} {item['id']}: {item['found']}" for item in data["items"]
        ) + ("\n" + done.stderr if done.stderr else "")
        self.ok = data["ok"]
        self.status = {item["id"]: item["status"] for item in data["items"]}
        self.items = {item["id"]: item for item in data["items"]}

    def failing(self) -> set[str]:
        return {i for i, status in self.status.items() if status == "FAIL"}


def prod_check(env: dict[str, str], *args: str, **changes: str | None) -> Result:
    """``manage.py prod_check --json`` under ``env`` with ``changes`` (None removes a variable)."""
    run_env = {**env, **{k: v for k, v in changes.items() if v is not None}}
    for name in [k for k, v in changes.items() if v is None]:
        run_env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "manage.py", "prod_check", "--json", *args],
        cwd=ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.startswith("{"), done.stdout + done.stderr
    return Result(done)


def machine_shortfalls() -> set[str]:
    """What this machine's PostgreSQL lacks for production, asked of the server directly (not through
    the command under test): the items that must fail here, and nothing else."""
    expected = set()
    with _owner_connect() as conn:
        if conn.execute("SHOW archive_mode").fetchone()[0] not in ("on", "always"):
            expected.add("postgres.archive_mode")
        if not conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone()[0]:
            expected.add("postgres.standby")
        if conn.execute("SHOW wal_level").fetchone()[0] not in ("replica", "logical"):
            expected.add("postgres.wal_level")
    return expected


@pytest.fixture(scope="module")
def baseline(production: dict[str, str]) -> Result:
    return prod_check(production)


def test_a_safe_production_environment_fails_only_what_this_machine_lacks(
    production: dict[str, str], baseline: Result
) -> None:
    expected = machine_shortfalls()
    assert baseline.failing() == expected, baseline.output
    assert (baseline.returncode == 0) == (not expected) == baseline.ok
    for item in expected:
        assert item.split(".")[1] in baseline.items[item]["found"]  # archive_mode …, standby …
        assert baseline.items[item]["fix"]
    # every section ran and was checked against the servers
    for item in (
        "django.check_deploy",
        "postgres.connect",
        "postgres.app_role",
        "postgres.row_level_security",
        "postgres.migrations",
        "postgres.durability",
        "redis.maxmemory_policy",
        "redis.persistence",
        "celery.visibility_timeout",
        "commserver.tls",
    ):
        assert baseline.status[item] == "OK", baseline.items[item]


def test_waived_items_pass_but_stay_in_the_report(production: dict[str, str], baseline: Result) -> None:
    expected = machine_shortfalls() or {"postgres.standby"}
    waived = prod_check(production, *(f"--waive={i}" for i in expected))
    assert waived.returncode == 0 and waived.ok, waived.output
    assert {i for i, s in waived.status.items() if s != "OK"} == expected - {
        i for i in expected if baseline.status[i] == "OK"
    }
    for item in expected - {i for i in expected if baseline.status[i] == "OK"}:
        assert waived.status[item] == "WAIVED"
        assert waived.items[item]["found"] == baseline.items[item]["found"]
    from_env = prod_check(production, PAYEASY_PROD_CHECK_WAIVE=",".join(expected))
    assert from_env.status == waived.status and from_env.returncode == 0


def test_the_table_names_each_failure_and_what_to_change(production: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "prod_check"],
        cwd=ROOT,
        env={**production, "PAYEASY_WEBHOOK_ALLOW_PRIVATE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    line = next(i for i, text in enumerate(lines) if "payeasy.outbound" in text)
    assert lines[line].startswith("FAIL") and "PAYEASY_WEBHOOK_ALLOW_PRIVATE is on" in lines[line]
    assert "→" in lines[line + 1]
    assert any(text.startswith("OK") and "postgres.app_role" in text for text in lines)
    assert "payeasy.outbound" in done.stderr  # the error line names what failed


# one environment variable changed → the items it must fail (OK in the safe run)
UNSAFE_ENVIRONMENT: list[tuple[dict[str, str | None], set[str]]] = [
    ({"DJANGO_DEBUG": "1"}, {"security.debug"}),
    ({"DJANGO_SECRET_KEY": "short-" * 3}, {"security.secret_key", "django.security.W009"}),
    ({"DJANGO_ALLOWED_HOSTS": "*"}, {"security.allowed_hosts"}),
    ({"DJANGO_SECURE_HSTS_SECONDS": "0"}, {"security.https", "django.security.W004"}),
    ({"DJANGO_SECURE_HSTS_SECONDS": "86400"}, {"security.https"}),
    ({"DJANGO_SECURE_SSL_REDIRECT": "0"}, {"security.https", "django.security.W008"}),
    ({"DJANGO_CSRF_TRUSTED_ORIGINS": "http://portal.example.jp"}, {"security.https"}),
    ({"DJANGO_BEHIND_TLS_PROXY": "0"}, {"security.tls_proxy"}),
    ({"WEB_BIND": "0.0.0.0:8000"}, {"security.tls_proxy"}),
    ({"PAYEASY_HANDOFF_KEK": None}, {"payeasy.handoff_kek"}),
    ({"PAYEASY_HANDOFF_KEK": "secret-key"}, {"payeasy.handoff_kek"}),
    ({"PAYEASY_HANDOFF_KEK": "not-a-key"}, {"payeasy.handoff_kek", "django.payeasy.E001"}),
    ({"PAYEASY_WEBHOOK_ALLOW_PRIVATE": "1"}, {"payeasy.outbound", "django.payeasy.W001"}),
    ({"PAYEASY_WEBHOOK_REQUIRE_HTTPS": "0"}, {"payeasy.outbound"}),
    ({"PAYEASY_DEMO": "1"}, {"payeasy.sandbox", "django.payeasy.W010"}),
    ({"COMMSERVER_TLS_KEY": None}, {"commserver.tls"}),
    ({"COMMSERVER_PEERS": None}, {"commserver.tls"}),
    ({"PAYEASY_METRICS_TOKEN": "metrics"}, {"payeasy.metrics_token"}),
    ({"DJANGO_EMAIL_BACKEND": "console"}, {"mail.backend"}),
    ({"DJANGO_EMAIL_BACKEND": "readable"}, {"mail.backend"}),
    ({"DJANGO_EMAIL_USE_TLS": "0", "DJANGO_EMAIL_HOST_PASSWORD": "pw"}, {"mail.backend"}),
    ({"DJANGO_DEFAULT_FROM_EMAIL": None}, {"mail.backend"}),
    ({"PORTAL_BASE_URL": "http://portal.example.jp"}, {"portal.base_url"}),
    ({"PORTAL_BASE_URL": "https://elsewhere.example.com"}, {"portal.base_url"}),
    ({"DATABASE_URL": None}, {"postgres.connect"}),
    ({"DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing"}, {"postgres.connect"}),
    ({"REDIS_URL": None}, {"redis.connect"}),
    ({"REDIS_URL": "redis://127.0.0.1:1/0"}, {"redis.connect"}),
]


@pytest.mark.parametrize(
    ("changes", "fails"),
    UNSAFE_ENVIRONMENT,
    ids=[",".join(c) + "=" + str(next(iter(c.values()))) for c, _ in UNSAFE_ENVIRONMENT],
)
def test_an_unsafe_environment_fails_naming_the_item(
    production: dict[str, str], baseline: Result, changes: dict[str, str | None], fails: set[str]
) -> None:
    result = prod_check(production, **changes)
    assert result.returncode == 1 and not result.ok
    assert fails <= result.failing(), result.output
    for item in fails:
        assert baseline.status.get(item, "OK") == "OK"  # the change made it fail


def test_production_settings_without_a_secret_key_refuse_to_start(production: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "prod_check"],
        cwd=ROOT,
        env={k: v for k, v in production.items() if k != "DJANGO_SECRET_KEY"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "DJANGO_SECRET_KEY is not set" in done.stderr


# one setting replaced (tests/config/prod_check_settings.py) → the item that must fail
def _routes_without(name: str) -> dict[str, Any]:
    from config.settings.tasks import CELERY_TASK_ROUTES

    return {k: v for k, v in CELERY_TASK_ROUTES.items() if k != name}


UNSAFE_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"CELERY_TASK_ACKS_LATE": False}, "celery.delivery"),
    ({"CELERY_TASK_REJECT_ON_WORKER_LOST": False}, "celery.delivery"),
    ({"CELERY_WORKER_PREFETCH_MULTIPLIER": 4}, "celery.delivery"),
    ({"CELERY_TASK_ALWAYS_EAGER": True}, "celery.delivery"),
    ({"CELERY_BROKER_CONNECTION_MAX_RETRIES": 100}, "celery.broker_retries"),
    ({"CELERY_TASK_ROUTES": _routes_without("billing.tasks.receipts_send")}, "celery.routes"),
    ({"CELERY_TASK_TIME_LIMIT": None}, "celery.time_limits"),
    # a task's own limit beyond what the visibility timeout was derived from
    (
        {"CELERY_TASK_ANNOTATIONS": {"billing.tasks.import_job_run": {"time_limit": 7200}}},
        "celery.visibility_timeout",
    ),
    ({"CELERY_BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": 3600}}, "celery.visibility_timeout"),
    ({"SECURE_PROXY_SSL_HEADER": None}, "security.tls_proxy"),
    ({"SESSION_COOKIE_SECURE": False}, "security.https"),
]


@pytest.mark.parametrize(
    ("overrides", "item"), UNSAFE_SETTINGS, ids=[next(iter(o)) for o, _ in UNSAFE_SETTINGS]
)
def test_an_unsafe_setting_fails_naming_the_item(
    production: dict[str, str], baseline: Result, overrides: dict[str, Any], item: str
) -> None:
    result = prod_check(
        production,
        DJANGO_SETTINGS_MODULE="tests.config.prod_check_settings",
        PROD_CHECK_OVERRIDES=json.dumps(overrides),
    )
    assert result.returncode == 1
    assert item in result.failing(), result.output
    assert baseline.status[item] == "OK"


def test_the_visibility_timeout_follows_the_time_limits(production: dict[str, str]) -> None:
    """CELERY_TASK_TIME_LIMIT (and the longer limits) raise the visibility timeout with them."""
    result = prod_check(production, CELERY_TASK_TIME_LIMIT="7200")
    assert result.status["celery.visibility_timeout"] == "OK", result.output
    assert "visibility_timeout = 8100 s" in result.items["celery.visibility_timeout"]["found"]
    assert "time limit" in result.items["celery.visibility_timeout"]["found"]


def test_the_settings_override_changes_nothing_by_itself(
    production: dict[str, str], baseline: Result
) -> None:
    result = prod_check(production, DJANGO_SETTINGS_MODULE="tests.config.prod_check_settings")
    assert result.status == baseline.status


@pytest.mark.parametrize(
    ("name", "value", "item"),
    [
        ("maxmemory-policy", "allkeys-lru", "redis.maxmemory_policy"),
        ("maxmemory-policy", "volatile-lru", "redis.maxmemory_policy"),
        ("appendonly", "no", "redis.persistence"),
        ("appendfsync", "no", "redis.persistence"),
    ],
)
def test_an_unsafe_redis_fails_naming_the_item(
    production: dict[str, str], baseline: Result, redis_server: Redis, name: str, value: str, item: str
) -> None:
    with redis_server.configured(name, value):
        result = prod_check(production)
    assert result.returncode == 1
    assert result.failing() - baseline.failing() == {item}, result.output
    assert value in result.items[item]["found"] or name in result.items[item]["found"]


def test_the_owner_as_application_role_fails(production: dict[str, str], baseline: Result) -> None:
    _, owner = _database_urls()
    import dj_database_url

    db = dj_database_url.parse(production["DATABASE_URL"])
    who = dj_database_url.parse(owner)
    password = f":{who['PASSWORD']}" if who["PASSWORD"] else ""
    url = f"postgres://{who['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    result = prod_check(production, DATABASE_URL=url)
    assert "postgres.app_role" in result.failing(), result.output
    assert "owns" in result.items["postgres.app_role"]["found"]
    assert baseline.status["postgres.app_role"] == "OK"


def _tenant_table() -> str:
    with _owner_connect() as conn:
        return conn.execute(
            "SELECT relname FROM pg_class WHERE relname = 'billing_invoice' AND relforcerowsecurity"
        ).fetchone()[0]


@pytest.mark.parametrize(
    ("change", "restore", "item"),
    [
        (
            "ALTER TABLE billing_invoice NO FORCE ROW LEVEL SECURITY",
            "ALTER TABLE billing_invoice FORCE ROW LEVEL SECURITY",
            "postgres.row_level_security",
        ),
        (
            "GRANT TRUNCATE ON billing_invoice TO {app}",
            "REVOKE TRUNCATE ON billing_invoice FROM {app}",
            "postgres.privileges",
        ),
        (
            "ALTER ROLE {app} IN DATABASE {db} SET synchronous_commit = off",
            "ALTER ROLE {app} IN DATABASE {db} RESET synchronous_commit",
            "postgres.durability",
        ),
        (
            "ALTER ROLE {app} IN DATABASE {db} SET statement_timeout = '10s'",
            "ALTER ROLE {app} IN DATABASE {db} RESET statement_timeout",
            "postgres.statement_timeout",
        ),
        (
            "UPDATE django_migrations SET app = 'prodcheck-moved' WHERE app = 'sessions'",
            "UPDATE django_migrations SET app = 'sessions' WHERE app = 'prodcheck-moved'",
            "postgres.migrations",
        ),
    ],
    ids=["rls-not-forced", "truncate", "synchronous-commit", "statement-timeout", "unapplied-migration"],
)
def test_an_unsafe_database_fails_naming_the_item(
    production: dict[str, str], baseline: Result, change: str, restore: str, item: str
) -> None:
    """Changes to this test's own database (and its application role there), undone in any case."""
    import dj_database_url

    db = dj_database_url.parse(production["DATABASE_URL"])
    names = {"app": f'"{db["USER"]}"', "db": f'"{db["NAME"]}"'}
    assert _tenant_table() == "billing_invoice"
    with _owner_connect() as conn:
        conn.execute(change.format(**names))
        try:
            result = prod_check(production)
        finally:
            conn.execute(restore.format(**names))
    assert result.returncode == 1
    assert result.failing() - baseline.failing() == {item}, result.output
    assert prod_check(production).status == baseline.status  # restored
