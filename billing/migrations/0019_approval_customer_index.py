"""An index of a customer's approval decisions (biller, customer): the invoice list's fingerprint finds them
by it (billing.page_cache.LIST_SQL) instead of joining every invoice of the customer."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0018_kept_answers"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="invoiceapproval",
            index=models.Index(fields=["biller", "customer", "id"], name="invoice_approval_customer"),
        ),
    ]
