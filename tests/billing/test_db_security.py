"""The database does not trust the application: roles, grants, truncate guards, row-level security.

Run on PostgreSQL with an owner apart from the application role (DATABASE_OWNER_URL, as .ci/run sets
it): the test process is then connected as the application role, and these tests check what that role
can and cannot do, on the real database, with the product's own helpers (billing.tenancy).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from billing import dbsecurity, tenancy
from billing.models import AuditEntry, Customer, Invoice, Membership
from payeasy.models import LedgerEntry, Message
from tests import factories
from tests.conftest import app_credentials, need

APPEND_ONLY = {
    "billing_auditentry",
    "billing_invoiceapproval",
    "billing_balanceallocation",
    "billing_invoicepayment",
    "billing_receipt",
    "payeasy_ledgerentry",
    "payeasy_message",
}


@pytest.fixture
def app_role(postgres: None, db: None) -> str:
    role = dbsecurity.app_role_of(connection)
    need(bool(role), "these tests need an application role apart from the owner (set DATABASE_OWNER_URL)")
    return role


def _dsn(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "host": settings.get("HOST") or "127.0.0.1",
        "port": settings.get("PORT") or 5432,
        "user": settings.get("USER"),
        "password": settings.get("PASSWORD") or None,
        "dbname": connection.settings_dict["NAME"],
    }


@pytest.fixture
def as_app(app_role: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection of the application role of its own, in a transaction that is rolled back."""
    with psycopg.connect(**app_credentials()) as conn:  # type: ignore[arg-type]
        yield conn
        conn.rollback()


@pytest.fixture
def as_owner(app_role: str) -> Iterator[psycopg.Connection[Any]]:
    owner = dbsecurity.owner_settings()
    assert owner is not None
    with psycopg.connect(**_dsn(owner)) as conn:
        yield conn
        conn.rollback()


def _refused(conn: psycopg.Connection[Any], sql: str) -> str:
    conn.execute("SAVEPOINT probe")
    try:
        conn.execute(sql)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        conn.execute("ROLLBACK TO SAVEPOINT probe")
        return str(exc)
    raise AssertionError(f"the database accepted: {sql}")


# --- roles and grants --------------------------------------------------------------------------------


def test_the_application_role_owns_nothing_and_bypasses_nothing(as_app: psycopg.Connection[Any]) -> None:
    row = as_app.execute(
        "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == (False, False, False, False)
    owned = as_app.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = current_user"
    ).fetchone()
    assert owned == (0,)


def test_every_append_only_table_is_known_and_guarded(postgres: None, db: None) -> None:
    found = set(dbsecurity.append_only_tables(connection))
    assert found >= APPEND_ONLY
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_proc p ON p.oid = t.tgfoid WHERE p.proname = %s",
            [dbsecurity.TRUNCATE_FUNCTION],
        )
        guarded = {r[0] for r in cursor.fetchall()}
    assert guarded >= found


@pytest.mark.parametrize("table", sorted(APPEND_ONLY))
def test_the_application_cannot_change_an_append_only_table(
    as_app: psycopg.Connection[Any], table: str
) -> None:
    as_app.execute("SELECT set_config('app.bypass', 'tests', true)")
    as_app.execute(f"SELECT * FROM {table} LIMIT 1")  # noqa: S608 - reading is allowed
    column = as_app.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = %s AND column_name <> 'id' LIMIT 1",
        [table],
    ).fetchone()[0]
    for sql in (
        f"UPDATE {table} SET {column} = {column}",  # noqa: S608
        f"DELETE FROM {table}",  # noqa: S608
        f"TRUNCATE {table}",
        f"TRUNCATE {table} CASCADE",
        f"ALTER TABLE {table} DISABLE TRIGGER ALL",
        f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"DROP TRIGGER {table}_append_only ON {table}",
    ):
        message = _refused(as_app, sql)
        assert "permission denied" in message or "must be owner" in message, (sql, message)
    # rows a worker claims with SELECT … FOR UPDATE: the id column only (the row trigger refuses that)
    claimable = as_app.execute("SELECT has_column_privilege(%s, 'id', 'UPDATE')", [table]).fetchone()[0]
    assert claimable == (table in dbsecurity.locked_append_only_tables())


