"""The MPN line-protocol codec (payeasy.codec): golden vectors, round trips, fuzzing, error reports.

Pure tests: no database, no network. The golden vectors of ``spec/samples`` are
embedded below so the suite runs anywhere; ``test_embedded_vectors_are_the_shared_samples``
checks them against the shared copy when it is there (``MPN_SAMPLES`` overrides
its location).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billing.kana import ZENGIN_KANA_CHARS
from payeasy.codec import (
    BATCH_RECORD_LENGTH,
    ELEMENT_WIDTHS,
    MAX_BODY_LENGTH,
    MESSAGE_TYPES,
    REQUEST_TYPES,
    RESPONSE_CODES,
    BatchData,
    BatchFile,
    BatchHeader,
    BatchTrailer,
    CodecError,
    ElementValue,
    FrameDecoder,
    Header,
    Message,
    allowed_elements,
    batch_file_name,
    build_batch_file,
    build_body,
    build_format_error,
    build_frame,
    fit_double_byte,
    fit_kana,
    make_batch_file,
    make_response,
    parse_batch_file,
    parse_body,
    parse_frame,
    peek_header,
)
from tests.payeasy.fuzzing import mutated

# ---------------------------------------------------------------------------------------------------------
# Golden vectors (spec/samples), one literal per field
# ---------------------------------------------------------------------------------------------------------

# a payment (1200) and its resend (1700) after the length and the message type
PAYMENT_FRAME_REST = (
    "MPNC00000120261126000000032026112610301558191001    "
    "DF04000000000000"
    "00012345678901234567"
    "482913"
    "00000012345"
    "0001"
    "100"
    "05"
    "20261126103001"
    "ﾔﾏﾀﾞ ﾀﾛｳ                      "
)
GOLDEN_FRAMES: dict[str, bytes] = {
    name: text.encode("cp932")
    for name, text in {
        "0800-open": ("00720800MPNC00000120261126000000012026112610301558191001    0000000000000000"),
        "1100-inquiry": (
            "0107"
            "1100MPNC00000120261126000000022026112610301558191001    "
            "CE00000000000000"
            "00012345678901234567"
            "482913"
            "0001"
            "100"
            "02"
        ),
        "1200-payment": "01621200" + PAYMENT_FRAME_REST,
        "1300-reversal": (
            "0158"
            "1300MPNC00000120261126000000042026112610301558191001    "
            "DF80000000000000"
            "00012345678901234567"
            "482913"
            "00000012345"
            "0005"
            "201"
            "01"
            "20261126150000"
            "MPNC0000012026112600000003"
        ),
        "1600-counters": (
            "0126"
            "1600MPNC00000120261126000000052026112610301558191001    "
            "0003E00000000000"
            "20261126"
            "00001520"
            "000000023456789"
            "00001498"
            "000000022001234"
        ),
        "1700-resend": "01621700" + PAYMENT_FRAME_REST,  # the payment again, key included
        "0820-preclose": ("00730820MPNC00000120261126000000062026112610301558191001    00001000000000001"),
        "1110-inquiry-answer": (
            "0205"
            "1110MPNC000001202611260000000220261126103015581910010000"
            "D078000000000000"
            "00012345678901234567"
            "482913"
            "00000012345"
            "20261210"
            "ﾐﾅﾄﾃﾞﾝﾘﾖｸ               "
            "みなと電力　　　　　　　"
            "２０２６年１１月分電気料金　　　　　　　"
        ),
        "1110-inquiry-not-found": (
            "00721110MPNC00000120261126000000022026112610301558191001B0010000000000000000"
        ),
    }.items()
}

# what a payment (1200) and its resend (1700) carry alike (index.json's values)
PAYMENT_EXPECTED: dict[str, object] = {
    "key": "MPNC0000012026112600000003",
    "biller": "58191001",
    "code": "    ",
    "bitmap": "DF04000000000000",
    "elements": {
        "1": "00012345678901234567",
        "2": "482913",
        "4": 12345,
        "5": "0001",
        "6": "100",
        "7": "05",
        "8": "20261126103001",
        "14": "ﾔﾏﾀﾞ ﾀﾛｳ",
    },
    "frame_bytes": 166,
}
# index.json's expected values for the frames
GOLDEN_EXPECTED: dict[str, dict[str, object]] = {
    "0800-open": {
        "type": "0800",
        "key": "MPNC0000012026112600000001",
        "biller": "58191001",
        "code": "    ",
        "bitmap": "0000000000000000",
        "elements": {},
        "frame_bytes": 76,
    },
    "1100-inquiry": {
        "type": "1100",
        "key": "MPNC0000012026112600000002",
        "biller": "58191001",
        "code": "    ",
        "bitmap": "CE00000000000000",
        "elements": {"1": "00012345678901234567", "2": "482913", "5": "0001", "6": "100", "7": "02"},
        "frame_bytes": 111,
    },
    "1200-payment": {"type": "1200", **PAYMENT_EXPECTED},
    "1300-reversal": {
        "type": "1300",
        "key": "MPNC0000012026112600000004",
        "biller": "58191001",
        "code": "    ",
        "bitmap": "DF80000000000000",
        "elements": {
            "1": "00012345678901234567",
            "2": "482913",
            "4": 12345,
            "5": "0005",
            "6": "201",
            "7": "01",
            "8": "20261126150000",
            "9": "MPNC0000012026112600000003",
        },
        "frame_bytes": 162,
    },
    "1600-counters": {
        "type": "1600",
        "key": "MPNC0000012026112600000005",
        "biller": "58191001",
        "code": "    ",
        "bitmap": "0003E00000000000",
        "elements": {"15": "20261126", "16": 1520, "17": 23456789, "18": 1498, "19": 22001234},
        "frame_bytes": 130,
    },
    "1700-resend": {"type": "1700", **PAYMENT_EXPECTED},  # a resend repeats the payment, key included
    "0820-preclose": {
        "type": "0820",
        "key": "MPNC0000012026112600000006",
        "biller": "58191001",
        "code": "    ",
        "bitmap": "0000100000000000",
        "elements": {"20": 1},
        "frame_bytes": 77,
    },
    "1110-inquiry-answer": {
        "type": "1110",
        "key": "MPNC0000012026112600000002",
        "biller": "58191001",
        "code": "0000",
        "bitmap": "D078000000000000",
        "elements": {
            "1": "00012345678901234567",
            "2": "482913",
            "4": 12345,
            "10": "20261210",
            "11": "ﾐﾅﾄﾃﾞﾝﾘﾖｸ",
            "12": "みなと電力",
            "13": "２０２６年１１月分電気料金",
        },
        "frame_bytes": 209,
    },
    "1110-inquiry-not-found": {
        "type": "1110",
        "key": "MPNC0000012026112600000002",
        "biller": "58191001",
        "code": "B001",
        "bitmap": "0000000000000000",
        "elements": {},
        "frame_bytes": 76,
    },
}

GOLDEN_RECORDS = [
    "101058191001" + "ﾐﾅﾄﾃﾞﾝﾘﾖｸ".ljust(40) + "202611260009" + "ﾐﾂｲｽﾐﾄﾓ".ljust(15) + " " * 41,
    "200012345678901234567482913000000123453012026112610150000000001" + "ﾔﾏﾀﾞ ﾀﾛｳ".ljust(30) + "0" + " " * 26,
    "200098765432109876543105527000000088003012026112611300000000002" + "ｽｽﾞｷ ﾊﾅｺ".ljust(30) + "0" + " " * 26,
    "200098765432109876543105527000000088003012026112614000000000003" + " " * 30 + "1" + " " * 26,
    "8000002000000021145000001000000008800" + " " * 83,
    "9" + " " * 119,
]
BATCH_001_NAME = "01_00009_58191_1126_001"
BATCH_002_NAME = "01_00009_58191_1126_002"
BATCH_001 = b"".join(r.encode("cp932") + b"\r\n" for r in GOLDEN_RECORDS)  # CR LF after each record
BATCH_002 = b"".join(r.encode("cp932") for r in GOLDEN_RECORDS)  # back to back
GOLDEN_FILES = {BATCH_001_NAME: BATCH_001, BATCH_002_NAME: BATCH_002}

SAMPLES = Path(os.environ.get("MPN_SAMPLES", "/work/shared/spec/samples"))


def body(name: str) -> bytes:
    return GOLDEN_FRAMES[name][4:]


def summary(message: Message, frame: bytes) -> dict[str, object]:
    """A parsed message in index.json's shape."""
    return {
        "type": message.message_type,
        "key": message.transaction_key,
        "biller": message.biller_code,
        "code": message.response_code,
        "bitmap": message.bitmap,
        "elements": {str(n): v for n, v in message.elements.items()},
        "frame_bytes": len(frame),
    }


