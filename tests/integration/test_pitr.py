"""Point-in-time restore, for real: a throwaway PostgreSQL cluster with WAL archiving
(config/ops/archive-wal.sh), the product migrated into it, a real commserver taking payments,
``pg_basebackup`` while they flow, a target time noted while they still flow, then the base backup and
the archive replayed up to that time into a second cluster (config/ops/pitr-restore.sh).

What must hold: every payment the line answered 0000 before the target time is in the recovered cluster
(by transaction key, as the client saw it answered), none sent after it is, and each recovered payment
has its acknowledged frame. Runs in about half a minute; the cluster and its files are removed after.
"""

from __future__ import annotations

import datetime
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from tests.conftest import need
from tests.integration.conftest import ROOT, free_port, process_env
from tests.integration.test_line_recovery import Load
from tests.payeasy import line_helpers as h

pytestmark = [pytest.mark.integration]

BIN = Path("/usr/lib/postgresql/15/bin")
OPS = ROOT / "config" / "ops"
PORTS = range(7310, 7400)  # this suite's share of ports for its own servers
DBNAME = "h3_pitr"
APP_ROLE = "payeasy_app_h3_pitr"


def as_postgres(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A command as the operating-system user ``postgres`` (the server refuses to run as root)."""
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@dataclass
class Cluster:
    data: Path
    port: int

    def start(self) -> None:
        as_postgres(
            BIN / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.data.parent / f"{self.data.name}.log",
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )

    def connect(self, dbname: str = DBNAME, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, **kwargs)

    def url(self, user: str = "postgres") -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{DBNAME}"


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory the ``postgres`` user owns (pytest's tmp_path is root's alone)."""
    need(os.geteuid() == 0, "this test starts its own PostgreSQL cluster as root through runuser")
    need((BIN / "initdb").exists(), f"this test needs PostgreSQL 15's server programs in {BIN}")
    need(shutil.which("runuser") is not None, "this test needs runuser")
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        need(False, "this test needs the operating-system user postgres")
        raise
    path = Path(tempfile.mkdtemp(prefix="h3_pitr_"))
    os.chown(path, user.pw_uid, user.pw_gid)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def primary(workdir: Path) -> Iterator[Cluster]:
    """A new cluster archiving every WAL segment into ``workdir/archive``."""
    taken: set[int] = set()
    cluster = Cluster(workdir / "primary", free_port(PORTS, taken))
    archive = workdir / "archive"
    as_postgres("mkdir", "-p", archive)
    as_postgres(
        BIN / "initdb",
        "-D",
        cluster.data,
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--no-sync",
    )
    conf = f"""
listen_addresses = '127.0.0.1'
port = {cluster.port}
unix_socket_directories = '{workdir}'
wal_level = replica
archive_mode = on
archive_command = '{OPS / "archive-wal.sh"} %p %f {archive}'
max_wal_senders = 4
fsync = off
"""
    with (cluster.data / "postgresql.conf").open("a") as handle:
        handle.write(conf)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def wall_iso(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).isoformat(sep=" ")


def test_point_in_time_restore_keeps_every_payment_acknowledged_before_the_target(
    postgres: None, primary: Cluster, workdir: Path, commserver_factory: Any, celery_broker: dict[str, str]
) -> None:
    started = time.monotonic()
    with primary.connect("postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DBNAME}")
    env = {"DATABASE_OWNER_URL": primary.url(), "DATABASE_URL": primary.url(APP_ROLE), **celery_broker}

    def manage(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=process_env(**env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    manage("migrate", "-v0")  # the product's migrations, the application role and its grants
    seeded = json.loads(
        manage(
            "shell",
            "-c",
            (
                "import json\n"
                "from billing.tenancy import bind_cross_tenant\n"
                "bind_cross_tenant('command')\n"
                "from tests.payeasy import line_helpers as h\n"
                "b = h.line_biller(); i = h.published_invoice(b, price=3000)\n"
                "print(json.dumps({'biller_code': b.biller_code, 'customer_number': i.customer_number,"
                " 'confirmation_number': i.confirmation_number, 'total': i.total}))\n"
            ),
        )
        .strip()
        .splitlines()[-1]
    )
    biller = SimpleNamespace(biller_code=seeded["biller_code"])
    invoice = SimpleNamespace(**{k: seeded[k] for k in ("customer_number", "confirmation_number", "total")})
    server = commserver_factory(**env)
    with h.LineClient(server.port) as client:
        client.send(h.open_day(biller))  # type: ignore[arg-type]
        assert client.receive(1)[0].response_code == "0000"
    prepared = time.monotonic() - started

    clock = (time.monotonic(), time.time())
    load = Load(server.port, biller, invoice, rate=60.0)  # type: ignore[arg-type]
    time.sleep(1.0)
    base = workdir / "base"
    t0 = time.monotonic()
    as_postgres(
        BIN / "pg_basebackup",
        "-h",
        "127.0.0.1",
        "-p",
        str(primary.port),
        "-U",
        "postgres",
        "-D",
        base,
        "-Fp",
        "-X",
        "stream",
        "-c",
        "fast",
    )
    basebackup_seconds = time.monotonic() - t0
    time.sleep(1.5)  # payments go on past the base backup
    target = time.time()
    time.sleep(1.5)  # and past the target time
    sent = load.finish()
    assert not load.closed, load.closed
    acknowledged = {k: s for k, s in sent.items() if s.code == "0000"}
    assert len(acknowledged) > len(sent) * 0.9, {s.code for s in sent.values()}  # 9001: not acknowledged
    with primary.connect(autocommit=True) as conn:  # close the last segment and wait for its archiving
        last = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]  # type: ignore[index]
        deadline = time.monotonic() + 30
        while not (workdir / "archive" / last).exists():
            assert time.monotonic() < deadline, f"{last} was not archived in 30 s"
            time.sleep(0.1)

    def wall(moment: float) -> float:
        return moment - clock[0] + clock[1]

    before = {k for k, s in acknowledged.items() if wall(s.answered_at) < target}
    after = {k for k, s in sent.items() if wall(s.at) > target}
    during_base = {
        k
        for k, s in acknowledged.items()
        if wall(s.at) > clock[1] + (t0 - clock[0]) and wall(s.answered_at) < target
    }

    recovered = Cluster(workdir / "recovered", free_port(PORTS, {primary.port}))
    t1 = time.monotonic()
    as_postgres(
        OPS / "pitr-restore.sh",
        base,
        workdir / "archive",
        recovered.data,
        wall_iso(target),
        str(recovered.port),
    )
    recovered.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            with recovered.connect("postgres", autocommit=True) as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
                    break
            assert time.monotonic() < deadline, "the recovered cluster did not promote in 60 s"
            time.sleep(0.2)
        restore_seconds = time.monotonic() - t1
        with recovered.connect() as conn:
            keys = {
                r[0]
                for r in conn.execute(
                    "SELECT transaction_key FROM payeasy_notice WHERE kind = 'payment'"
                ).fetchall()
            }
            frames_ok = {
                r[0]
                for r in conn.execute(
                    "SELECT transaction_key FROM payeasy_message WHERE response_code = '0000' "
                    "AND message_type = '1200'"
                ).fetchall()
            }
            role = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [APP_ROLE]).fetchone()
        print(
            f"\n  prepared in {prepared:.1f} s; {len(sent)} payments sent, {len(before)} answered before the"
            f" target, {len(after)} sent after; base backup {basebackup_seconds:.2f} s; restore to target"
            f" and promote {restore_seconds:.2f} s; {len(keys)} payments recovered"
        )
        assert len(during_base) > 20 and len(after) > 30  # the target really was mid-stream
        missing = before - keys
        assert not missing, f"{len(missing)} payments answered 0000 before the target were not recovered"
        assert not keys & after, "the recovered cluster holds payments sent after the target time"
        assert keys <= frames_ok  # each recovered notice has its acknowledged frame
        assert role == (1,)  # roles are the cluster's: a physical restore brings them
    finally:
        recovered.stop()
