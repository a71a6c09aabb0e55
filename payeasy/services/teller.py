"""Teller batch files (一括消込データ, spec §6): from a file to notices, whole or not at all.

A file is parsed and checked whole by the codec (record lengths, order, fields, trailer, name). Then,
in one transaction, its payments and reversals become notices — the same rows a 1200 or 1300 on the
line becomes — and workers apply them to the ledger. Every attempt is recorded as a
:class:`~payeasy.models.TellerFile`: accepted with its figures, or rejected with the record, field and
byte offset of the first problem, so an operator can answer the bank.

- Importing an accepted file again changes nothing (same name, same SHA-256).
- A different file under an accepted name is refused as a conflict; nothing of it is stored.
- A record whose transaction key is already stored (a bank that resent the file under a new serial)
  is the same notice: counted as "already stored", not stored twice.
- A reversal (取消区分 1) undoes the latest earlier teller payment of the same biller with the same
  お客様番号, 確認番号 and amount that no other reversal undid; if there is none, the file is refused
  (import the file with the payment first).
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePath

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from billing import events
from billing.models import Biller, User
from payeasy import codec
from payeasy.models import Channel, Notice, TellerFile

log = logging.getLogger("payeasy.teller")


@dataclass(frozen=True)
class TellerImport:
    """What one import did: the recorded file, and whether this call stored it (False: a repeat)."""

    file: TellerFile
    stored: bool

    @property
    def accepted(self) -> bool:
        return self.file.status == TellerFile.Status.ACCEPTED

    def report(self) -> str:
        """One line for a log, a terminal or a ``.error.txt`` next to a rejected file."""
        f = self.file
        if not self.accepted:
            where = []
            if f.error_record is not None:
                where.append(_("record %(n)s") % {"n": f.error_record})
            if f.error_field:
                where.append(_("field %(field)s") % {"field": f.error_field})
            if f.error_offset is not None:
                where.append(_("byte offset %(offset)s") % {"offset": f.error_offset})
            return _("rejected %(name)s: %(where)s: %(error)s") % {
                "name": f.name,
                "where": ", ".join(where),
                "error": f.error,
            }
        if not self.stored:
            return _("unchanged %(name)s: this file was imported before") % {"name": f.name}
        return _(
            "accepted %(name)s: %(payments)s payments ¥%(payment_total)s, %(reversals)s reversals "
            "¥%(reversal_total)s, %(known)s records already stored"
        ) % {
            "name": f.name,
            "payments": f.payment_count,
            "payment_total": f"{f.payment_total:,}",
            "reversals": f.reversal_count,
            "reversal_total": f"{f.reversal_total:,}",
            "known": f.known_count,
        }


class _Refused(Exception):
    def __init__(self, record: int | None, field: str, offset: int | None, message: str) -> None:
        super().__init__(message)
        self.record, self.field, self.offset, self.message = record, field, offset, message


def _jst(date: str, time: str = "000000") -> datetime.datetime:
    return datetime.datetime(
        int(date[:4]), int(date[4:6]), int(date[6:8]), int(time[:2]), int(time[2:4]), int(time[4:6]),
        tzinfo=codec.JST,
    )  # fmt: skip


def teller_file_import(
    name: str, data: bytes, *, via: str = TellerFile.Via.COMMAND, user: User | None = None
) -> TellerImport:
    """Import one teller batch file. Never raises for bad content: the result says what was wrong."""
    name = PurePath(name).name
    digest = hashlib.sha256(data).hexdigest()
    # the name as stored: PostgreSQL text cannot hold NUL (a name with one is refused by the codec anyway)
    stored_name = name.replace("\x00", "\ufffd")[:100]
    common = {"name": stored_name, "sha256": digest, "size": len(data), "via": via, "received_by": user}
    for _attempt in range(2):  # a second import of the same new file racing this one: look again
        try:
            return _import(name, bytes(data), digest, common)
        except _Refused as refused:
            row = TellerFile.objects.create(
                **common,
                status=TellerFile.Status.REJECTED,
                content=bytes(data),
                error_record=refused.record,
                error_field=refused.field[:60],
                error_offset=refused.offset,
                error=refused.message[:500],
            )
            _audit(row)
            # the reason stays on the stored row (the staff page): it may quote お客様番号 and 確認番号
            log.warning(
                "teller file %s rejected (row %s): record %s, %s at byte offset %s",
                name,
                row.pk,
                refused.record,
                refused.field,
                refused.offset,
            )
            return TellerImport(row, stored=True)
        except IntegrityError:
            continue
    raise RuntimeError(f"teller file {name}: the import kept racing another one")


def _import(name: str, data: bytes, digest: str, common: dict[str, object]) -> TellerImport:
    try:
        batch = codec.parse_batch_file(name, data)
    except codec.CodecError as exc:
        raise _Refused(exc.record, exc.field, exc.offset, exc.message) from None
    header = batch.header
    biller = Biller.objects.filter(biller_code=header.biller_code).first()
    if biller is None:
        raise _Refused(
            1, "収納機関コード", 4, _("no biller has the biller code %(code)s") % {"code": header.biller_code}
        )
    with transaction.atomic():
        earlier = TellerFile.objects.select_for_update().filter(name=name, status=TellerFile.Status.ACCEPTED)
        before = earlier.first()
        if before is not None:
            if before.sha256 == digest:
                return TellerImport(before, stored=False)
            raise _Refused(
                None,
                _("file name"),
                0,
                _("a different file named %(name)s was imported on %(when)s: conflict, nothing imported")
                % {"name": name, "when": before.received_at.astimezone(codec.JST).strftime("%Y-%m-%d %H:%M")},
            )
        keyed = batch.keyed_records()
        known = set(
            Notice.objects.filter(transaction_key__in=[k for k, _r in keyed]).values_list(
                "transaction_key", flat=True
            )
        )
        row = TellerFile.objects.create(
            **common,
            status=TellerFile.Status.ACCEPTED,
            content=data,
            biller=biller,
            bank_code=header.bank_code,
            handling_date=_jst(header.handling_date).date(),
            known_count=sum(1 for k, _r in keyed if k in known),
        )
        notices = _notices(batch, biller, row, known)
        Notice.objects.bulk_create(notices)
        payments = [n for n in notices if n.kind == Notice.Kind.PAYMENT]
        reversals = [n for n in notices if n.kind == Notice.Kind.REVERSAL]
        row.payment_count, row.payment_total = len(payments), sum(n.amount for n in payments)
        row.reversal_count, row.reversal_total = len(reversals), sum(n.amount for n in reversals)
        row.save(update_fields=["payment_count", "payment_total", "reversal_count", "reversal_total"])
        _audit(row)
        if notices:  # wake the workers; a broker that is down is logged, and the sweeper applies them
            events.after_commit("payeasy.tasks.notices_apply")
    log.info("teller file %s accepted: %d notices, %d already stored", name, len(notices), row.known_count)
    return TellerImport(row, stored=True)


def _notices(batch: codec.BatchFile, biller: Biller, row: TellerFile, known: set[str]) -> list[Notice]:
    header = batch.header
    key_date = _jst(header.handling_date).date()
    earlier_payments = _teller_payments(batch, biller)
    candidate_keys = [k for rows in earlier_payments.values() for _paid_at, k in rows]
    reversed_keys = set(  # by a teller file or a 1300 on the line
        Notice.objects.filter(kind=Notice.Kind.REVERSAL, original_key__in=candidate_keys).values_list(
            "original_key", flat=True
        )
    )
    notices: list[Notice] = []
    for number, (key, record) in enumerate(batch.keyed_records(), start=2):
        if key in known:
            continue
        notice = Notice(
            transaction_key=key,
            kind=Notice.Kind.REVERSAL if record.is_reversal else Notice.Kind.PAYMENT,
            source=Notice.Source.TELLER_FILE,
            teller_file=row,
            biller=biller,
            key_date=key_date,
            customer_number=record.customer_number,
            confirmation_number=record.confirmation_number,
            amount=record.amount,
            bank_code=header.bank_code,
            branch_code=record.branch_code,
            channel=Channel.TELLER,
            paid_at=_jst(record.paid_date, record.paid_time),
            payer_name_kana=record.payer_name_kana,
        )
        numbers = (record.customer_number, record.confirmation_number, record.amount)
        if record.is_reversal:
            candidates = [
                (paid_at, k) for paid_at, k in earlier_payments.get(numbers, []) if k not in reversed_keys
            ]
            if not candidates:
                raise _Refused(
                    number,
                    "取消区分",
                    codec.batch_data_offset(batch, number, "cancel"),
                    _(
                        "a reversal of お客様番号 %(customer)s, 確認番号 %(confirmation)s, ¥%(amount)s, "
                        "but no earlier teller payment with these numbers and amount is left to reverse; "
                        "import the file with the payment first"
                    )
                    % {
                        "customer": record.customer_number,
                        "confirmation": record.confirmation_number,
                        "amount": f"{record.amount:,}",
                    },
                )
            _paid_at, original = max(candidates)
            notice.original_key = original
            reversed_keys.add(original)
        else:
            earlier_payments.setdefault(numbers, []).append((notice.paid_at, key))
            # no online day to check the 取扱日 against; a 収納日時 in the future or long before it is
            # suspect as on the line (provisional when applied)
            notice.suspect = Notice.suspect_of(
                key_date=key_date, paid_at=notice.paid_at, received_at=notice.received_at
            )
        notices.append(notice)
    return notices


def _teller_payments(
    batch: codec.BatchFile, biller: Biller
) -> dict[tuple[str, str, int], list[tuple[datetime.datetime, str]]]:
    """The stored teller payments the file's reversals could undo, by (お客様番号, 確認番号, amount)."""
    wanted = {(r.customer_number, r.confirmation_number, r.amount) for r in batch.reversals}
    found: dict[tuple[str, str, int], list[tuple[datetime.datetime, str]]] = {}
    if not wanted:
        return found
    rows = Notice.objects.filter(
        biller=biller,
        kind=Notice.Kind.PAYMENT,
        channel=Channel.TELLER,
        customer_number__in={w[0] for w in wanted},
    ).values_list("customer_number", "confirmation_number", "amount", "paid_at", "transaction_key")
    for customer, confirmation, amount, paid_at, key in rows:
        if (customer, confirmation, amount) in wanted:
            found.setdefault((customer, confirmation, amount), []).append((paid_at, key))
    return found


