"""Refund accounts and 全銀 transfer files: the services (validation, audit, serials, write-once filing, two
requests at once on PostgreSQL) and the console pages (tenancy, roles, the download)."""

from __future__ import annotations

import datetime
import hashlib
import itertools
import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import NoReverseMatch

from billing.errors import Conflict, ValidationFailed
from billing.models import AuditEntry, Biller, Membership, User
from billing.tenancy import tenant_reverse
from payeasy.banks import bank_get, branch_get
from reconciliation.models import Action, Finding, Refund, RefundAccount, TransferFile
from reconciliation.services import transfers
from reconciliation.services.findings import action_record
from reconciliation.services.transfers import refund_account_save, transfer_file_create
from reconciliation.zengin import zengin_parse
from tests.factories import make_biller, make_member
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 12, 4)  # a Friday, a bank business day
NEXT = datetime.date(2026, 12, 7)  # the Monday after
_keys = itertools.count(1)


def console(biller: Biller, path: str) -> str:
    return f"/b/{biller.slug}/console/{path}"


def make_account(biller: Biller, **overrides: str) -> RefundAccount:
    values = {
        "requester_code": "1234567890",
        "requester_name_kana": "ｶ)ﾃｽﾄｼﾕｳﾉｳ",
        "bank_code": "0005",
        "branch_code": "001",
        "account_type": "1",
        "account_number": "1234567",
    }
    values.update(overrides)
    return refund_account_save(actor=None, biller=biller, **values)


def make_refund(
    biller: Biller,
    *,
    amount: int = 5000,
    transfer_date: datetime.date = DAY,
    bank_code: str = "0001",
    branch_code: str = "001",
    holder_kana: str = "ﾔﾏﾀﾞ ﾀﾛｳ",
    account_number: str = "0012345",
) -> Refund:
    """A refund as the refund action makes it: a finding, its ``refund`` action (through the one service
    that records actions), and the refund row."""
    n = next(_keys)
    finding = Finding.objects.create(
        biller=biller,
        key=f"double:{n}",
        kind=Finding.Kind.DOUBLE_PAYMENT,
        processing_date=transfer_date - datetime.timedelta(days=3),
        amount=amount,
        bank_code=bank_code,
    )
    with transaction.atomic():
        action = action_record(finding=finding, kind=Action.Kind.REFUND, actor=None, amount=amount)
        return Refund.objects.create(
            biller=biller,
            finding=finding,
            action=action,
            amount=amount,
            bank_code=bank_code,
            branch_code=branch_code,
            account_type="1",
            account_number=account_number,
            holder_kana=holder_kana,
            transfer_date=transfer_date,
        )


# --- the refund account ---------------------------------------------------------------------------------


def test_refund_account_is_saved_in_zengin_form_and_audited(biller: Biller) -> None:
    account = refund_account_save(
        actor=None,
        biller=biller,
        requester_code="１２３４５６７８９０",
        requester_name_kana="カ)テスト　しゅうのう",
        bank_code="0005",
        branch_code="001",
        account_type="2",
        account_number="4567",
    )
    assert account.requester_code == "1234567890"
    assert account.requester_name_kana == "ｶ)ﾃｽﾄ ｼﾕｳﾉｳ"
    assert account.account_number == "0004567"
    entry = AuditEntry.objects.get(action="refund_account.create", biller=biller)
    assert entry.after is not None
    assert entry.after["requester_name_kana"] == "ｶ)ﾃｽﾄ ｼﾕｳﾉｳ"


def test_refund_account_change_is_audited_before_and_after(biller: Biller) -> None:
    make_account(biller)
    make_account(biller, account_number="7654321")
    account = RefundAccount.objects.get(biller=biller)
    assert account.account_number == "7654321"
    entry = AuditEntry.objects.get(action="refund_account.update", biller=biller)
    assert entry.before is not None and entry.after is not None
    assert entry.before["account_number"] == "1234567" and entry.after["account_number"] == "7654321"
    make_account(biller, branch_code=account.branch_code, account_number="7654321")  # no change: no entry
    assert AuditEntry.objects.filter(action="refund_account.update", biller=biller).count() == 1


