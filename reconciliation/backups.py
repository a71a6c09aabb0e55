"""Logical backups of the PostgreSQL database, and the proof that a restored copy holds every payment.

A backup is a directory of three files: ``payeasy.dump`` (``pg_dump -Fc``), ``roles.sql`` (the cluster's
roles, ``pg_dumpall --roles-only``, when the backing-up role may read them) and ``manifest.json``. The
manifest's figures (payments and reversals per biller, the last acknowledged payment frame, bills paid,
open findings) are computed in the very snapshot that ``pg_dump`` dumps: one REPEATABLE READ transaction
exports its snapshot (``pg_export_snapshot()``), ``pg_dump --snapshot`` reads the same one, and the
figures are read in that transaction while it stays open. So "the manifest says N payments" means the dump
holds exactly those N, however many payments arrived while it ran.

A restore creates a new database, ``pg_restore``s the dump into it (one transaction, stop at the first
error), gives the application role its CONNECT on the new database, and compares the same figures read
there with the manifest. Any difference fails: a restore that lost one acknowledged payment is not a
restore.

Roles are cluster objects, not in ``pg_dump``'s output (the dump holds the GRANTs to them). On the same
cluster they already exist. On a new cluster, apply ``roles.sql`` first (``psql -f``), or run
``manage.py db_roles`` on the restored database, which creates the application role and its grants the
way ``migrate`` does (billing.dbsecurity.apply_grants).

The backing-up role must see every tenant's rows: a superuser, or a role with BYPASSRLS (``pg_dump``
refuses a table whose rows row-level security would hide). The figures set the named cross-tenant path
``command`` too, so they do not depend on it.

Everything here speaks to PostgreSQL through libpq (psycopg and the client programs), not through the
Django connection: the snapshot has to be held open across a child process, and the restored database is
not the configured one.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg import sql

from billing.models import Biller, Invoice
from payeasy.line import PAYMENT_TYPES
from payeasy.models import Message, Notice
from reconciliation.models import Finding, Run

DUMP_NAME = "payeasy.dump"
ROLES_NAME = "roles.sql"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
ACKNOWLEDGED = "0000"
# The named cross-tenant path (billing.scoping.BYPASS_REASONS) the figures read under.
BYPASS = "command"


class BackupError(RuntimeError):
    """A backup or restore step failed; the message says which and why."""


@dataclass(frozen=True)
class Server:
    """Where and as whom: libpq keywords of the owner (or one role that does everything)."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    def connect(self, dbname: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=dbname or self.dbname,
            **kwargs,
        )

    def env(self) -> dict[str, str]:
        """The environment of a client program (pg_dump, pg_restore, psql): libpq's variables, so that
        no password is on a command line."""
        env = dict(os.environ)
        env.update(PGHOST=self.host, PGPORT=str(self.port), PGUSER=self.user)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


def configured_server(alias: str = DEFAULT_DB_ALIAS) -> Server:
    """The configured database, as its owner (``DATABASE_OWNER_URL``) when one is configured apart: the
    application role cannot read other tenants' rows nor, without BYPASSRLS, be dumped."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        raise BackupError("backups are of PostgreSQL; this database is " + connection.vendor)
    settings_dict = connection.settings_dict
    owner = getattr(settings, "DATABASE_OWNER", None) or settings_dict
    return Server(
        host=str(owner.get("HOST") or "127.0.0.1"),
        port=int(owner.get("PORT") or 5432),
        user=str(owner.get("USER") or "postgres"),
        password=str(owner.get("PASSWORD") or ""),
        dbname=str(settings_dict["NAME"]),
    )


def application_role(alias: str = DEFAULT_DB_ALIAS) -> str:
    """The role of ``DATABASE_URL`` when it is not the owner's ("" when one role does everything)."""
    user = str(connections[alias].settings_dict.get("USER") or "")
    owner = getattr(settings, "DATABASE_OWNER", None)
    if not owner or owner.get("USER") == user:
        return ""
    return user


# --- the figures ------------------------------------------------------------------------------------