def with_element(message: Message, number: int, value: object) -> Message:
    """``message`` with one element replaced (by a value of any type, to test the builder)."""
    return dataclasses.replace(message, elements={**message.elements, number: value})  # type: ignore[dict-item]


def raises(exc: pytest.ExceptionInfo[CodecError], field: str, offset: int, record: int | None = None) -> None:
    err = exc.value
    assert (err.field, err.offset, err.record) == (field, offset, record), str(err)
    assert field in str(err) and str(offset) in str(err) and err.message in str(err)


# ---------------------------------------------------------------------------------------------------------
# Golden vectors
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"shared samples not found at {SAMPLES} (set MPN_SAMPLES)")
def test_embedded_vectors_are_the_shared_samples() -> None:
    index = json.loads((SAMPLES / "index.json").read_text(encoding="utf-8"))
    frames = {p.stem: p.read_bytes() for p in SAMPLES.glob("*.frame")}
    assert frames == GOLDEN_FRAMES
    assert {k: v for k, v in index.items() if k in GOLDEN_FRAMES} == GOLDEN_EXPECTED
    for name, data in GOLDEN_FILES.items():
        assert (SAMPLES / name).read_bytes() == data
    assert index[BATCH_001_NAME] == {"records": 6, "newline": "CR LF", "payments": 2, "reversals": 1}
    assert index[BATCH_002_NAME]["newline"] == "none"