def test_refund_account_refuses_what_the_bank_would_refuse(biller: Biller) -> None:
    with pytest.raises(ValidationFailed) as info:
        make_account(
            biller, requester_code="123456789", requester_name_kana="株式会社テスト", account_type="4"
        )
    assert set(info.value.errors) == {"requester_code", "requester_name_kana", "account_type"}
    assert "株" in info.value.errors["requester_name_kana"][0]
    with pytest.raises(ValidationFailed) as info:
        make_account(biller, bank_code="0002")  # no bank 0002 in the 全銀 master
    assert set(info.value.errors) == {"bank_code"}
    assert bank_get("0001") is not None and branch_get("0001", "999") is None
    with pytest.raises(ValidationFailed) as info:
        make_account(biller, bank_code="0001", branch_code="999")
    assert set(info.value.errors) == {"branch_code"}
    with pytest.raises(ValidationFailed) as info:
        make_account(biller, requester_name_kana="ｱ" * 41, account_number="12345678")
    assert set(info.value.errors) == {"requester_name_kana", "account_number"}
    assert not RefundAccount.objects.exists()


# --- transfer files -------------------------------------------------------------------------------------


def test_the_file_carries_the_dates_unfiled_refunds_with_names_from_the_bank_master(biller: Biller) -> None:
    make_account(biller)
    first = make_refund(biller, amount=12000)
    second = make_refund(biller, amount=800, bank_code="0033", branch_code="001", holder_kana="ｽｽﾞｷ ﾊﾅｺ")
    later = make_refund(biller, amount=999, transfer_date=NEXT)
    theirs = make_refund(make_biller(), amount=777)
    actor = make_member(biller)

    made = transfer_file_create(actor=actor, biller=biller, transfer_date=DAY)

    assert (made.serial, made.count, made.total) == (1, 2, 12_800)
    assert made.filename == "sogofuri_20261204_01.txt"
    content = bytes(made.content)
    assert made.sha256 == hashlib.sha256(content).hexdigest()
    parsed = zengin_parse(content)
    assert parsed.header.transfer_date == "1204" and parsed.header.requester_code == "1234567890"
    assert parsed.header.bank_name == bank_get("0005").kana[:15]  # type: ignore[union-attr]
    assert parsed.header.branch_name == branch_get("0005", "001").kana  # type: ignore[union-attr]
    assert [(r.bank_code, r.amount, r.payee_name) for r in parsed.records] == [
        ("0001", 12000, "ﾔﾏﾀﾞ ﾀﾛｳ"),
        ("0033", 800, "ｽｽﾞｷ ﾊﾅｺ"),
    ]
    assert parsed.records[1].bank_name == bank_get("0033").kana  # type: ignore[union-attr]
    assert parsed.records[1].branch_name == branch_get("0033", "001").kana  # type: ignore[union-attr]
    assert parsed.records[0].customer_code_1 == f"{first.pk:010d}"
    assert parsed.records[0].customer_code_2 == f"{first.finding_id:010d}"
    assert (parsed.trailer.count, parsed.trailer.total) == (2, 12_800)
    assert set(Refund.objects.filter(transfer_file=made)) == {first, second}
    later.refresh_from_db()
    theirs.refresh_from_db()
    assert later.transfer_file is None and theirs.transfer_file is None
    entry = AuditEntry.objects.get(action="transfer_file.create", biller=biller)
    assert entry.after is not None
    assert entry.actor == actor and entry.after["refunds"] == [first.pk, second.pk]
    assert entry.after["total"] == 12_800


def test_a_refund_is_in_exactly_one_file_and_the_serial_counts_up(biller: Biller) -> None:
    make_account(biller)
    one = make_refund(biller, amount=100)
    f1 = transfer_file_create(actor=None, biller=biller, transfer_date=DAY)
    two = make_refund(biller, amount=250)
    f2 = transfer_file_create(actor=None, biller=biller, transfer_date=DAY)
    assert (f1.serial, f2.serial) == (1, 2)
    assert (f2.count, f2.total) == (1, 250)
    assert list(Refund.objects.filter(transfer_file=f1)) == [one]
    assert list(Refund.objects.filter(transfer_file=f2)) == [two]
    with pytest.raises(Conflict) as info:
        transfer_file_create(actor=None, biller=biller, transfer_date=DAY)
    assert info.value.code == "no_refunds"
    assert TransferFile.objects.filter(biller=biller).count() == 2
    other = make_biller()
    make_account(other)
    make_refund(other)
    assert transfer_file_create(actor=None, biller=other, transfer_date=DAY).serial == 1  # per biller


