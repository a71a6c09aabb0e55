"""The MPN simulator: plays the MPN centre and the banks against a running communication server.

Used by ``manage.py mpn_simulate``, the demo, the integration tests and the benchmarks. The database is
read only to learn what a bank would know (the three numbers and amount of published bills, a
contracted bank and channel, the line's processing date, the next free processing serial); everything
else goes over TCP, exactly as the MPN centre would send it: pipelined frames on several connections,
answers matched by message type and transaction key (spec §1).

Network work runs in asyncio (:class:`Line`); the database reads happen before and after, outside the
event loop (:func:`targets_load`, :func:`serial_base`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import itertools
import logging
import math
import ssl
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from billing.models import Biller, Invoice
from payeasy import codec, peers
from payeasy.models import Channel, ContractedBank, LineState, Message, Notice

CENTRE = "MPNSIM0001"  # 仕向センタコード the simulator sends as (H2)
PREFERRED_CHANNELS = (Channel.ATM, Channel.INTERNET_BANKING, Channel.INFO_LINK, Channel.TELLER)
MESSAGE_NAMES = {
    "0800": "開局",
    "0820": "閉局",
    "1100": "照会",
    "1200": "消込",
    "1300": "取消",
    "1600": "カウンタ",
    "1700": "再送確認",
}
TIMEOUT = 10.0  # seconds an answer may take before the simulator counts it lost (the spec allows 2)


# --- what the banks know: bills and contracts (read before the event loop starts) ------------------------


@dataclass(frozen=True)
class Target:
    """A bill a payer pays: its numbers and amount, and a bank and channel that may take it."""

    biller_id: int
    biller_code: str
    invoice_id: int
    number: str
    customer_number: str
    confirmation_number: str
    amount: int
    bank_code: str
    channel: str


def _bank_for(contracts: Sequence[ContractedBank], channel: str | None) -> tuple[str, str]:
    today = timezone.now().astimezone(codec.JST).date()
    live = [c for c in contracts if c.covers(today)] or list(contracts)
    wanted = (channel,) if channel else PREFERRED_CHANNELS
    for want in wanted:
        for contract in live:
            if contract.allows(want):
                return contract.bank_code, want
    if live:  # no contracted bank allows the channel: the payment becomes provisional (a real case)
        return live[0].bank_code, channel or Channel.ATM
    return "0001", channel or Channel.ATM  # no contract at all: provisional, bank not contracted


def targets_load(
    *,
    biller_codes: Sequence[str] = (),
    numbers: Sequence[str] = (),
    limit: int | None = None,
    offset: int = 0,
    channel: str | None = None,
) -> list[Target]:
    """Published bills (oldest first), of the given billers or with the given invoice numbers."""
    invoices = (
        Invoice.objects.filter(
            status=Invoice.Status.PUBLISHED, kind=Invoice.Kind.INVOICE, confirmation_number__isnull=False
        )
        .select_related("biller")
        .only("pk", "number", "confirmation_number", "total", "biller__biller_code", "biller__number_key")
        .order_by("pk")
    )
    if biller_codes:
        invoices = invoices.filter(biller__biller_code__in=list(biller_codes))
    if numbers:
        invoices = invoices.filter(number__in=list(numbers))
    if limit is not None:
        invoices = invoices[offset : offset + limit]
    elif offset:
        invoices = invoices[offset:]
    rows = list(invoices)
    contracts: dict[int, list[ContractedBank]] = defaultdict(list)
    for contract in ContractedBank.objects.filter(biller_id__in={i.biller_id for i in rows}):
        contracts[contract.biller_id].append(contract)
    banks = {pk: _bank_for(rows_, channel) for pk, rows_ in contracts.items()}
    return [
        Target(
            biller_id=i.biller_id,
            biller_code=i.biller.biller_code,
            invoice_id=i.pk,
            number=i.number,
            customer_number=str(i.customer_number),
            confirmation_number=str(i.confirmation_number),
            amount=i.total,
            bank_code=banks.get(i.biller_id, ("0001", channel or Channel.ATM))[0],
            channel=banks.get(i.biller_id, ("0001", channel or Channel.ATM))[1],
        )
        for i in rows
    ]


def line_state() -> LineState:
    return LineState.objects.get_or_create(pk=1)[0]


def _next_serial(model: type[Message] | type[Notice], prefix: str) -> int:
    """One more than the highest serial (key bytes 18–26) of the keys starting with ``prefix``."""
    last = (
        model.objects.filter(transaction_key__gte=prefix, transaction_key__lte=prefix + "99999999")
        .order_by("-transaction_key")
        .values_list("transaction_key", flat=True)
        .first()
    )
    return int(last[18:26]) + 1 if last else 1


def serial_base(centre: str, day: str) -> int:
    """The first processing serial (H4) not yet used by ``centre`` on ``day``: a transaction key is for
    ever, so a second run of the simulator must not resend the first run's keys by accident."""
    return _next_serial(Message, centre.ljust(10) + day)


