"""The MPN centre's side of the whole-system benchmark: payments at a fixed rate over the real line, with
the traffic a real centre adds to them, in a process of its own (the MPN side is another system).

``python -m tests.bench.mpn_load --port P --biller CODE --rate 300 --duration 300 --json out.json``

Open loop, over pipelined connections (as :func:`payeasy.simulator.load`): every bill gets its payment
(1200) at its slot whether or not earlier answers have come, so a slow server shows as latency, not as a
lower offered rate. Beside the payments, per bill ``i`` (the shares are of the payments):

- 10 % (``i % 10 == 3``): an inquiry (1100) first; the payment goes when the inquiry is answered, for the
  amount it answered — a payer at an ATM;
- 1 % (``i % 100 == 7``): the same payment frame again, one second later (a duplicate: same key, one
  payment);
- 1 % (``i % 100 == 57``): a resend (1700) of the stored payment one second later (nothing changes);
- 0.5 % (``i % 200 == 131``): the payment arrives only as a 1700 (the 1200 never reached the server: a
  payment the resend records).

A frame answered 9001 (the commserver could not store it within its 1.2 s: busy) is sent again two
seconds later, as the centre does: a payment as a resend (1700, same key), an inquiry as a new inquiry;
up to five times. Each answer's round trip is frame written → answer read. The JSON holds the figures by
message kind and answer code, and every payment sent (key, amount, bill, whether any of its frames was
answered 0000), for the exactly-once check afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DUPLICATE_AFTER = 1.0  # seconds between a payment and its duplicate or resend
RESEND_AFTER = 2.0  # seconds after a 9001 (busy) before the centre resends the payment (1700)
RETRIES = 5
CONNECTIONS = 4


@dataclass
class Event:
    """One frame to write at ``at`` seconds after the start; ``then`` is the payment an inquiry leads to."""

    at: float
    kind: str  # 1100, 1200, 1200dup, 1700resend, 1700new
    message: Any
    frame: bytes
    bill: int
    then: Any = None


def plan(frames: Any, targets: list[Any], rate: float) -> list[Event]:
    """Every frame of the run, in time order (see the module docstring for the mix)."""
    from payeasy import codec

    events: list[Event] = []
    for i, target in enumerate(targets):
        at = i / rate
        payment = frames.payment(target)
        if i % 200 == 131:
            resend = frames.resend(payment)
            events.append(Event(at, "1700new", resend, codec.build_frame(resend), i))
            continue
        if i % 10 == 3:
            inquiry = frames.inquiry(target)
            events.append(Event(at, "1100", inquiry, codec.build_frame(inquiry), i, then=payment))
        else:
            events.append(Event(at, "1200", payment, codec.build_frame(payment), i))
        if i % 100 == 7:
            events.append(Event(at + DUPLICATE_AFTER, "1200dup", payment, codec.build_frame(payment), i))
        elif i % 100 == 57:
            resend = frames.resend(payment)
            events.append(Event(at + DUPLICATE_AFTER, "1700resend", resend, codec.build_frame(resend), i))
    events.sort(key=lambda e: e.at)
    return events


def prepare(biller_code: str, count: int) -> tuple[Any, list[Any], bool]:
    """Read before the clock starts: the line's day and next serial, the bills to pay, whether to open."""
    from payeasy import simulator
    from payeasy.models import LineState
    from payeasy.simulator import Frames

    state = simulator.line_state()
    day = simulator.processing_day(state)
    frames = Frames(day, simulator.serial_base(simulator.CENTRE, day))
    targets = simulator.targets_load(biller_codes=[biller_code], limit=count)
    return frames, targets, state.state != LineState.State.OPEN


