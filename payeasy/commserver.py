"""The communication server (通信サーバ): the MPN side's TCP connections in, answers out (spec §1, §5).

One asyncio loop reads frames from every connection and queues them in two lanes: inquiries (1100)
and everything else. Each lane has one database thread that takes whatever has queued up, stores
and answers it in one transaction (:class:`payeasy.line.LineProcessor`), and only after that commit
are the answers written: persist, then acknowledge. The notices a batch stored are handed to Celery
on commit, as one wake-up for the workers, who claim waiting notices from the database.

A connection that sends a frame whose header cannot be read is closed after that frame is logged;
the others carry on. SIGTERM stops accepting and reading, lets the lanes answer what they hold,
then closes: nothing is acknowledged that is not committed, and nothing committed goes unanswered
while its connection is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections, connection

from payeasy import codec
from payeasy.codec import CodecError, FrameDecoder
from payeasy.line import Answer, LineProcessor, Received

log = logging.getLogger("payeasy.commserver")

READ_SIZE = 1 << 16


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        self.reader = reader
        self.writer = writer
        host, port = (writer.get_extra_info("peername") or ("?", 0))[:2]
        self.peer = f"{host}:{port}#{number}"
        self.in_flight = 0
        self.closed = False

    def send(self, answers: list[Answer]) -> None:
        """Write ``answers`` in order, in one write (one system call for a batch's answers on this
        connection); an answer without a body closes the connection after the ones before it."""
        self.in_flight -= len(answers)
        if self.closed:
            return
        chunks: list[bytes] = []
        for answer in answers:
            if answer.body is None:
                if chunks:
                    self.writer.write(b"".join(chunks))
                self.close()
                return
            chunks.append(b"%04d" % len(answer.body))
            chunks.append(answer.body)
        self.writer.write(b"".join(chunks))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


class _Lane:
    """Frames of one kind, answered in batches by one database thread."""

    def __init__(self, name: str, server: CommServer) -> None:
        self.name = name
        self.server = server
        self.queue: asyncio.Queue[tuple[Received, _Connection] | None] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"line-{name}")
        self.processor: LineProcessor | None = None

    def _process(self, batch: list[Received]) -> list[Answer]:
        if self.processor is None:
            self.processor = LineProcessor(on_new_notices=self.server.on_new_notices)
        close_old_connections()  # a connection the database dropped is replaced, not reused
        return self.processor.process(batch)

    def _close_db(self) -> None:
        connection.close()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        done = False
        while not done:
            item = await self.queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < self.server.batch_max and not self.queue.empty():
                more = self.queue.get_nowait()
                if more is None:
                    done = True
                    break
                batch.append(more)
            try:
                answers = await loop.run_in_executor(self.executor, self._process, [r for r, _ in batch])
            except Exception:
                # nothing was stored, so nothing is acknowledged: the MPN side resends after its timeout
                log.exception("%s lane: a batch of %d frames could not be stored", self.name, len(batch))
                for _received, conn in batch:
                    conn.in_flight -= 1
                continue
            by_connection: dict[_Connection, list[Answer]] = {}
            for (_received, conn), answer in zip(batch, answers, strict=True):
                by_connection.setdefault(conn, []).append(answer)
            for conn, its_answers in by_connection.items():
                conn.send(its_answers)
        await loop.run_in_executor(self.executor, self._close_db)
        self.executor.shutdown(wait=True)


class CommServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        batch_max: int = 256,
        on_new_notices: Any = None,
    ) -> None:
        self.host = host
        self.port = port
        self.batch_max = batch_max
        self.on_new_notices = on_new_notices
        self.connections: set[_Connection] = set()
        self.readers: set[asyncio.Task[None]] = set()
        self.count = 0
        self.stopping = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.inquiries = _Lane("inquiry", self)
        self.main = _Lane("main", self)

    async def serve(self, ready: asyncio.Event | None = None) -> None:
        """Serve until :meth:`stop` (or SIGTERM/SIGINT when run by the command)."""
        lanes = [asyncio.create_task(self.inquiries.run()), asyncio.create_task(self.main.run())]
        self.server = await asyncio.start_server(self._accept, self.host, self.port, limit=READ_SIZE)
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("commserver listening on %s:%d", self.host, self.port)
        if ready is not None:
            ready.set()
        await self.stopping.wait()
        # stop accepting and reading; what was read is answered, then the connections close
        self.server.close()
        for task in list(self.readers):
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        await self.inquiries.queue.put(None)
        await self.main.queue.put(None)
        await asyncio.gather(*lanes)
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.writer.drain()
            conn.close()
        await self.server.wait_closed()
        log.info("commserver stopped")

    def stop(self) -> None:
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.count += 1
        conn = _Connection(reader, writer, self.count)
        self.connections.add(conn)
        task = asyncio.current_task()
        assert task is not None
        self.readers.add(task)  # type: ignore[arg-type]
        try:
            await self._read(conn)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, OSError) as exc:
            log.info("%s: %s", conn.peer, exc)
        finally:
            self.readers.discard(task)  # type: ignore[arg-type]
        if not self.stopping.is_set():  # when stopping, closed after the lanes have answered
            await self._wait_answers(conn)
            conn.close()
            self.connections.discard(conn)

    async def _wait_answers(self, conn: _Connection, limit: float = 3.0) -> None:
        waited = 0.0
        while conn.in_flight > 0 and not conn.closed and waited < limit:
            await asyncio.sleep(0.01)
            waited += 0.01
        with contextlib.suppress(Exception):
            await conn.writer.drain()

    async def _read(self, conn: _Connection) -> None:
        decoder = FrameDecoder()
        while not conn.closed:
            data = await conn.reader.read(READ_SIZE)
            if not data:
                return
            try:
                bodies = decoder.feed(data)
            except CodecError as exc:
                bodies = []
                self._unreadable_stream(conn, data, exc)
            for body in bodies:
                received = Received(body=body, peer=conn.peer)
                conn.in_flight += 1
                lane = self.inquiries if body[:4] == b"1100" else self.main
                lane.queue.put_nowait((received, conn))
            if decoder.error is not None and bodies:
                self._unreadable_stream(conn, b"", decoder.error)
            if decoder.error is not None:
                return
            if conn.writer.transport.get_write_buffer_size() > (1 << 20):
                await conn.writer.drain()  # a client that does not read its answers slows itself down

    def _unreadable_stream(self, conn: _Connection, data: bytes, exc: CodecError) -> None:
        """A length prefix that is not four digits: the stream cannot be cut into frames any more."""
        log.warning("%s: closing, unreadable stream: %s", conn.peer, exc)
        received = Received(body=bytes(data[: codec.MAX_BODY_LENGTH]), peer=conn.peer, stream_error=str(exc))
        conn.in_flight += 1
        self.main.queue.put_nowait((received, conn))


def run(
    *,
    host: str,
    port: int,
    batch_max: int,
    on_new_notices: Any = None,
    on_ready: Any = None,
) -> None:
    """Run the server in this process until SIGTERM or SIGINT. ``on_ready(port)`` once listening."""
    # the loop thread reads and answers sockets while a lane thread runs Python: hand the GIL over every
    # 1 ms instead of 5, or a frame waits for a whole batch's Python before it is even read
    sys.setswitchinterval(0.001)
    gc.collect()
    gc.freeze()  # Django's start-up objects stay: the collector's full passes skip them from here on

    async def main() -> None:
        server = CommServer(host=host, port=port, batch_max=batch_max, on_new_notices=on_new_notices)
        server.install_signal_handlers()
        ready = asyncio.Event()
        serving = asyncio.create_task(server.serve(ready))
        await ready.wait()
        if on_ready is not None:
            on_ready(server.port)
        await serving

    asyncio.run(main())
