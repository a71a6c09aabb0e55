"""The database connection's health check (config/postgresql/base.py): no round trip for a quiet idle
connection, and a connection the server ended is found and replaced before a request uses it."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoWrapper

from tests.conftest import owner_credentials

pytestmark = [pytest.mark.django_db(transaction=True)]


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def test_a_quiet_connection_is_usable_without_a_round_trip(postgres: None, monkeypatch: Any) -> None:
    _backend_pid()  # connected, idle
    asked: list[int] = []
    monkeypatch.setattr(DjangoWrapper, "is_usable", lambda self: asked.append(1) or True)
    assert connection.is_usable()
    assert asked == []  # no SELECT 1


def test_a_connection_the_server_ended_is_replaced_before_the_next_request(postgres: None) -> None:
    pid = _backend_pid()
    owner = {**owner_credentials(), "dbname": connection.settings_dict["NAME"]}
    with psycopg.connect(**owner, autocommit=True) as admin:  # type: ignore[arg-type]
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.2)  # the server's FATAL message reaches the socket
    assert not connection.is_usable()
    # what Django does when the next request starts and first uses the connection
    connection.close_if_unusable_or_obsolete()
    connection.close_if_health_check_failed()
    assert _backend_pid() != pid
