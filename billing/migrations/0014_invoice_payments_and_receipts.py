"""Billing stores the payments on its bills as the biller and the customer see them (InvoicePayment)
and their receipts (Receipt), recorded by the payment network's app through billing.services.payments.

Both tables are append-only like the ledger they mirror (PostgreSQL refuses UPDATE and DELETE, SQLite
UPDATE), have the truncate guard, and are tenant tables under row-level security (billing.dbsecurity).
The rows of the payments and receipts made before this migration are copied by payeasy 0011.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from billing import dbsecurity

TABLES = ["billing_invoicepayment", "billing_receipt"]


def forwards(apps, schema_editor):
    dbsecurity.append_only_tables_create(schema_editor=schema_editor, tables=TABLES)
    dbsecurity.apply_row_level_security(schema_editor.connection, apps, app_label="billing")


def backwards(apps, schema_editor):
    dbsecurity.append_only_tables_drop(schema_editor=schema_editor, tables=TABLES)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0013_row_level_security"),
    ]

    operations = [
        migrations.CreateModel(
            name="InvoicePayment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("amount", models.BigIntegerField(verbose_name="amount")),
                ("paid_at", models.DateTimeField(verbose_name="paid at")),
                ("bank_code", models.CharField(max_length=4, verbose_name="bank code")),
                (
                    "channel",
                    models.CharField(
                        choices=[
                            ("teller", "Teller (窓口)"),
                            ("atm", "ATM"),
                            ("internet_banking", "Internet banking (number entry)"),
                            ("mobile", "Mobile banking"),
                            ("info_link", "Information link (情報リンク)"),
                            ("telephone", "Telephone banking"),
                        ],
                        max_length=16,
                        verbose_name="channel",
                    ),
                ),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("paid", "Paid"),
                            ("double_payment", "Double payment (二重支払)"),
                            ("provisional", "Provisional (仮消込)"),
                            ("reversal", "Reversal (取消)"),
                        ],
                        max_length=16,
                        verbose_name="outcome",
                    ),
                ),
                (
                    "reason",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("", "—"),
                            ("amount_differs", "The amount differs from the bill"),
                            ("bill_cancelled", "The bill was cancelled"),
                            ("paid_late", "Paid after the due date"),
                            ("checking", "Being checked by the biller"),
                        ],
                        default="",
                        max_length=16,
                        verbose_name="reason",
                    ),
                ),
                ("payment_key", models.CharField(max_length=40, verbose_name="payment reference")),
                ("entry_ref", models.BigIntegerField()),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "biller",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="billing.biller",
                    ),
                ),
                (
                    "invoice",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="payments",
                        to="billing.invoice",
                    ),
                ),
            ],
            options={
                "ordering": ["id"],
            },
        ),
        migrations.CreateModel(
            name="Receipt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("sent_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "biller",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="billing.biller",
                    ),
                ),
                (
                    "payment",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="receipt",
                        to="billing.invoicepayment",
                    ),
                ),
            ],
            options={
                "ordering": ["id"],
            },
        ),
        migrations.AddConstraint(
            model_name="invoicepayment",
            constraint=models.UniqueConstraint(
                fields=("biller", "entry_ref"), name="invoice_payment_once_per_entry"
            ),
        ),
        migrations.AddConstraint(
            model_name="invoicepayment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("amount__lt", 0), ("outcome", "reversal")),
                    models.Q(models.Q(("outcome", "reversal"), _negated=True), ("amount__gt", 0)),
                    _connector="OR",
                ),
                name="invoice_payment_sign_matches_outcome",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