def test_the_application_truncates_nothing(as_app: psycopg.Connection[Any]) -> None:
    tables = [
        r[0]
        for r in as_app.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    ]
    assert "billing_invoice" in tables and "billing_biller" in tables
    for table in tables:
        assert not as_app.execute("SELECT has_table_privilege(%s, 'TRUNCATE')", [table]).fetchone()[0], table
    assert "permission denied" in _refused(as_app, "TRUNCATE billing_invoice CASCADE")
    assert "permission denied" in _refused(
        as_app, "INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())"
    )
    assert "must be owner" in _refused(as_app, "ALTER TABLE billing_invoice DISABLE TRIGGER ALL")
    assert "permission denied" in _refused(as_app, "CREATE TABLE probe (id int)")


def test_ordinary_tables_are_read_and_written(as_app: psycopg.Connection[Any]) -> None:
    for table in ("billing_invoice", "billing_customeraccount", "payeasy_notice", "payeasy_webhookdelivery"):
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            assert as_app.execute("SELECT has_table_privilege(%s, %s)", [table, privilege]).fetchone()[0], (
                table,
                privilege,
            )
    for table in APPEND_ONLY:
        assert as_app.execute("SELECT has_table_privilege(%s, 'INSERT')", [table]).fetchone()[0]
    for table in APPEND_ONLY:
        assert not as_app.execute("SELECT has_table_privilege(%s, 'UPDATE')", [table]).fetchone()[0]
        assert not as_app.execute("SELECT has_table_privilege(%s, 'DELETE')", [table]).fetchone()[0]


def test_the_owner_cannot_truncate_an_append_only_table_either(as_owner: psycopg.Connection[Any]) -> None:
    for table in sorted(APPEND_ONLY):
        assert "append-only" in _refused(as_owner, f"TRUNCATE {table} CASCADE"), table


def test_tables_a_later_migration_creates_are_granted_by_default(
    as_owner: psycopg.Connection[Any], app_role: str
) -> None:
    as_owner.execute("CREATE TABLE billing_later_probe (id bigserial PRIMARY KEY)")
    row = as_owner.execute(
        "SELECT has_table_privilege(%s, 'billing_later_probe', 'SELECT'),"
        " has_table_privilege(%s, 'billing_later_probe', 'DELETE'),"
        " has_table_privilege(%s, 'billing_later_probe', 'TRUNCATE'),"
        " has_sequence_privilege(%s, 'billing_later_probe_id_seq', 'USAGE')",
        [app_role] * 4,
    ).fetchone()
    assert row == (True, True, False, True)


def test_db_roles_is_idempotent_and_reports(
    postgres: None, transactional_db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    app_role = dbsecurity.app_role_of(connection)
    need(bool(app_role), "this test needs an application role apart from the owner (set DATABASE_OWNER_URL)")
    call_command("db_roles")
    call_command("db_roles")
    call_command("db_roles", "--check")
    out = capsys.readouterr().out
    assert f"Application role {app_role}" in out
    assert "billing_auditentry: SELECT, INSERT  (row-level security)" in out
    assert "billing_invoice: SELECT, INSERT, UPDATE, DELETE  (row-level security)" in out
    assert "django_migrations: SELECT\n" in out
    assert "TRUNCATE" not in out.rsplit("no TRUNCATE", 1)[1]
    # the test process is connected as the application role again afterwards
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == app_role


# --- row-level security --------------------------------------------------------------------------------


def test_every_tenant_table_has_its_policy(postgres: None, db: None) -> None:
    models = dbsecurity.tenant_models()
    names = {m._meta.label for m in models}
    assert {
        "billing.Customer",
        "billing.Invoice",
        "billing.AuditEntry",
        "billing.InvoicePayment",
        "billing.Receipt",
        "payeasy.LedgerEntry",
        "payeasy.Message",
    } <= names
    assert "billing.Biller" not in names and "billing.User" not in names
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s) "
            "FROM pg_class c WHERE c.relname = ANY(%s)",
            [dbsecurity.POLICY, [m._meta.db_table for m in models]],
        )
        state = {r[0]: r[1:] for r in cursor.fetchall()}
    missing = [m._meta.db_table for m in models if state.get(m._meta.db_table) != (True, True, True)]
    assert not missing, f"tenant tables without their row-level security policy: {missing}"


