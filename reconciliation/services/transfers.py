"""The biller's refund account (its 総合振込 contract: 委託者コード and the account the money leaves from) and
the 全銀 総合振込 files that carry a transfer date's refunds to the bank.

``transfer_file_create`` runs under a lock on the biller's ``RefundAccount`` row, so two requests for the
same biller wait for each other: the second finds the refunds already in the first's file. A refund's
``transfer_file`` is written once — the update is filtered on ``transfer_file IS NULL`` and its count
checked — so no refund is ever in two files.
"""

from __future__ import annotations

import datetime
import hashlib
import unicodedata

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.errors import Conflict, ValidationFailed
from billing.kana import to_zengin_kana, zengin_kana_errors
from billing.models import Biller, User
from billing.services.audit import audit_record, snapshot
from payeasy.banks import bank_get, branch_get
from payeasy.codec.errors import CodecError
from payeasy.codec.fields import is_digits
from reconciliation.calendar import is_business_day
from reconciliation.models import Refund, RefundAccount, TransferFile
from reconciliation.models.refunds import AccountType
from reconciliation.zengin import (
    ZenginData,
    ZenginHeader,
    zengin_build,
    zengin_make,
    zengin_parse,
)

__all__ = [
    "REQUESTER_ACCOUNT_TYPES",
    "refund_account_save",
    "transfer_file_create",
]

# the account a 総合振込 is paid from: 普通, 当座 or その他 (a 貯蓄 account cannot send transfers)
REQUESTER_ACCOUNT_TYPES = (AccountType.ORDINARY, AccountType.CURRENT, AccountType.OTHER)
_ACCOUNT_FIELDS = (
    "requester_code",
    "requester_name_kana",
    "bank_code",
    "branch_code",
    "account_type",
    "account_number",
)
NAME_WIDTH = 15  # 銀行名, 支店名 C(15)
REQUESTER_NAME_WIDTH = 40  # 委託者名 C(40)
PAYEE_NAME_WIDTH = 30  # 受取人名 C(30)


def _digits(value: str) -> str:
    """What was typed, as ASCII digits where it was digits (full-width ones included), spaces removed."""
    return unicodedata.normalize("NFKC", value).strip().replace(" ", "")


def _kana_problem(value: str, width: int) -> str:
    """Why ``value`` (already converted) cannot be a C(``width``) field, or ""."""
    if not value:
        return _("Enter the name in kana.")
    bad = zengin_kana_errors(value)
    if bad:
        return _("“%(char)s” has no 全銀 half-width kana form.") % {"char": bad[0][1]}
    if len(value) > width:
        return _("At most %(width)d half-width characters (this is %(length)d).") % {
            "width": width,
            "length": len(value),
        }
    return ""


def refund_account_save(
    *,
    actor: User | None,
    biller: Biller,
    requester_code: str,
    requester_name_kana: str,
    bank_code: str,
    branch_code: str,
    account_type: str,
    account_number: str,
) -> RefundAccount:
    """Create or change the biller's refund account. Checked: a 10-digit 委託者コード; the name converted
    to 全銀 half-width kana (at most 40); a bank and branch in the 全銀 master (zengin-code); 普通, 当座 or
    その他; 1–7 digits of account number (kept zero-padded to 7). ``ValidationFailed`` names every
    wrong field; nothing is written then. Audited (``refund_account.create`` / ``refund_account.update``)."""
    errors: dict[str, list[str]] = {}
    code = _digits(requester_code)
    if not is_digits(code, 10):
        errors["requester_code"] = [_("A requester code (委託者コード) is 10 digits.")]
    name = to_zengin_kana(requester_name_kana)
    problem = _kana_problem(name, REQUESTER_NAME_WIDTH)
    if problem:
        errors["requester_name_kana"] = [problem]
    bank = _digits(bank_code)
    branch = _digits(branch_code)
    if not is_digits(bank, 4) or bank_get(bank) is None:
        errors["bank_code"] = [_("Enter a bank code of the 全銀 bank master (4 digits).")]
    elif not is_digits(branch, 3) or branch_get(bank, branch) is None:
        errors["branch_code"] = [_("Enter a branch code of this bank in the 全銀 bank master (3 digits).")]
    if account_type not in REQUESTER_ACCOUNT_TYPES:
        errors["account_type"] = [_("Transfers are paid from an ordinary, current or other account.")]
    number = _digits(account_number)
    if not is_digits(number) or len(number) > 7:
        errors["account_number"] = [_("An account number is 1 to 7 digits.")]
    if errors:
        raise ValidationFailed(errors)
    values = {
        "requester_code": code,
        "requester_name_kana": name,
        "bank_code": bank,
        "branch_code": branch,
        "account_type": account_type,
        "account_number": number.zfill(7),
    }
    with transaction.atomic():
        account = RefundAccount.objects.for_biller(biller).select_for_update().first()
        if account is None:
            try:
                with transaction.atomic():
                    account = RefundAccount.objects.create(biller=biller, updated_at=timezone.now(), **values)
            except IntegrityError as exc:  # another request created it meanwhile
                raise Conflict(
                    _("The refund account was just saved by someone else: reload and try again.")
                ) from exc
            audit_record(
                actor=actor,
                action="refund_account.create",
                biller=biller,
                target=account,
                summary=f"{account}",
                after=snapshot(account, _ACCOUNT_FIELDS),
            )
            return account
        before = snapshot(account, _ACCOUNT_FIELDS)
        for field, value in values.items():
            setattr(account, field, value)
        after = snapshot(account, _ACCOUNT_FIELDS)
        if after != before:
            account.updated_at = timezone.now()
            account.save(update_fields=[*_ACCOUNT_FIELDS, "updated_at"])
            audit_record(
                actor=actor,
                action="refund_account.update",
                biller=biller,
                target=account,
                summary=f"{account}",
                before=before,
                after=after,
            )
        return account


