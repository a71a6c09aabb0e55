"""Backups taken while payments flow (reconciliation/backups.py, ``db_backup``, ``db_restore_check``).

A real commserver takes payment frames from a real client (the Load of test_line_recovery) and a real
worker applies them; ``manage.py db_backup`` runs as its own process in the middle of that stream, and
``manage.py db_restore_check`` restores the dump into a new database. What must hold: every payment the
line answered 0000 before the backup's snapshot was taken is in the restored database (by transaction
key), nothing sent after the snapshot is, the manifest's figures equal the restored database's, and a
copy with one payment deleted fails the check.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from billing.models import KeptAnswer
from billing.tenancy import cross_tenant
from payeasy.models import Notice
from tests.conftest import owner_credentials
from tests.integration.conftest import PAYMENTS_QUEUES, ROOT, process_env
from tests.integration.test_line_recovery import Load
from tests.payeasy import line_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``manage.py ARGS`` as its own process, on the test database (owner from DATABASE_OWNER_URL)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=process_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wall(moment: float, clock: tuple[float, float]) -> float:
    """A ``time.monotonic()`` reading as a Unix time (``clock``: monotonic and Unix times read together)."""
    return moment - clock[0] + clock[1]


def unix(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp()


@pytest.fixture
def restored_name() -> Iterator[str]:
    """The name of a database to restore into; dropped afterwards."""
    name = f"h3_restore_{os.getpid()}_{time.monotonic_ns() % 1_000_000}"
    yield name
    with psycopg.connect(dbname="postgres", autocommit=True, **owner_credentials()) as conn:  # type: ignore[arg-type]
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def restored_payment_keys(name: str) -> set[str]:
    with psycopg.connect(dbname=name, **owner_credentials()) as conn:  # type: ignore[arg-type]
        conn.execute("SELECT set_config('app.bypass', 'tests', false)")
        rows = conn.execute(
            f"SELECT transaction_key FROM {Notice._meta.db_table} WHERE kind = 'payment'"  # noqa: S608
        )
        return {row[0] for row in rows.fetchall()}


def test_backup_mid_stream_restores_every_acknowledged_payment(
    postgres: None,
    celery_broker: dict[str, str],
    commserver_factory: Any,
    worker_factory: Any,
    tmp_path: Path,
    restored_name: str,
) -> None:
    biller = h.line_biller()
    invoice = h.published_invoice(biller, price=3000)
    worker_factory(queues=PAYMENTS_QUEUES, **celery_broker)
    server = commserver_factory(**celery_broker)
    with h.LineClient(server.port) as client:
        client.send(h.open_day(biller))
        assert client.receive(1)[0].response_code == "0000"

    with cross_tenant("tests"):  # a kept page's answer: a cache, never in a backup
        KeptAnswer.objects.create(
            key="k" * 64,
            biller=biller,
            page="portal:invoice_list",
            user_pk=1,
            session_key="s" * 32,
            session_data="d",
            fingerprint="f",
            day=datetime.date.today(),
            headers="[]",
            body=b"kept",
            kept_until=datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=2),
        )

    clock = (time.monotonic(), time.time())
    load = Load(server.port, biller, invoice, rate=80.0)
    time.sleep(1.5)
    backup_dir = tmp_path / "backup"
    dumped = manage("db_backup", "--to", str(backup_dir), "--json")
    time.sleep(1.0)  # payments go on after the snapshot
    sent = load.finish()
    assert dumped.returncode == 0, dumped.stderr
    manifest = json.loads(dumped.stdout)
    assert not load.closed, load.closed
    acknowledged = {k: s for k, s in sent.items() if s.code == "0000"}
    assert len(acknowledged) > len(sent) * 0.9, {s.code for s in sent.values()}  # 9001: not acknowledged

    restored = manage("db_restore_check", "--from", str(backup_dir), "--database", restored_name, "--json")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    report = json.loads(restored.stdout)
    keys = restored_payment_keys(restored_name)

    requested, taken = unix(manifest["snapshot_requested_at"]), unix(manifest["snapshot_taken_by"])
    before = {k for k, s in acknowledged.items() if wall(s.answered_at, clock) < requested}
    after = {k for k, s in sent.items() if wall(s.at, clock) > taken}
    print(
        f"  {len(sent)} payments sent, {len(before)} answered before the snapshot, {len(after)} sent after;"
        f" dump {manifest['dump']['bytes']:,} bytes in {manifest['dump']['seconds']:.2f} s,"
        f" restore {report['restore']['seconds']:.2f} s, {len(keys)} payments restored"
        f" ({manifest['figures']['billers'][biller.biller_code]['applied']} applied at the snapshot)"
    )
    assert len(before) > 30 and len(after) > 30  # the backup really was taken mid-stream
    missing = before - keys
    assert not missing, f"{len(missing)} payments answered 0000 before the snapshot were not restored"
    assert not keys & after, "the restored copy holds payments sent after its snapshot"
    assert keys <= set(sent)  # the only biller's payments are the load's

    # the manifest's figures are the restored database's, and the live database has moved on since
    assert report["ok"], report["problems"]
    assert report["found"] == manifest["figures"]
    figures = manifest["figures"]["billers"][biller.biller_code]
    assert figures["payments"] == len(keys) == manifest["figures"]["payments"]
    assert figures["payments_sum"] == len(keys) * invoice.total
    last = manifest["figures"]["last_acknowledged_payment"]
    assert last["transaction_key"] in keys
    assert Notice.objects.filter(biller=biller, kind="payment").count() >= len(acknowledged) > len(keys)
    assert report["restore"]["granted"]  # the application role may connect to the new database
    with psycopg.connect(dbname=restored_name, **owner_credentials()) as conn:  # type: ignore[arg-type]
        row = conn.execute(
            "SELECT relpersistence, (SELECT count(*) FROM billing_keptanswer) FROM pg_class"
            " WHERE relname = 'billing_keptanswer'"
        ).fetchone()
    assert row == ("u", 0)  # the table is restored, UNLOGGED and empty: the cache was not dumped

    # tampered: one payment deleted from the restored copy (past its append-only trigger) fails the check
    with psycopg.connect(dbname=restored_name, autocommit=True, **owner_credentials()) as conn:  # type: ignore[arg-type]
        conn.execute("SET session_replication_role = replica")
        deleted = conn.execute(
            f"DELETE FROM {Notice._meta.db_table} WHERE transaction_key = %s",  # noqa: S608
            [sorted(keys)[0]],
        ).rowcount
    assert deleted == 1
    tampered = manage(
        "db_restore_check", "--from", str(backup_dir), "--database", restored_name, "--no-restore"
    )
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert f"biller {biller.biller_code}: payments {len(keys) - 1}" in tampered.stderr


def test_damaged_dump_is_refused(postgres: None, tmp_path: Path, restored_name: str) -> None:
    """A dump whose bytes differ from the manifest's sha256 is not restored (and no database created)."""
    h.line_biller()
    backup_dir = tmp_path / "backup"
    dumped = manage("db_backup", "--to", str(backup_dir))
    assert dumped.returncode == 0, dumped.stderr
    with (backup_dir / "payeasy.dump").open("r+b") as dump:
        dump.seek(-10, os.SEEK_END)
        dump.write(b"\0" * 10)
    restored = manage("db_restore_check", "--from", str(backup_dir), "--database", restored_name)
    assert restored.returncode != 0
    assert "sha256 differs" in restored.stderr
    with psycopg.connect(dbname="postgres", **owner_credentials()) as conn:  # type: ignore[arg-type]
        assert (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [restored_name]).fetchone() is None
        )


def test_sqlite_has_no_backup(tmp_path: Path) -> None:
    """Documented refusal rather than a half backup: the commands are PostgreSQL's."""
    from django.db import connection

    if connection.vendor == "postgresql":
        pytest.skip("on PostgreSQL the backup tests above run")
    result = manage("db_backup", "--to", str(tmp_path / "b"))
    assert result.returncode != 0 and "PostgreSQL" in result.stderr
