import pytest
from django.db import DatabaseError, connection, transaction

from billing.models import AuditEntry
from billing.services import audit_record

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
