from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from billing.models import AuditEntry
from billing.services.audit import audit_record

pytestmark = pytest.mark.django_db


def test_orm_refuses_to_change_or_delete_entries() -> None:
    entry = audit_record(actor=None, action="test.one", summary="first")
    entry.summary = "changed"
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        AuditEntry.objects.filter(pk=entry.pk).update(summary="changed")
    with pytest.raises(TypeError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(pk=entry.pk).summary == "first"


def test_database_refuses_update_even_with_raw_sql() -> None:
    entry = audit_record(actor=None, action="test.raw", summary="first")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_auditentry SET summary = 'forged' WHERE id = %s", [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).summary == "first"


def test_postgres_refuses_delete_with_raw_sql(postgres: None) -> None:
    entry = audit_record(actor=None, action="test.raw", summary="first")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_auditentry WHERE id = %s", [entry.pk])
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_postgres_refuses_an_invoice_of_another_tenants_customer(postgres: None) -> None:
    """Tenant isolation in the database itself: an invoice's customer must be its own biller's."""
    from billing.models import Invoice
    from tests.factories import make_biller, make_customer

    def insert(**fields: Any) -> Invoice:  # straight into the table, past every service check
        return Invoice.objects.create(
            issue_date="2026-11-01", due_date="2026-11-30", description="料金", tax_rounding="floor", **fields
        )

    mine, theirs = make_biller(), make_biller()
    foreign = make_customer(theirs)
    with pytest.raises(DatabaseError, match="not its own biller"), transaction.atomic():
        insert(biller=mine, customer=foreign, number="X-1")
    with pytest.raises(DatabaseError, match="biller that does not exist"), transaction.atomic():
        insert(biller_id=987654, customer=None, kind="payment_request", number="X-2")
    invoice = insert(biller=mine, customer=make_customer(mine), number="X-3")
    with pytest.raises(DatabaseError, match="not its own biller"), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(customer=foreign)


def test_postgres_refuses_to_delete_billers_and_customers(postgres: None) -> None:
    from tests.factories import make_biller, make_customer

    biller = make_biller()
    customer = make_customer(biller)
    for table, pk in (("billing_customer", customer.pk), ("billing_biller", biller.pk)):
        with (
            pytest.raises(DatabaseError, match="never deleted"),
            transaction.atomic(),
            connection.cursor() as c,
        ):
            c.execute(f"DELETE FROM {table} WHERE id = %s", [pk])  # noqa: S608
