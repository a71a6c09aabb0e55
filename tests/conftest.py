"""Fixtures shared by the whole suite, and the rule that a missing service is a failure in CI.

Integration tests need the real PostgreSQL, Redis and Celery worker processes
of the environment. Without them they are skipped with the reason printed;
with REQUIRE_SERVICES=1 (set by .ci/run) a missing service fails the test.

On PostgreSQL with DATABASE_OWNER_URL (as .ci/run sets it), the test database is created and migrated
as the owner (which also creates the application role of DATABASE_URL and grants it its privileges),
and the tests run as the application role: under the grants and the tenant policies, like production.
The suite's own fixtures create rows of any tenant through the named bypass ``tests``; every request
the test client makes runs in its own tenant scope all the same (billing.tenancy.TenantMiddleware).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from django.db import connection

from billing import dbsecurity, tenancy
from tests import factories

pytest_plugins = ["tests.logscan"]  # every log line is JSON without payment numbers, names or secrets

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES", "") in {"1", "true", "yes"}


def need(condition: bool, reason: str) -> None:
    """Skip (or, under REQUIRE_SERVICES, fail) when a service the test needs is missing."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES is set but {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_report_header(config: pytest.Config) -> list[str]:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return [
        f"database: {engine}  redis: {os.environ.get('REDIS_URL') or 'not set'}  "
        f"chromium: {shutil.which('chromium') or 'not found'}  REQUIRE_SERVICES={int(REQUIRE_SERVICES)}"
    ]


# Fixtures and assertions of the tests cross tenants; requests do not (they reset it in their scope).
tenancy.bind_cross_tenant("tests")
_owner_switch = dbsecurity.OwnerSwitch(connection)


def _flush_as_owner() -> None:
    """The flush after a transactional test empties every table with TRUNCATE: the owner's right (the
    application role has none), with the truncate guards of the append-only tables off (replica mode)."""
    from django.core.management.commands import flush

    handle = flush.Command.handle

    def flush_handle(self: flush.Command, **options: object) -> None:
        with dbsecurity.as_owner(connection, replica=True) as switched:
            if switched or connection.vendor != "postgresql":
                handle(self, **options)
                return
            # one role for everything (a superuser, as in development): the guards off for the flush
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = replica")
            try:
                handle(self, **options)
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("RESET session_replication_role")

    flush.Command.handle = flush_handle  # type: ignore[method-assign]


_flush_as_owner()


def owner_credentials() -> dict[str, object]:
    """psycopg.connect() keywords for the owner of the test database (the configured role when one role
    does everything): for what only the owner may do, such as ALTER DATABASE or CREATE DATABASE."""
    s = dbsecurity.owner_settings() or connection.settings_dict
    return {
        "host": s.get("HOST") or "127.0.0.1",
        "port": s.get("PORT") or 5432,
        "user": s.get("USER") or "postgres",
        "password": s.get("PASSWORD") or None,
    }


def app_credentials() -> dict[str, object]:
    """psycopg.connect() keywords for the application role on the test database: grants and row-level
    security apply to it as to the product's processes."""
    s = connection.settings_dict
    return {
        "host": s.get("HOST") or "127.0.0.1",
        "port": s.get("PORT") or 5432,
        "user": s.get("USER"),
        "password": s.get("PASSWORD") or None,
        "dbname": s["NAME"],
    }


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> Iterator[None]:
    """Create and migrate the test database as the owner (DATABASE_OWNER_URL), when one is configured."""
    _owner_switch.enter()
    yield
    _owner_switch.leave()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[None]:
    """The tests themselves run as the application role; the test database is dropped as the owner."""
    _owner_switch.leave()
    yield
    _owner_switch.enter()


@pytest.fixture(scope="session", autouse=True)
def _database_is_what_ci_asked_for(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> None:
    if REQUIRE_SERVICES:
        with django_db_blocker.unblock():  # type: ignore[attr-defined]
            assert connection.vendor == "postgresql", (
                f"REQUIRE_SERVICES is set but the database is {connection.vendor}; set DATABASE_URL"
            )
            if dbsecurity.owner_settings():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = user")
                    privileged = cursor.fetchone()[0]
                assert not privileged, "the tests must run as the application role, not the owner"


@pytest.fixture(autouse=True)
def _billers_forgotten() -> None:
    """Each test reads its billers from its own database, not from what an earlier test's requests kept
    (billing.tenancy.biller_for_slug keeps a process's billers for a moment)."""
    from billing.tenancy import forget_billers

    forget_billers()


@pytest.fixture(autouse=True)
def _language_reset() -> Iterator[None]:
    """A request served in Japanese leaves the thread's language active; each test starts from the default."""
    from django.utils import translation

    yield
    translation.deactivate()


@pytest.fixture
def postgres() -> None:
    need(connection.vendor == "postgresql", "this test needs PostgreSQL (set DATABASE_URL=postgres://…)")


@pytest.fixture
def redis_url() -> str:
    return live_redis_url()


def live_redis_url(*, needed_by: str = "this test needs") -> str:
    """REDIS_URL when a Redis answers there; otherwise the test is skipped (or fails in CI: ``need``)."""
    url = os.environ.get("REDIS_URL", "")
    need(bool(url), f"{needed_by} Redis (set REDIS_URL=redis://…)")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        need(False, f"Redis at {url} does not answer: {exc}")
    return url


@pytest.fixture
def biller(db: None):  # type: ignore[no-untyped-def]
    return factories.make_biller()


@pytest.fixture
def other_biller(db: None):  # type: ignore[no-untyped-def]
    return factories.make_biller()


@pytest.fixture
def staff_user(db: None):  # type: ignore[no-untyped-def]
    return factories.make_user("staff@idc.test", is_idc_staff=True)


@pytest.fixture
def staff_client(client, staff_user):  # type: ignore[no-untyped-def]
    client.force_login(staff_user)
    return client


@pytest.fixture
def admin_user(biller):  # type: ignore[no-untyped-def]
    return factories.make_member(biller, email="admin@biller.test")


@pytest.fixture
def admin_client(client, admin_user):  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    return client