def _audit(row: TellerFile) -> None:
    from billing.services.audit import audit_record

    audit_record(
        actor=row.received_by,
        action=f"teller_file.{row.status}",
        biller=row.biller,
        target=row,
        summary=f"{row.name} ({row.get_via_display()})",
        after={
            "sha256": row.sha256,
            "payments": row.payment_count,
            "payment_total": row.payment_total,
            "reversals": row.reversal_count,
            "reversal_total": row.reversal_total,
            "error": row.error,
        },
    )


@dataclass(frozen=True)
class DropResult:
    path: Path
    result: TellerImport


def teller_drop_scan(directory: Path, *, settle_seconds: float = 5.0) -> list[DropResult]:
    """Import every file in ``directory/incoming`` and move it to ``accepted/`` (or ``unchanged`` files
    too) or ``rejected/`` with a ``.error.txt`` report beside it. Files younger than ``settle_seconds``
    (still being written), hidden files and ``*.part``/``*.tmp`` are left for the next scan."""
    import time

    incoming = directory / "incoming"
    if not incoming.is_dir():
        return []
    now = time.time()
    done: list[DropResult] = []
    for path in sorted(incoming.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix in {".part", ".tmp"}:
            continue
        if now - path.stat().st_mtime < settle_seconds:
            continue
        result = teller_file_import(path.name, path.read_bytes(), via=TellerFile.Via.DROP_FOLDER)
        target = directory / ("accepted" if result.accepted else "rejected")
        target.mkdir(exist_ok=True)
        destination = target / path.name
        if destination.exists():
            destination = target / f"{path.name}.{result.file.pk}"
        if not result.accepted:
            destination.with_name(destination.name + ".error.txt").write_text(
                result.report() + "\n", encoding="utf-8"
            )
        os.replace(path, destination)
        done.append(DropResult(destination, result))
    return done


__all__ = ["DropResult", "TellerImport", "teller_drop_scan", "teller_file_import"]
