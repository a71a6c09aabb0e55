"""How the line's rows reach the database: the online state with the batch's stored keys in one round
trip, and the messages and notices in one statement (PostgreSQL; ``bulk_create`` elsewhere).

:class:`payeasy.line.LineProcessor` decides what a batch stores; this module writes it. On PostgreSQL
the statements go through a cursor with server-side binding (prepared once per connection), and every
table and column name comes from the models.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Sequence
from typing import Any

import psycopg
from django.db import connection
from django.db.models import Model

from payeasy.models import LineState, Notice
from payeasy.models import Message as LoggedMessage


def _column(model: type[Model], name: str) -> str:
    """The quoted column of ``model``'s field ``name``."""
    column = model._meta.get_field(name).column  # type: ignore[union-attr]
    assert column is not None, f"{model.__name__}.{name} has no column"
    return connection.ops.quote_name(column)


@functools.cache
def _line_and_stored_sql(*, lock: bool) -> str:
    """The query of :func:`line_state_read`; every table and column name from the models."""
    quote = connection.ops.quote_name
    state = ", ".join(
        _column(LineState, name)
        for name in ("id", "state", "processing_date", "previous_processing_date", "since")
    )
    notices, key = quote(Notice._meta.db_table), _column(Notice, "transaction_key")
    line = quote(LineState._meta.db_table)
    # pg_get_serial_sequence takes the table and column names as text, unquoted
    messages, message_id = LoggedMessage._meta.db_table, LoggedMessage._meta.get_field("id").column
    sequence = f"pg_get_serial_sequence('{messages}', '{message_id}')"
    sql = (
        f"SELECT {state}, "  # noqa: S608 — names from the models, no input
        f"ARRAY(SELECT {key} FROM {notices} WHERE {key} = ANY(%s)), "
        f"ARRAY(SELECT nextval({sequence}) FROM generate_series(1, %s)) "
        f"FROM {line} WHERE {_column(LineState, 'id')} = 1"
    )
    return sql + " FOR UPDATE" if lock else sql


def line_state_read(*, keys: list[str], frames: int, lock: bool) -> tuple[LineState, set[str], list[int]]:
    """The online state (locked when the batch changes it), which of ``keys`` are stored notices, and on
    PostgreSQL ids for the batch's ``frames`` messages: one round trip. With the ids known, the inserts
    need no RETURNING, and both go out with the COMMIT in one round trip."""
    if connection.vendor != "postgresql":
        line = (LineState.objects.select_for_update() if lock else LineState.objects).get(pk=1)
        stored = (
            set(Notice.objects.filter(transaction_key__in=keys).values_list("transaction_key", flat=True))
            if keys
            else set()
        )
        return line, stored, []
    cursor = _server_cursor()
    cursor.execute(_line_and_stored_sql(lock=lock), [keys, frames])
    row = cursor.fetchone()
    assert row is not None, "LineProcessor() creates the online state"
    pk, state, day, before, since, stored, ids = row
    line = LineState(pk, state, day, before, since)
    line._state.adding = False
    ids.reverse()  # popped from the end: the batch's messages get ascending ids
    return line, set(stored), ids


def _server_cursor() -> psycopg.Cursor[Any]:
    """A cursor with server-side binding on Django's connection: Django's own bind client-side, so every
    row would be a statement to parse and plan; these are prepared once per connection and then only
    executed (psycopg prepares a query after its fifth run)."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def rows_insert(*, model: Any, rows: Sequence[Any], skip_conflicts: bool) -> None:
    """One INSERT of all ``rows``; ``skip_conflicts`` skips a row whose unique key exists already.

    On PostgreSQL — the line's hot path, where Django's bulk_create spent most of the time compiling and
    a statement per row most of the server's — the rows go as one JSON document (``INSERT … SELECT …
    FROM json_populate_recordset(…)``): one statement of the same text for any number of rows, prepared
    once per connection, and one parameter that the C json encoder writes (psycopg's array dumpers, one
    array per column, took a quarter of the lane's time). Rows that have ids (messages) are inserted with
    them. Elsewhere ``bulk_create``, which sets the ids."""
    if connection.vendor != "postgresql":
        model.objects.bulk_create(rows, ignore_conflicts=skip_conflicts)
        return
    sql, names = _insert_sql(model, with_ids=rows[0].pk is not None, skip_conflicts=skip_conflicts)
    _server_cursor().execute(sql, [_json_rows(rows, names)], prepare=True)


def messages_and_notices_insert(*, messages: Sequence[LoggedMessage], notices: Sequence[Notice]) -> None:
    """Messages (with their ids) and the notices that point at them, in one statement: one round trip,
    one implicit transaction. A notice whose key is stored already is skipped (the same notice, stored
    meanwhile by another server or a teller file); its message is stored all the same."""
    if not messages:
        return
    message_sql, message_names = _insert_sql(LoggedMessage, with_ids=True, skip_conflicts=False)
    if not notices:
        _server_cursor().execute(message_sql, [_json_rows(messages, message_names)], prepare=True)
        return
    notice_sql, notice_names = _insert_sql(Notice, with_ids=False, skip_conflicts=True)
    sql = f"WITH m AS ({message_sql}) {notice_sql}"
    params = [_json_rows(messages, message_names), _json_rows(notices, notice_names)]
    _server_cursor().execute(sql, params, prepare=True)


def _json_value(value: Any) -> str:
    """What json.dumps cannot write itself, as PostgreSQL's input functions read it."""
    if isinstance(value, datetime.date):  # datetime too: ISO 8601, with its offset
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return "\\x" + bytes(value).hex()  # bytea's hex input format
    raise TypeError(f"{type(value).__name__} cannot go into the JSON of an insert")


def _json_rows(rows: Sequence[Any], names: Sequence[tuple[str, str]]) -> str:
    document = json.dumps(
        [{column: getattr(row, attname) for attname, column in names} for row in rows],
        default=_json_value,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    # PostgreSQL text cannot hold NUL: a text that has one (bytea goes as hex) gets U+FFFD instead
    return document.replace("\\u0000", "\ufffd") if "\\u0000" in document else document


@functools.cache
def _insert_sql(model: Any, *, with_ids: bool, skip_conflicts: bool) -> tuple[str, list[tuple[str, str]]]:
    fields = [f for f in model._meta.concrete_fields if with_ids or not f.primary_key]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    sql = (
        f"INSERT INTO {table} ({columns}) "  # noqa: S608 — names from the model, no input
        f"SELECT {columns} FROM json_populate_recordset(NULL::{table}, %s::json)"
    )
    if skip_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    return sql, [(f.attname, str(f.column)) for f in fields]


__all__ = ["line_state_read", "messages_and_notices_insert", "rows_insert"]