def figures(cursor: psycopg.Cursor[Any]) -> dict[str, Any]:
    """What the database holds, in the cursor's transaction (its snapshot): per biller the payment and
    reversal notices (count, sum, applied), bills paid and open findings; the acknowledged payment frames
    (count, and the last one: id, transaction key, received at). JSON-ready; keyed by biller code."""
    cursor.execute("SELECT set_config('app.bypass', %s, true)", [BYPASS])
    notice, message = Notice._meta.db_table, Message._meta.db_table
    biller, invoice = Biller._meta.db_table, Invoice._meta.db_table
    finding, run = Finding._meta.db_table, Run._meta.db_table
    # table names are the models' own (constants), every value a parameter
    cursor.execute(
        f"""SELECT b.biller_code,
              (SELECT count(*) FROM {notice} n WHERE n.biller_id = b.id AND n.kind = 'payment'),
              (SELECT coalesce(sum(amount), 0) FROM {notice} n
                 WHERE n.biller_id = b.id AND n.kind = 'payment'),
              (SELECT count(*) FROM {notice} n WHERE n.biller_id = b.id AND n.kind = 'reversal'),
              (SELECT coalesce(sum(amount), 0) FROM {notice} n
                 WHERE n.biller_id = b.id AND n.kind = 'reversal'),
              (SELECT count(*) FROM {notice} n WHERE n.biller_id = b.id AND n.applied_at IS NOT NULL),
              (SELECT coalesce(max(id), 0) FROM {notice} n WHERE n.biller_id = b.id),
              (SELECT count(*) FROM {invoice} i WHERE i.biller_id = b.id AND i.status = %s),
              (SELECT count(*) FROM {finding} f WHERE f.biller_id = b.id AND f.state = %s),
              (SELECT count(*) FROM {run} r WHERE r.biller_id = b.id),
              (SELECT max(processing_date)::text FROM {run} r WHERE r.biller_id = b.id)
            FROM {biller} b ORDER BY b.biller_code""",  # noqa: S608
        [Invoice.Status.PAID, Finding.State.OPEN],
    )
    billers = {
        row[0]: {
            "payments": row[1],
            "payments_sum": int(row[2]),
            "reversals": row[3],
            "reversals_sum": int(row[4]),
            "applied": row[5],
            "last_notice_id": row[6],
            "invoices_paid": row[7],
            "open_findings": row[8],
            "reconciliation_runs": row[9],
            "last_reconciled_day": row[10],
        }
        for row in cursor.fetchall()
    }
    acknowledged = f"""FROM {message} WHERE response_code = %s AND message_type = ANY(%s)"""
    types = sorted(PAYMENT_TYPES)
    cursor.execute(f"SELECT count(*), coalesce(max(id), 0) {acknowledged}", [ACKNOWLEDGED, types])
    count, last_id = cursor.fetchone() or (0, 0)
    last: dict[str, Any] = {"id": last_id, "transaction_key": "", "received_at": None}
    if last_id:
        cursor.execute(
            f"SELECT transaction_key, received_at FROM {message} WHERE id = %s",  # noqa: S608
            [last_id],
        )
        key, received_at = cursor.fetchone() or ("", None)
        last.update(transaction_key=key, received_at=received_at.isoformat() if received_at else None)
    cursor.execute(
        f"SELECT count(*), coalesce(sum(amount), 0) FROM {notice} WHERE kind = 'payment'"  # noqa: S608
    )
    notices, total = cursor.fetchone() or (0, 0)
    return {
        "billers": billers,
        "acknowledged_payment_messages": count,
        "last_acknowledged_payment": last,
        "payments": notices,
        "payments_sum": int(total),
    }