async def run(
    port: int, biller_code: str, rate: float, duration: float, prepared: tuple[Any, list[Any], bool]
) -> dict[str, Any]:
    from payeasy import codec, simulator
    from payeasy.simulator import Connection, match_of

    frames, targets, closed = prepared
    assert len(targets) == int(rate * duration), (
        f"{len(targets)} published bills, {int(rate * duration)} needed"
    )
    connections = [await Connection.open("127.0.0.1", port) for _ in range(CONNECTIONS)]
    if closed:
        opening = frames.open_day(biller_code)
        (future,) = connections[0].send([(match_of(opening, f := codec.build_frame(opening)), f)])
        answer = await asyncio.wait_for(future, 10)
        assert answer.code == "0000", f"0800 answered {answer.code}"
    events = plan(frames, targets, rate)
    by_bill = {i: t for i, t in enumerate(targets)}
    gc.collect()
    gc.freeze()  # the frames live for the whole run: keep the collector from walking them mid-run

    latencies: dict[str, list[float]] = defaultdict(list)
    codes: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    payments: dict[str, tuple[int, int]] = {}  # key → amount, invoice id: every payment sent
    acked: set[str] = set()  # keys of the payments answered 0000 (by any frame of theirs)
    tasks: list[asyncio.Task[None]] = []

    async def settle(event: Event, future: asyncio.Future[Any]) -> Any:
        try:
            answer = await asyncio.wait_for(future, simulator.TIMEOUT)
        except (TimeoutError, ConnectionError):
            lost[event.kind] += 1
            return None
        latencies[event.kind].append(answer.latency)
        codes[f"{event.kind} {answer.code}"] += 1
        if answer.code == "0000" and event.message.message_type in {"1200", "1700"}:
            acked.add(event.message.transaction_key)
        return answer

    def send(conn: Connection, event: Event, attempt: int = 0) -> None:
        if event.kind in {"1200", "1700new"}:
            payments[event.message.transaction_key] = (
                int(event.message.elements[4]),
                by_bill[event.bill].invoice_id,
            )
        (future,) = conn.send([(match_of(event.message, event.frame), event.frame)])
        tasks.append(asyncio.create_task(handle(conn, event, future, attempt)))

    async def handle(conn: Connection, event: Event, future: asyncio.Future[Any], attempt: int) -> None:
        answer = await settle(event, future)
        if answer is None:
            return
        if answer.code == "9001" and attempt < RETRIES and event.kind != "1200dup":
            # busy: the centre resends the payment (1700, same key); the ATM asks again
            await asyncio.sleep(RESEND_AFTER)
            if event.message.message_type == "1100":
                again = frames.inquiry(by_bill[event.bill])
                retry = Event(event.at, "1100", again, codec.build_frame(again), event.bill, then=event.then)
            else:
                resend = frames.resend(event.message)
                retry = Event(event.at, "1700retry", resend, codec.build_frame(resend), event.bill)
            send(conn, retry, attempt + 1)
            return
        if answer.code != "0000" or event.then is None:
            return
        owed = int(codec.parse_body(answer.body).elements[4])  # pay what the inquiry answered
        payment = event.then
        payment.elements[4] = owed
        send(conn, Event(event.at, "1200", payment, codec.build_frame(payment), event.bill))

    per_conn = [events[k::CONNECTIONS] for k in range(CONNECTIONS)]
    start = time.perf_counter()

    async def drive(k: int) -> None:
        conn, items = connections[k], per_conn[k]
        i = 0
        while i < len(items):
            now = time.perf_counter() - start
            due = i
            while due < len(items) and items[due].at <= now:
                due += 1
            if due == i:
                await asyncio.sleep(items[i].at - now)
                continue
            for event in items[i:due]:
                send(conn, event)
            i = due

    await asyncio.gather(*(drive(k) for k in range(CONNECTIONS)))
    sent_seconds = time.perf_counter() - start
    while not all(task.done() for task in tasks):  # answers, retries and the payments after inquiries
        await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for conn in connections:
        await conn.close()

    def ms(values: list[float]) -> dict[str, float]:
        p = simulator.percentile
        return {
            "count": len(values),
            **{f"p{q}": round(p(values, q) * 1000, 2) for q in (50, 90, 99)},
            "max": round(max(values, default=0) * 1000, 2),
        }

    return {
        "offered_payments_per_second": rate,
        "bills": len(targets),
        "send_seconds": round(sent_seconds, 3),
        "elapsed_seconds": round(elapsed, 3),
        "payments": len(payments),
        "payments_acked": len(acked),
        "busy_answers": sum(n for answer, n in codes.items() if answer.endswith(" 9001")),
        "answers": dict(sorted(codes.items())),
        "lost": dict(lost),
        "round_trip_ms": {kind: ms(values) for kind, values in sorted(latencies.items())},
        "payments_sent": [[key, amount, bill, key in acked] for key, (amount, bill) in payments.items()],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--biller", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from billing.tenancy import bind_cross_tenant

    bind_cross_tenant("command")  # reads bills of a biller as the simulator command does
    prepared = prepare(args.biller, int(args.rate * args.duration))
    figures = asyncio.run(run(args.port, args.biller, args.rate, args.duration, prepared))
    args.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
