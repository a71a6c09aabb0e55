"""The biller's counter of customer rows (``CustomerChange.CUSTOMER_ROWS``): on PostgreSQL a
statement-level trigger of ``billing_customer`` inserts one change row, ``customer_id`` 0, for each biller
a statement updated customers of (the old rows' and the new rows' billers). The console's invoice list
reads its sum (billing.page_cache.CONSOLE_LIST_SQL) instead of the versions of its fifty customers.

Updates only: a new customer is shown on no invoice yet (the invoice that names it is a write of
``billing_invoice``, whose version the list reads), and customers refuse DELETE (0007; the application role may not TRUNCATE)."""

from django.db import migrations

FUNCTION = "billing_customer_rows_changed"
TRIGGER = "billing_customer_changes_update"
CUSTOMER_ROWS = 0  # billing.models.CustomerChange.CUSTOMER_ROWS, as of this migration

FUNCTION_SQL = f"""CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO billing_customerchange (biller_id, customer_id, weight)
  SELECT t.biller_id, {CUSTOMER_ROWS}, 1 FROM (
    SELECT n.biller_id FROM new_rows n UNION SELECT o.biller_id FROM old_rows o) t;
  RETURN NULL;
END $$"""


def trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION_SQL)
    schema_editor.execute(
        f"CREATE TRIGGER {TRIGGER} AFTER UPDATE ON billing_customer "
        f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
    )


def trigger_off(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER {TRIGGER} ON billing_customer")
    schema_editor.execute(f"DROP FUNCTION {FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0020_customer_changes"),
    ]

    operations = [
        migrations.RunPython(trigger, trigger_off),
    ]
