"""The simulator's side of the line: pipelined TCP/TLS connections to the commserver, and open-loop load.

:class:`Line` spreads requests over several :class:`Connection` s and matches answers by message type
and transaction key (spec §1); :func:`tls_context` is its TLS client side; :func:`load` offers payments at
a fixed rate; :class:`PaidWatcher` notes on Redis when each payment shows as paid.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings

from payeasy import codec, peers
from payeasy.simulator.database import Target
from payeasy.simulator.frames import Frames
from payeasy.simulator.stats import TIMEOUT, Stats

__all__ = ["Answer", "Connection", "Line", "PaidWatcher", "load", "match_of", "tls_context"]


@dataclass
class Answer:
    code: str
    body: bytes
    latency: float  # seconds


class Connection:
    """One pipelined TCP connection to the commserver; answers matched by type and transaction key."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        # answers awaited, by response type + key; a list, as the same frame may be sent more than once
        self.pending: dict[bytes, list[tuple[float, asyncio.Future[Answer]]]] = defaultdict(list)
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, host: str, port: int, tls: ssl.SSLContext | None = None) -> Connection:
        """Connect, over TLS with ``tls`` (a :func:`payeasy.peers.client_context`), else plain TCP."""
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)
        return cls(reader, writer)

    def send(self, frames: Iterable[tuple[bytes, bytes]]) -> list[asyncio.Future[Answer]]:
        """Write ``(match, frame)`` pairs in one write; ``match`` is response type + key (30 bytes)."""
        loop = asyncio.get_running_loop()
        futures, chunks = [], []
        now = time.perf_counter()
        for match, frame in frames:
            future: asyncio.Future[Answer] = loop.create_future()
            self.pending[match].append((now, future))
            futures.append(future)
            chunks.append(frame)
        self.writer.write(b"".join(chunks))
        return futures

    async def _read(self) -> None:
        decoder = codec.FrameDecoder()
        try:
            while data := await self.reader.read(1 << 16):
                now = time.perf_counter()
                for body in decoder.feed(data):
                    waiting = self.pending.get(body[:30])
                    if not waiting:
                        continue
                    sent, future = waiting.pop(0)
                    if not waiting:
                        del self.pending[body[:30]]
                    if not future.done():
                        future.set_result(Answer(body[52:56].decode("ascii", "replace"), body, now - sent))
        except (ConnectionError, codec.CodecError):
            pass
        except ssl.SSLError as exc:  # e.g. TLS 1.3: the server refuses our certificate after the handshake
            logging.getLogger("payeasy.simulator").warning("the commserver ended the TLS session: %s", exc)
        except Exception:  # a bug here must not look like a silent server: fail what waits
            logging.getLogger("payeasy.simulator").exception("reading answers failed")
        for waiting in self.pending.values():
            for _sent, future in waiting:
                if not future.done():
                    future.set_exception(ConnectionError("the commserver closed the connection"))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self.writer.wait_closed()
        self.task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self.task


def match_of(message: codec.Message, frame: bytes) -> bytes:
    """Response type + transaction key of the answer ``frame`` (a request) will get."""
    return f"{int(message.message_type) + 10:04d}".encode() + frame[8:34]


class PaidWatcher:
    """Listens on Redis for ``invoice.paid`` events (published after the payment's commit) and notes when
    each transaction key's arrived — the end of the frame-to-paid measurement."""

    def __init__(self, redis_url: str, biller_ids: Iterable[int]) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(*[f"payeasy:biller:{pk}" for pk in set(biller_ids)])
        self.paid: dict[str, float] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="paid-watcher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import json

        while not self.stopping.is_set():
            message = self.pubsub.get_message(timeout=0.1)
            if message is None:
                continue
            now = time.perf_counter()
            event = json.loads(message["data"])
            if event.get("type") == "invoice.paid":
                self.paid.setdefault(event["transaction_key"], now)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        self.pubsub.close()
        self.client.close()


def tls_context(
    ca: str | None = None, cert: str | None = None, key: str | None = None
) -> ssl.SSLContext | None:
    """The client side of a TLS line, from the arguments, each defaulting to MPN_SIMULATOR_TLS_CA/CERT/
    KEY (settings take absolute paths only); None (plain TCP) without a CA, and with ``ca=""`` whatever
    the settings say. ValueError says which file could not be used."""
    if ca == "":
        return None
    chosen = {}
    for name, given in (("CA", ca), ("CERT", cert), ("KEY", key)):
        setting = f"MPN_SIMULATOR_TLS_{name}"
        value = getattr(settings, setting, "") if given is None else given
        if given is None and value:
            peers.tls_path(setting, value)  # ImproperlyConfigured: relative, missing or unreadable
        chosen[name] = value or None
    if chosen["CA"] is None:
        if chosen["CERT"] or chosen["KEY"]:
            raise ValueError(
                "a client certificate without a CA to verify the commserver (MPN_SIMULATOR_TLS_CA)"
            )
        return None
    try:
        return peers.client_context(ca=chosen["CA"], cert=chosen["CERT"], key=chosen["KEY"])
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"cannot load the line's TLS files (CA {chosen['CA']}, certificate {chosen['CERT']}, "
            f"key {chosen['KEY']}): {exc}"
        ) from exc


