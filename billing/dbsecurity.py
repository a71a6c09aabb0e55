"""What the database itself enforces: who may do what (roles and grants), and which tenant's rows a
connection sees (row-level security).

Two PostgreSQL roles. The *owner* owns every table and runs the migrations (``DATABASE_OWNER_URL``);
the *application role* (``DATABASE_URL``) owns nothing: it may SELECT/INSERT/UPDATE/DELETE ordinary
tables, only SELECT/INSERT the append-only ones (the tables whose rows a trigger refuses to change),
never TRUNCATE, never ALTER. ``manage.py migrate`` switches to the owner by itself and then applies the
grants (``apply_grants``); ``manage.py db_roles`` applies them alone. Both are idempotent.

Row-level security: every table of a model with a ``biller`` foreign key to ``billing.Biller`` (found
from the models, ``tenant_models``) has ``ENABLE`` and ``FORCE ROW LEVEL SECURITY`` and one policy,
``tenant_isolation``: a row is visible and writable when its ``biller_id`` is the transaction's
``app.biller_id`` (``billing.tenancy.tenant_scope``), or when the connection runs a named cross-tenant
path (``app.bypass``, ``billing.tenancy.cross_tenant``). Without either, no row: the policy fails closed.

On SQLite (the embedded development default) none of this applies and every function here does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

TENANT_FIELD = "biller"
POLICY = "tenant_isolation"
# The function of the triggers that make a table append-only (billing 0002, 0010, 0011, payeasy 0003):
# the grants follow the triggers, so a later append-only table is covered by the trigger its migration
# creates.
APPEND_ONLY_FUNCTION = "payeasy_refuse_change"
TRUNCATE_FUNCTION = "payeasy_refuse_truncate"
# Append-only models whose rows a worker locks to claim them (SELECT … FOR UPDATE needs an UPDATE
# privilege) say so with this class attribute set to True: the application role gets UPDATE of the id
# column only, which the append-only trigger refuses all the same. Each app marks its own models.
LOCKED_APPEND_ONLY_ATTRIBUTE = "rows_locked_by_workers"
# Tables the application only reads.
READ_ONLY_TABLES = ("django_migrations",)

TENANT_MATCH = "biller_id = NULLIF(current_setting('app.biller_id', true), '')::bigint"
BYPASS = "COALESCE(current_setting('app.bypass', true), '') <> ''"
POLICY_EXPRESSION = f"({TENANT_MATCH} OR {BYPASS})"

TRUNCATE_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {TRUNCATE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: TRUNCATE refused',
                        ERRCODE = 'raise_exception';
END $$"""


# ANALYZE is the owner's (PostgreSQL 15 has no MAINTAIN privilege). After a bulk load the application
# refreshes the planner's statistics through this function, owned by the owner and limited to the tables
# named here: without it a console page right after a 1 M-row import plans for an empty table (a bitmap
# scan and sort of every row instead of an index read) until autovacuum comes by.
ANALYZE_FUNCTION = "payeasy_analyze"
ANALYZABLE_TABLES = ("billing_invoice",)
ANALYZE_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {ANALYZE_FUNCTION}(tbl text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF NOT tbl = ANY(ARRAY[{", ".join(repr(t) for t in ANALYZABLE_TABLES)}]) THEN
    RAISE EXCEPTION USING MESSAGE = 'ANALYZE of ' || tbl || ' is not offered',
                          ERRCODE = 'insufficient_privilege';
  END IF;
  EXECUTE format('ANALYZE %I', tbl);
END $$"""


def analyze(connection: BaseDatabaseWrapper, table: str) -> None:
    """Refresh the planner's statistics of ``table`` (one of ``ANALYZABLE_TABLES``) after a bulk load,
    as whichever role this connection is: the owner directly, the application role through
    ``payeasy_analyze``. Outside a transaction; nothing on SQLite."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {ANALYZE_FUNCTION}(%s)", [table])


def locked_append_only_tables() -> tuple[str, ...]:
    """The tables of the models marked ``rows_locked_by_workers`` (see LOCKED_APPEND_ONLY_ATTRIBUTE)."""
    return tuple(
        sorted(
            model._meta.db_table
            for model in global_apps.get_models()
            if getattr(model, LOCKED_APPEND_ONLY_ATTRIBUTE, False)
        )
    )


