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

Every frame is answered within the spec's 2 s, whatever the database does. When it is unreachable,
restarting, read-only, or its backend was terminated, a lane answers its batch 9001 (nothing stored,
so nothing acknowledged), drops its connection and opens a new one for the next batch: normal answers
resume with the first batch after the database takes writes again. When the database hangs, the frames
that have waited ``ANSWER_WITHIN`` seconds are answered 9001 while the lane's thread waits on it. The
frames answered so are put into the message history once it can be written again.

Who may connect is :class:`payeasy.peers.PeerPolicy`'s to say: mutual TLS, source addresses, and the
sending-centre codes (H2) each client certificate may use.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections, connection

from config import logs
from payeasy import codec
from payeasy.codec import CodecError, FrameDecoder
from payeasy.commserver_metrics import LineStats, serve_metrics
from payeasy.line import Answer, LineProcessor, Received, is_unavailable, refusal
from payeasy.line_lock import Leadership, line_lock
from payeasy.peers import PeerPolicy, PeerRefused
from payeasy.wakeup import WorkerWaker

log = logging.getLogger("payeasy.commserver")

READ_SIZE = 1 << 16
ANSWER_WITHIN = 1.2  # seconds from a frame's arrival to its answer, stored or 9001 (the spec allows 2)
RETRY_WITHIN = 0.5  # a batch that met a dead connection this early is tried once more on a new one
UNSTORED_MAX = 100_000  # frames answered without the database, kept to be put into the history later
HANDSHAKE_WITHIN = 10.0  # seconds a client has to complete the TLS handshake
STATEMENT_TIMEOUT = "10s"  # how long a lane's thread may wait on one statement of a hung database


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        self.reader = reader
        self.writer = writer
        host, port = (writer.get_extra_info("peername") or ("?", 0))[:2]
        self.host = str(host)
        self.peer = f"{host}:{port}#{number}"
        self.in_flight = 0
        self.closed = False
        self.centres: frozenset[str] | None = None  # the H2 codes its certificate may use; None: any

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
    """Frames of one kind, answered in batches by one database thread, each within ``ANSWER_WITHIN``."""

    def __init__(self, name: str, server: CommServer) -> None:
        self.name = name
        self.server = server
        self.queue: asyncio.Queue[tuple[Received, _Connection] | None] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"line-{name}")
        self.processor: LineProcessor | None = None
        self.configured: object = None  # the database connection the lane's session settings were made on
        # frames that came while the thread waited on a hung database, not yet answered (None: stop)
        self.held: deque[tuple[Received, _Connection] | None] = deque()
        self.unstored: list[tuple[Received, Answer]] = []  # answered without the database

    # --- in the lane's thread -------------------------------------------------------------------------

    def _process(
        self, batch: list[Received], unstored: list[tuple[Received, Answer]]
    ) -> tuple[list[Answer], bool]:
        """Store and answer ``batch``; then put ``unstored`` into the history (True if that worked). A
        batch that meets a dead connection early is tried once more on a new connection (a terminated
        backend, a restarted server); nothing was committed, or it was and the retry answers 0000 for
        the keys it finds stored."""
        # a trace of its own for each batch (the executor's thread keeps it until the next batch): the
        # batch's log lines, and the tasks it wakes in the workers, carry it
        logs.bind_ids(request_id=None, trace_id=logs.new_trace_id(), span_id=logs.new_span_id(), tenant=None)
        try:
            answers = self._store(batch)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self._drop_connection()
            if time.monotonic() - batch[0].arrived > RETRY_WITHIN:
                raise
            log.warning("%s lane: %s; trying the batch again on a new connection", self.name, exc)
            answers = self._store(batch)
        recorded = True
        if unstored:
            try:
                assert self.processor is not None
                self.processor.record_unstored(unstored)
            except Exception:
                log.exception(
                    "%s lane: %d frames answered meanwhile not put into the history yet",
                    self.name,
                    len(unstored),
                )
                recorded = False
        return answers, recorded

    def _store(self, batch: list[Received]) -> list[Answer]:
        close_old_connections()  # a connection past its age is replaced, not reused
        try:
            if self.processor is None:
                self.processor = LineProcessor(on_new_notices=self.server.on_new_notices)
            self._configure()
            return self.processor.process(batch)
        except Exception as exc:
            if is_unavailable(exc):
                self._drop_connection()
            raise

    def _configure(self) -> None:
        """Bound how long one statement may hold the thread (PostgreSQL): a hung database then frees it."""
        if connection.vendor != "postgresql":
            return
        connection.ensure_connection()
        if connection.connection is not self.configured:
            with connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = %s", [STATEMENT_TIMEOUT])
            self.configured = connection.connection

    def _drop_connection(self) -> None:
        """Forget a connection the database dropped or cannot write on: the next batch opens a new one
        (Django would keep it until CONN_MAX_AGE, as the line's own cursors bypass its error tracking)."""
        with contextlib.suppress(Exception):
            connection.close()
        if connection.connection is not None:  # close() failed half-way: let the next use reconnect
            connection.connection = None
        self.configured = None

    def _close_db(self) -> None:
        connection.close()

    # --- in the event loop --------------------------------------------------------------------------------

    async def _next(self) -> tuple[Received, _Connection] | None:
        return self.held.popleft() if self.held else await self.queue.get()

    def _more(self) -> bool:
        return bool(self.held) or not self.queue.empty()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        done = False
        while not done:
            item = await self._next()
            if item is None:
                break
            batch = [item]
            while len(batch) < self.server.batch_max and self._more():
                more = self.held.popleft() if self.held else self.queue.get_nowait()
                if more is None:
                    done = True
                    break
                batch.append(more)
            if self.server.fenced:
                # the line lock is not proven (payeasy.line_lock): nothing new is stored, 9001
                self._refuse(batch)
                continue
            unstored, self.unstored = self.unstored, []
            future = loop.run_in_executor(self.executor, self._process, [r for r, _ in batch], unstored)
            budget = batch[0][0].arrived + ANSWER_WITHIN - time.monotonic()
            try:
                answers, recorded = await asyncio.wait_for(asyncio.shield(future), max(budget, 0.05))
            except TimeoutError:
                log.error(
                    "%s lane: the database did not answer %d frames within %.1f s; answered 9001",
                    self.name,
                    len(batch),
                    ANSWER_WITHIN,
                )
                self._refuse(batch, store_later=False)
                done = await self._hold_until_done(future) or done
                self.unstored[:0] = unstored
                try:
                    future.result()
                    log.warning("%s lane: the late batch was stored after all; resends get 0000", self.name)
                except Exception:
                    self.unstored.extend((r, refusal(r)) for r, _ in batch)
                continue
            except Exception as exc:
                # nothing was stored, so nothing is acknowledged: 9001, and the MPN side resends
                if is_unavailable(exc):
                    log.error(
                        "%s lane: database unavailable (%s); %d frames answered 9001",
                        self.name,
                        str(exc).strip(),
                        len(batch),
                    )
                else:
                    log.exception("%s lane: a batch of %d frames could not be stored", self.name, len(batch))
                self.unstored[:0] = unstored
                self._refuse(batch)
                continue
            if not recorded:
                self.unstored[:0] = unstored
            by_connection: dict[_Connection, list[Answer]] = {}
            stats, now = self.server.stats, time.monotonic()
            for (received, conn), answer in zip(batch, answers, strict=True):
                by_connection.setdefault(conn, []).append(answer)
                if stats is not None:
                    stats.answered(received.body, answer.code, received.arrived, now)
            for conn, its_answers in by_connection.items():
                conn.send(its_answers)
        await loop.run_in_executor(self.executor, self._close_db)
        self.executor.shutdown(wait=True)

    def _refuse(self, items: list[tuple[Received, _Connection]], *, store_later: bool = True) -> None:
        """Answer ``items`` without the database: 9001, or close a connection whose frame's header
        cannot be read. Kept to be put into the message history when it can be written again."""
        stats, now = self.server.stats, time.monotonic()
        for received, conn in items:
            answer = refusal(received)
            conn.send([answer])
            if stats is not None:
                stats.answered(received.body, answer.code, received.arrived, now)
            if store_later and len(self.unstored) < UNSTORED_MAX:
                self.unstored.append((received, answer))

    async def _hold_until_done(self, future: asyncio.Future[Any]) -> bool:
        """While the thread waits on a hung database, answer 9001 every frame that has waited its
        ``ANSWER_WITHIN``; the others wait for the thread in ``held``. True if told to stop meanwhile."""
        stop = False
        while not future.done():
            while not self.queue.empty():
                item = self.queue.get_nowait()
                if item is None:
                    stop = True
                else:
                    self.held.append(item)
            now = time.monotonic()
            late: list[tuple[Received, _Connection]] = []
            while (
                self.held and (first := self.held[0]) is not None and first[0].arrived + ANSWER_WITHIN <= now
            ):
                late.append(first)
                self.held.popleft()
            self._refuse(late)
            await asyncio.wait({future}, timeout=0.02)
        if stop:
            self.held.append(None)
        return stop


class CommServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        batch_max: int = 256,
        on_new_notices: Callable[[], None] | None = None,
        policy: PeerPolicy | None = None,
        stats: LineStats | None = None,
        on_listening: Callable[[int], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.batch_max = batch_max
        self.on_new_notices = on_new_notices
        self.policy = policy or PeerPolicy(tls=None)
        self.stats = stats
        self.on_listening = on_listening
        self.connections: set[_Connection] = set()
        self.readers: set[asyncio.Task[None]] = set()
        self.count = 0
        self.stopping = asyncio.Event()
        self.server: asyncio.Server | None = None
        # set while this node cannot prove it holds the line lock (payeasy.line_lock): no batch is
        # stored, every frame is answered 9001
        self.fenced = False
        self.inquiries = _Lane("inquiry", self)
        self.main = _Lane("main", self)

    @property
    def listening(self) -> bool:
        return self.server is not None

    async def serve(self, ready: asyncio.Event | None = None, leadership: Leadership | None = None) -> None:
        """Serve until :meth:`stop` (or SIGTERM/SIGINT when run by the command): listening from the start,
        or with ``leadership`` only while this process holds the line lock (payeasy.line_lock)."""
        lanes = [asyncio.create_task(self.inquiries.run()), asyncio.create_task(self.main.run())]
        try:
            if leadership is None:
                await self.listen()
                if ready is not None:
                    ready.set()
                await self.stopping.wait()
            else:
                if ready is not None:
                    ready.set()
                await leadership.run(self)
        finally:
            # stop accepting and reading; what was read is answered, then the connections close
            self.stopping.set()
            server, self.server = self.server, None
            if server is not None:
                server.close()
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
            if server is not None:
                await server.wait_closed()
            if leadership is not None:
                await asyncio.to_thread(leadership.release)
        log.info("commserver stopped")

    async def listen(self) -> None:
        """Bind the port and accept connections (an ``OSError`` when it cannot be bound)."""
        self.server = await asyncio.start_server(self._accept, self.host, self.port, limit=READ_SIZE)
        self.port = self.server.sockets[0].getsockname()[1]
        self.fenced = False
        log.info(
            "commserver listening on %s:%d (%s)",
            self.host,
            self.port,
            "mutual TLS" if self.policy.tls is not None else "plain TCP",
        )
        if self.on_listening is not None:
            self.on_listening(self.port)

    async def unlisten(self, within: float = 3.0) -> None:
        """Stop listening (the port is free at once), stop reading, answer what was read — 9001 unless
        it was being committed: this is called fenced — and close every connection."""
        server, self.server = self.server, None
        if server is None:
            return
        self.fenced = True
        server.close()
        readers = list(self.readers)
        for task in readers:
            task.cancel()  # each waits for its connection's answers (up to 3 s), then closes it
        await asyncio.gather(*readers, return_exceptions=True)
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.writer.drain(), within)
            conn.close()
        self.connections.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), within)
        log.info("commserver stopped listening on %s:%d", self.host, self.port)

    def stop(self) -> None:
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.count += 1
        # each connection is a task of its own, with its own copy of the context: its lines share a trace
        logs.bind_ids(trace_id=logs.new_trace_id(), span_id=logs.new_span_id())
        conn = _Connection(reader, writer, self.count)
        if self.server is None:  # stopped listening since this connection was accepted
            conn.close()
            return
        # the source address first, so that a refused address costs no handshake; then TLS here rather
        # than in start_server, where asyncio logs a failed handshake only at debug level
        if not self.policy.source_allowed(conn.host):
            log.warning(
                "%s refused: source address %s is not in COMMSERVER_ALLOWED_SOURCES", conn.peer, conn.host
            )
            conn.close()
            return
        if self.policy.tls is not None:
            try:
                await writer.start_tls(self.policy.tls, ssl_handshake_timeout=HANDSHAKE_WITHIN)
            except (ssl.SSLError, OSError, TimeoutError) as exc:
                log.warning("%s refused: TLS handshake failed: %s", conn.peer, exc)
                conn.close()
                return
        peercert = writer.get_extra_info("peercert")
        try:
            conn.centres = self.policy.centres_for(host=conn.host, peercert=peercert)
        except PeerRefused as exc:
            log.warning("%s refused: %s", conn.peer, exc)
            conn.close()
            return
        if peercert is not None:
            conn.peer = f"{conn.peer} {self.policy.describe(peercert)}"  # the history keeps 64 characters
        if self.server is None or self.stopping.is_set():  # stopped listening during the handshake
            conn.close()
            return
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
                received = Received(body=body, peer=conn.peer, centres=conn.centres)
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
    on_ready: Callable[[int], None] | None = None,
    policy: PeerPolicy | None = None,
) -> None:
    """Run the server in this process until SIGTERM or SIGINT, waking the workers after every commit
    that stored new notices (:class:`payeasy.wakeup.WorkerWaker`). ``on_ready(port)`` each time it starts
    listening: at once on ``--port 0``, otherwise whenever it takes the line lock (payeasy.line_lock).
    Meanwhile its heartbeat row (payeasy.line_nodes) and, on ``COMMSERVER_METRICS_ADDR``, its metrics
    (payeasy.commserver_metrics)."""
    from django.conf import settings

    from payeasy.line_nodes import Heartbeat, node_name

    # the loop thread reads and answers sockets while a lane thread runs Python: hand the GIL over every
    # 1 ms instead of 5, or a frame waits for a whole batch's Python before it is even read
    sys.setswitchinterval(0.001)
    gc.collect()
    gc.freeze()  # Django's start-up objects stay: the collector's full passes skip them from here on

    waker = WorkerWaker()
    stats = LineStats()
    metrics = None
    if settings.COMMSERVER_METRICS_ADDR:
        metrics = serve_metrics(
            stats, settings.COMMSERVER_METRICS_ADDR, str(settings.PAYEASY_METRICS_TOKEN or "")
        )
    lock = line_lock(port)
    name = node_name()

    async def main() -> None:
        server = CommServer(
            host=host,
            port=port,
            batch_max=batch_max,
            on_new_notices=waker,
            policy=policy,
            stats=stats,
            on_listening=on_ready,
        )
        server.install_signal_handlers()
        heartbeat = Heartbeat(
            name=name,
            role=lambda: "active" if server.listening and not server.fenced else "standby",
            figures=stats.last_minute,
            every=float(settings.COMMSERVER_HEARTBEAT_SECONDS),
        )

        def on_role(active: bool) -> None:
            stats.set_role(active)
            heartbeat.poke()

        leadership = None
        if lock is not None:
            log.info("commserver node %s: taking the line lock (%s) before listening", name, lock.describe())
            leadership = Leadership(
                lock,
                retry=float(settings.COMMSERVER_LOCK_RETRY_SECONDS),
                grace=float(settings.COMMSERVER_LOCK_GRACE_SECONDS),
                on_role=on_role,
            )
        else:
            stats.set_role(True)
        heartbeat.start()
        try:
            await server.serve(leadership=leadership)
        finally:
            stats.set_role(False)
            await asyncio.get_running_loop().run_in_executor(None, heartbeat.stop)

    try:
        asyncio.run(main())
    finally:
        if metrics is not None:
            metrics.shutdown()