def test_no_account_or_no_refund_is_refused_clearly(biller: Biller) -> None:
    make_refund(biller)
    with pytest.raises(Conflict) as info:
        transfer_file_create(actor=None, biller=biller, transfer_date=DAY)
    assert info.value.code == "no_refund_account"
    make_account(biller)
    with pytest.raises(Conflict) as info:
        transfer_file_create(actor=None, biller=biller, transfer_date=NEXT)
    assert info.value.code == "no_refunds" and "2026-12-07" in info.value.message
    with pytest.raises(Conflict) as info:
        transfer_file_create(actor=None, biller=biller, transfer_date=datetime.date(2026, 12, 5))  # Saturday
    assert info.value.code == "not_business_day"
    assert not TransferFile.objects.exists()


def test_a_refund_that_cannot_be_written_is_named_and_nothing_is_filed(biller: Biller) -> None:
    make_account(biller)
    good = make_refund(biller)
    bad = make_refund(biller, holder_kana="山田 太郎")
    with pytest.raises(Conflict) as info:
        transfer_file_create(actor=None, biller=biller, transfer_date=DAY)
    assert info.value.code == "transfer_file_invalid"
    assert f"refund {bad.pk}" in info.value.message and "受取人名" in info.value.message
    good.refresh_from_db()
    assert good.transfer_file is None and not TransferFile.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_put_each_refund_in_one_file(
    postgres: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # writing the file takes a while, so both requests are inside the service at the same time
    build = transfers.zengin_build

    def slow_build(zfile: Any) -> bytes:
        time.sleep(0.5)
        return build(zfile)

    monkeypatch.setattr(transfers, "zengin_build", slow_build)
    biller = make_biller()
    make_account(biller)
    refunds = [make_refund(biller, amount=1000 + i) for i in range(3)]
    start = threading.Barrier(2)
    results: list[Any] = []

    def request() -> None:
        try:
            start.wait()
            results.append(transfer_file_create(actor=None, biller=biller, transfer_date=DAY))
        except Exception as exc:  # collected and checked below
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    made = [r for r in results if isinstance(r, TransferFile)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(made) == 1 and len(refused) == 1, results
    assert refused[0].code == "no_refunds"
    assert TransferFile.objects.filter(biller=biller).count() == 1
    assert {r.transfer_file_id for r in Refund.objects.filter(pk__in=[r.pk for r in refunds])} == {made[0].pk}


# --- pages ----------------------------------------------------------------------------------------------


def test_the_list_shows_the_tenants_refunds_and_files_only(admin_client: Client, biller: Biller) -> None:
    make_account(biller)
    mine = make_refund(biller, amount=4321, holder_kana="ﾐﾂｲ ﾊﾅｺ")
    made = transfer_file_create(actor=None, biller=biller, transfer_date=DAY)
    make_refund(biller, amount=1234, transfer_date=NEXT)
    other = make_biller()
    make_account(other)
    make_refund(other, amount=9876, holder_kana="ﾖｿﾉ ﾋﾄ")
    theirs = transfer_file_create(actor=None, biller=other, transfer_date=DAY)

    response = admin_client.get(console(biller, "refunds/"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "ﾐﾂｲ ﾊﾅｺ" in body and "4,321" in body and "1,234" in body
    assert "ﾖｿﾉ ﾋﾄ" not in body and "9,876" not in body
    assert console(biller, f"refunds/files/{made.pk}/") in body
    assert f"refunds/files/{theirs.pk}/" not in body
    assert [f.pk for f in response.context["files"]] == [made.pk]
    assert response.context["waiting_dates"] == [NEXT]
    assert bank_get("0001").name in body  # type: ignore[union-attr]
    assert 'name="transfer_date"' in body  # an administrator may make files
    try:  # the finding's page, when the console has it
        finding_url = tenant_reverse(biller, "console:finding_detail", kwargs={"pk": mine.finding_id})
    except NoReverseMatch:
        finding_url = None
    if finding_url is not None:
        assert f'href="{finding_url}"' in body


def test_download_is_the_files_bytes_and_another_tenants_file_is_404(
    admin_client: Client, biller: Biller
) -> None:
    make_account(biller)
    make_refund(biller)
    made = transfer_file_create(actor=None, biller=biller, transfer_date=DAY)
    response = admin_client.get(console(biller, f"refunds/files/{made.pk}/"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="sogofuri_20261204_01.txt"'
    assert response.content == bytes(made.content)
    other = make_biller()
    make_account(other)
    make_refund(other)
    theirs = transfer_file_create(actor=None, biller=other, transfer_date=DAY)
    assert_cross_tenant_hidden(admin_client, lambda pk: console(biller, f"refunds/files/{pk}/"), theirs.pk)


def test_an_administrator_makes_the_file_from_the_page(admin_client: Client, biller: Biller) -> None:
    make_account(biller)
    refund = make_refund(biller, amount=3000)
    response = admin_client.post(console(biller, "refunds/"), {"transfer_date": "2026-12-04"})
    assert response.status_code == 302
    refund.refresh_from_db()
    assert refund.transfer_file is not None and refund.transfer_file.biller_id == biller.pk
    again = admin_client.post(console(biller, "refunds/"), {"transfer_date": "2026-12-04"})
    assert again.status_code == 200
    assert "No refund with transfer date 2026-12-04" in again.content.decode()
    assert TransferFile.objects.count() == 1


def test_an_operator_sees_the_refunds_but_cannot_make_a_file(client: Client, biller: Biller) -> None:
    make_account(biller)
    make_refund(biller)
    client.force_login(make_member(biller, role=Membership.Role.OPERATOR))
    page = client.get(console(biller, "refunds/"))
    assert page.status_code == 200 and 'name="transfer_date"' not in page.content.decode()
    response = client.post(console(biller, "refunds/"), {"transfer_date": "2026-12-04"})
    assert response.status_code == 403
    assert not TransferFile.objects.exists()
    response = client.post(
        console(biller, "refunds/account/"),
        {
            "requester_code": "9999999999",
            "requester_name_kana": "ｱ",
            "bank_code": "0001",
            "branch_code": "001",
            "account_type": "1",
            "account_number": "1",
        },
    )
    assert response.status_code == 403
    assert RefundAccount.objects.get(biller=biller).requester_code == "1234567890"
    page = client.get(console(biller, "refunds/account/"))
    body = page.content.decode()
    assert page.status_code == 200 and "1234567890" in body and bank_get("0005").name in body  # type: ignore[union-attr]
    assert 'name="requester_code"' not in body  # read-only: no form


def test_the_account_page_saves_the_tenants_own_account(
    admin_client: Client, admin_user: User, biller: Biller
) -> None:
    other = make_biller()
    make_account(other, requester_code="5555555555")
    page = admin_client.get(console(biller, "refunds/account/"))
    assert page.status_code == 200 and "5555555555" not in page.content.decode()
    data = {
        "requester_code": "0123456789",
        "requester_name_kana": "テスト",
        "bank_code": "0001",
        "branch_code": "001",
        "account_type": "1",
        "account_number": "42",
    }
    response = admin_client.post(console(biller, "refunds/account/"), data)
    assert response.status_code == 302
    account = RefundAccount.objects.get(biller=biller)
    assert (account.requester_code, account.requester_name_kana, account.account_number) == (
        "0123456789",
        "ﾃｽﾄ",
        "0000042",
    )
    assert AuditEntry.objects.get(action="refund_account.create", biller=biller).actor == admin_user
    assert RefundAccount.objects.get(biller=other).requester_code == "5555555555"
    bad = admin_client.post(console(biller, "refunds/account/"), {**data, "requester_name_kana": "漢字"})
    assert bad.status_code == 200 and bad.context["form"].errors["requester_name_kana"]
