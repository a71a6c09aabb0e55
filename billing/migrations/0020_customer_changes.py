"""The change counters of customers (``CustomerChange``): on PostgreSQL, statement-level triggers of
``billing_invoice`` and ``billing_invoiceapproval`` insert one row for each customer a statement wrote
rows of (transition tables: a 100,000-row import is one insert of one row per customer, not a trigger call
per row). The invoice list's fingerprint reads their sum (billing.page_cache.LIST_SQL), so the index of
decisions by customer it read before (0019) is dropped. Under the tenant policy like every table with a
biller."""

from django.db import migrations, models

from billing import dbsecurity

FUNCTION = "billing_customer_changed"
TRIGGERS = {  # trigger → (table, event, transition tables)
    "billing_invoice_changes_insert": ("billing_invoice", "INSERT", "NEW TABLE AS new_rows"),
    "billing_invoice_changes_update": ("billing_invoice", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    "billing_invoice_changes_delete": ("billing_invoice", "DELETE", "OLD TABLE AS old_rows"),
    "billing_invoiceapproval_changes_insert": ("billing_invoiceapproval", "INSERT", "NEW TABLE AS new_rows"),
    # decisions are append-only (a trigger refuses UPDATE and DELETE): inserts are all there is
}

# The customers a statement wrote rows of: the new rows' (INSERT), the old and the new rows' (UPDATE:
# an invoice moved to another customer changes both lists), the old rows' (DELETE).
FUNCTION_SQL = f"""CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO billing_customerchange (biller_id, customer_id, weight)
    SELECT DISTINCT n.biller_id, n.customer_id, 1 FROM new_rows n WHERE n.customer_id IS NOT NULL;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO billing_customerchange (biller_id, customer_id, weight)
    SELECT t.biller_id, t.customer_id, 1 FROM (
      SELECT n.biller_id, n.customer_id FROM new_rows n
      UNION SELECT o.biller_id, o.customer_id FROM old_rows o) t
    WHERE t.customer_id IS NOT NULL;
  ELSE
    INSERT INTO billing_customerchange (biller_id, customer_id, weight)
    SELECT DISTINCT o.biller_id, o.customer_id, 1 FROM old_rows o WHERE o.customer_id IS NOT NULL;
  END IF;
  RETURN NULL;
END $$"""


def policies_on(apps, schema_editor):
    dbsecurity.apply_row_level_security(schema_editor.connection, apps, app_label="billing")


def triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION_SQL)
    for name, (table, event, transition) in TRIGGERS.items():
        schema_editor.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )


def triggers_off(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (table, _event, _transition) in TRIGGERS.items():
        schema_editor.execute(f"DROP TRIGGER {name} ON {table}")
    schema_editor.execute(f"DROP FUNCTION {FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0019_approval_customer_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="CustomerChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("customer_id", models.BigIntegerField()),
                ("weight", models.BigIntegerField(default=1)),
                ("folded", models.BooleanField(db_default=False, default=False)),
                (
                    "biller",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.DO_NOTHING,
                        related_name="+",
                        to="billing.biller",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["biller", "customer_id", "weight"], name="customer_change_customer"),
                    models.Index(
                        condition=models.Q(("folded", False)),
                        fields=["biller", "customer_id"],
                        name="customer_change_unfolded",
                    ),
                ],
            },
        ),
        migrations.RemoveIndex(
            model_name="invoiceapproval",
            name="invoice_approval_customer",
        ),
        migrations.RunPython(policies_on, migrations.RunPython.noop),
        migrations.RunPython(triggers, triggers_off),
    ]