def teller_serial_base(bank_code: str, day: str) -> int:
    """The first 取引通番 not yet stored for a teller file of ``bank_code`` on ``day``."""
    return _next_serial(Notice, bank_code.ljust(10) + day)


def first_biller_code() -> str | None:
    return Biller.objects.filter(status=Biller.Status.ACTIVE).values_list("biller_code", flat=True).first()


# --- figures ----------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Stats:
    """What one scenario step sent and got back."""

    sent: Counter[str] = field(default_factory=Counter)  # by message type
    codes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (response type, code)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # seconds by type
    lost: int = 0
    elapsed: float = 0.0
    paid_latencies: list[float] = field(default_factory=list)  # frame sent → invoice.paid event, seconds
    paid_missing: int = 0

    def add(self, other: Stats) -> None:
        self.sent.update(other.sent)
        self.codes.update(other.codes)
        for kind, values in other.latencies.items():
            self.latencies[kind].extend(values)
        self.lost += other.lost
        self.elapsed += other.elapsed
        self.paid_latencies += other.paid_latencies
        self.paid_missing += other.paid_missing

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data: counts, answers by code, round-trip percentiles in ms."""
        return {
            "elapsed_seconds": round(self.elapsed, 3),
            "sent": dict(self.sent),
            "answers": {f"{rtype} {code}": n for (rtype, code), n in self.codes.items()},
            "lost": self.lost,
            "round_trip_ms": {
                kind: {
                    "count": len(values),
                    **{f"p{q}": round(percentile(values, q) * 1000, 2) for q in (50, 90, 99)},
                    "max": round(max(values) * 1000, 2),
                }
                for kind, values in self.latencies.items()
                if values
            },
        }

    def summary(self) -> list[str]:
        lines = []
        for kind in sorted(self.sent):
            got = {
                code: n for (rtype, code), n in sorted(self.codes.items()) if rtype == f"{int(kind) + 10:04d}"
            }
            lat = [v * 1000 for v in self.latencies.get(kind, [])]
            rate = f", {self.sent[kind] / self.elapsed:,.0f}/s" if self.elapsed > 0.5 else ""
            lines.append(
                f"  {kind} {MESSAGE_NAMES.get(kind, '')}: sent {self.sent[kind]:,}{rate}; answers "
                + (", ".join(f"{c} ×{n:,}" for c, n in got.items()) or "none")
                + (
                    f"; round trip ms p50 {percentile(lat, 50):.2f} p90 {percentile(lat, 90):.2f} "
                    f"p99 {percentile(lat, 99):.2f} max {max(lat):.2f}"
                    if lat
                    else ""
                )
            )
        if self.lost:
            lines.append(f"  unanswered within {TIMEOUT:.0f} s: {self.lost:,}")
        if self.paid_latencies or self.paid_missing:
            ms = [v * 1000 for v in self.paid_latencies]
            lines.append(
                f"  frame sent → invoice paid (committed): {len(ms):,} bills, "
                f"ms p50 {percentile(ms, 50):.1f} p90 {percentile(ms, 90):.1f} "
                f"p99 {percentile(ms, 99):.1f} max {max(ms, default=0):.1f}"
                + (f"; NOT PAID in time: {self.paid_missing:,}" if self.paid_missing else "")
            )
        return lines


# --- frames -----------------------------------------------------------------------------------------------


def now_jst() -> str:
    return timezone.now().astimezone(codec.JST).strftime("%Y%m%d%H%M%S")


class Frames:
    """Builds requests with fresh transaction keys for one processing date."""

    def __init__(self, day: str, first_serial: int, centre: str = CENTRE) -> None:
        self.day = day
        self.centre = centre
        self._serials = itertools.count(first_serial)
        self._lock = threading.Lock()

    def message(
        self, kind: str, biller_code: str, elements: dict[int, Any], *, serial: int | None = None
    ) -> codec.Message:
        if serial is None:
            with self._lock:
                serial = next(self._serials)
        return codec.Message(
            message_type=kind,
            centre=self.centre,
            processing_date=self.day,
            serial=f"{serial:08d}",
            sent_at=now_jst(),
            biller_code=biller_code,
            elements=elements,
        )

    def open_day(self, biller_code: str) -> codec.Message:
        return self.message("0800", biller_code, {})

    def close(self, biller_code: str, kind: int) -> codec.Message:
        return self.message("0820", biller_code, {20: kind})

    def inquiry(self, t: Target) -> codec.Message:
        return self.message(
            "1100",
            t.biller_code,
            {1: t.customer_number, 2: t.confirmation_number, 5: t.bank_code, 6: "001", 7: t.channel},
        )

    def payment(
        self, t: Target, *, amount: int | None = None, kind: str = "1200", channel: str | None = None
    ) -> codec.Message:
        return self.message(
            kind,
            t.biller_code,
            {
                1: t.customer_number,
                2: t.confirmation_number,
                4: t.amount if amount is None else amount,
                5: t.bank_code,
                6: "001",
                7: channel or t.channel,
                8: now_jst(),
                14: "ｼﾐﾕﾚ-ﾀ",
            },
        )

    def resend(self, original: codec.Message) -> codec.Message:
        """A 1700 for ``original``'s payment, under the payment's own key."""
        return codec.Message(
            message_type="1700",
            centre=original.centre,
            processing_date=original.processing_date,
            serial=original.serial,
            sent_at=now_jst(),
            biller_code=original.biller_code,
            elements=dict(original.elements),
        )

    def reversal(self, original: codec.Message) -> codec.Message:
        e = original.elements
        return self.message(
            "1300",
            original.biller_code,
            {
                1: e[1],
                2: e[2],
                4: e[4],
                5: e[5],
                6: e[6],
                7: Channel.TELLER,
                8: now_jst(),
                9: original.transaction_key,
            },
        )

    def counters(self, biller_code: str, day: str, figures: tuple[int, int, int, int]) -> codec.Message:
        return self.message(
            "1600", biller_code, {15: day, 16: figures[0], 17: figures[1], 18: figures[2], 19: figures[3]}
        )


# --- the line ---------------------------------------------------------------------------------------------


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


def processing_day(state: LineState, requested: str | None = None) -> str:
    if requested:
        return requested
    if state.processing_date is not None and state.state != LineState.State.CLOSED:
        return state.processing_date.strftime("%Y%m%d")
    return timezone.now().astimezone(codec.JST).strftime("%Y%m%d")


def today_and_before(day: str) -> tuple[datetime.date, datetime.date]:
    d = datetime.date(int(day[:4]), int(day[4:6]), int(day[6:8]))
    return d, d - datetime.timedelta(days=1)


def centre_counts(biller_code: str, day: str) -> tuple[int, int, int, int]:
    """The centre's own figures for a 1600: distinct payments it sent and got 0000 for, by key date."""
    today, before = today_and_before(day)
    rows = (
        Message.objects.filter(
            Q(message_type="1200") | Q(message_type="1700"),
            biller_code=biller_code,
            response_code="0000",
            transaction_key__gte=CENTRE.ljust(10) + before.strftime("%Y%m%d"),
            transaction_key__lte=CENTRE.ljust(10) + today.strftime("%Y%m%d") + "99999999",
        )
        .values_list("transaction_key", "amount")
        .distinct()
    )
    figures = {today: [0, 0], before: [0, 0]}
    seen: set[str] = set()
    for key, amount in rows:
        if key in seen:
            continue
        seen.add(key)
        d = datetime.date(int(key[10:14]), int(key[14:16]), int(key[16:18]))
        if d in figures:
            figures[d][0] += 1
            figures[d][1] += amount or 0
    return figures[today][0], figures[today][1], figures[before][0], figures[before][1]


__all__ = [
    "CENTRE",
    "Answer",
    "Connection",
    "Frames",
    "Line",
    "PaidWatcher",
    "Stats",
    "Target",
    "centre_counts",
    "first_biller_code",
    "line_state",
    "load",
    "percentile",
    "processing_day",
    "serial_base",
    "targets_load",
    "teller_serial_base",
    "tls_context",
]