# --- backing up -------------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(args: list[str], server: Server, what: str) -> subprocess.CompletedProcess[str]:
    # the PostgreSQL client programs by name (PATH), arguments as a list: no shell
    result = subprocess.run(args, env=server.env(), capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{what} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result


def dump_roles(server: Server, path: Path) -> str:
    """``pg_dumpall --roles-only`` into ``path``: with passwords when the role may read them (superuser),
    without otherwise; "" when neither works (the roles are then recreated on restore by ``db_roles``)."""
    for extra, label in (([], "with passwords"), (["--no-role-passwords"], "without passwords")):
        result = subprocess.run(  # noqa: S603
            ["pg_dumpall", "--roles-only", "--database", server.dbname, "--file", str(path), *extra],  # noqa: S607
            env=server.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return label
    path.unlink(missing_ok=True)
    return ""


def take_backup(directory: Path, server: Server, *, app_role: str = "", roles: bool = True) -> dict[str, Any]:
    """Dump ``server``'s database into ``directory`` (created; must not hold a backup already) and write
    the manifest. The figures and the dump are of one snapshot; returns the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    dump, manifest_path = directory / DUMP_NAME, directory / MANIFEST_NAME
    if dump.exists() or manifest_path.exists():
        raise BackupError(f"{directory} already holds a backup: give a new directory")
    requested_at = time.time()
    with server.connect(autocommit=False) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.cursor() as cursor:
            # the first statement of the transaction fixes its snapshot: exported, then read here
            cursor.execute("SELECT pg_export_snapshot(), clock_timestamp(), version()")
            snapshot, snapshot_at, version = cursor.fetchone() or ("", None, "")
            taken_at = time.time()
            held = figures(cursor)
            started = time.monotonic()
            # kept answers of pages (billing_keptanswer, UNLOGGED) are a two-minute cache: not dumped
            args = ["pg_dump", "--format=custom", "--no-unlogged-table-data", "--snapshot", snapshot]
            args += ["--dbname", server.dbname]
            try:
                _run([*args, "--file", str(dump)], server, "pg_dump")
            except BackupError:
                dump.unlink(missing_ok=True)  # no half dump left to be mistaken for a backup
                raise
            dump_seconds = time.monotonic() - started
        conn.rollback()
    roles_label = dump_roles(server, directory / ROLES_NAME) if roles else ""
    manifest = {
        "format": MANIFEST_FORMAT,
        "database": server.dbname,
        "server_version": version,
        "snapshot": snapshot,
        "snapshot_requested_at": datetime.datetime.fromtimestamp(requested_at, datetime.UTC).isoformat(),
        "snapshot_at": snapshot_at.isoformat() if snapshot_at else None,
        "snapshot_taken_by": datetime.datetime.fromtimestamp(taken_at, datetime.UTC).isoformat(),
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "dump": {
            "file": DUMP_NAME,
            "format": "custom",
            "bytes": dump.stat().st_size,
            "sha256": sha256_of(dump),
            "seconds": round(dump_seconds, 3),
        },
        "roles": {"file": ROLES_NAME if roles_label else "", "dumped": roles_label},
        "application_role": app_role,
        "figures": held,
    }
    # written last and whole (a rename): a directory with a manifest holds a finished backup
    partial = manifest_path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    partial.replace(manifest_path)
    return manifest


# --- restoring and checking -------------------------------------------------------------------------


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_NAME
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"no readable manifest at {path}: {exc}") from exc
    if manifest.get("format") != MANIFEST_FORMAT:
        raise BackupError(f"{path}: manifest format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}")
    return manifest


def verify_dump(directory: Path, manifest: dict[str, Any]) -> None:
    dump = directory / manifest["dump"]["file"]
    if not dump.exists():
        raise BackupError(f"{dump} is missing")
    if sha256_of(dump) != manifest["dump"]["sha256"]:
        raise BackupError(f"{dump}: sha256 differs from the manifest's (damaged or replaced)")


def database_exists(server: Server, name: str, maintenance_db: str) -> bool:
    with server.connect(maintenance_db, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


def restore(
    directory: Path,
    server: Server,
    database: str,
    *,
    maintenance_db: str,
    app_role: str = "",
    jobs: int = 1,
) -> dict[str, Any]:
    """Create ``database`` (it must not exist) and restore the backup of ``directory`` into it: one
    transaction that stops at the first error (``jobs`` > 1: parallel, not one transaction). Then the
    application role (the manifest's, or ``app_role``) may connect to it. Returns timings."""
    manifest = read_manifest(directory)
    verify_dump(directory, manifest)
    if database_exists(server, database, maintenance_db):
        raise BackupError(f"database {database!r} exists already: restore into a new one")
    started = time.monotonic()
    with server.connect(maintenance_db, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(database))
        )
    args = ["pg_restore", "--dbname", database, "--exit-on-error"]
    args += [f"--jobs={jobs}"] if jobs > 1 else ["--single-transaction"]
    try:
        _run([*args, str(directory / manifest["dump"]["file"])], server, "pg_restore")
    except BackupError:
        drop_database(server, database, maintenance_db)  # ours, and half restored at best
        raise
    role = app_role or manifest.get("application_role") or ""
    granted = False
    if role:
        with server.connect(database, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                conn.execute(
                    sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                        sql.Identifier(database), sql.Identifier(role)
                    )
                )
                granted = True
    return {"seconds": round(time.monotonic() - started, 3), "application_role": role, "granted": granted}


def read_figures(server: Server, database: str) -> dict[str, Any]:
    with server.connect(database) as conn, conn.cursor() as cursor:
        return figures(cursor)


def compare(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """Every way ``found`` (the restored database's figures) differs from ``expected`` (the
    manifest's); empty when they agree."""
    problems = []
    for code, want in sorted(expected["billers"].items()):
        have = found["billers"].get(code)
        if have is None:
            problems.append(f"biller {code}: missing")
            continue
        for key, value in want.items():
            if have.get(key) != value:
                problems.append(f"biller {code}: {key} {have.get(key)!r}, the backup holds {value!r}")
    for code in sorted(set(found["billers"]) - set(expected["billers"])):
        problems.append(f"biller {code}: not in the backup")
    for key in ("acknowledged_payment_messages", "payments", "payments_sum", "last_acknowledged_payment"):
        if found.get(key) != expected.get(key):
            problems.append(f"{key}: {found.get(key)!r}, the backup holds {expected.get(key)!r}")
    return problems


def check(directory: Path, server: Server, database: str) -> dict[str, Any]:
    """The figures of ``database`` against the manifest of ``directory``: a report with ``ok``."""
    manifest = read_manifest(directory)
    found = read_figures(server, database)
    problems = compare(manifest["figures"], found)
    return {
        "ok": not problems,
        "database": database,
        "backup": str(directory),
        "snapshot_at": manifest.get("snapshot_at"),
        "expected": manifest["figures"],
        "found": found,
        "problems": problems,
    }


def drop_database(server: Server, database: str, maintenance_db: str) -> None:
    with server.connect(maintenance_db, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def client_programs_missing() -> list[str]:
    return [name for name in ("pg_dump", "pg_restore", "pg_dumpall") if shutil.which(name) is None]
