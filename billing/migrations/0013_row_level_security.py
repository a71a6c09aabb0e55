"""The database enforces the tenant and the append-only rule by itself (billing.dbsecurity).

- Row-level security on every billing table of a model with a ``biller`` foreign key, found from the
  models at this point of the history: ENABLE + FORCE, and the ``tenant_isolation`` policy (the row's
  biller is the transaction's ``app.biller_id``, or a named cross-tenant path runs; otherwise no row).
- A BEFORE TRUNCATE trigger on every append-only table (the row triggers of 0002, 0010, 0011 and
  payeasy 0003 do not see TRUNCATE).

PostgreSQL only. Tables created later are covered by ``migrate`` itself (it re-applies the policies of
the current models) and checked by the test suite (tests/billing/test_db_security.py).
"""

from django.db import migrations

from billing import dbsecurity


def forwards(apps, schema_editor):
    dbsecurity.ensure_truncate_guards(schema_editor.connection)
    dbsecurity.apply_row_level_security(schema_editor.connection, apps, app_label="billing")


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    dbsecurity.remove_row_level_security(connection, apps, app_label="billing")
    for table in dbsecurity.append_only_tables(connection):
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS {connection.ops.quote_name(table + '_no_truncate')} "
            f"ON {connection.ops.quote_name(table)}"
        )
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {dbsecurity.TRUNCATE_FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [("billing", "0012_console_login_security")]
    operations = [migrations.RunPython(forwards, backwards)]
