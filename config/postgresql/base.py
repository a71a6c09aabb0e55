"""Django's PostgreSQL backend, its connection health check made cheap.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first query of every request (and of
every task) on a reused connection: one round trip to the database per page, about a tenth of a portal
page's time on the web workers. A connection the server has ended — PostgreSQL restarted, the backend
terminated, a proxy or failover that closed it — has something to read on its socket while it is idle
(the server's FATAL message, or the end of the stream). So: an idle connection whose socket has nothing
to read is usable, checked with a zero-timeout ``select`` (no round trip); one with something to read, or
inside a transaction, or in any other state, gets Django's ``SELECT 1`` as before. A connection cut
without a word (a silent network partition) is found by the first query of the request, as without the
check: that request fails, the connection is closed at its end, and the next one connects anew.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        try:
            idle = connection.info.transaction_status == pq.TransactionStatus.IDLE
            quiet = idle and not select.select([connection.fileno()], [], [], 0)[0]
        except (OSError, ValueError):
            return False
        return True if quiet else bool(super().is_usable())