@pytest.mark.parametrize("name", sorted(GOLDEN_FRAMES))
def test_golden_frame_parses_to_index_values_and_builds_back(name: str) -> None:
    frame = GOLDEN_FRAMES[name]
    message = parse_frame(frame)
    assert summary(message, frame) == GOLDEN_EXPECTED[name]
    assert build_frame(message) == frame
    assert build_body(message) == frame[4:]
    assert parse_body(frame[4:]) == message
    assert message.is_request == (message.response_code == "    ")
    assert message.header == peek_header(frame[4:])


def test_golden_frames_relate_as_the_readme_says() -> None:
    payment = parse_frame(GOLDEN_FRAMES["1200-payment"])
    resend = parse_frame(GOLDEN_FRAMES["1700-resend"])
    reversal = parse_frame(GOLDEN_FRAMES["1300-reversal"])
    assert resend.transaction_key == payment.transaction_key == reversal.elements[9]
    inquiry = parse_frame(GOLDEN_FRAMES["1100-inquiry"])
    for name in ("1110-inquiry-answer", "1110-inquiry-not-found"):
        answer = parse_frame(GOLDEN_FRAMES[name])
        rebuilt = make_response(inquiry, answer.response_code, answer.elements, sent_at=answer.sent_at)
        assert rebuilt == answer
        assert build_frame(rebuilt) == GOLDEN_FRAMES[name]


@pytest.mark.parametrize("name", sorted(GOLDEN_FILES))
def test_golden_batch_file_parses_and_builds_back(name: str) -> None:
    data = GOLDEN_FILES[name]
    batch = parse_batch_file(name, data)
    assert batch.crlf == (name == BATCH_001_NAME)
    assert len(batch.records) == 3 and len(batch.payments) == 2 and len(batch.reversals) == 1
    assert batch.header == BatchHeader("58191001", "ﾐﾅﾄﾃﾞﾝﾘﾖｸ", "20261126", "0009", "ﾐﾂｲｽﾐﾄﾓ")
    assert batch.records[0] == BatchData(
        "00012345678901234567", "482913", 12345, "301", "20261126", "101500", "00000001", "ﾔﾏﾀﾞ ﾀﾛｳ", 0
    )
    assert batch.records[0].paid_at == "20261126101500"
    reversal = batch.reversals[0]
    assert reversal.payer_name_kana == "" and reversal.is_reversal
    # the reversal undoes the second payment: same お客様番号, 確認番号 and amount
    second = batch.payments[1]
    assert (reversal.customer_number, reversal.confirmation_number, reversal.amount) == (
        second.customer_number,
        second.confirmation_number,
        second.amount,
    )
    assert batch.trailer == BatchTrailer(2, 21145, 1, 8800)
    assert batch.transaction_keys() == [
        "0009      2026112600000001",
        "0009      2026112600000002",
        "0009      2026112600000003",
    ]
    assert build_batch_file(batch) == data
    assert make_batch_file(batch.header, batch.records, serial=int(name[-3:]), crlf=batch.crlf) == batch


def test_golden_batch_files_carry_the_same_keys_and_records() -> None:
    first = parse_batch_file(BATCH_001_NAME, BATCH_001)
    second = parse_batch_file("/some/where/" + BATCH_002_NAME, BATCH_002)
    assert second.name == BATCH_002_NAME
    assert first.keyed_records() == second.keyed_records()
    assert (first.header, first.trailer) == (second.header, second.trailer)


# ---------------------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------------------

DIGITS = "0123456789"
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
KANA = "".join(sorted(ZENGIN_KANA_CHARS))
KANJI = "電力料金年月分山田太郎港区水道瓦斯通信費用請求様御中株式会社０１２９ＡＺあいうんアイウンー　"


def digits(width: int) -> st.SearchStrategy[str]:
    return st.text(DIGITS, min_size=width, max_size=width)


def some_digits(width: int) -> st.SearchStrategy[str]:
    return st.text(DIGITS, min_size=1, max_size=width)


def kana(width: int) -> st.SearchStrategy[str]:
    return st.text(KANA, max_size=width).map(lambda s: s.rstrip(" "))


def kanji(width: int) -> st.SearchStrategy[str]:
    return st.text(KANJI, max_size=width // 2).map(lambda s: s.rstrip("\u3000"))


dates = st.dates(date(2000, 1, 1), date(2099, 12, 31)).map(lambda d: d.strftime("%Y%m%d"))
datetimes = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31, 23, 59, 59)).map(
    lambda d: d.strftime("%Y%m%d%H%M%S")
)
times = st.times().map(lambda t: t.strftime("%H%M%S"))
centres = st.text(ALNUM + " ", min_size=1, max_size=10).map(lambda s: s.rstrip(" ")).filter(bool)
keys = st.builds(lambda c, d, s: c.ljust(10) + d + s, centres, dates, digits(8))

ELEMENT_VALUES: dict[int, st.SearchStrategy[ElementValue]] = {
    1: some_digits(20),
    2: some_digits(6),
    4: st.integers(1, 99_999_999_999),
    5: digits(4),
    6: digits(3),
    7: st.sampled_from(["01", "02", "03", "04", "05", "06"]),
    8: datetimes,
    9: keys,
    10: dates,
    11: kana(24),
    12: kanji(24),
    13: kanji(40),
    14: kana(30),
    15: dates,
    16: st.integers(0, 99_999_999),
    17: st.integers(0, 10**15 - 1),
    18: st.integers(0, 99_999_999),
    19: st.integers(0, 10**15 - 1),
    20: st.sampled_from([1, 2]),
}


