"""Teller batch files (spec §6): whole or not at all, idempotent, conflicts refused, reversals matched,
errors that name record, field and byte offset; the command, the drop folder and the staff upload."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import Biller, Invoice
from payeasy import codec
from payeasy.models import LedgerEntry, Notice, TellerFile
from payeasy.services.payments import notices_apply
from payeasy.services.teller import teller_drop_scan, teller_file_import
from tests.factories import make_user
from tests.payeasy import line_helpers as h

pytestmark = pytest.mark.django_db


@pytest.fixture
def biller() -> Biller:
    return h.line_biller()


def header(biller: Biller, day: str = "20261126", bank: str = "0001") -> codec.BatchHeader:
    return codec.BatchHeader(biller.biller_code, "ﾃｽﾄ", day, bank, "ﾃｽﾄｷﾞﾝｺｳ")


def record(invoice: Invoice, serial: int, *, cancel: int = 0, amount: int | None = None) -> codec.BatchData:
    return codec.BatchData(
        customer_number=invoice.customer_number,
        confirmation_number=invoice.confirmation_number,
        amount=invoice.total if amount is None else amount,
        branch_code="101",
        paid_date="20261126",
        paid_time=f"10{serial % 60:02d}00",
        serial=f"{serial:08d}",
        payer_name_kana="ﾔﾏﾀﾞ ﾀﾛｳ",
        cancel=cancel,
    )


def file_of(biller: Biller, records: list[codec.BatchData], *, serial: int = 1, crlf: bool = True, **kw):  # type: ignore[no-untyped-def]
    batch = codec.make_batch_file(header(biller, **kw), records, serial=serial, crlf=crlf)
    return batch.name, codec.build_batch_file(batch)


def test_a_file_pays_its_bills_through_the_ledger(biller: Biller) -> None:
    a, b = h.published_invoice(biller, price=1000), h.published_invoice(biller, price=2000)
    name, data = file_of(biller, [record(a, 1), record(b, 2)])
    result = teller_file_import(name, data)
    assert result.accepted and result.stored
    f = result.file
    assert (f.payment_count, f.payment_total, f.reversal_count, f.known_count) == (2, 3300, 0, 0)
    assert f.sha256 == hashlib.sha256(data).hexdigest() and bytes(f.content) == data
    notices = list(Notice.objects.order_by("id"))
    assert [(n.source, n.channel, n.teller_file_id) for n in notices] == [("teller_file", "01", f.pk)] * 2
    assert notices[0].transaction_key == "0001      " + "20261126" + "00000001"
    notices_apply()
    a.refresh_from_db(), b.refresh_from_db()
    assert (a.status, b.status) == ("paid", "paid")
    assert sorted(LedgerEntry.objects.values_list("outcome", "amount")) == [("paid", 1100), ("paid", 2200)]


def test_the_same_file_again_changes_nothing(biller: Biller) -> None:
    a = h.published_invoice(biller)
    name, data = file_of(biller, [record(a, 1)])
    first = teller_file_import(name, data)
    again = teller_file_import(name, data)
    assert again.accepted and not again.stored and again.file.pk == first.file.pk
    assert "unchanged" in again.report()
    assert Notice.objects.count() == 1 and TellerFile.objects.count() == 1


def test_a_different_file_under_an_accepted_name_is_a_conflict(biller: Biller) -> None:
    a, b = h.published_invoice(biller), h.published_invoice(biller)
    name, data = file_of(biller, [record(a, 1)])
    teller_file_import(name, data)
    same_name, other = file_of(biller, [record(a, 1), record(b, 2)])
    assert same_name == name
    result = teller_file_import(name, other)
    assert not result.accepted
    assert "conflict" in result.file.error and result.file.error_field == "file name"
    assert Notice.objects.count() == 1  # nothing of the second file
    assert TellerFile.objects.filter(status="rejected").count() == 1


def test_records_already_stored_under_another_file_name_are_not_stored_twice(biller: Biller) -> None:
    a, b = h.published_invoice(biller), h.published_invoice(biller)
    teller_file_import(*file_of(biller, [record(a, 1)], serial=1))
    result = teller_file_import(*file_of(biller, [record(a, 1), record(b, 2)], serial=2))
    assert result.accepted and result.file.known_count == 1 and result.file.payment_count == 1
    assert Notice.objects.count() == 2
    notices_apply()
    assert LedgerEntry.objects.filter(outcome="paid").count() == 2  # a paid once, not doubled


def test_a_reversal_undoes_the_earlier_teller_payment(biller: Biller) -> None:
    a = h.published_invoice(biller)
    teller_file_import(*file_of(biller, [record(a, 1)], serial=1))
    notices_apply()
    result = teller_file_import(*file_of(biller, [record(a, 7, cancel=1)], serial=2))
    assert result.accepted and (result.file.reversal_count, result.file.reversal_total) == (1, a.total)
    reversal = Notice.objects.get(kind="reversal")
    assert reversal.original_key == "0001      2026112600000001"
    notices_apply()
    a.refresh_from_db()
    assert a.status == "published"  # payable again
    assert list(LedgerEntry.objects.order_by("id").values_list("outcome", "amount")) == [
        ("paid", a.total),
        ("reversal", -a.total),
    ]


def test_a_payment_and_its_reversal_in_one_file(biller: Biller) -> None:
    a = h.published_invoice(biller)
    result = teller_file_import(*file_of(biller, [record(a, 1), record(a, 2, cancel=1)]))
    assert result.accepted
    notices_apply()
    a.refresh_from_db()
    assert a.status == "published"
    assert sum(LedgerEntry.objects.values_list("amount", flat=True)) == 0


def test_a_reversal_without_a_payment_rejects_the_whole_file(biller: Biller) -> None:
    a, b = h.published_invoice(biller), h.published_invoice(biller)
    name, data = file_of(biller, [record(a, 1), record(b, 2, cancel=1)])
    result = teller_file_import(name, data)
    assert not result.accepted
    f = result.file
    assert (f.error_record, f.error_field) == (3, "取消区分")  # header is record 1
    assert f.error_offset == 2 * 122 + 93  # third record (CR LF style), 取消区分 at byte 93 of it
    assert data[f.error_offset : f.error_offset + 1] == b"1"
    assert Notice.objects.count() == 0  # not even the valid first record
    report = result.report()
    assert "record 3" in report and "取消区分" in report and f"byte offset {f.error_offset}" in report


def test_two_reversals_need_two_payments(biller: Biller) -> None:
    a = h.published_invoice(biller)
    teller_file_import(*file_of(biller, [record(a, 1)], serial=1))
    result = teller_file_import(*file_of(biller, [record(a, 5, cancel=1), record(a, 6, cancel=1)], serial=2))
    assert not result.accepted and result.file.error_record == 3
    assert Notice.objects.filter(kind="reversal").count() == 0


@pytest.mark.parametrize(
    ("mutate", "record_no", "field"),
    [
        (lambda d: d[: 122 + 21] + b"X" + d[122 + 22 :], 2, "確認番号"),  # a letter in 確認番号
        (lambda d: d.replace(b"\r\n8", b"\r\n7", 1), 4, "データ区分"),  # trailer of an unknown type
        (lambda d: d[:-124] + d[-122:], None, None),  # a record cut short
    ],
)
def test_a_malformed_file_is_rejected_naming_record_and_field(biller, mutate, record_no, field) -> None:  # type: ignore[no-untyped-def]
    a = h.published_invoice(biller)
    name, data = file_of(biller, [record(a, 1), record(a, 2, amount=5)])
    result = teller_file_import(name, mutate(data))
    assert not result.accepted and Notice.objects.count() == 0
    assert result.file.error_offset is not None and result.file.error
    if record_no is not None:
        assert result.file.error_record == record_no
        assert field in result.file.error_field


def test_a_file_of_an_unknown_biller_is_rejected(biller: Biller) -> None:
    other = codec.BatchHeader("99999001", "ﾌﾒｲ", "20261126", "0001", "ﾃｽﾄ")
    batch = codec.make_batch_file(other, [])
    result = teller_file_import(batch.name, codec.build_batch_file(batch))
    assert not result.accepted
    assert (result.file.error_record, result.file.error_field) == (1, "収納機関コード")


def test_a_file_never_pays_another_tenants_bill(biller: Biller) -> None:
    theirs = h.published_invoice(h.line_biller())
    record_for_them = record(theirs, 1)
    result = teller_file_import(*file_of(biller, [record_for_them]))  # our file, their numbers
    assert result.accepted
    notices_apply()
    theirs.refresh_from_db()
    assert theirs.status == "published"
    entry = LedgerEntry.objects.get()
    assert (entry.biller_id, entry.outcome, entry.invoice_id) == (biller.pk, "provisional", None)


def test_golden_sample_files_import_for_their_biller() -> None:
    """The spec's two sample files (embedded in the codec tests, checked there against the shared copies):
    the same records in both newline styles, so the second file's records are all already stored."""
    from tests.payeasy.test_codec import GOLDEN_FILES

    (first_name, first), (second_name, second) = sorted(GOLDEN_FILES.items())
    header = codec.parse_batch_file(first_name, first).header
    h.line_biller(biller_code=header.biller_code, payee_number=header.biller_code[:5])
    one, two = teller_file_import(first_name, first), teller_file_import(second_name, second)
    assert one.accepted and two.accepted, (one.report(), two.report())
    keys = codec.parse_batch_file(first_name, first).transaction_keys()
    assert Notice.objects.count() == len(set(keys)) and two.file.known_count == len(keys)


