"""A kept answer's body is the page itself (billing.page_cache.kept_form), compressed by PostgreSQL
(storage EXTENDED, no longer EXTERNAL as for the zlib-compressed bodies of 0018): lz4 where the server
was built with it (PostgreSQL ≥ 14; Debian's and the official images are), which decompresses several
times faster than zlib in the web worker did; otherwise the default (pglz). The answers kept before
are of the previous release and never given again (billing.page_replay's key holds the release); beat
deletes them within two minutes."""

from django.db import migrations

LZ4_AVAILABLE = (
    "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
)


def lz4(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE billing_keptanswer ALTER COLUMN body SET STORAGE EXTENDED")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(LZ4_AVAILABLE)
        row = cursor.fetchone()
    if row and row[0]:
        schema_editor.execute("ALTER TABLE billing_keptanswer ALTER COLUMN body SET COMPRESSION lz4")


def default(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE billing_keptanswer ALTER COLUMN body SET COMPRESSION default")
        schema_editor.execute("ALTER TABLE billing_keptanswer ALTER COLUMN body SET STORAGE EXTERNAL")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0021_customer_row_changes"),
    ]

    operations = [
        migrations.RunPython(lz4, default),
    ]