class Line:
    """A session against the commserver: several connections, requests spread over them round robin;
    over TLS with ``tls`` (:func:`tls_context`)."""

    def __init__(self, host: str, port: int, frames: Frames, *, tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.frames, self.tls = host, port, frames, tls
        self.connections: list[Connection] = []
        self._next = itertools.cycle([0])

    async def __aenter__(self) -> Line:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self.connections:
            await conn.close()

    async def connect(self, count: int = 1) -> None:
        while len(self.connections) < count:
            self.connections.append(await Connection.open(self.host, self.port, self.tls))
        self._next = itertools.cycle(range(len(self.connections)))

    async def request(self, message: codec.Message, stats: Stats | None = None) -> Answer | None:
        answers = await self.requests([message], stats)
        return answers[0]

    async def requests(
        self, messages: Sequence[codec.Message], stats: Stats | None = None, *, spread: bool = True
    ) -> list[Answer | None]:
        """Send ``messages`` pipelined (spread over the connections) and wait for every answer."""
        if not self.connections:
            await self.connect()
        by_conn: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        order: list[tuple[int, int]] = []
        for message in messages:
            frame = codec.build_frame(message)
            index = next(self._next) if spread else 0
            order.append((index, len(by_conn[index])))
            by_conn[index].append((match_of(message, frame), frame))
        futures = {i: self.connections[i].send(pairs) for i, pairs in by_conn.items()}
        results: list[Answer | None] = []
        for (index, position), message in zip(order, messages, strict=True):
            answer = await _wait(futures[index][position])
            _count(stats, message.message_type, answer)
            results.append(answer)
        return results


async def _wait(future: asyncio.Future[Answer]) -> Answer | None:
    try:
        return await asyncio.wait_for(future, TIMEOUT)
    except (TimeoutError, ConnectionError):
        return None


def _count(stats: Stats | None, kind: str, answer: Answer | None) -> None:
    if stats is None:
        return
    stats.sent[kind] += 1
    if answer is None:
        stats.lost += 1
    else:
        stats.codes[(f"{int(kind) + 10:04d}", answer.code)] += 1
        stats.latencies[kind].append(answer.latency)


async def load(
    line: Line,
    targets: Sequence[Target],
    *,
    rate: float,
    duration: float,
    connections: int,
    inquiry_share: float = 0.0,
    watcher: PaidWatcher | None = None,
    paid_wait: float = 30.0,
) -> Stats:
    """Payments (and a share of inquiries) at ``rate`` per second for ``duration`` seconds, open loop:
    each connection sends on its own schedule whether or not answers have come (pipelining), so a slow
    server shows as latency, not as a lower offered rate. Bills are paid in order, each once while they
    last (then again: double payments)."""
    await line.connect(connections)
    total = max(1, int(rate * duration))
    messages: list[codec.Message] = []
    inquiry_every = round(1 / inquiry_share) if inquiry_share > 0 else 0
    for i in range(total):
        target = targets[i % len(targets)]
        if inquiry_every and i % inquiry_every == inquiry_every - 1:
            messages.append(line.frames.inquiry(target))
        else:
            messages.append(line.frames.payment(target))
    prepared = [(m, codec.build_frame(m)) for m in messages]  # built before the clock starts
    gc.collect()
    gc.freeze()  # the frames live for the whole run: keep the collector from walking them mid-run
    stats = Stats()
    sent_at: dict[str, float] = {}
    per_conn = [prepared[i::connections] for i in range(connections)]
    interval = connections / rate
    start = time.perf_counter()

    async def drive(k: int) -> list[tuple[str, asyncio.Future[Answer]]]:
        conn, items = line.connections[k], per_conn[k]
        offset = k / rate  # the connections take turns: together they send evenly
        waiting: list[tuple[str, asyncio.Future[Answer]]] = []
        i = 0
        while i < len(items):
            now = time.perf_counter() - start
            due = min(len(items), int((now - offset) / interval) + 1)  # all whose time has come, one write
            if due <= i:
                await asyncio.sleep(offset + i * interval - now)
                continue
            chunk = items[i:due]
            futures = conn.send([(match_of(m, f), f) for m, f in chunk])
            stamp = time.perf_counter()
            for (m, _f), future in zip(chunk, futures, strict=True):
                waiting.append((m.message_type, future))
                if m.message_type == "1200":
                    sent_at.setdefault(m.transaction_key, stamp)
            i = due
        return waiting

    sent = await asyncio.gather(*(drive(k) for k in range(connections)))
    for waiting in sent:
        for kind, future in waiting:
            _count(stats, kind, await _wait(future))
    stats.elapsed = time.perf_counter() - start
    if watcher is not None:
        await _paid(stats, watcher, messages, sent_at, len(targets), paid_wait)
    return stats


async def _paid(
    stats: Stats,
    watcher: PaidWatcher,
    messages: Sequence[codec.Message],
    sent_at: dict[str, float],
    distinct: int,
    wait: float,
) -> None:
    """Frame sent → invoice.paid, for the first payment of every bill (the ones that pay it)."""
    first: dict[tuple[str, str], str] = {}
    for m in messages:
        if m.message_type == "1200":
            first.setdefault((m.biller_code, str(m.elements[1])), m.transaction_key)
    keys = list(first.values())
    deadline = time.perf_counter() + wait
    while time.perf_counter() < deadline and any(k not in watcher.paid for k in keys):
        await asyncio.sleep(0.1)
    for key in keys:
        if key in watcher.paid:
            stats.paid_latencies.append(watcher.paid[key] - sent_at[key])
        else:
            stats.paid_missing += 1
