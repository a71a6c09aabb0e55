"""The session store: Django's database sessions, remembering the row a request loaded.

A kept page (``billing.page_replay``) is served again only to a session whose row is still exactly the
one the page was rendered with: the store keeps the row's ``session_data`` as it was read
(``loaded_data``), before decoding, so that it can be compared byte for byte with the table later.
Nothing else differs from ``django.contrib.sessions.backends.db``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseStore


class SessionStore(DatabaseStore):
    loaded_data: str | None = None  # the row's session_data as loaded; None: no row was loaded

    def _get_session_from_db(self) -> Any:
        row = super()._get_session_from_db()  # type: ignore[misc]  # not in django-stubs
        self.loaded_data = None if row is None else row.session_data
        return row
