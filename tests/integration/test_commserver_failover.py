"""Active/standby commservers (payeasy.line_lock): two real ``manage.py commserver`` processes on one port
and the suite's PostgreSQL, a real client sending payments at a steady rate, reconnecting and resending
what was not answered as the MPN side does.

- The active one is killed (SIGKILL) under load: the standby answers within 5 s, every payment answered
  0000 before the kill is stored, none twice, and its metrics say it is the active one now.
- The active one's lock session is terminated: never two listening; when another session holds the lock,
  it stops listening and stands by, and the line comes back when the lock is free.
"""

from __future__ import annotations

import itertools
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count

from billing.models import Biller, Invoice
from payeasy import codec
from payeasy.line_nodes import line_nodes
from payeasy.models import Notice
from tests.integration.conftest import ROOT, database_url, process_env, wait_for
from tests.payeasy import line_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TOKEN = "failover-scrape-token"
ACTIVE = "commserver: active"
STANDBY = "commserver: standing by"
STEPPED_DOWN = "no longer listening"
_serials = itertools.count(8_000_000)


class Node:
    """One ``manage.py commserver --port PORT`` process with its metrics on ``metrics_port``."""

    def __init__(self, tmp: Path, name: str, port: int, metrics_port: int, env: dict[str, str]) -> None:
        self.name = name
        self.metrics_port = metrics_port
        self.log = tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "commserver", "--port", str(port)],
            cwd=ROOT,
            env=process_env(
                COMMSERVER_NODE_NAME=name,
                COMMSERVER_LOCK_RETRY_SECONDS="1",
                COMMSERVER_HEARTBEAT_SECONDS="1",
                COMMSERVER_METRICS_ADDR=f"127.0.0.1:{metrics_port}",
                PAYEASY_METRICS_TOKEN=TOKEN,
                **env,
            ),
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            text=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def says(self, marker: str) -> int:
        return self.output().count(marker)

    def metrics(self, token: str | None = TOKEN) -> str:
        request = urllib.request.Request(f"http://127.0.0.1:{self.metrics_port}/metrics")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback, http
            return response.read().decode()


@pytest.fixture
def nodes(tmp_path: Path, celery_broker: dict[str, str]) -> Iterator:
    started: list[Node] = []

    def start(name: str, port: int, metrics_port: int) -> Node:
        node = Node(tmp_path, name, port, metrics_port, celery_broker)
        started.append(node)
        return node

    yield start
    for node in started:
        if node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(10)
    # their sessions end a moment after them: gone before the test database is dropped
    wait_for(lambda: other_sessions() == 0, 10)


def other_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def active_and_standby(a: Node, b: Node) -> tuple[Node, Node]:
    """Wait until one node is active and the other stands by; return them in that order."""
    wait_for(lambda: (a.says(ACTIVE) + b.says(ACTIVE)) >= 1 and (a.says(STANDBY) + b.says(STANDBY)) >= 1, 40)
    active, standby = (a, b) if a.says(ACTIVE) else (b, a)
    assert not standby.says(ACTIVE), f"both active:\n{a.output()}\n---\n{b.output()}"
    return active, standby


def listeners(port: int) -> int:
    """Sockets listening on ``port`` on this machine (/proc/net/tcp and tcp6, state 0A)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


class ListenerWatch(threading.Thread):
    """Samples the listeners on ``port`` every 5 ms: the most ever seen at once, and whether there was a
    moment with none."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.most = 0
        self.none_seen = 0
        self.stop = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.stop.is_set():
            n = listeners(self.port)
            self.most = max(self.most, n)
            self.none_seen += n == 0
            time.sleep(0.005)


@dataclass
class Sent:
    first_at: float
    sends: int = 0
    answers: list[tuple[float, str]] = field(default_factory=list)

    @property
    def ok_at(self) -> float | None:
        return next((t for t, code in self.answers if code == "0000"), None)


class _Slot:
    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.unanswered: set[str] = set()
        self.next_try = 0.0


