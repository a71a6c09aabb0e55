"""Receipt numbers per biller (R-2026-000001): ``Receipt.number``, unique per biller, allocated from
``ReceiptCounter`` (one row per biller and year, locked while a batch is numbered).

The receipts issued before this migration get their numbers here, per biller in the order they were
issued (id), the year being the year of issue in JST; each biller's counter then continues after them.
``billing_receipt`` is append-only (a trigger refuses UPDATE): its trigger is dropped for the update and
made again afterwards (SQLite rebuilds the table for the constraint, which drops triggers too). It runs
after payeasy 0011, which copies the older receipts into billing's table without a number.
"""

import datetime
from zoneinfo import ZoneInfo

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from billing import dbsecurity

TABLES = ["billing_receipt"]
JST = ZoneInfo("Asia/Tokyo")


def append_only_off(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        schema_editor.execute('DROP TRIGGER IF EXISTS "billing_receipt_no_truncate" ON "billing_receipt"')
        schema_editor.execute("DROP TRIGGER IF EXISTS billing_receipt_append_only ON billing_receipt")
    elif connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS billing_receipt_no_update")


def append_only_on(apps, schema_editor):
    append_only_off(apps, schema_editor)  # SQLite may have kept it through the rebuild, or not
    dbsecurity.append_only_tables_create(schema_editor=schema_editor, tables=TABLES)
    dbsecurity.apply_row_level_security(schema_editor.connection, apps, app_label="billing")


def number_existing(apps, schema_editor):
    Receipt = apps.get_model("billing", "Receipt")
    ReceiptCounter = apps.get_model("billing", "ReceiptCounter")
    if schema_editor.connection.vendor == "postgresql":  # the owner crosses tenants (the forced policies)
        schema_editor.execute("SELECT set_config('app.bypass', 'migrate', true)")
    last: dict[tuple[int, int], int] = {}
    for receipt in Receipt.objects.filter(number__isnull=True).order_by("biller_id", "id").iterator():
        sent_at = receipt.sent_at
        if django.utils.timezone.is_naive(sent_at):
            sent_at = sent_at.replace(tzinfo=datetime.UTC)
        key = (receipt.biller_id, sent_at.astimezone(JST).year)
        last[key] = last.get(key, 0) + 1
        number = f"R-{key[1]}-{last[key]:06d}"
        Receipt.objects.filter(pk=receipt.pk).update(number=number)
    ReceiptCounter.objects.bulk_create(
        [
            ReceiptCounter(biller_id=biller_id, year=year, last=n)
            for (biller_id, year), n in sorted(last.items())
        ]
    )


def number_existing_reverse(apps, schema_editor):
    apps.get_model("billing", "ReceiptCounter").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0015_invoice_number_pattern"),
        # the receipts copied from payeasy's table (without a number) are numbered here, after the copy
        ("payeasy", "0011_payments_and_receipts_to_billing"),
    ]

    operations = [
        migrations.RunPython(append_only_off, append_only_on),
        migrations.CreateModel(
            name="ReceiptCounter",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("year", models.PositiveSmallIntegerField()),
                ("last", models.PositiveIntegerField(default=0)),
                (
                    "biller",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="billing.biller",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("biller", "year"), name="receipt_counter_once_per_year")
                ],
            },
        ),
        migrations.AddField(
            model_name="receipt",
            name="number",
            field=models.CharField(max_length=20, null=True, verbose_name="receipt number"),
        ),
        migrations.RunPython(number_existing, number_existing_reverse),
        migrations.AlterField(
            model_name="receipt",
            name="number",
            field=models.CharField(max_length=20, verbose_name="receipt number"),
        ),
        migrations.AlterField(
            model_name="receipt",
            name="sent_at",
            field=models.DateTimeField(default=django.utils.timezone.now, verbose_name="issued at"),
        ),
        migrations.AddConstraint(
            model_name="receipt",
            constraint=models.UniqueConstraint(
                fields=("biller", "number"), name="receipt_number_once_per_biller"
            ),
        ),
        migrations.RunPython(append_only_on, append_only_off),
    ]