@pytest.fixture
def two_tenants(app_role: str) -> tuple[Any, Any, Customer, Customer]:
    a, b = factories.make_biller(), factories.make_biller()
    return a, b, factories.make_customer(a), factories.make_customer(b)


def _insert_refused(block: Any) -> str:
    try:
        with transaction.atomic():
            block()
    except DatabaseError as exc:
        return str(exc)
    raise AssertionError("the database took a row of another tenant")


def test_without_a_tenant_nothing_is_visible_and_nothing_is_written(two_tenants: Any) -> None:
    a, _b, _ca, _cb = two_tenants
    with tenancy.tenant_scope(None):
        assert Customer.objects.count() == 0
        assert Invoice.objects.count() == 0
        assert AuditEntry.objects.count() == 0
        assert "row-level security" in _insert_refused(lambda: factories.make_customer(a))
        # setting a tenant without the product's scope is no bypass either: a stray value matches nothing
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('app.biller_id', '', true)")
        assert Customer.objects.count() == 0


def test_a_tenant_sees_and_writes_only_its_own_rows(two_tenants: Any) -> None:
    a, b, ca, cb = two_tenants
    with tenancy.tenant_scope(a):
        assert list(Customer.objects.values_list("pk", flat=True)) == [ca.pk]
        assert Customer.objects.filter(pk=cb.pk).update(name="x") == 0
        assert Customer.objects.filter(pk=cb.pk).count() == 0
        factories.make_customer(a)
        assert "row-level security" in _insert_refused(lambda: factories.make_customer(b))
        # moving its own row to another tenant (WITH CHECK)
        assert "row-level security" in _insert_refused(
            lambda: Customer.objects.filter(pk=ca.pk).update(biller=b)
        )
    cb.refresh_from_db()
    assert cb.name != "x"


def test_each_named_bypass_crosses_tenants_and_nothing_else_does(two_tenants: Any) -> None:
    a, b, ca, cb = two_tenants
    for reason in sorted(tenancy.BYPASS_REASONS):
        with tenancy.tenant_scope(a), tenancy.cross_tenant(reason):
            assert set(Customer.objects.filter(pk__in=[ca.pk, cb.pk]).values_list("pk", flat=True)) == {
                ca.pk,
                cb.pk,
            }
            factories.make_customer(b)
        with tenancy.tenant_scope(a):  # the bypass ended with its block
            assert Customer.objects.filter(pk=cb.pk).count() == 0
    with pytest.raises(tenancy.CrossTenantRefused), tenancy.cross_tenant("because"):
        pass


def test_a_bypass_outside_a_transaction_ends_with_its_block(postgres: None, transactional_db: None) -> None:
    need(bool(dbsecurity.app_role_of(connection)), "this test needs an application role (DATABASE_OWNER_URL)")
    a, b = factories.make_biller(), factories.make_biller()
    factories.make_customer(a), factories.make_customer(b)
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.bypass', '', false)")  # not the suite's own bypass
    try:
        assert Customer.objects.count() == 0
        with tenancy.cross_tenant("worker"):
            assert Customer.objects.count() == 2
        assert Customer.objects.count() == 0
        with tenancy.tenant_scope(a):
            assert Customer.objects.count() == 1
        assert Customer.objects.count() == 0  # the tenant ended with its transaction
    finally:
        connection.close()  # the next connection has the suite's bypass again


