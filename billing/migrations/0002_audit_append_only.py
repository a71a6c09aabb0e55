"""The audit trail refuses changes in the database itself.

PostgreSQL refuses UPDATE and DELETE of a row. SQLite (the embedded
development default) refuses UPDATE; DELETE stays possible there because
Django's test flush empties tables with DELETE on SQLite (on PostgreSQL it
uses TRUNCATE, which is the operator's tool, not the application's).
"""

from django.db import migrations

TABLE = "billing_auditentry"

SQLITE = [
    f"""CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;""",
    ]
SQLITE_REVERSE = [f"DROP TRIGGER {TABLE}_no_update;"]

POSTGRES = [
    """CREATE FUNCTION payeasy_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only', ERRCODE = 'raise_exception';
       END $$;""",
    f"""CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION payeasy_refuse_change();""",
]
POSTGRES_REVERSE = [
    f"DROP TRIGGER {TABLE}_append_only ON {TABLE};",
    "DROP FUNCTION payeasy_refuse_change();",
]


def forwards(apps, schema_editor):
    statements = {"sqlite": SQLITE, "postgresql": POSTGRES}.get(schema_editor.connection.vendor, [])
    for sql in statements:
        schema_editor.execute(sql)


def backwards(apps, schema_editor):
    statements = {"sqlite": SQLITE_REVERSE, "postgresql": POSTGRES_REVERSE}.get(schema_editor.connection.vendor, [])
    for sql in statements:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
