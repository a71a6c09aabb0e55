"""The 全銀 総合振込 codec: a hand-checked golden file, field by field at its byte offsets; the round trip;
the refusals (length, order, trailer, characters, widths), each naming record, field and offset."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from payeasy.codec.errors import CodecError
from reconciliation.zengin import (
    RECORD_LENGTH,
    ZenginData,
    ZenginHeader,
    ZenginTrailer,
    zengin_build,
    zengin_make,
    zengin_parse,
)

SAMPLE = Path(__file__).parent / "samples" / "sogofuri_21_sample.txt"

# --- the golden file, written out field by field (offsets 0-based within the record) --------------------
# Each field: (offset, width, name, literal text). The text is the field exactly as it stands in the file:
# N fields zero-padded on the left, C fields space-padded on the right, by hand.
HEADER_FIELDS = [
    (0, 1, "データ区分", "1"),
    (1, 2, "種別コード", "21"),
    (3, 1, "コード区分", "0"),
    (4, 10, "委託者コード", "1234567890"),
    (14, 40, "委託者名", "ｶ)ﾃｽﾄｼﾕｳﾉｳ" + " " * 30),
    (54, 4, "振込指定日", "1204"),
    (58, 4, "仕向銀行番号", "0005"),
    (62, 15, "仕向銀行名", "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ" + " " * 2),
    (77, 3, "仕向支店番号", "001"),
    (80, 15, "仕向支店名", "ﾎﾝﾃﾝ" + " " * 11),
    (95, 1, "預金種目", "1"),
    (96, 7, "口座番号", "1234567"),
    (103, 17, "ダミー", " " * 17),
]
DATA_FIELDS = [
    [
        (0, 1, "データ区分", "2"),
        (1, 4, "被仕向銀行番号", "0001"),
        (5, 15, "被仕向銀行名", "ﾐｽﾞﾎ" + " " * 11),
        (20, 3, "被仕向支店番号", "001"),
        (23, 15, "被仕向支店名", "ﾄｳｷﾖｳ" + " " * 10),
        (38, 4, "手形交換所番号", "0000"),
        (42, 1, "預金種目", "1"),
        (43, 7, "口座番号", "0012345"),
        (50, 30, "受取人名", "ﾔﾏﾀﾞ ﾀﾛｳ" + " " * 22),
        (80, 10, "振込金額", "0000012000"),
        (90, 1, "新規コード", "0"),
        (91, 10, "顧客コード1", "0000000001"),
        (101, 10, "顧客コード2", "0000000011"),
        (111, 1, "振込指定区分", "7"),
        (112, 1, "識別表示", " "),
        (113, 7, "ダミー", " " * 7),
    ],
    [
        (0, 1, "データ区分", "2"),
        (1, 4, "被仕向銀行番号", "0033"),
        (5, 15, "被仕向銀行名", "ﾍﾟｲﾍﾟｲ" + " " * 9),
        (20, 3, "被仕向支店番号", "001"),
        (23, 15, "被仕向支店名", "ﾎﾝﾃﾝ" + " " * 11),
        (38, 4, "手形交換所番号", "0000"),
        (42, 1, "預金種目", "2"),
        (43, 7, "口座番号", "7654321"),
        (50, 30, "受取人名", "ｶ)ｻﾝﾌﾟﾙｼﾖｳｼﾞ" + " " * 18),
        (80, 10, "振込金額", "0000000001"),
        (90, 1, "新規コード", "0"),
        (91, 10, "顧客コード1", "0000000002"),
        (101, 10, "顧客コード2", "0000000012"),
        (111, 1, "振込指定区分", "7"),
        (112, 1, "識別表示", " "),
        (113, 7, "ダミー", " " * 7),
    ],
    [
        (0, 1, "データ区分", "2"),
        (1, 4, "被仕向銀行番号", "0310"),
        (5, 15, "被仕向銀行名", "ｼﾞ-ｴﾑｵ-ｱｵｿﾞﾗﾈﾂﾄ"),  # exactly 15: no padding
        (20, 3, "被仕向支店番号", "101"),
        (23, 15, "被仕向支店名", "ﾎｳｼﾞﾝ" + " " * 10),
        (38, 4, "手形交換所番号", "0000"),
        (42, 1, "預金種目", "4"),
        (43, 7, "口座番号", "0000001"),
        (50, 30, "受取人名", "ｽｽﾞｷ ｲﾁﾛｳ(ﾃｽﾄ ﾄﾞﾗｲﾌﾞ ｶﾝﾘｼﾞﾑｼﾖ)"),  # exactly 30
        (80, 10, "振込金額", "9999999999"),  # the largest N(10)
        (90, 1, "新規コード", "0"),
        (91, 10, "顧客コード1", "0000000003"),
        (101, 10, "顧客コード2", "0000000013"),
        (111, 1, "振込指定区分", "7"),
        (112, 1, "識別表示", " "),
        (113, 7, "ダミー", " " * 7),
    ],
]
TRAILER_FIELDS = [
    (0, 1, "データ区分", "8"),
    (1, 6, "合計件数", "000003"),
    (7, 12, "合計金額", "010000012000"),  # 12,000 + 1 + 9,999,999,999
    (19, 101, "ダミー", " " * 101),
]
END_FIELDS = [(0, 1, "データ区分", "9"), (1, 119, "ダミー", " " * 119)]
GOLDEN_RECORDS = [HEADER_FIELDS, *DATA_FIELDS, TRAILER_FIELDS, END_FIELDS]


def golden_record(fields: list[tuple[int, int, str, str]]) -> bytes:
    out = b""
    for offset, width, name, text in fields:
        assert len(out) == offset, f"{name} starts at {len(out)}, the layout says {offset}"
        chunk = text.encode("cp932")
        assert len(chunk) == width, f"{name} is {len(chunk)} bytes, the layout says {width}"
        out += chunk
    assert len(out) == RECORD_LENGTH
    return out


GOLDEN = b"".join(golden_record(r) + b"\r\n" for r in GOLDEN_RECORDS)

HEADER = ZenginHeader(
    requester_code="1234567890",
    requester_name="ｶ)ﾃｽﾄｼﾕｳﾉｳ",
    transfer_date="1204",
    bank_code="0005",
    bank_name="ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ",
    branch_code="001",
    branch_name="ﾎﾝﾃﾝ",
    account_type="1",
    account_number="1234567",
)
RECORDS = [
    ZenginData("0001", "ﾐｽﾞﾎ", "001", "ﾄｳｷﾖｳ", "1", "12345", "ﾔﾏﾀﾞ ﾀﾛｳ", 12000, "0000000001", "0000000011"),
    ZenginData("0033", "ﾍﾟｲﾍﾟｲ", "001", "ﾎﾝﾃﾝ", "2", "7654321", "ｶ)ｻﾝﾌﾟﾙｼﾖｳｼﾞ", 1, "0000000002", "0000000012"),
    ZenginData(
        "0310",
        "ｼﾞ-ｴﾑｵ-ｱｵｿﾞﾗﾈﾂﾄ",
        "101",
        "ﾎｳｼﾞﾝ",
        "4",
        "1",
        "ｽｽﾞｷ ｲﾁﾛｳ(ﾃｽﾄ ﾄﾞﾗｲﾌﾞ ｶﾝﾘｼﾞﾑｼﾖ)",
        9_999_999_999,
        "0000000003",
        "0000000013",
    ),
]


def written(*, records: list[ZenginData] | None = None, crlf: bool = True, **header: str) -> bytes:
    return zengin_build(
        zengin_make(dataclasses.replace(HEADER, **header), RECORDS if records is None else records, crlf=crlf)
    )


# --- the golden file --------------------------------------------------------------------------------------


def test_the_sample_file_is_the_hand_written_bytes() -> None:
    assert SAMPLE.read_bytes() == GOLDEN
    assert len(GOLDEN) == 6 * 122


def test_the_writer_writes_the_golden_bytes_byte_for_byte() -> None:
    out = written()
    if out != GOLDEN:  # name the first differing byte, its record and field
        i = next(i for i, (a, b) in enumerate(zip(out, GOLDEN, strict=False)) if a != b)
        record, offset = divmod(i, 122)
        name = next(n for o, w, n, _t in GOLDEN_RECORDS[record] if o <= offset < o + w)
        pytest.fail(f"byte {i} (record {record + 1}, {name}): {out[i : i + 12]!r} != {GOLDEN[i : i + 12]!r}")
    assert out == GOLDEN


@pytest.mark.parametrize("record", range(len(GOLDEN_RECORDS)))
def test_every_field_of_the_written_file_at_its_byte_offset(record: int) -> None:
    out = written()
    base = record * 122
    for offset, width, name, text in GOLDEN_RECORDS[record]:
        got = out[base + offset : base + offset + width]
        assert got == text.encode("cp932"), f"record {record + 1} {name} at {base + offset}: {got!r}"
    assert out[base + 120 : base + 122] == b"\r\n"


def test_the_parser_reads_the_sample_back_to_the_same_values() -> None:
    parsed = zengin_parse(SAMPLE.read_bytes())
    assert parsed.header == HEADER
    assert list(parsed.records) == RECORDS
    assert parsed.trailer == ZenginTrailer(count=3, total=10_000_012_000)
    assert parsed.crlf is True
    assert parsed.records[0].account_number == "0012345"  # 1–7 digits are zero-padded
    assert [r.transfer_kind for r in parsed.records] == ["7", "7", "7"]
    assert zengin_build(parsed) == GOLDEN


def test_records_back_to_back_when_asked() -> None:
    out = written(crlf=False)
    assert out == GOLDEN.replace(b"\r\n", b"")
    assert len(out) == 6 * RECORD_LENGTH
    parsed = zengin_parse(out)
    assert parsed.crlf is False and list(parsed.records) == RECORDS


def test_the_trailer_totals_are_computed_from_the_records() -> None:
    parsed = zengin_parse(written(records=RECORDS[:2]))
    assert parsed.trailer == ZenginTrailer(count=2, total=12_001)
    raw = written(records=RECORDS[:2])
    trailer = raw[3 * 122 : 4 * 122]
    assert trailer[1:7] == b"000002" and trailer[7:19] == b"000000012001"


# --- refusals -------------------------------------------------------------------------------------------


def refused(data: bytes) -> CodecError:
    with pytest.raises(CodecError) as info:
        zengin_parse(data)
    return info.value


def test_a_record_of_the_wrong_length_is_refused_with_its_number_and_offset() -> None:
    records = GOLDEN.split(b"\r\n")
    records[2] = records[2][:119]  # the second data record loses its last byte
    error = refused(b"\r\n".join(records))
    assert error.record == 3 and error.field == "record length" and error.offset == 2 * 122
    assert "119 bytes" in str(error)


def test_lf_alone_is_refused() -> None:
    error = refused(GOLDEN.replace(b"\r\n", b"\n"))
    assert error.record == 2 and error.offset == 120 and error.field == "record length"


def test_a_bad_trailer_total_is_refused_naming_the_trailer_field() -> None:
    bad = bytearray(GOLDEN)
    trailer = 4 * 122
    bad[trailer + 7 : trailer + 19] = b"010000012001"
    error = refused(bytes(bad))
    assert error.record == 5
    assert error.field == "trailer 合計金額"
    assert error.offset == trailer + 7
    assert "10000012001 in the trailer, but the data records give 10000012000" in str(error)


def test_a_bad_trailer_count_is_refused() -> None:
    bad = bytearray(GOLDEN)
    bad[4 * 122 + 1 : 4 * 122 + 7] = b"000002"
    error = refused(bytes(bad))
    assert error.field == "trailer 合計件数" and error.offset == 4 * 122 + 1 and error.record == 5


def test_the_writer_refuses_a_trailer_that_disagrees_with_the_data() -> None:
    zfile = dataclasses.replace(zengin_make(HEADER, RECORDS), trailer=ZenginTrailer(3, 10_000_012_001))
    with pytest.raises(CodecError) as info:
        zengin_build(zfile)
    assert info.value.field == "trailer 合計金額" and info.value.record == 5


def test_a_name_that_is_not_kana_is_refused_by_the_writer() -> None:
    records = [dataclasses.replace(RECORDS[0], payee_name="ﾔﾏﾀﾞ 太郎"), *RECORDS[1:]]
    with pytest.raises(CodecError) as info:
        written(records=records)
    assert info.value.field == "data 受取人名"
    assert info.value.record == 2 and info.value.offset == 122 + 50
    assert "太" in str(info.value)


def test_a_name_that_is_not_kana_is_refused_by_the_parser() -> None:
    bad = bytearray(GOLDEN)
    bad[122 + 50 : 122 + 52] = "漢".encode("cp932")
    error = refused(bytes(bad))
    assert error.field == "data 受取人名" and error.record == 2 and error.offset == 122 + 50


def test_lower_case_and_full_width_kana_are_refused_by_the_writer() -> None:
    for name in ("yamada", "ヤマダ"):
        with pytest.raises(CodecError) as info:
            written(requester_name=name)
        assert info.value.field == "header 委託者名" and info.value.offset == 14


def test_too_long_fields_are_refused_not_cut() -> None:
    with pytest.raises(CodecError) as info:
        written(records=[dataclasses.replace(RECORDS[0], payee_name="ｱ" * 31)])
    assert info.value.field == "data 受取人名"
    with pytest.raises(CodecError) as info:
        written(bank_name="ｱ" * 16)
    assert info.value.field == "header 仕向銀行名" and info.value.offset == 62


def test_an_amount_over_ten_digits_is_refused() -> None:
    with pytest.raises(CodecError) as info:
        written(records=[dataclasses.replace(RECORDS[0], amount=10_000_000_000)])
    assert info.value.field == "data 振込金額" and info.value.offset == 122 + 80
    with pytest.raises(CodecError):
        written(records=[dataclasses.replace(RECORDS[0], amount=0)])


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ({"requester_code": "123456789"}, "header 委託者コード"),
        ({"transfer_date": "1332"}, "header 振込指定日"),
        ({"bank_code": "05"}, "header 仕向銀行番号"),
        ({"account_type": "4"}, "header 預金種目"),
        ({"account_number": "12345678"}, "header 口座番号"),
        ({"requester_name": ""}, "header 委託者名"),
    ],
)
def test_header_values_are_checked(header: dict[str, str], field: str) -> None:
    with pytest.raises(CodecError) as info:
        zengin_build(zengin_make(dataclasses.replace(HEADER, **header), RECORDS))
    assert info.value.field == field and info.value.record == 1


def test_a_file_without_transfers_is_refused() -> None:
    with pytest.raises(CodecError) as info:
        written(records=[])
    assert info.value.record == 2


@pytest.mark.parametrize(
    ("offset", "replacement", "field"),
    [
        (1, b"11", "header 種別コード"),  # 給与振込, not 総合振込
        (103, b"X", "header ダミー"),
        (122 + 38, b"12 4", "data 手形交換所番号"),
        (122 + 42, b"3", "data 預金種目"),
        (122 + 111, b"9", "data 振込指定区分"),
        (122 + 112, b"Y", "data 識別表示"),
        (122 + 80, b"00000A2000", "data 振込金額"),
    ],
)
def test_fields_of_the_wrong_content_are_refused_at_their_offset(
    offset: int, replacement: bytes, field: str
) -> None:
    bad = bytearray(GOLDEN)
    bad[offset : offset + len(replacement)] = replacement
    error = refused(bytes(bad))
    assert error.field == field
    assert offset - 12 <= error.offset <= offset  # the field's start (the filler names the byte in the text)


def test_spaces_for_the_unused_clearing_house_number_are_accepted() -> None:
    ok = bytearray(GOLDEN)
    ok[122 + 38 : 122 + 42] = b"    "
    assert list(zengin_parse(bytes(ok)).records) == RECORDS


def test_records_out_of_order_are_refused() -> None:
    records = GOLDEN.split(b"\r\n")[:-1]
    swapped = [records[1], records[0], *records[2:]]
    error = refused(b"".join(r + b"\r\n" for r in swapped))
    assert error.record == 1 and error.field == "データ区分" and "expected 1 (header)" in str(error)
    no_end = b"".join(r + b"\r\n" for r in records[:-1])
    error = refused(no_end)
    assert "without its end record" in str(error)
    after_end = GOLDEN + records[0] + b"\r\n"
    error = refused(after_end)
    assert error.record == 7 and "after the end record" in str(error)
