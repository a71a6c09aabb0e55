"""Teller batch files, fuzzed through the import service on PostgreSQL: whatever the bytes and the name,
the import answers (accepted or rejected with record, field and byte offset), never raises, and a
rejected file stores nothing but its own record (no notice, no ledger entry, no paid invoice)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.models import Invoice
from payeasy import codec
from payeasy.models import LedgerEntry, Notice, TellerFile
from payeasy.services.teller import teller_file_import
from tests.payeasy import line_helpers as h
from tests.payeasy.fuzzing import database_fuzz_settings, mutated

pytestmark = pytest.mark.django_db

FUZZ = database_fuzz_settings("TELLER_FUZZ_EXAMPLES")


@pytest.fixture
def golden(db: None) -> tuple[str, bytes]:
    """A file the import accepts: two payments of published invoices and a reversal of the second."""
    biller = h.line_biller()
    a, b = h.published_invoice(biller, price=1000), h.published_invoice(biller, price=2000)
    header = codec.BatchHeader(biller.biller_code, "ﾃｽﾄ", "20261126", "0001", "ﾃｽﾄｷﾞﾝｺｳ")

    def record(inv: Invoice, serial: int, cancel: int = 0) -> codec.BatchData:
        return codec.BatchData(
            customer_number=inv.customer_number,
            confirmation_number=inv.confirmation_number,
            amount=inv.total,
            branch_code="101",
            paid_date="20261126",
            paid_time="100000",
            serial=f"{serial:08d}",
            payer_name_kana="ﾔﾏﾀﾞ ﾀﾛｳ",
            cancel=cancel,
        )

    batch = codec.make_batch_file(header, [record(a, 1), record(b, 2), record(b, 3, cancel=1)])
    return batch.name, codec.build_batch_file(batch)


def counts() -> dict[str, int]:
    return {
        "notices": Notice.objects.count(),
        "ledger": LedgerEntry.objects.count(),
        "accepted files": TellerFile.objects.filter(status=TellerFile.Status.ACCEPTED).count(),
        "rejected files": TellerFile.objects.filter(status=TellerFile.Status.REJECTED).count(),
        "paid invoices": Invoice.objects.filter(status=Invoice.Status.PAID).count(),
    }


def check_import(name: str, data: bytes) -> None:
    before = counts()
    result = teller_file_import(name, data)  # never raises
    after = counts()
    f = result.file
    if result.accepted:
        assert f.error == "" and after["rejected files"] == before["rejected files"]
        return
    assert f.error and f.status == TellerFile.Status.REJECTED
    assert f.error_offset is None or 0 <= f.error_offset <= len(data), (f.error_offset, len(data))
    assert f.error_record is not None or f.error_field, f.error
    assert result.report().startswith("rejected")
    # nothing of a rejected file is stored but the record of its rejection
    assert after == {**before, "rejected files": before["rejected files"] + 1}, (before, after, f.error)


@FUZZ
@given(data=st.data())
def test_mutated_teller_files_are_accepted_or_rejected_whole(
    golden: tuple[str, bytes], data: st.DataObject
) -> None:
    name, original = golden
    mutant = data.draw(mutated([original], record=122))
    check_import(name, mutant)


@FUZZ
@given(
    raw=st.binary(max_size=600),
    name=st.sampled_from(
        ["01_00001_60001_1126_001", "../../etc/passwd", "01_0000\x00_1_1126_001", "", "x" * 300]
    )
    | st.text(max_size=40),
)
def test_arbitrary_bytes_and_names_are_rejected_with_a_reason(db: None, raw: bytes, name: str) -> None:
    check_import(name, raw)