def test_a_request_runs_in_its_tenants_scope(two_tenants: Any, client: Any) -> None:
    """The console of tenant A, asked for tenant B's customer: the view's query sees no such row, even
    though the test process itself (the suite's bypass) sees every tenant."""
    a, _b, ca, cb = two_tenants
    user = factories.make_member(a)
    client.force_login(user)
    seen: list[tuple[str, str]] = []

    def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "billing_customer" in sql and not seen:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('app.biller_id', true), current_setting('app.bypass', true)"
                )
                seen.append(cursor.fetchone())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        response = client.get(f"/b/{a.slug}/console/customers/{cb.pk}/edit/")
    assert response.status_code == 404
    assert seen and seen[0] == (str(a.pk), "")
    assert Customer.objects.filter(pk__in=[ca.pk, cb.pk]).count() == 2  # the suite's bypass is back


def test_append_only_rows_of_another_tenant_are_invisible_too(two_tenants: Any) -> None:
    a, b, _ca, _cb = two_tenants
    AuditEntry.objects.create(actor_label="t", action="probe", biller=b)
    with tenancy.tenant_scope(a):
        assert not AuditEntry.objects.filter(action="probe").exists()
        assert LedgerEntry.objects.count() == 0 and Message.objects.filter(biller=b).count() == 0
    with tenancy.tenant_scope(b):
        assert AuditEntry.objects.filter(action="probe").count() == 1


def _settings_seen(client: Any, url: str, table: str) -> set[tuple[str, str]]:
    """Every (tenant, bypass) pair the connection had when ``url``'s queries read ``table``."""
    seen: list[tuple[str, str]] = []

    def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if table in sql and "current_setting('app.bypass'" not in sql:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT COALESCE(current_setting('app.biller_id', true), ''), "
                    "COALESCE(current_setting('app.bypass', true), '')"
                )
                seen.append(cursor.fetchone())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    assert seen, f"{url} read no {table}"
    return set(seen)


def test_pages_outside_a_tenant_cross_by_the_name_of_their_part(
    app_role: str, client: Any, staff_user: Any
) -> None:
    biller = factories.make_biller()
    member = factories.make_member(biller)
    other = factories.make_biller()
    Membership.objects.create(biller=other, user=member, role="operator")
    client.force_login(member)
    assert _settings_seen(client, "/", "billing_membership") == {("", "accounts")}  # the user's billers
    client.force_login(staff_user)
    # the page's own reads as "staff"; its alerts panel reads the figures /readyz and /metrics read, as
    # "health" (payeasy.alerts.rule_scope); never a tenant, never another part's name
    seen = _settings_seen(client, "/staff/operations/", "payeasy_")
    assert ("", "staff") in seen
    assert seen <= {("", "staff"), ("", "health")}
    # the suite's own bypass is back once the request is over
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.bypass', true)")
        assert cursor.fetchone()[0] == "tests"


# --- statistics after a bulk load ----------------------------------------------------------------------


def _reltuples(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def test_a_large_import_refreshes_the_planners_statistics_as_the_application_role(
    app_role: str, biller: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The application role owns no table, so it cannot ANALYZE; a big import would leave the planner
    believing the invoice table empty (a console page then sorts every row) until autovacuum came by.
    The import refreshes the statistics through the owner's ``payeasy_analyze``, and only for its table."""
    from billing import imports
    from tests.billing.test_imports import HEADER, run

    factories.make_customer(biller, code="D-1")
    monkeypatch.setattr(imports.limits, "ANALYZE_AFTER_INVOICES", 3)
    rows = "".join(
        f"2026-12-{n:04d},,D-1,2026-12-01,2026-12-31,12月分,基本料金,1,{1000 + n},10,\n" for n in range(1, 5)
    )
    assert _reltuples("billing_invoice") < 1  # never analysed (-1) or empty
    job = run(biller, HEADER + rows)
    assert job.status == job.Status.SUCCEEDED, job.errors
    assert _reltuples("billing_invoice") >= 4

    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT probe")
        with pytest.raises(DatabaseError, match="not offered"):
            cursor.execute("SELECT payeasy_analyze('billing_auditentry')")
        cursor.execute("ROLLBACK TO SAVEPOINT probe")
        cursor.execute(
            "SELECT has_function_privilege('public', 'payeasy_analyze(text)', 'EXECUTE'), "
            "has_function_privilege(%s, 'payeasy_analyze(text)', 'EXECUTE')",
            [app_role],
        )
        assert cursor.fetchone() == (False, True)
