"""Counters for automatic invoice numbers (``InvoiceNumberCounter``: one row per biller and pattern period,
locked while a number is taken), under the tenant policy like every table with a biller."""

import django.db.models.deletion
from django.db import migrations, models

from billing import dbsecurity


def policies_on(apps, schema_editor):
    dbsecurity.apply_row_level_security(schema_editor.connection, apps, app_label="billing")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0016_receipt_numbers"),
    ]

    operations = [
        migrations.CreateModel(
            name="InvoiceNumberCounter",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("scope", models.CharField(max_length=64)),
                ("last", models.PositiveBigIntegerField(default=0)),
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
                    models.UniqueConstraint(
                        fields=("biller", "scope"), name="invoice_number_counter_once_per_scope"
                    )
                ],
            },
        ),
        migrations.RunPython(policies_on, migrations.RunPython.noop),
    ]