@st.composite
def messages(draw: st.DrawFn, message_type: str) -> Message:
    code = "    " if message_type in REQUEST_TYPES else draw(st.sampled_from(sorted(RESPONSE_CODES)))
    required, allowed = allowed_elements(message_type, code)
    extra = draw(st.sets(st.sampled_from(sorted(allowed - required)))) if allowed - required else set()
    elements = {n: draw(ELEMENT_VALUES[n]) for n in sorted(required | extra)}
    return Message(
        message_type=message_type,
        centre=draw(centres),
        processing_date=draw(dates),
        serial=draw(digits(8)),
        sent_at=draw(datetimes),
        biller_code=draw(digits(8)),
        response_code=code,
        elements=elements,
    )


batch_headers = st.builds(BatchHeader, digits(8), kana(40), dates, digits(4), kana(15))
batch_data = st.builds(
    BatchData,
    customer_number=some_digits(20),
    confirmation_number=some_digits(6),
    amount=st.integers(1, 99_999_999_999),
    branch_code=digits(3),
    paid_date=dates,
    paid_time=times,
    serial=digits(8),
    payer_name_kana=kana(30),
    cancel=st.sampled_from([0, 1]),
)


@st.composite
def batch_files(draw: st.DrawFn) -> BatchFile:
    records = draw(st.lists(batch_data, max_size=12, unique_by=lambda r: r.serial))
    return make_batch_file(
        draw(batch_headers), records, serial=draw(st.integers(0, 999)), crlf=draw(st.booleans())
    )


# ---------------------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("message_type", sorted(MESSAGE_TYPES))
@given(data=st.data())
def test_every_message_type_round_trips(message_type: str, data: st.DataObject) -> None:
    message = data.draw(messages(message_type))
    body_bytes = build_body(message)
    assert len(body_bytes) == 72 + sum(ELEMENT_WIDTHS[n] for n in message.elements)
    assert parse_body(body_bytes) == message
    frame = build_frame(message)
    assert parse_frame(frame) == message
    assert peek_header(body_bytes) == message.header
    if message.is_request:
        code = data.draw(st.sampled_from(sorted(RESPONSE_CODES - {"0000"})))
        response = make_response(message, code, sent_at=message.sent_at)
        assert parse_body(build_body(response)) == response
        assert response.transaction_key == message.transaction_key
        assert response.message_type == f"{int(message.message_type) + 10:04d}"


