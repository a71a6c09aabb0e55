"""``manage.py db_roles``: as the owner (DATABASE_OWNER_URL), create or check the application role of
DATABASE_URL and give it exactly its privileges, put the truncate guards and the tenant policies in
place. Idempotent; ``migrate`` does the same after migrating. ``--check`` only reports."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from billing import dbsecurity


class Command(BaseCommand):
    help = "Create/check the application database role and its grants (PostgreSQL; see docs/operators.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument("--check", action="store_true", help="report what the application role may do")

    def handle(self, *args: Any, database: str, check: bool, **options: Any) -> None:
        connection = connections[database]
        if connection.vendor != "postgresql":
            self.stdout.write("Not PostgreSQL: no roles to set (SQLite has no roles).")
            return
        app_role, app_password = dbsecurity.app_credentials(connection)
        if not app_role:
            raise CommandError(
                "Set DATABASE_OWNER_URL to the owner's URL and DATABASE_URL to the application role's "
                "(a role other than the owner): see docs/operators.md."
            )
        with dbsecurity.as_owner(connection):
            if check:
                report = dbsecurity.privileges_report(connection, app_role)
            else:
                done = dbsecurity.secure(connection, app_role, app_password)
                self.stdout.write(
                    f"Application role {app_role}: SELECT/INSERT/UPDATE/DELETE on ordinary tables; "
                    f"SELECT/INSERT only on {', '.join(done['append_only'])}; no TRUNCATE; "
                    f"row-level security on {len(done['tenant_tables'])} tenant tables."
                )
                report = dbsecurity.privileges_report(connection, app_role)
        for line in report:
            self.stdout.write(line)
