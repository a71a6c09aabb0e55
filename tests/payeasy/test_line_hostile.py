"""Hostile bytes through LineProcessor: one bad frame never takes its batch down (issue 11).

Every frame, however malformed, is stored in the message history with its raw bytes and answered as the
spec says (9001 when its header can be read, the connection closed otherwise); the good frames of the
same batch are answered and stored as if the bad one were not there.
"""

from __future__ import annotations

import random

import pytest

from billing.models import Biller, Invoice
from payeasy import codec
from payeasy.line import LineProcessor, Received
from payeasy.models import Message, Notice
from tests.payeasy import line_helpers as h

pytestmark = pytest.mark.django_db

HOSTILE = (0x00, 0xFF, 0x0A, 0x81, 0x20, 0x7F)


@pytest.fixture
def biller() -> Biller:
    biller = h.line_biller()
    h.send(h.open_day(biller))
    return biller


def _batch(bad: list[bytes], good: list[codec.Message]) -> list[tuple[bytes, str]]:
    """Good and bad bodies interleaved through one batch; (body, answer code or 'closed')."""
    bodies = [h.body(m) for m in good]
    mixed = bodies[:1] + bad + bodies[1:]
    answers = LineProcessor().process([Received(body=b, peer=f"fuzz#{i}") for i, b in enumerate(mixed)])
    assert len(answers) == len(mixed)
    return [(b, a.code if a.body is not None else "closed") for b, a in zip(mixed, answers, strict=True)]


def _good_payments(biller: Biller, n: int) -> tuple[list[codec.Message], list[Invoice]]:
    invoices = [h.published_invoice(biller, price=1000 + i) for i in range(n)]
    return [h.payment(biller, inv) for inv in invoices], invoices


@pytest.mark.parametrize("byte", HOSTILE)
def test_a_hostile_byte_anywhere_in_the_header_spoils_only_its_frame(biller: Biller, byte: int) -> None:
    good, _invoices = _good_payments(biller, 2)
    template = h.body(h.payment(biller, h.published_invoice(biller)))
    bad = []
    for pos in range(codec.HEADER_LENGTH + 30):  # the header and the first elements
        body = bytearray(template)
        body[pos] = byte
        body[30:34] = b"%04d" % pos  # a distinct H4 serial tail per position, so keys differ
        bad.append(bytes(body))
    results = _batch(bad, good)
    for message in good:
        assert Notice.objects.filter(transaction_key=message.transaction_key).count() == 1
    codes = {body: answered for body, answered in results}
    for message in good:
        assert codes[h.body(message)] == "0000"
    stored = {bytes(raw) for raw in Message.objects.values_list("raw", flat=True)}
    for body in bad:
        assert body in stored, f"frame with 0x{byte:02X} not stored as bytes"


def test_a_nul_in_the_header_is_stored_and_answered(biller: Biller) -> None:
    """A NUL in H5 (not echoed) still leaves a readable header: 9001. One in H3 makes the header
    unreadable: the connection is closed. Both are stored with their bytes; the good payment lands."""
    (good,), _ = _good_payments(biller, 1)
    in_sent_at = bytearray(h.body(h.payment(biller, h.published_invoice(biller))))
    in_sent_at[40] = 0
    in_date = bytearray(h.body(h.payment(biller, h.published_invoice(biller))))
    in_date[20] = 0
    results = _batch([bytes(in_sent_at), bytes(in_date)], [good])
    assert [c for _b, c in results] == ["0000", "9001", "closed"]
    answered = Message.objects.get(raw=bytes(in_sent_at))
    assert answered.response_code == "9001" and answered.outcome == "format_error"
    closed = Message.objects.get(raw=bytes(in_date))
    assert closed.outcome == "unreadable" and "\x00" not in closed.transaction_key
    assert Notice.objects.get().transaction_key == good.transaction_key


def test_unknown_message_type_with_a_readable_header_is_answered_type_plus_ten(biller: Biller) -> None:
    message = h.payment(biller, h.published_invoice(biller))
    body = b"1900" + h.body(message)[4:]
    (answered,) = LineProcessor().process([Received(body=body, peer="t")])
    assert answered.body is not None and answered.code == "9001"
    reply = answered.body  # 1910 is no type of the profile: read its bytes
    assert (reply[:4], reply[52:56], reply[56:], len(reply)) == (b"1910", b"9001", b"0" * 16, 72)
    assert reply[4:30].decode() == message.transaction_key and reply[44:52] == body[44:52]
    row = Message.objects.get(raw=body)
    assert (row.message_type, row.response_code, row.outcome) == ("1900", "9001", "format_error")


def test_an_invalid_processing_date_is_answered_9001(biller: Biller) -> None:
    message = h.payment(biller, h.published_invoice(biller))
    body = bytearray(h.body(message))
    body[14:22] = b"20261399"
    (answered,) = LineProcessor().process([Received(body=bytes(body), peer="t")])
    assert answered.body is not None and answered.code == "9001"
    reply = answered.body  # H3 echoed as received, so it does not parse either: read its bytes
    assert (reply[:4], reply[14:22], reply[52:56]) == (b"1210", b"20261399", b"9001")
    assert not Notice.objects.exists()


def test_a_response_type_or_an_unreadable_header_still_closes_and_is_stored(biller: Biller) -> None:
    message = h.payment(biller, h.published_invoice(biller))
    as_response = b"1210" + h.body(message)[4:]
    short = b"12\x0000"
    answers = LineProcessor().process([Received(body=as_response), Received(body=short)])
    assert [a.body for a in answers] == [None, None]
    assert Message.objects.filter(raw__in=[as_response, short]).count() == 2


def test_random_garbage_mixed_with_good_payments(biller: Biller) -> None:
    rng = random.Random(11)
    good, _ = _good_payments(biller, 5)
    template = h.body(h.payment(biller, h.published_invoice(biller)))
    bad = []
    for _ in range(200):
        body = bytearray(template if rng.random() < 0.7 else rng.randbytes(rng.randrange(0, 200)))
        for _ in range(rng.randrange(1, 6)):
            if body:
                body[rng.randrange(len(body))] = rng.randrange(256)
        bad.append(bytes(body))
    results = _batch(bad, good)
    assert [c for b, c in results if b in {h.body(m) for m in good}] == ["0000"] * 5
    assert Notice.objects.filter(transaction_key__in=[m.transaction_key for m in good]).count() == 5
    assert Message.objects.filter(peer__startswith="fuzz#").count() == len(bad) + len(good)


def test_a_frame_the_batch_cannot_store_is_answered_alone(biller: Biller, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Whatever makes a batch fail (here a frame the parser chokes on), the batch is stored frame by
    frame: the others are answered 0000 and stored, the culprit answered 9001 with its bytes kept."""
    good, _ = _good_payments(biller, 3)
    culprit = h.body(h.payment(biller, h.published_invoice(biller)))
    parse = codec.parse_body

    def choking(body: bytes) -> codec.Message:
        if body == culprit:
            raise RuntimeError("the parser met something it did not expect")
        return parse(body)

    monkeypatch.setattr(codec, "parse_body", choking)
    results = dict(_batch([culprit], good))
    assert [results[h.body(m)] for m in good] == ["0000"] * 3
    assert results[culprit] == "9001"
    assert Notice.objects.filter(transaction_key__in=[m.transaction_key for m in good]).count() == 3
    row = Message.objects.get(raw=culprit)
    assert row.outcome == "internal_error" and "RuntimeError" in row.error and row.response_code == "9001"
    assert not Notice.objects.filter(message__raw=culprit).exists()