def test_command_imports_and_fails_on_a_rejected_file(biller: Biller, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = h.published_invoice(biller)
    name, data = file_of(biller, [record(a, 1)])
    good = tmp_path / name
    good.write_bytes(data)
    bad = tmp_path / file_of(biller, [record(a, 1)], serial=2)[0]
    bad.write_bytes(data[:-5])  # cut short
    with pytest.raises(CommandError, match="1 of 2 files rejected"):
        call_command("import_teller_batch", str(good), str(bad))
    out, err = capsys.readouterr()
    assert f"accepted {name}" in out and "1 payments" in out
    assert f"rejected {bad.name}" in err and "byte offset" in err
    call_command("import_teller_batch", str(good))  # again: unchanged, exit 0
    assert "unchanged" in capsys.readouterr().out
    assert Notice.objects.count() == 1


def test_drop_folder_imports_and_sorts_files(biller: Biller, tmp_path: Path) -> None:
    a = h.published_invoice(biller)
    (tmp_path / "incoming").mkdir()
    name, data = file_of(biller, [record(a, 1)])
    (tmp_path / "incoming" / name).write_bytes(data)
    broken = file_of(biller, [record(a, 2)], serial=2)
    (tmp_path / "incoming" / broken[0]).write_bytes(broken[1][:-1])
    (tmp_path / "incoming" / "01_00001_x.part").write_bytes(b"being written")
    fresh = file_of(biller, [record(a, 3)], serial=3)
    (tmp_path / "incoming" / fresh[0]).write_bytes(fresh[1])
    old = time.time() - 60
    for p in (tmp_path / "incoming").iterdir():
        if p.name != fresh[0]:
            os.utime(p, (old, old))
    done = teller_drop_scan(tmp_path, settle_seconds=5)
    assert sorted(d.result.accepted for d in done) == [False, True]
    assert (tmp_path / "accepted" / name).read_bytes() == data
    report = (tmp_path / "rejected" / f"{broken[0]}.error.txt").read_text(encoding="utf-8")
    assert "rejected" in report and "byte offset" in report
    left = sorted(p.name for p in (tmp_path / "incoming").iterdir())
    assert left == sorted(["01_00001_x.part", fresh[0]])  # being written, too young
    assert TellerFile.objects.get(name=name).via == "drop_folder"


def test_staff_upload(client, biller: Biller) -> None:  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    staff = make_user(is_idc_staff=True)
    client.force_login(staff)
    a = h.published_invoice(biller)
    name, data = file_of(biller, [record(a, 1)])
    bad_name, bad = file_of(biller, [record(a, 2)], serial=2)
    response = client.post(
        reverse("staff:teller_files"),
        {"files": [SimpleUploadedFile(name, data), SimpleUploadedFile(bad_name, bad[:-3])]},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert name in page and bad_name in page
    f = TellerFile.objects.get(name=name)
    assert (f.status, f.via, f.received_by_id) == ("accepted", "upload", staff.pk)
    rejected = TellerFile.objects.get(name=bad_name)
    assert rejected.status == "rejected" and rejected.received_by_id == staff.pk
    detail = client.get(reverse("staff:teller_file", args=[rejected.pk])).content.decode()
    assert "Byte offset" in detail and f"<dd>{rejected.error_offset}</dd>" in detail
    accepted = client.get(reverse("staff:teller_file", args=[f.pk])).content.decode()
    assert Notice.objects.get().transaction_key in accepted
    client.force_login(make_user())
    assert client.get(reverse("staff:teller_files")).status_code == 403