def tenant_models(apps: Apps | None = None) -> list[Any]:
    """The models whose rows belong to one biller: concrete, managed models with a ``biller`` foreign
    key to ``billing.Biller``. ``apps`` is a migration's historical registry, or the project's."""
    registry = apps or global_apps
    found = []
    for model in registry.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        try:
            field = meta.get_field(TENANT_FIELD)
        except FieldDoesNotExist:
            continue
        remote = getattr(field, "remote_field", None)
        if remote is None or not getattr(field, "concrete", False):
            continue
        target = remote.model._meta
        if (target.app_label, target.model_name) == ("billing", "biller"):
            found.append(model)
    return sorted(found, key=lambda m: m._meta.db_table)


def tenant_tables(apps: Apps | None = None) -> list[str]:
    return [m._meta.db_table for m in tenant_models(apps)]


def policy_sql(table: str, quote: Any) -> list[str]:
    t = quote(table)
    return [
        f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY} ON {t}",
        f"CREATE POLICY {POLICY} ON {t} USING {POLICY_EXPRESSION} WITH CHECK {POLICY_EXPRESSION}",
    ]


def unpolicy_sql(table: str, quote: Any) -> list[str]:
    t = quote(table)
    return [
        f"DROP POLICY IF EXISTS {POLICY} ON {t}",
        f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY",
    ]


def _each_tenant_table(
    connection: BaseDatabaseWrapper, apps: Apps | None, app_label: str, statements: Any
) -> None:
    if connection.vendor != "postgresql":
        return
    models = [m for m in tenant_models(apps) if not app_label or m._meta.app_label == app_label]
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))  # after migrating back, fewer
        for model in models:
            if model._meta.db_table not in existing:
                continue
            for sql in statements(model._meta.db_table, connection.ops.quote_name):
                cursor.execute(sql)


def apply_row_level_security(
    connection: BaseDatabaseWrapper, apps: Apps | None = None, *, app_label: str = ""
) -> None:
    """Enable, force and (re)create the tenant policy on every tenant table (of ``app_label`` when given)."""
    _each_tenant_table(connection, apps, app_label, policy_sql)


def remove_row_level_security(
    connection: BaseDatabaseWrapper, apps: Apps | None = None, *, app_label: str = ""
) -> None:
    _each_tenant_table(connection, apps, app_label, unpolicy_sql)


def tables_with_trigger_function(connection: BaseDatabaseWrapper, function: str) -> list[str]:
    """The tables of the current schema with a row trigger that executes ``function``."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT DISTINCT c.relname FROM pg_trigger t
               JOIN pg_class c ON c.oid = t.tgrelid
               JOIN pg_proc p ON p.oid = t.tgfoid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE p.proname = %s AND n.nspname = current_schema() AND NOT t.tgisinternal
               ORDER BY 1""",
            [function],
        )
        return [row[0] for row in cursor.fetchall()]


def append_only_tables(connection: BaseDatabaseWrapper) -> list[str]:
    return tables_with_trigger_function(connection, APPEND_ONLY_FUNCTION)


def ensure_truncate_guards(connection: BaseDatabaseWrapper) -> list[str]:
    """A BEFORE TRUNCATE trigger on every append-only table (the row trigger does not see TRUNCATE)."""
    if connection.vendor != "postgresql":
        return []
    tables = append_only_tables(connection)
    with connection.cursor() as cursor:
        cursor.execute(TRUNCATE_FUNCTION_SQL)
        for table in tables:
            cursor.execute(
                f"CREATE OR REPLACE TRIGGER {connection.ops.quote_name(table + '_no_truncate')} "
                f"BEFORE TRUNCATE ON {connection.ops.quote_name(table)} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {TRUNCATE_FUNCTION}()"
            )
    return tables


def append_only_sql(*, table: str, vendor: str) -> list[str]:
    """The statements that make ``table`` append-only: on PostgreSQL a row trigger that refuses UPDATE and
    DELETE (``payeasy_refuse_change()``, billing 0002's function), on SQLite one that refuses UPDATE; none
    elsewhere. The truncate guard is ``ensure_truncate_guards``'."""
    if vendor == "postgresql":
        return [
            f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {APPEND_ONLY_FUNCTION}();"""
        ]
    if vendor == "sqlite":
        return [
            f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;"""
        ]
    return []