class Client:
    """The MPN side: payments over ``connections`` connections at ``rate`` a second, ``total`` of them
    (None: until ``finish``). A connection that closes or cannot be opened is tried again every 50 ms;
    what was sent on it and not answered is sent again on a new one, and so is a 9001."""

    def __init__(
        self,
        port: int,
        biller: Biller,
        invoices: list[Invoice],
        *,
        rate: float,
        total: int | None,
        connections: int = 3,
    ) -> None:
        self.port = port
        self.biller = biller
        self.invoices = invoices
        for invoice in invoices:  # what a payment reads of its invoice, read here: no query in the thread
            h.payment(biller, invoice)
        self.rate = rate
        self.total = total
        self.frames: dict[str, bytes] = {}
        self.sent: dict[str, Sent] = {}
        self.lock = threading.Lock()
        self.backlog: deque[str] = deque()
        self.slots = [_Slot() for _ in range(connections)]
        self.stop = threading.Event()
        self.produced = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    # --- the sender ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        interval = 1 / self.rate
        next_at = time.monotonic()
        turn = 0
        while not self.stop.is_set():
            if self.total is None or self.produced < self.total:
                invoice = self.invoices[self.produced % len(self.invoices)]
                message = h.payment(self.biller, invoice, serial=next(_serials))
                key = message.transaction_key
                with self.lock:
                    self.frames[key] = h.frame(message)
                    self.sent[key] = Sent(time.monotonic())
                    self.backlog.append(key)
                self.produced += 1
            elif self.all_ok():
                return
            self._connect()
            live = [s for s in self.slots if s.sock is not None]
            while live and self.backlog:
                with self.lock:
                    key = self.backlog.popleft()
                    self.sent[key].sends += 1
                slot = live[turn % len(live)]
                turn += 1
                try:
                    with self.lock:
                        slot.unanswered.add(key)
                    assert slot.sock is not None
                    slot.sock.sendall(self.frames[key])
                except OSError:
                    self._lost(slot, slot.sock)
                    live = [s for s in self.slots if s.sock is not None]
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _connect(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.sock is not None or now < slot.next_try:
                continue
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
            except OSError:
                slot.next_try = now + 0.05
                continue
            slot.sock = sock
            threading.Thread(target=self._read, args=(slot, sock), daemon=True).start()

    def _lost(self, slot: _Slot, sock: socket.socket | None) -> None:
        """``sock`` of ``slot`` closed: what it carried unanswered is sent again on a new connection."""
        with self.lock:
            if slot.sock is not sock or sock is None:
                return
            slot.sock = None
            self.backlog.extendleft(sorted(slot.unanswered))
            slot.unanswered.clear()
        sock.close()

    def _read(self, slot: _Slot, sock: socket.socket) -> None:
        decoder = codec.FrameDecoder()
        sock.settimeout(0.2)
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if self.stop.is_set():
                    return
                continue
            except OSError:
                data = b""
            if not data:
                self._lost(slot, sock)
                return
            now = time.monotonic()
            for body in decoder.feed(data):
                key, code = body[4:30].decode("ascii"), body[52:56].decode("ascii")
                with self.lock:
                    self.sent[key].answers.append((now, code))
                    slot.unanswered.discard(key)
                    if code != "0000":
                        self.backlog.append(key)  # the MPN side sends it again later

    # --- the test's side ----------------------------------------------------------------------------------

    def all_ok(self) -> bool:
        with self.lock:
            return all(s.ok_at is not None for s in self.sent.values())

    def ok_before(self, moment: float) -> set[str]:
        with self.lock:
            return {k for k, s in self.sent.items() if any(t < moment and c == "0000" for t, c in s.answers)}

    def codes(self) -> dict[str, int]:
        found: dict[str, int] = {}
        with self.lock:
            for s in self.sent.values():
                for _t, code in s.answers:
                    found[code] = found.get(code, 0) + 1
        return found

    def finish(self, timeout: float = 20.0) -> dict[str, Sent]:
        """Stop making new payments; wait until every one was answered 0000; close."""
        deadline = time.monotonic() + timeout
        if self.total is None:
            self.total = self.produced
        while time.monotonic() < deadline and self.produced < self.total:
            time.sleep(0.05)
        while time.monotonic() < deadline and not self.all_ok():
            time.sleep(0.05)
        self.stop.set()
        self.thread.join(5)
        for slot in self.slots:
            if slot.sock is not None:
                slot.sock.close()
        with self.lock:
            return dict(self.sent)


def stored_once(sent: dict[str, Sent]) -> None:
    """Every payment answered 0000, each stored as exactly one notice."""
    not_ok = [k for k, s in sent.items() if s.ok_at is None]
    assert not not_ok, f"{len(not_ok)} payments never answered 0000"
    counts = dict(
        Notice.objects.filter(transaction_key__in=list(sent))
        .values("transaction_key")
        .annotate(n=Count("id"))
        .values_list("transaction_key", "n")
    )
    missing = set(sent) - set(counts)
    assert not missing, f"{len(missing)} payments answered 0000 are not stored"
    doubled = {k: n for k, n in counts.items() if n != 1}
    assert not doubled, f"stored more than once: {doubled}"


@pytest.fixture
def line(postgres: None) -> tuple[Biller, list[Invoice]]:
    biller = h.line_biller()
    invoices = [h.published_invoice(biller, price=1000 + i) for i in range(30)]
    h.send(h.open_day(biller))
    return biller, invoices


def lock_parts() -> tuple[int, int]:
    key = int(settings.COMMSERVER_LOCK_KEY)
    return (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF


def terminate_lock_holder() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 1",
            list(lock_parts()),
        )
        assert [row[0] for row in cursor.fetchall()] == [True], "no session held the line lock"


class LockWaiter(threading.Thread):
    """A session of its own that waits for the line lock (``pg_advisory_lock``), holds it until
    ``release()``; waiting before this returns."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.holds = threading.Event()
        self._release = threading.Event()
        self.start()
        classid, objid = lock_parts()
        wait_for(
            lambda: (
                _scalar(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid = %s AND objid = %s AND objsubid = 1",
                    [classid, objid],
                )
                == 1
            ),
            5,
        )

    def run(self) -> None:
        with psycopg.connect(database_url(), autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", [int(settings.COMMSERVER_LOCK_KEY)])
            self.holds.set()
            self._release.wait(30)
            conn.execute("SELECT pg_advisory_unlock(%s)", [int(settings.COMMSERVER_LOCK_KEY)])

    def release(self) -> None:
        self._release.set()
        self.join(5)


def _scalar(sql: str, params: list[int]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def test_the_standby_answers_within_5_s_when_the_active_is_killed_and_no_payment_is_lost(
    line: tuple[Biller, list[Invoice]], nodes
) -> None:  # type: ignore[no-untyped-def]
    biller, invoices = line
    port = 7150
    active, standby = active_and_standby(nodes("node-a", port, 7181), nodes("node-b", port, 7182))
    watch = ListenerWatch(port)
    client = Client(port, biller, invoices, rate=300, total=1200)
    wait_for(lambda: client.produced >= 400, 10)

    active.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    active.proc.wait(10)
    acked_before = client.ok_before(killed)
    wait_for(lambda: any(s.ok_at and s.ok_at > killed for s in client.sent.values()), 10)
    sent = client.finish()
    watch.stop.set()
    gap = min(s.ok_at for s in sent.values() if s.ok_at and s.ok_at > killed) - killed  # type: ignore[operator]
    print(f"\n  failover: first 0000 from the new active {gap * 1000:.0f} ms after the SIGKILL")
    print(f"  {len(sent)} payments, {len(acked_before)} acknowledged before the kill, codes {client.codes()}")
    assert gap < 5.0, standby.output()
    assert standby.says(ACTIVE) == 1, standby.output()
    assert len(sent) == 1200 and len(acked_before) >= 300
    stored_once(sent)  # acknowledged before the kill among them: none lost, none doubled
    assert watch.most == 1

    text = standby.metrics()
    assert "payeasy_commserver_role 1.0" in text
    observed = re.search(r'payeasy_commserver_ack_latency_seconds_count\{message_type="1200"\} (\d+)', text)
    assert observed and int(observed[1]) > 0, text
    assert re.search(r'payeasy_commserver_frames_total\{message_type="1200",response_code="0000"\} \d+', text)
    with pytest.raises(urllib.error.HTTPError) as refused:
        standby.metrics(token=None)
    assert refused.value.code == 404

    # the heartbeat rows: the new active one; the killed one's last beat is still fresh, but superseded
    wait_for(lambda: [n.name for n in line_nodes().active] == [standby.name])


def test_a_holder_whose_lock_session_ends_never_listens_beside_another(
    line: tuple[Biller, list[Invoice]], nodes
) -> None:  # type: ignore[no-untyped-def]
    biller, invoices = line
    port = 7151
    a, b = nodes("node-c", port, 7183), nodes("node-d", port, 7184)
    active, standby = active_and_standby(a, b)
    watch = ListenerWatch(port)
    client = Client(port, biller, invoices, rate=100, total=None)
    wait_for(lambda: client.produced >= 100, 10)

    # its session terminated: it takes the lock again at once, or the other does; never both listening
    terminate_lock_holder()
    wait_for(lambda: "lost the line lock" in active.output(), 10)
    wait_for(lambda: active.says("held again") + standby.says(ACTIVE) >= 1, 10)
    time.sleep(1.0)
    assert watch.most == 1

    # its session terminated while another session waits for the lock (PostgreSQL grants it to that one
    # as the session ends, before the holder can take it again): the holder stops listening, stands by
    holder = active if not standby.says(ACTIVE) else standby
    other = standby if holder is active else active
    stepped_down = holder.says(STEPPED_DOWN)
    waiter = LockWaiter()
    terminate_lock_holder()
    waiter.holds.wait(5)
    assert waiter.holds.is_set(), "the waiting session did not get the lock"
    wait_for(lambda: holder.says(STEPPED_DOWN) > stepped_down, 5)
    wait_for(lambda: listeners(port) == 0, 5)
    time.sleep(1.5)  # nobody listens while another session holds the lock
    assert listeners(port) == 0
    assert holder.says(STANDBY) and other.says(STANDBY)
    released = time.monotonic()
    waiter.release()
    wait_for(lambda: listeners(port) == 1, 5)
    back = time.monotonic() - released
    sent = client.finish()
    watch.stop.set()
    resumed = min(s.ok_at for s in sent.values() if s.ok_at and s.ok_at > released) - released  # type: ignore[operator]
    print(
        f"\n  lock free again: listening after {back * 1000:.0f} ms, first 0000 after {resumed * 1000:.0f} ms"
    )
    print(f"  {len(sent)} payments, codes {client.codes()}")
    assert watch.most == 1, "two processes listened at once"
    assert watch.none_seen > 0
    assert resumed < 3.0
    stored_once(sent)
