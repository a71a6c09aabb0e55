"""``manage.py migrate``, as the owner of the tables: Django's migrate, run on the owner's credentials
(``DATABASE_OWNER_URL``) when they are configured, then what the database enforces afterwards
(billing.dbsecurity.secure: truncate guards, tenant policies, the application role's grants; the kept
pages' functions, billing.page_cache.install and billing.page_replay.install)."""

from __future__ import annotations

from typing import Any

from django.core.management.commands import migrate
from django.db import connections

from billing import dbsecurity, page_cache, page_replay


class Command(migrate.Command):
    help = migrate.Command.help + " As the owner role (DATABASE_OWNER_URL) when configured; then grants."

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        if connection.vendor != "postgresql" or options.get("plan") or options.get("check_unapplied"):
            super().handle(*args, **options)
            return
        app_role, app_password = dbsecurity.app_credentials(connection)
        with dbsecurity.as_owner(connection):
            if not dbsecurity.is_owner_connection(connection):
                # One role for everything: the forced tenant policies apply to it as well (unless it is
                # a superuser), and data migrations cross tenants.
                from billing.tenancy import cross_tenant

                with cross_tenant("migrate"):
                    super().handle(*args, **options)
                    dbsecurity.secure(connection)
                    page_cache.install(connection)
                    page_replay.install(connection)
                return
            super().handle(*args, **options)
            done = dbsecurity.secure(connection, app_role, app_password)
            page_cache.install(connection)
            page_replay.install(connection)
        if options["verbosity"] >= 1 and app_role:
            self.stdout.write(
                f"Granted the application role {app_role}: {len(done.get('append_only', []))} append-only "
                f"tables, {len(done.get('tenant_tables', []))} tenant tables under row-level security."
            )
