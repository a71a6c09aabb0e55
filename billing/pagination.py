"""Keyset (cursor) pagination, the one implementation: the console's invoice list, the staff console's
message history and the API's cursor pages (``billing.api.base.ListPagination``) check a cursor here.

A cursor is client input: one this site did not give out (unreadable, for another sort, or a position
that is not a value of its column) is ``BadCursor``, never a query that fails. Pages use LIMIT size + 1
on the index: no COUNT, no OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Field, Model, Q, QuerySet
from django.http import QueryDict

CURSOR_PARAMS = ("after", "before")


class BadCursor(ValueError):
    pass


@dataclass
class KeysetPage:
    rows: list[Any]
    next_cursor: str | None
    previous_cursor: str | None
    is_first: bool


def _field_names(ordering: tuple[str, ...]) -> list[str]:
    return [o.lstrip("-") for o in ordering]


def cursor_value(field: Field[Any, Any], raw: Any) -> Any:
    """``raw`` as a value of ``field`` (a sort key: NOT NULL), or ``BadCursor``: not a value of the column,
    a NUL (PostgreSQL text cannot hold one), or a number that does not fit the BIGINT columns."""
    try:
        value = field.to_python(raw)
    except (ValidationError, TypeError, ValueError) as exc:
        raise BadCursor from exc
    if value is None or isinstance(value, bool | dict | list) or "\x00" in str(raw):
        raise BadCursor
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise BadCursor
    return value


def encode_cursor(sort: str, ordering: tuple[str, ...], row: Any) -> str:
    values = [getattr(row, name) for name in _field_names(ordering)]
    payload = json.dumps([sort, *values], separators=(",", ":"), default=str, ensure_ascii=False)
    return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()


def decode_cursor(token: str, sort: str, ordering: tuple[str, ...], model: type[Model]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw.decode())
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadCursor from exc
    names = _field_names(ordering)
    if not isinstance(data, list) or len(data) != len(names) + 1 or data[0] != sort:
        raise BadCursor
    return [
        cursor_value(model._meta.get_field(n), v)  # type: ignore[arg-type]
        for n, v in zip(names, data[1:], strict=True)
    ]


def _beyond(ordering: tuple[str, ...], values: list[Any], *, backwards: bool) -> Q:
    """Rows strictly after the cursor in ``ordering`` (strictly before it when ``backwards``).

    (a, b) after (x, y) is ``a > x OR (a = x AND b > y)``; the extra ``a >= x``
    bounds the first key so the index scan starts at the cursor, not at the top.
    """
    names = _field_names(ordering)
    descending = [o.startswith("-") != backwards for o in ordering]
    equal = Q()
    beyond: Q | None = None
    for name, desc, value in zip(names, descending, values, strict=True):
        step = equal & Q(**{f"{name}__{'lt' if desc else 'gt'}": value})
        beyond = step if beyond is None else beyond | step
        equal &= Q(**{name: value})
    first = Q(**{f"{names[0]}__{'lte' if descending[0] else 'gte'}": values[0]})
    return first & beyond  # type: ignore[operator]


def keyset_page(
    qs: QuerySet[Any], *, sort: str, ordering: tuple[str, ...], after: str, before: str, size: int
) -> KeysetPage:
    """One page of ``qs`` (ordered by ``ordering``) after or before a cursor, with LIMIT size+1, no COUNT."""
    if before:
        values = decode_cursor(before, sort, ordering, qs.model)
        flipped = [o[1:] if o.startswith("-") else f"-{o}" for o in ordering]
        rows = list(qs.filter(_beyond(ordering, values, backwards=True)).order_by(*flipped)[: size + 1])
        has_previous = len(rows) > size
        rows = rows[:size][::-1]
        has_next = True
    else:
        if after:
            qs = qs.filter(_beyond(ordering, decode_cursor(after, sort, ordering, qs.model), backwards=False))
        rows = list(qs[: size + 1])
        has_next = len(rows) > size
        rows = rows[:size]
        has_previous = bool(after)
    return KeysetPage(
        rows=rows,
        next_cursor=encode_cursor(sort, ordering, rows[-1]) if has_next and rows else None,
        previous_cursor=encode_cursor(sort, ordering, rows[0]) if has_previous and rows else None,
        is_first=not (after or before) or (bool(before) and not has_previous),
    )


def page_query(params: QueryDict, **changes: str) -> str:
    """``params`` without the paging cursors, plus ``changes``, as a query string."""
    out = params.copy()
    for name in CURSOR_PARAMS:
        out.pop(name, None)
    for name, value in changes.items():
        out[name] = value
    return out.urlencode()


def page_links(path: str, params: QueryDict, page: KeysetPage | None) -> dict[str, str]:
    """The first, next and previous page links of a list page at ``path`` (filters kept, cursors
    replaced; "" where there is no such page): ``first_url``, ``next_url``, ``previous_url``."""
    after = page.next_cursor if page else ""
    before = page.previous_cursor if page else ""
    return {
        "first_url": f"{path}?{page_query(params)}",
        "next_url": f"{path}?{page_query(params, after=after)}" if after else "",
        "previous_url": f"{path}?{page_query(params, before=before)}" if before else "",
    }
