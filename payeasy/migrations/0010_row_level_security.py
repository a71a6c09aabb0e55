"""Row-level security on every payeasy table of a model with a ``biller`` foreign key, and the truncate
guard on its append-only tables (the ledger, the message history): as billing 0013 does for billing."""

from django.db import migrations

from billing import dbsecurity


def forwards(apps, schema_editor):
    dbsecurity.ensure_truncate_guards(schema_editor.connection)
    dbsecurity.apply_row_level_security(schema_editor.connection, apps, app_label="payeasy")


def backwards(apps, schema_editor):
    dbsecurity.remove_row_level_security(schema_editor.connection, apps, app_label="payeasy")


class Migration(migrations.Migration):
    dependencies = [("payeasy", "0009_webhook_secret_encrypted"), ("billing", "0013_row_level_security")]
    operations = [migrations.RunPython(forwards, backwards)]