def append_only_reverse_sql(*, table: str, vendor: str, quote: Any) -> list[str]:
    """The statements that undo ``append_only_sql`` and the truncate guard of ``table``."""
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {quote(table + '_no_truncate')} ON {quote(table)}",
            f"DROP TRIGGER {table}_append_only ON {table};",
        ]
    if vendor == "sqlite":
        return [f"DROP TRIGGER {table}_no_update;"]
    return []


def append_only_tables_create(*, schema_editor: Any, tables: list[str]) -> None:
    """Make ``tables`` append-only in a migration: the row triggers, then the truncate guards."""
    vendor = schema_editor.connection.vendor
    for table in tables:
        for sql in append_only_sql(table=table, vendor=vendor):
            schema_editor.execute(sql)
    ensure_truncate_guards(schema_editor.connection)


def append_only_tables_drop(*, schema_editor: Any, tables: list[str]) -> None:
    """Undo ``append_only_tables_create`` for ``tables`` (a migration's reverse)."""
    connection = schema_editor.connection
    for table in tables:
        for sql in append_only_reverse_sql(
            table=table, vendor=connection.vendor, quote=connection.ops.quote_name
        ):
            schema_editor.execute(sql)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def apply_grants(
    connection: BaseDatabaseWrapper, app_role: str, app_password: str = ""
) -> dict[str, list[str]]:
    """Create (or check) the application role and give it exactly its privileges, in one transaction.

    Run as the owner. Refuses an application role that is the owner, a superuser, or may bypass
    row-level security: such a role would make every check here meaningless.
    """
    q = connection.ops.quote_name
    role = q(app_role)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database()")
        owner, database = cursor.fetchone()
        if owner == app_role:
            raise ValueError(
                f"the application role {app_role!r} is the owner: give DATABASE_URL another role"
            )
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [app_role])
        row = cursor.fetchone()
        if row is None:
            password = f" PASSWORD {_literal(app_password)}" if app_password else ""
            cursor.execute(
                f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS{password}"
            )
        elif row[0] or row[1]:
            raise ValueError(
                f"the application role {app_role!r} is a superuser or bypasses row-level security"
            )
        elif app_password:
            cursor.execute(f"ALTER ROLE {role} PASSWORD {_literal(app_password)}")
        cursor.execute(f"GRANT CONNECT ON DATABASE {q(database)} TO {role}")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        # Everything the role may have had, then exactly what it needs (one transaction: the running
        # application never sees the gap).
        cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        cursor.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT EXECUTE ON FUNCTION {ANALYZE_FUNCTION}(text) TO {role}")
        append_only = append_only_tables(connection)
        locked = locked_append_only_tables()
        for table in append_only:
            cursor.execute(f"REVOKE UPDATE, DELETE ON {q(table)} FROM {role}")
            if table in locked:
                cursor.execute(f"GRANT UPDATE (id) ON {q(table)} TO {role}")
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
            [list(READ_ONLY_TABLES)],
        )
        read_only = [r[0] for r in cursor.fetchall()]
        for table in read_only:
            cursor.execute(f"REVOKE INSERT, UPDATE, DELETE ON {q(table)} FROM {role}")
        # Tables and sequences that later migrations create (as the owner) are the role's at once.
        cursor.execute(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(owner)} IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        )
        cursor.execute(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(owner)} IN SCHEMA public "
            f"GRANT USAGE, SELECT ON SEQUENCES TO {role}"
        )
    return {"append_only": append_only, "read_only": read_only}


def secure(
    connection: BaseDatabaseWrapper, app_role: str = "", app_password: str = ""
) -> dict[str, list[str]]:
    """Everything after a migration, as the owner: truncate guards, tenant policies of the current models
    (tables added since the last policy migration included), and the grants when there is an application
    role apart from the owner."""
    if connection.vendor != "postgresql":
        return {}
    guarded = ensure_truncate_guards(connection)
    with connection.cursor() as cursor:
        cursor.execute(ANALYZE_FUNCTION_SQL)
        cursor.execute(f"REVOKE ALL ON FUNCTION {ANALYZE_FUNCTION}(text) FROM PUBLIC")
    apply_row_level_security(connection)
    result = {"truncate_guarded": guarded, "tenant_tables": tenant_tables()}
    if app_role:
        result.update(apply_grants(connection, app_role, app_password))
    return result