def _names(bank_code: str, branch_code: str) -> tuple[str, str]:
    """The bank's and branch's 全銀 kana names from zengin-code, cut to C(15); "" when the master does not
    know them (the codes are what the bank routes by; the names are for people)."""
    bank = bank_get(bank_code)
    branch = branch_get(bank_code, branch_code)
    return (
        bank.kana[:NAME_WIDTH].rstrip(" ") if bank else "",
        branch.kana[:NAME_WIDTH].rstrip(" ") if branch else "",
    )


def _header(account: RefundAccount, transfer_date: datetime.date) -> ZenginHeader:
    bank_name, branch_name = _names(account.bank_code, account.branch_code)
    return ZenginHeader(
        requester_code=account.requester_code,
        requester_name=to_zengin_kana(account.requester_name_kana),
        transfer_date=f"{transfer_date:%m%d}",
        bank_code=account.bank_code,
        bank_name=bank_name,
        branch_code=account.branch_code,
        branch_name=branch_name,
        account_type=account.account_type,
        account_number=account.account_number,
    )


def _data(refund: Refund) -> ZenginData:
    bank_name, branch_name = _names(refund.bank_code, refund.branch_code)
    return ZenginData(
        bank_code=refund.bank_code,
        bank_name=bank_name,
        branch_code=refund.branch_code,
        branch_name=branch_name,
        account_type=refund.account_type,
        account_number=refund.account_number,
        payee_name=to_zengin_kana(refund.holder_kana),
        amount=refund.amount,
        customer_code_1=f"{refund.pk:010d}",  # comes back in the bank's result: which refund
        customer_code_2=f"{refund.finding_id:010d}",  # and which finding
    )


def transfer_file_create(*, actor: User | None, biller: Biller, transfer_date: datetime.date) -> TransferFile:
    """Write the 総合振込 file of ``transfer_date``'s refunds that are in no file yet, and put each of them
    in it (serial: the next of the biller and date). Under a lock on the biller's refund account.

    Refused (``Conflict``) without a refund account, without a refund waiting for that date, on a day
    the banks do not settle, or when a refund cannot be written (its record and field named)."""
    with transaction.atomic():
        account = RefundAccount.objects.for_biller(biller).select_for_update().first()
        if account is None:
            raise Conflict(
                _("Set up the refund account (委託者コード and the account refunds are paid from) first."),
                code="no_refund_account",
            )
        if not is_business_day(transfer_date):
            raise Conflict(
                _("%(date)s is not a bank business day: the bank cannot transfer on it.")
                % {"date": transfer_date.isoformat()},
                code="not_business_day",
            )
        refunds = list(
            Refund.objects.for_biller(biller)
            .filter(transfer_date=transfer_date, transfer_file__isnull=True)
            .select_for_update()
            .order_by("id")
        )
        if not refunds:
            raise Conflict(
                _("No refund with transfer date %(date)s is waiting for a transfer file.")
                % {"date": transfer_date.isoformat()},
                code="no_refunds",
            )
        try:
            content = zengin_build(zengin_make(_header(account, transfer_date), [_data(r) for r in refunds]))
            parsed = zengin_parse(content)  # the file as the bank will read it
        except CodecError as exc:
            who = _("the refund account")
            if exc.record is not None and 2 <= exc.record <= len(refunds) + 1:
                who = _("refund %(id)s") % {"id": refunds[exc.record - 2].pk}
            raise Conflict(
                _("The transfer file cannot be written (%(who)s): %(error)s") % {"who": who, "error": exc},
                code="transfer_file_invalid",
            ) from exc
        count, total = len(refunds), sum(r.amount for r in refunds)
        if (parsed.trailer.count, parsed.trailer.total) != (count, total):  # pragma: no cover - codec checks
            raise AssertionError("the transfer file's trailer disagrees with the refunds")
        last = (
            TransferFile.objects.for_biller(biller)
            .filter(transfer_date=transfer_date)
            .aggregate(last=Max("serial"))["last"]
        )
        transfer_file = TransferFile.objects.create(
            biller=biller,
            transfer_date=transfer_date,
            serial=(last or 0) + 1,
            count=count,
            total=total,
            content=content,
            sha256=hashlib.sha256(content).hexdigest(),
            created_by=actor,
        )
        ids = [r.pk for r in refunds]
        written = (
            Refund.objects.for_biller(biller)
            .filter(pk__in=ids, transfer_file__isnull=True)
            .update(transfer_file=transfer_file)
        )
        if written != len(ids):  # a refund went into another file meanwhile: write none of them
            raise Conflict(
                _("Some of these refunds were just put in another transfer file: reload and try again."),
                code="refund_already_filed",
            )
        audit_record(
            actor=actor,
            action="transfer_file.create",
            biller=biller,
            target=transfer_file,
            summary=f"{transfer_file.filename} {count} ¥{total:,}",
            after={
                "transfer_date": transfer_date,
                "serial": transfer_file.serial,
                "count": count,
                "total": total,
                "sha256": transfer_file.sha256,
                "refunds": ids,
            },
        )
        return transfer_file
