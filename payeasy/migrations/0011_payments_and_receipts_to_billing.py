"""Billing keeps what the biller and the customer see of a payment (billing 0014): copy it there.

- Every ledger entry on a bill becomes a ``billing.InvoicePayment`` (the mapping of channels, outcomes
  and 仮消込 reasons is payeasy.services.invoice_payments', frozen here as it was written).
- Every receipt becomes a ``billing.Receipt`` with the same number (id), and PostgreSQL's sequence of
  receipt ids continues after the highest; then payeasy's receipt table goes.

Inserts only: the append-only triggers of both tables refuse changes, not new rows, and ``migrate``
runs as the owner on a cross-tenant path (billing.dbsecurity), so the tenant policies let it write
every biller's rows.
"""

from django.db import migrations

BATCH = 2000
CHANNELS = {
    "01": "teller",
    "02": "atm",
    "03": "internet_banking",
    "04": "mobile",
    "05": "info_link",
    "06": "telephone",
}
REASONS = {"": "", "amount_differs": "amount_differs", "cancelled": "bill_cancelled", "past_due": "paid_late"}
CHECKING = "checking"


def _batches(rows):
    """``rows`` (ordered by id) in lists of BATCH, each read after the last id of the one before."""
    last = 0
    while batch := list(rows.filter(id__gt=last)[:BATCH]):
        yield batch
        last = batch[-1].id


def _payments_copy(apps) -> None:
    LedgerEntry = apps.get_model("payeasy", "LedgerEntry")
    InvoicePayment = apps.get_model("billing", "InvoicePayment")
    entries = LedgerEntry.objects.filter(invoice__isnull=False).select_related("notice").order_by("id")
    for batch in _batches(entries):
        known = set(
            InvoicePayment.objects.filter(entry_ref__in=[e.id for e in batch]).values_list(
                "entry_ref", flat=True
            )
        )
        InvoicePayment.objects.bulk_create(
            [
                InvoicePayment(
                    biller_id=e.biller_id,
                    invoice_id=e.invoice_id,
                    entry_ref=e.id,
                    amount=e.amount,
                    paid_at=e.notice.paid_at,
                    bank_code=e.notice.bank_code,
                    channel=CHANNELS[e.notice.channel],
                    outcome=e.outcome,  # the same four values
                    reason=REASONS.get(e.reason, CHECKING),
                    payment_key=e.notice.transaction_key,
                    created_at=e.created_at,
                )
                for e in batch
                if e.id not in known
            ]
        )


def _receipts_copy(apps, schema_editor) -> None:
    OldReceipt = apps.get_model("payeasy", "Receipt")
    InvoicePayment = apps.get_model("billing", "InvoicePayment")
    Receipt = apps.get_model("billing", "Receipt")
    receipts = OldReceipt.objects.select_related("entry").order_by("id")
    for batch in _batches(receipts):
        payment_of = dict(
            InvoicePayment.objects.filter(entry_ref__in=[r.entry_id for r in batch]).values_list(
                "entry_ref", "id"
            )
        )
        known = set(Receipt.objects.filter(id__in=[r.id for r in batch]).values_list("id", flat=True))
        Receipt.objects.bulk_create(
            [
                Receipt(
                    id=r.id, biller_id=r.entry.biller_id, payment_id=payment_of[r.entry_id], sent_at=r.sent_at
                )
                for r in batch
                if r.id not in known  # copied before (migrated back and forth)
            ]
        )
    connection = schema_editor.connection
    if connection.vendor == "postgresql":  # SQLite's AUTOINCREMENT follows the ids inserted by itself
        table = connection.ops.quote_name(Receipt._meta.db_table)
        with connection.cursor() as cursor:
            sql = f"SELECT setval(pg_get_serial_sequence(%s, 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table}"  # noqa: E501, S608 (a quoted table name)
            cursor.execute(sql, [Receipt._meta.db_table])


def forwards(apps, schema_editor):
    _payments_copy(apps)
    _receipts_copy(apps, schema_editor)


def backwards(apps, schema_editor):
    """The receipts back to payeasy's table (billing 0014, reversed next, drops billing's rows)."""
    OldReceipt = apps.get_model("payeasy", "Receipt")
    Receipt = apps.get_model("billing", "Receipt")
    OldReceipt.objects.bulk_create(
        [
            OldReceipt(id=r.id, entry_id=r.payment.entry_ref, sent_at=r.sent_at)
            for r in Receipt.objects.select_related("payment").order_by("id").iterator()
        ],
        batch_size=BATCH,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("payeasy", "0010_row_level_security"),
        ("billing", "0014_invoice_payments_and_receipts"),
    ]
    operations = [
        migrations.RunPython(forwards, backwards),
        migrations.DeleteModel(name="Receipt"),
    ]