def privileges_report(connection: BaseDatabaseWrapper, app_role: str) -> list[str]:
    """One line per table: what the application role may do to it, and whether rows are tenant-checked."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname,
                      array_remove(ARRAY[
                        CASE WHEN has_table_privilege(%s, c.oid, 'SELECT') THEN 'SELECT' END,
                        CASE WHEN has_table_privilege(%s, c.oid, 'INSERT') THEN 'INSERT' END,
                        CASE WHEN has_table_privilege(%s, c.oid, 'UPDATE') THEN 'UPDATE' END,
                        CASE WHEN has_table_privilege(%s, c.oid, 'DELETE') THEN 'DELETE' END,
                        CASE WHEN has_table_privilege(%s, c.oid, 'TRUNCATE') THEN 'TRUNCATE' END], NULL),
                      c.relrowsecurity AND c.relforcerowsecurity
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1""",
            [app_role] * 5,
        )
        rows = cursor.fetchall()
    return [
        f"{name}: {', '.join(privs) or '-'}{'  (row-level security)' if rls else ''}"
        for name, privs, rls in rows
    ]


# --- the owner's connection -------------------------------------------------------------------------

CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")


def owner_settings() -> dict[str, Any] | None:
    """The owner's credentials from ``DATABASE_OWNER_URL`` (None: one role does everything)."""
    owner = getattr(settings, "DATABASE_OWNER", None)
    return dict(owner) if owner else None


def app_credentials(connection: BaseDatabaseWrapper) -> tuple[str, str]:
    """The application role and its password: the user of the configured connection, when an owner is
    configured apart ("" when one role does everything). Read from before the switch when switched."""
    owner = owner_settings()
    configured = getattr(connection, "_payeasy_app_credentials", None) or connection.settings_dict
    user = str(configured.get("USER") or "")
    if not owner or not user or owner.get("USER") == user:
        return "", ""
    return user, str(configured.get("PASSWORD") or "")


def app_role_of(connection: BaseDatabaseWrapper) -> str:
    return app_credentials(connection)[0]


def is_owner_connection(connection: BaseDatabaseWrapper) -> bool:
    return bool(getattr(connection, "_payeasy_owner", False))


class OwnerSwitch:
    """Points ``connection`` at the owner's credentials (same database name) until ``leave()``.

    The connection is closed on each switch, so that the next query opens one as the right role. While
    switched, each new connection sets ``app.bypass = 'migrate'``: an owner that is not a superuser is
    subject to the forced tenant policies too, and data migrations cross tenants.
    """

    def __init__(
        self, connection: BaseDatabaseWrapper, reason: str = "migrate", *, replica: bool = False
    ) -> None:
        self.connection = connection
        self.reason = reason
        self.replica = replica  # triggers off (a superuser owner only): the test suite's flush
        self.saved: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        return self.saved is not None

    def _on_connect(self, sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
        if connection.alias == self.connection.alias and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('app.bypass', %s, false)", [self.reason])
                if self.replica:
                    cursor.execute("SET session_replication_role = replica")

    def enter(self) -> bool:
        owner = owner_settings()
        if owner is None or self.active or self.connection.vendor != "postgresql":
            return False
        if is_owner_connection(self.connection):
            return False  # already switched further out
        self.connection.close()
        self.saved = {k: self.connection.settings_dict.get(k) for k in CREDENTIALS}
        self.connection._payeasy_app_credentials = dict(self.saved)  # type: ignore[attr-defined]
        self.connection.settings_dict.update({k: owner.get(k, "") for k in CREDENTIALS})
        self.connection._payeasy_owner = True  # type: ignore[attr-defined]
        connection_created.connect(self._on_connect, weak=False)
        return True

    def leave(self) -> None:
        if self.saved is None:
            return
        connection_created.disconnect(self._on_connect)
        self.connection.close()
        self.connection.settings_dict.update(self.saved)
        self.connection._payeasy_owner = False  # type: ignore[attr-defined]
        self.connection._payeasy_app_credentials = None  # type: ignore[attr-defined]
        self.saved = None


@contextmanager
def as_owner(
    connection: BaseDatabaseWrapper, reason: str = "migrate", *, replica: bool = False
) -> Iterator[bool]:
    """Run the block as the owner when one is configured; yields whether the role was switched."""
    switch = OwnerSwitch(connection, reason, replica=replica)
    switched = switch.enter()
    try:
        yield switched
    finally:
        switch.leave()
