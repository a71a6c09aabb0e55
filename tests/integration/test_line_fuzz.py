"""Hostile bytes on some connections, good payments on others, through a real commserver process and a
real worker (issue 11): every good payment is answered 0000 and applied; every hostile frame is stored
with its bytes and answered 9001 or its connection closed; the others in its batch are unaffected."""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

import pytest

from billing.models import Invoice
from payeasy.models import LedgerEntry, Message, Notice
from tests.payeasy import line_helpers as h

pytestmark = [pytest.mark.django_db(transaction=True)]


def _hostile(rng: random.Random, template: bytes) -> bytes:
    """A frame of a payment with a few bytes changed (NULs, high bytes, a type the profile lacks, an
    invalid date), or plain random bytes behind a valid length prefix."""
    kind = rng.randrange(5)
    if kind == 0:
        body = rng.randbytes(rng.randrange(0, 160))
    else:
        body = bytearray(template)
        body[22:30] = b"%08d" % rng.randrange(10**8)
        if kind == 1:
            body[rng.randrange(len(body))] = 0
        elif kind == 2:
            body[0:4] = b"%04d" % rng.choice([1900, 1500, 9, 2100])
        elif kind == 3:
            body[14:22] = rng.choice([b"20261399", b"20260230", b"00000000"])
        for _ in range(rng.randrange(0 if kind < 4 else 1, 4)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        body = bytes(body)
    return b"%04d" % len(body) + bytes(body)


def test_fuzzed_frames_beside_good_payments(  # type: ignore[no-untyped-def]
    postgres, celery_broker, worker_factory, commserver_factory, tmp_path: Path
) -> None:
    biller = h.line_biller()
    invoices = [h.published_invoice(biller, price=500 + i) for i in range(60)]
    server = commserver_factory(**celery_broker)
    worker_factory(**celery_broker)
    with h.LineClient(server.port) as client:
        client.send(h.open_day(biller))
        assert client.receive(1)[0].response_code == "0000"
    template = h.body(h.payment(biller, h.published_invoice(biller, price=999)))
    stop = threading.Event()
    sent_hostile: list[bytes] = []

    def fuzz(seed: int) -> None:
        """One hostile frame at a time: its answer (9001), or the server closing the connection."""
        rng = random.Random(seed)
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        while not stop.is_set():
            frame = _hostile(rng, template)
            sock.sendall(frame)
            sent_hostile.append(frame[4:])
            answer = b""
            while len(answer) < 4 or len(answer) < 4 + int(answer[:4]):
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
            if not answer:  # closed by the server (an unreadable header): a new connection
                sock.close()
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.close()

    fuzzers = [threading.Thread(target=fuzz, args=(seed,), daemon=True) for seed in range(3)]
    for t in fuzzers:
        t.start()
    payments = [h.payment(biller, inv) for inv in invoices]
    codes: dict[str, str] = {}

    def pay(chunk: list) -> None:  # type: ignore[type-arg]
        with h.LineClient(server.port) as client:
            for message in chunk:
                client.send(message)
                codes[message.transaction_key] = client.receive(1)[0].response_code
                time.sleep(0.02)

    payers = [threading.Thread(target=pay, args=(payments[i::3],)) for i in range(3)]
    for t in payers:
        t.start()
    for t in payers:
        t.join(60)
    stop.set()
    for t in fuzzers:
        t.join(10)
    assert codes == {m.transaction_key: "0000" for m in payments}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if Invoice.objects.filter(pk__in=[i.pk for i in invoices], status="paid").count() == len(invoices):
            break
        time.sleep(0.2)
    assert Invoice.objects.filter(pk__in=[i.pk for i in invoices], status="paid").count() == len(invoices)
    assert LedgerEntry.objects.filter(invoice__in=invoices).count() == len(invoices)
    assert len(sent_hostile) > 100
    stored = {bytes(r) for r in Message.objects.values_list("raw", flat=True)}
    missing = [b for b in sent_hostile if b not in stored]
    assert not missing, (
        f"{len(missing)} of {len(sent_hostile)} hostile frames not stored, e.g. {missing[0]!r}"
    )
    # a hostile frame that happened to parse pays the template's own bill, never one of the good ones
    assert (
        not Notice.objects.filter(customer_number__in=[i.customer_number for i in invoices])
        .exclude(transaction_key__in=[m.transaction_key for m in payments])
        .exists()
    )
    assert "Traceback" not in server.output()
