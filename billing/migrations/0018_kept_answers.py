"""Kept answers of pages (``KeptAnswer``, billing.page_replay): under the tenant policy like every table
with a biller; on PostgreSQL an UNLOGGED table (a cache: no write-ahead log, emptied after a crash) whose
body, already compressed, is stored out of line without a second compression."""

import django.db.models.deletion
from django.db import migrations, models

from billing import dbsecurity


def policies_on(apps, schema_editor):
    dbsecurity.apply_row_level_security(schema_editor.connection, apps, app_label="billing")


def unlogged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE billing_keptanswer SET UNLOGGED")
        schema_editor.execute("ALTER TABLE billing_keptanswer ALTER COLUMN body SET STORAGE EXTERNAL")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0017_invoice_number_counters"),
    ]

    operations = [
        migrations.CreateModel(
            name="KeptAnswer",
            fields=[
                ("key", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("page", models.CharField(max_length=40)),
                ("user_pk", models.BigIntegerField()),
                ("invoice_pk", models.BigIntegerField(null=True)),
                ("session_key", models.CharField(max_length=40)),
                ("session_data", models.TextField()),
                ("fingerprint", models.TextField()),
                ("day", models.DateField()),
                ("headers", models.TextField()),
                ("body", models.BinaryField()),
                ("kept_until", models.DateTimeField(db_index=True)),
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
        ),
        migrations.RunPython(policies_on, migrations.RunPython.noop),
        migrations.RunPython(unlogged, migrations.RunPython.noop),
    ]