@given(st.lists(messages("1200") | messages("1610") | messages("1110"), min_size=1, max_size=6), st.data())
def test_frame_decoder_reassembles_any_chunking(batch: list[Message], data: st.DataObject) -> None:
    stream = b"".join(build_frame(m) for m in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder()
    bodies: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        bodies += decoder.feed(stream[start:end])
    assert [parse_body(b) for b in bodies] == batch
    assert decoder.pending == 0 and decoder.error is None


@given(batch_files())
def test_batch_files_round_trip(batch: BatchFile) -> None:
    data = build_batch_file(batch)
    assert len(data) == (len(batch.records) + 3) * (122 if batch.crlf else 120)
    parsed = parse_batch_file(batch.name, data)
    assert parsed == batch
    other = BatchFile(batch.name, batch.header, batch.records, batch.trailer, crlf=not batch.crlf)
    assert (
        parse_batch_file(batch.name, build_batch_file(other)).transaction_keys() == batch.transaction_keys()
    )


# ---------------------------------------------------------------------------------------------------------
# Fuzzing: anything in, a Message or a CodecError out (and what parses builds back to the same bytes)
# ---------------------------------------------------------------------------------------------------------


# CODEC_FUZZ_EXAMPLES=200000 for a long fuzz run (the figures in the note); 3,000 in the suite
FUZZ = settings(
    max_examples=int(os.environ.get("CODEC_FUZZ_EXAMPLES", 3000)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
GOLDEN_BODIES = [f[4:] for f in GOLDEN_FRAMES.values()]


def parse_or_codec_error(data: bytes) -> None:
    try:
        message = parse_body(data)
    except CodecError as exc:
        event("body: CodecError")
        assert exc.field and exc.message and 0 <= exc.offset <= len(data)
        header = peek_header(data)
        assert header is None or isinstance(header, Header)
        event("body: header readable (9001)" if header is not None else "body: header unreadable")
    else:
        event("body: parsed")
        assert build_body(message) == data
        assert peek_header(data) == message.header


@FUZZ
@given(
    st.binary(max_size=300) | st.builds(lambda h, t: h[:72] + t, st.sampled_from(GOLDEN_BODIES), st.binary())
)
def test_fuzz_binary_bodies(data: bytes) -> None:
    parse_or_codec_error(data)


@FUZZ
@given(mutated(list(GOLDEN_FRAMES.values())), st.integers(1, 300))
def test_fuzz_mutated_golden_frames(frame: bytes, chunk: int) -> None:
    try:
        message = parse_frame(frame)
    except CodecError as exc:
        assert exc.field and exc.message
    else:
        assert build_frame(message) == frame
    parse_or_codec_error(frame[4:])
    decoder = FrameDecoder()
    try:
        for start in range(0, len(frame) + 1, chunk):
            for body_bytes in decoder.feed(frame[start : start + chunk]):
                parse_or_codec_error(body_bytes)
    except CodecError as exc:
        assert exc.field == "frame length"


@FUZZ
@given(
    mutated([BATCH_001, BATCH_002]),
    st.sampled_from([BATCH_001_NAME, BATCH_002_NAME, "01_00010_58191_1126_001"]),
)
def test_fuzz_mutated_batch_files(data: bytes, name: str) -> None:
    try:
        batch = parse_batch_file(name, data)
    except CodecError as exc:
        event("file: CodecError")
        assert exc.field and exc.message
        assert exc.record is not None or exc.field == "file name"
        assert 0 <= exc.offset <= len(data)
    else:
        event("file: parsed")
        assert build_batch_file(batch) == data


# ---------------------------------------------------------------------------------------------------------
# Errors name the field and the offset
# ---------------------------------------------------------------------------------------------------------


def replace(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def test_codec_error_is_a_value_error_that_names_field_offset_and_message() -> None:
    err = CodecError("element 4 amount", 98, "is not a number")
    assert isinstance(err, ValueError)
    assert str(err) == "element 4 amount at byte offset 98: is not a number"
    batch_err = CodecError("trailer 合計金額", 495, "mismatch", record=5)
    assert str(batch_err) == "record 5, trailer 合計金額 at byte offset 495: mismatch"
    copy = pickle.loads(pickle.dumps(batch_err))  # noqa: S301 - our own bytes
    assert (copy.field, copy.offset, copy.message, copy.record) == ("trailer 合計金額", 495, "mismatch", 5)


@pytest.mark.parametrize(
    ("bitmap", "field"),
    [
        (b"ce00000000000000", "H8 bitmap"),  # lower case
        (b"CE0000000000000G", "H8 bitmap"),
        (b"CE00 00000000000", "H8 bitmap"),
        (b"CE00000000000001", "H8 bitmap"),  # bit 64: no such element
    ],
)
def test_bad_bitmap(bitmap: bytes, field: str) -> None:
    with pytest.raises(CodecError) as exc:
        parse_body(replace(body("1100-inquiry"), 56, bitmap))
    raises(exc, field, 56)


def test_element_not_allowed_for_the_type() -> None:
    with pytest.raises(CodecError) as exc:  # 1100 with element 4 (bit 4) set
        parse_body(replace(body("1100-inquiry"), 56, b"DE00000000000000"))
    raises(exc, "element 4 amount", 56)
    payment = parse_body(body("1200-payment"))
    with pytest.raises(CodecError) as exc:
        build_body(with_element(payment, 9, "MPNC0000012026112600000001"))
    raises(exc, "element 9 original transaction key", 56)
    with pytest.raises(CodecError) as exc:  # 1210 carries nothing, not even on 0000
        make_response(payment, "0000", {4: 12345})
    raises(exc, "element 4 amount", 56)


def test_element_3_must_be_absent() -> None:
    with pytest.raises(CodecError) as exc:
        parse_body(replace(body("1100-inquiry"), 56, b"EE00000000000000"))
    raises(exc, "element 3 納付区分", 56)


def test_missing_required_element() -> None:
    with pytest.raises(CodecError) as exc:  # 1100 without element 7
        parse_body(replace(body("1100-inquiry"), 56, b"CC00000000000000")[:-2])
    raises(exc, "element 7 channel", 56)
    inquiry = parse_body(body("1100-inquiry"))
    with pytest.raises(CodecError) as exc:  # 1110 on 0000 without the bill description
        make_response(inquiry, "0000", {1: "1", 2: "1", 4: 1, 10: "20261210", 11: "", 12: ""})
    raises(exc, "element 13 bill description", 56)


def test_responses_other_than_0000_may_carry_fewer_elements() -> None:
    inquiry = parse_body(body("1100-inquiry"))
    assert make_response(inquiry, "B001").elements == {}
    partial = make_response(
        inquiry, "B002", {1: "00012345678901234567", 2: "482913"}, sent_at="20261126103016"
    )
    assert parse_body(build_body(partial)) == partial
    counters = parse_body(body("1600-counters"))
    assert make_response(counters, "A601").elements == {}
    with pytest.raises(CodecError) as exc:
        make_response(counters, "A601", {20: 1})
    raises(exc, "element 20 close kind", 56)


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        (b"00000012A45", "not an ASCII digit"),
        (b"0000001234 ", "not an ASCII digit"),
        (b"00000000000", "outside"),
    ],
)
def test_bad_amount(amount: bytes, why: str) -> None:
    with pytest.raises(CodecError) as exc:
        parse_body(replace(body("1200-payment"), 98, amount))
    raises(exc, "element 4 amount", 98)
    assert why in exc.value.message


@pytest.mark.parametrize(
    ("offset", "new", "field"),
    [
        (0, b"0900", "H1 message type"),
        (0, b"08a0", "H1 message type"),
        (4, b"          ", "H2 sending centre code"),
        (4, b"MPNC-00001", "H2 sending centre code"),
        (14, b"20261131", "H3 processing date"),
        (30, b"20261126246000", "H5 sent at"),
        (44, b"5819100A", "H6 biller code"),
        (52, b"0000", "H7 response code"),  # a request carries four spaces
        (72, b"00012345678901234 67", "element 1 customer number"),
        (72, b" " * 20, "element 1 customer number"),
        (116, b"13", "element 7 channel"),
        (118, b"20260229103001", "element 8 paid at"),
    ],
)
def test_bad_header_and_element_fields(offset: int, new: bytes, field: str) -> None:
    with pytest.raises(CodecError) as exc:
        parse_body(replace(body("1200-payment"), offset, new))
    raises(exc, field, offset)


def test_response_code_must_be_one_of_section_4() -> None:
    with pytest.raises(CodecError) as exc:
        parse_body(replace(body("1110-inquiry-not-found"), 52, b"B999"))
    raises(exc, "H7 response code", 52)
    with pytest.raises(CodecError) as exc:
        make_response(parse_body(body("0800-open")), "0001")
    raises(exc, "H7 response code", 52)
    with pytest.raises(CodecError) as exc:  # no response to a response
        make_response(parse_body(body("1110-inquiry-not-found")), "9001")
    raises(exc, "H1 message type", 0)


def test_wrong_body_length() -> None:
    payment = body("1200-payment")
    with pytest.raises(CodecError) as exc:
        parse_body(payment + b" ")
    raises(exc, "body length", 162)
    with pytest.raises(CodecError) as exc:
        parse_body(payment[:-1])
    raises(exc, "element 14 payer name kana", 132)
    with pytest.raises(CodecError) as exc:
        parse_body(payment[:40])
    raises(exc, "H5 sent at", 30)
    with pytest.raises(CodecError) as exc:
        parse_frame(GOLDEN_FRAMES["1200-payment"][:-1])
    raises(exc, "frame length", 0)
    with pytest.raises(CodecError) as exc:
        parse_frame(b"01")
    raises(exc, "frame length", 0)


def test_oversize_and_non_digit_frame_length() -> None:
    with pytest.raises(CodecError) as exc:
        FrameDecoder().feed(f"{MAX_BODY_LENGTH + 1:04d}".encode())
    raises(exc, "frame length", 0)
    assert FrameDecoder().feed(f"{MAX_BODY_LENGTH:04d}".encode() + b"x" * 10) == []  # at the limit: waits
    with pytest.raises(CodecError) as exc:
        parse_frame(b"9999" + b"0" * 9999)
    raises(exc, "frame length", 0)
    with pytest.raises(CodecError) as exc:
        FrameDecoder().feed(b"0x")  # detected before the prefix is complete
    raises(exc, "frame length", 0)
    # bodies before a bad prefix are delivered; the error comes with the next feed
    decoder = FrameDecoder()
    good = GOLDEN_FRAMES["0800-open"]
    assert decoder.feed(good + good + b"ABCD") == [good[4:], good[4:]]
    assert decoder.error is not None and decoder.error.offset == 2 * len(good)
    with pytest.raises(CodecError) as exc:
        decoder.feed(b"")
    raises(exc, "frame length", 152)


def test_frame_decoder_split_and_joined_frames() -> None:
    frames = [GOLDEN_FRAMES[n] for n in ("1100-inquiry", "1200-payment", "0800-open")]
    decoder = FrameDecoder()
    assert decoder.feed(frames[0][:2]) == []
    assert decoder.feed(frames[0][2:50]) == []
    assert decoder.pending == 50
    assert decoder.feed(frames[0][50:] + frames[1] + frames[2][:5]) == [frames[0][4:], frames[1][4:]]
    assert decoder.feed(frames[2][5:]) == [frames[2][4:]]
    assert decoder.feed(b"0000") == [b""]  # an empty body is a frame; parse_body rejects it
    with pytest.raises(CodecError) as exc:
        parse_body(b"")
    raises(exc, "H1 message type", 0)


def test_bad_kana_and_kanji() -> None:
    payment = body("1200-payment")
    for bad in (b"\xa1", b"a", b"\xa7", b"\x82"):  # ｡, lower case, small ｧ, a lead byte
        with pytest.raises(CodecError) as exc:
            parse_body(replace(payment, 140, bad))
        raises(exc, "element 14 payer name kana", 132)
        assert "offset 140" in exc.value.message
    message = parse_body(payment)
    for value in ("やまだ たろう", "ﾔﾏﾀﾞ taro", "ｧ", "ﾔﾏﾀﾞ ﾀﾛｳ" + "ｱ" * 30):
        with pytest.raises(CodecError) as exc:
            build_body(with_element(message, 14, value))
        raises(exc, "element 14 payer name kana", 132)
    answer = body("1110-inquiry-answer")
    for offset, bad in (
        (141, b"A "),
        (143, b"\x82\x20"),
        (143, b"\x87\x90"),
    ):  # ASCII; bad trail; ≒ (NEC dup)
        with pytest.raises(CodecError) as exc:
            parse_body(replace(answer, offset, bad))
        raises(exc, "element 12 biller name kanji", 141)
    inquiry = parse_body(body("1100-inquiry"))
    elements: dict[int, ElementValue] = {1: "1", 2: "1", 4: 1, 10: "20261210", 11: "", 13: ""}
    for value in (
        "ﾐﾅﾄ",
        "みなと電力 ",
        "みなと電力株式会社（本社）",
    ):  # half-width; ASCII space; 13 chars > 12
        with pytest.raises(CodecError) as exc:
            make_response(inquiry, "0000", {**elements, 12: value})
        raises(exc, "element 12 biller name kanji", 141)


def test_build_rejects_values_that_do_not_fit() -> None:
    message = parse_body(body("1200-payment"))
    cases: list[tuple[int, object, str, int]] = [
        (1, "123456789012345678901", "element 1 customer number", 72),
        (1, 12345, "element 1 customer number", 72),
        (2, "12345a", "element 2 confirmation number", 92),
        (4, "12345", "element 4 amount", 98),
        (4, True, "element 4 amount", 98),
        (4, 100_000_000_000, "element 4 amount", 98),
        (5, "1", "element 5 bank code", 109),
        (8, "2026112610300", "element 8 paid at", 118),
    ]
    for number, value, field, offset in cases:
        with pytest.raises(CodecError) as exc:
            build_body(with_element(message, number, value))
        raises(exc, field, offset)
    with pytest.raises(CodecError) as exc:
        build_body(dataclasses.replace(message, serial="1"))
    raises(exc, "H4 processing serial", 22)
    with pytest.raises(CodecError) as exc:
        build_body(dataclasses.replace(message, centre="MPNC0000001"))
    raises(exc, "H2 sending centre code", 4)


def test_peek_header_for_9001() -> None:
    broken = replace(body("1200-payment"), 56, b"XXXXXXXXXXXXXXXX")
    header = peek_header(broken)
    assert header is not None and header.is_request
    assert header.transaction_key == "MPNC0000012026112600000003" and header.bitmap == "XXXXXXXXXXXXXXXX"
    reply = make_response(header, "9001", sent_at="20261126103016")
    assert build_frame(reply) == (
        b"00721210MPNC00000120261126000000032026112610301658191001" + b"90010000000000000000"
    )
    made = build_body(make_response(header, "9001"))
    assert build_format_error(header)[:30] == made[:30] and build_format_error(header)[44:] == made[44:]
    assert peek_header(broken[:71]) is None
    assert peek_header(replace(broken, 30, b"\xff" * 14)) is not None  # H5 is not echoed
    assert peek_header(replace(broken, 4, b"\x00")) is None  # H2 cannot be echoed
    assert peek_header(replace(broken, 22, b"0000000\x00")) is None  # nor H4


def test_a_readable_header_of_an_unknown_type_or_date_is_answered_9001() -> None:
    """Spec §1: 9001 whenever the header can be read: a type the profile lacks gets type + 10, and an
    H3 that is not a calendar date is echoed as received."""
    broken = replace(body("1200-payment"), 0, b"1900")
    header = peek_header(broken)
    assert header is not None and header.answerable and not header.is_request
    reply = build_format_error(header)  # 1910 is no type of the profile: read its bytes
    assert (reply[:4], reply[4:30], reply[52:56], len(reply)) == (
        b"1910",
        b"MPNC0000012026112600000003",
        b"9001",
        72,
    )
    bad_date = replace(body("1200-payment"), 14, b"20261399")
    header = peek_header(bad_date)
    assert header is not None and header.is_request
    answer = build_format_error(header)
    assert answer[:4] == b"1210" and answer[14:22] == b"20261399" and answer[52:56] == b"9001"
    as_response = peek_header(replace(body("1200-payment"), 0, b"1210"))
    assert as_response is not None and not as_response.answerable
    with pytest.raises(CodecError):
        build_format_error(as_response)
    assert not peek_header(replace(body("1200-payment"), 0, b"9995")).answerable  # type: ignore[union-attr]


def test_make_response_echoes_and_defaults_sent_at_to_now() -> None:
    counters = parse_body(body("1600-counters"))
    own: dict[int, ElementValue] = {15: "20261126", 16: 1519, 17: 23444444, 18: 1498, 19: 22001234}
    reply = make_response(counters, "0000", own)
    assert reply.message_type == "1610" and reply.response_code == "0000" and reply.elements == own
    assert (reply.centre, reply.processing_date, reply.serial, reply.biller_code) == (
        "MPNC000001",
        "20261126",
        "00000005",
        "58191001",
    )
    assert len(reply.sent_at) == 14 and reply.sent_at.startswith("20")
    assert parse_body(build_body(reply)) == reply


def test_fit_helpers_use_billing_kana() -> None:
    assert fit_kana("みなと でんりょく", 24) == "ﾐﾅﾄ ﾃﾞﾝﾘﾖｸ"
    assert fit_kana("ｱ" * 30, 24) == "ｱ" * 24
    assert fit_double_byte("2026年11月分 電気料金", 40) == "２０２６年１１月分　電気料金"
    assert len(fit_double_byte("あ" * 30, 40)) == 20
    with pytest.raises(CodecError):
        fit_kana("¥100", 24)


# ---------------------------------------------------------------------------------------------------------
# Batch file errors name the record, the field and the offset
# ---------------------------------------------------------------------------------------------------------

TRAILER_AT = 4 * 122  # record 5 of BATCH_001


def test_batch_trailer_mismatch() -> None:
    with pytest.raises(CodecError) as exc:
        parse_batch_file(BATCH_001_NAME, replace(BATCH_001, TRAILER_AT + 7, b"000000021146"))
    raises(exc, "trailer 合計金額", TRAILER_AT + 7, record=5)
    with pytest.raises(CodecError) as exc:
        parse_batch_file(BATCH_002_NAME, replace(BATCH_002, 4 * 120 + 19, b"000000"))
    raises(exc, "trailer 取消件数", 4 * 120 + 19, record=5)
    batch = parse_batch_file(BATCH_001_NAME, BATCH_001)
    with pytest.raises(CodecError) as exc:  # 取消区分 1 counted as a payment
        build_batch_file(BatchFile(batch.name, batch.header, batch.records, BatchTrailer(3, 29_945, 0, 0)))
    raises(exc, "trailer 合計件数", TRAILER_AT + 1, record=5)


def test_batch_wrong_record_order() -> None:
    records = [r.encode("cp932") + b"\r\n" for r in GOLDEN_RECORDS]
    swapped = b"".join([records[0], records[1], records[4], records[2], records[3], records[5]])
    with pytest.raises(CodecError) as exc:
        parse_batch_file(BATCH_001_NAME, swapped)
    raises(exc, "データ区分", 3 * 122, record=4)
    with pytest.raises(CodecError) as exc:
        parse_batch_file(BATCH_001_NAME, b"".join(records[1:]))
    raises(exc, "データ区分", 0, record=1)
    with pytest.raises(CodecError) as exc:
        parse_batch_file(BATCH_001_NAME, b"".join(records[:-1]))
    raises(exc, "データ区分", 5 * 122, record=6)
    with pytest.raises(CodecError) as exc:
        parse_batch_file(BATCH_001_NAME, BATCH_001 + records[5])
    raises(exc, "データ区分", 6 * 122, record=7)


def test_batch_file_name_mismatch() -> None:
    for name, field, offset in [
        ("01_00010_58191_1126_001", "file name BBBBB", 60),
        ("01_00009_58192_1126_001", "file name SSSSS", 4),
        ("01_00009_58191_1127_001", "file name MMDD", 52),
    ]:
        with pytest.raises(CodecError) as exc:
            parse_batch_file(name, BATCH_001)
        raises(exc, field, offset, record=1)
    for name in ("01_0009_58191_1126_001", "02_00009_58191_1126_001", "01_00009_58191_1126_001.txt"):
        with pytest.raises(CodecError) as exc:
            parse_batch_file(name, BATCH_001)
        raises(exc, "file name", 0)
    header = parse_batch_file(BATCH_001_NAME, BATCH_001).header
    assert batch_file_name(header, 2) == BATCH_002_NAME


def test_batch_record_length_and_newline_style() -> None:
    with pytest.raises(CodecError) as exc:  # record 2 is 119 bytes
        parse_batch_file(BATCH_001_NAME, BATCH_001[:200] + BATCH_001[201:])
    raises(exc, "record length", 122, record=2)
    with pytest.raises(CodecError) as exc:  # mixed: CR LF, then back to back
        parse_batch_file(BATCH_001_NAME, BATCH_001[:244] + BATCH_002[240:])
    raises(exc, "record length", 244, record=3)
    with pytest.raises(CodecError) as exc:  # last CR LF missing
        parse_batch_file(BATCH_001_NAME, BATCH_001[:-2])
    raises(exc, "record length", 5 * 122, record=6)
    with pytest.raises(CodecError) as exc:
        parse_batch_file(BATCH_002_NAME, BATCH_002[:-1])
    raises(exc, "record length", 5 * 120, record=6)
    with pytest.raises(CodecError) as exc:
        parse_batch_file(BATCH_002_NAME, b"")
    raises(exc, "record length", 0, record=1)
    assert BATCH_RECORD_LENGTH == 120


@pytest.mark.parametrize(
    ("record", "at", "new", "field", "field_at"),
    [
        (1, 1, b"02", "header 種別コード", 1),
        (1, 56, b"13", "header 取扱日", 52),
        (1, 80, b"X", "header filler", 79),
        (2, 1, b"00012345678901234 67", "data お客様番号", 1),
        (2, 27, b"00000000000", "data 金額", 27),
        (2, 49, b"250000", "data 収納時刻", 49),
        (2, 70, b"\xa7", "data 払込人名カナ", 63),
        (2, 93, b"2", "data 取消区分", 93),
        (3, 55, b"00000001", "data 取引通番", 55),  # the same 取引通番 as record 2
        (6, 119, b"\x00", "end filler", 1),
    ],
)
def test_batch_field_errors(record: int, at: int, new: bytes, field: str, field_at: int) -> None:
    start = (record - 1) * 122
    with pytest.raises(CodecError) as exc:
        parse_batch_file(BATCH_001_NAME, replace(BATCH_001, start + at, new))
    raises(exc, field, start + field_at, record=record)
