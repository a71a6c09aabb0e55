"""Building MPN requests for tests: a biller with contracts and a published invoice, and its frames."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from billing.models import Biller, Invoice
from payeasy import codec
from payeasy.codec import Message
from tests.factories import make_biller, make_contract, make_invoice

CENTRE = "MPNC000001"
DAY = "20261126"
_serial = itertools.count(1)


def line_biller(**overrides: Any) -> Biller:
    biller = make_biller(**overrides)
    make_contract(biller, "0001", channels=("01", "02", "03", "05"))
    return biller


def open_line_biller(**overrides: Any) -> Biller:
    """A biller on the line (``line_biller``) whose online day ``DAY`` is open."""
    biller = line_biller(**overrides)
    send(open_day(biller))
    return biller


def payments_failing_at(monkeypatch: Any, amount: int) -> Callable[..., Any]:
    """Make applying the payment notice of ``amount`` yen raise ("a bug in one notice"), the others apply
    as ever. Returns the real applier (to set back with ``monkeypatch``)."""
    from payeasy.services import payments

    real: Callable[..., Any] = payments._apply_payment

    def broken(notice: Any, context: Any) -> Any:
        if notice.amount == amount:
            raise RuntimeError("a bug in one notice")
        return real(notice, context)

    monkeypatch.setattr(payments, "_apply_payment", broken)
    return real


def published_invoice(biller: Biller, *, price: int = 1000, **data: Any) -> Invoice:
    """A published invoice of one line of ``price`` yen plus 10 % tax, due 2026-12-31 (make_invoice)."""
    return make_invoice(biller=biller, amount=price, **data)


def request(
    kind: str, biller_code: str, *, serial: int | None = None, day: str = DAY, **elements: Any
) -> Message:
    return Message(
        message_type=kind,
        centre=CENTRE,
        processing_date=day,
        serial=f"{serial if serial is not None else next(_serial) + 100000:08d}",
        sent_at=day + "103015",
        biller_code=biller_code,
        elements={int(k.lstrip("e")): v for k, v in elements.items()},
    )


def open_day(biller: Biller, day: str = DAY) -> Message:
    return request("0800", biller.biller_code, day=day)


def close(biller: Biller, kind: int) -> Message:
    return request("0820", biller.biller_code, e20=kind)


def inquiry(
    biller: Biller, invoice: Invoice, *, bank: str = "0001", channel: str = "02", **kw: Any
) -> Message:
    return request(
        "1100",
        biller.biller_code,
        e1=kw.pop("customer_number", invoice.customer_number),
        e2=kw.pop("confirmation_number", invoice.confirmation_number),
        e5=bank,
        e6="001",
        e7=channel,
        **kw,
    )


def payment(
    biller: Biller,
    invoice: Invoice,
    *,
    amount: int | None = None,
    bank: str = "0001",
    channel: str = "02",
    kind: str = "1200",
    serial: int | None = None,
    paid_at: str = DAY + "103000",
    **kw: Any,
) -> Message:
    return request(
        kind,
        biller.biller_code,
        serial=serial,
        e1=kw.pop("customer_number", invoice.customer_number),
        e2=kw.pop("confirmation_number", invoice.confirmation_number),
        e4=invoice.total if amount is None else amount,
        e5=bank,
        e6="001",
        e7=channel,
        e8=paid_at,
        **kw,
    )


def reversal(biller: Biller, original: Message, *, channel: str = "01", **kw: Any) -> Message:
    e = original.elements
    return request(
        "1300",
        biller.biller_code,
        e1=e[1],
        e2=e[2],
        e4=kw.pop("amount", e[4]),
        e5=e[5],
        e6=e[6],
        e7=channel,
        e8=DAY + "150000",
        e9=kw.pop("original_key", original.transaction_key),
    )


def counters(biller: Biller, day: str = DAY, **kw: Any) -> Message:
    return request(
        "1600", biller.biller_code, e15=day, e16=kw.get("n", 0), e17=kw.get("total", 0), e18=0, e19=0
    )


def send(*messages: Message) -> None:
    """Put ``messages`` through the line in one batch, as the commserver would (no TCP)."""
    from payeasy.line import LineProcessor, Received

    LineProcessor().process([Received(body=body(m)) for m in messages])


def body(message: Message) -> bytes:
    return codec.build_body(message)


def frame(message: Message) -> bytes:
    return codec.build_frame(message)


class LineClient:
    """A blocking TCP client that speaks frames: what the MPN side does, for tests."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        import socket

        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.decoder = codec.FrameDecoder()
        self.received: list[Message] = []

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, *messages: Message) -> None:
        self.sock.sendall(b"".join(frame(m) for m in messages))

    def receive(self, count: int) -> list[Message]:
        """The next ``count`` responses, in the order they arrived."""
        while len(self.received) < count:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed after {len(self.received)} of {count} responses")
            self.received += [codec.parse_body(b) for b in self.decoder.feed(data)]
        out, self.received = self.received[:count], self.received[count:]
        return out

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def answer_of(responses: list[Message], request: Message) -> Message:
    """The response to ``request`` (matched by type and transaction key, as the MPN side does)."""
    want = f"{int(request.message_type) + 10:04d}"
    return next(
        r for r in responses if r.message_type == want and r.transaction_key == request.transaction_key
    )
