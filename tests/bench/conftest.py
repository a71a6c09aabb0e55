"""Benchmarks: run by `make bench`, never by `make test`. They need PostgreSQL (DATABASE_URL).

Each prints its figures and writes them to .run/bench/<name>.json; each checks its
target and, where the issue asks, the ratio to a baseline measured in the same run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / ".run" / "bench"


@pytest.fixture
def postgres_only() -> None:
    need(connection.vendor == "postgresql", "benchmarks need PostgreSQL: set DATABASE_URL=postgres://…")


def owner_execute(*statements: str) -> None:
    """Statements only the owner of the test database may run (VACUUM, CHECKPOINT, scratch tables): the
    tests run as the application role when DATABASE_OWNER_URL is set (billing.dbsecurity)."""
    import psycopg

    from tests.conftest import owner_credentials

    owner: dict[str, Any] = {**owner_credentials(), "dbname": connection.settings_dict["NAME"]}
    with psycopg.connect(**owner, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)  # type: ignore[arg-type]


def import_invoices_argv(path: Path, biller: Any, *, preview: bool = False) -> list[str]:
    """``manage.py import_invoices`` of the CSV at ``path`` for ``biller``: the preview alone, or the
    import without one."""
    return [
        sys.executable,
        "manage.py",
        "import_invoices",
        str(path),
        "--biller",
        biller.biller_code,
        "--preview" if preview else "--skip-preview",
    ]


def environment() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        settings = {}
        for name in ("shared_buffers", "synchronous_commit", "max_wal_size", "work_mem"):
            cursor.execute(f"SHOW {name}")
            settings[name] = cursor.fetchone()[0]
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "postgres": version,
        "postgres_settings": settings,
    }


def report(name: str, figures: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    figures = {"benchmark": name, **figures, "environment": environment()}
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, ensure_ascii=False, indent=2, default=str))
    print(f"\n== {name}")
    for key, value in figures.items():
        if key not in {"benchmark", "environment"}:
            print(f"  {key}: {value}")
    print(f"  environment: {figures['environment']}")


def database_url() -> str:
    s = connection.settings_dict
    auth = s.get("USER") or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def production_env(**extra: str) -> dict[str, str]:
    """A process with production settings (DEBUG off) on the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY="bench-" + "x" * 50,
        DJANGO_ALLOWED_HOSTS="localhost",
        DATABASE_URL=database_url(),
        PYTHONUNBUFFERED="1",
    )
    env.pop("REDIS_URL", None)
    env["PAYEASY_RUN_DIR"] = str(ROOT / ".run" / "bench")
    env.update(extra)
    return env


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a command; wall seconds, peak RSS in bytes (from /usr/bin/time or getrusage), output."""
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    # ru_maxrss of children is the largest of any child so far; the import is the largest we start
    return elapsed, max(peak, before) * 1024, proc.stdout + proc.stderr


@functools.cache
def production_password(password: str) -> str:
    """``password`` encoded by the production hasher (the servers a benchmark starts run production
    settings, not the tests' fast hasher): one PBKDF2 per password and run."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    hasher = PBKDF2PasswordHasher()
    return hasher.encode(password, hasher.salt())


def portal_account(biller: Any, customer: Any, email: str, encoded_password: str) -> Any:
    """A customer-realm user of ``customer`` (a payer) with an already encoded password."""
    from billing.models import CustomerAccount, User, customer_login

    user = User.objects.create(
        login=customer_login(biller, email),
        email=email,
        name=f"{customer.name} 様",
        realm=User.Realm.CUSTOMER,
        customer_biller=biller,
        password=encoded_password,
    )
    role = CustomerAccount.Role.PAYER
    CustomerAccount.objects.create(biller=biller, user=user, customer=customer, role=role)
    return user
