"""Fixtures shared by the whole suite, and the rule that a missing service is a failure in CI.

Integration tests need the real PostgreSQL, Redis and Celery worker processes
of the environment. Without them they are skipped with the reason printed;
with REQUIRE_SERVICES=1 (set by .ci/run) a missing service fails the test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from django.db import connection

from tests import factories

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


@pytest.fixture(scope="session", autouse=True)
def _database_is_what_ci_asked_for(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> None:
    if REQUIRE_SERVICES:
        with django_db_blocker.unblock():  # type: ignore[attr-defined]
            assert connection.vendor == "postgresql", (
                f"REQUIRE_SERVICES is set but the database is {connection.vendor}; set DATABASE_URL"
            )


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
    url = os.environ.get("REDIS_URL", "")
    need(bool(url), "this test needs Redis (set REDIS_URL=redis://…)")
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
