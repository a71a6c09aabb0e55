"""How many event streams may be opening at once in one events process (the ASGI service).

Opening a stream is the only part of it that needs the database for more than an instant: Django's
middleware (session, user, tenant) and the view run in a thread of their own per request, each with a
PostgreSQL connection, until the stream's first status is read and its connection closed
(``payeasy.live._status_released``). A burst of pages opening together — reminder e-mails sent at
once, a due date at month end — would otherwise ask for as many connections as there are pages
opening, past ``max_connections``. :class:`OpeningLimit` lets ``EVENTS_OPENING_LIMIT`` requests (32)
through at a time and holds the rest until one has sent its first bytes: the waiting ones hold no
thread and no connection, and an open stream waits on Redis without holding a permit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class OpeningLimit:
    """ASGI middleware: at most ``limit`` HTTP requests between their arrival and their first body bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the opening limit must be at least 1, not {limit}")
        self.app = app
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None

    def _permits(self) -> asyncio.Semaphore:
        if self._semaphore is None:  # created in the server's running loop
            self._semaphore = asyncio.Semaphore(self.limit)
        return self._semaphore

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        permits = self._permits()
        await permits.acquire()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                permits.release()

        async def sending(message: Message) -> None:
            try:
                await send(message)
            finally:
                if message["type"] == "http.response.body":
                    release()  # the first bytes (a stream's first status) are out: its reads are done

        try:
            await self.app(scope, receive, sending)
        finally:
            release()
