"""The ledger and the message history refuse changes in the database itself (as the audit trail does:
billing 0002). PostgreSQL refuses UPDATE and DELETE; SQLite, the embedded default, refuses UPDATE."""

from django.db import migrations

TABLES = ["payeasy_ledgerentry", "payeasy_message"]

SQLITE = [
    f"""CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t}
        BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END;"""
    for t in TABLES
]
SQLITE_REVERSE = [f"DROP TRIGGER {t}_no_update;" for t in TABLES]
POSTGRES = [
    f"""CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t}
        FOR EACH ROW EXECUTE FUNCTION payeasy_refuse_change();"""
    for t in TABLES
]
POSTGRES_REVERSE = [f"DROP TRIGGER {t}_append_only ON {t};" for t in TABLES]


def forwards(apps, schema_editor):
    for sql in {"sqlite": SQLITE, "postgresql": POSTGRES}.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def backwards(apps, schema_editor):
    for sql in {"sqlite": SQLITE_REVERSE, "postgresql": POSTGRES_REVERSE}.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("payeasy", "0002_line"), ("billing", "0002_audit_append_only")]
    operations = [migrations.RunPython(forwards, backwards)]
