"""The servers' part of ``manage.py prod_check`` (``payeasy.prodcheck``): PostgreSQL, Redis and Celery as
the product's processes will get them, asked with the product's own credentials."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings

from payeasy.prodcheck_items import (
    REDIS_MIN_VERSION,
    STATEMENT_TIMEOUT_MIN_MS,
    VISIBILITY_MARGIN_SECONDS,
    Item,
    each,
    fail,
    ok,
)

# --- PostgreSQL ----------------------------------------------------------------------------------------


def _rows(sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return list(cursor.fetchall())


def _setting(name: str) -> str | None:
    rows = _rows("SELECT setting FROM pg_settings WHERE name = %s", [name])
    return str(rows[0][0]) if rows else None


def postgres_items() -> list[Item]:
    from django.db import connection

    if connection.vendor != "postgresql":
        return [
            fail(
                "postgres.connect",
                f"the database is {connection.vendor}, the embedded development default",
                "set DATABASE_URL=postgres://<application role>@<host>/<database>",
            )
        ]
    try:
        (version, user, database), *_ = _rows(
            "SELECT current_setting('server_version'), current_user, current_database()"
        )
    except Exception as exc:
        return [
            fail(
                "postgres.connect",
                f"cannot connect with DATABASE_URL: {' '.join(str(exc).split())}",
                "check DATABASE_URL, the server, and that it accepts the application role",
            )
        ]
    return [
        ok("postgres.connect", f"PostgreSQL {version}, database {database} as {user}"),
        *each(
            "postgres",
            (
                _app_role,
                _row_level_security,
                _privileges,
                _migrations,
                _wal_level,
                _archive_mode,
                _standby,
                _durability,
                _statement_timeout,
            ),
        ),
    ]


def _app_role() -> Item:
    (superuser, bypass, createrole), *_ = _rows(
        "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = current_user"
    )
    problems = []
    if superuser:
        problems.append("is a superuser")
    if bypass:
        problems.append("has BYPASSRLS")
    if createrole:
        problems.append("has CREATEROLE (it could make itself a member of the owner)")
    owned = _rows(
        """SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
             AND pg_has_role(current_user, c.relowner, 'MEMBER') ORDER BY 1"""
    )
    if owned:
        owners = sorted({owner for _, owner in owned})
        problems.append(
            f"owns (or is a member of the owner {', '.join(owners)} of) {len(owned)} tables, e.g. "
            f"{', '.join(t for t, _ in owned[:3])}: an owner is not held by forced row-level security "
            "once it turns it off, and may ALTER and TRUNCATE"
        )
    if problems:
        return fail(
            "postgres.app_role",
            "the application role " + "; ".join(problems),
            "DATABASE_URL must name the application role, which owns nothing; DATABASE_OWNER_URL the "
            "owner, used by migrate alone (manage.py db_roles, docs/operators.md 'Database roles')",
        )
    return ok("postgres.app_role", "not a superuser, no BYPASSRLS/CREATEROLE, owns no table")


def _row_level_security() -> Item:
    from billing import dbsecurity

    tables = dbsecurity.tenant_tables()
    rows = {
        name: (enabled, forced, policy)
        for name, enabled, forced, policy in _rows(
            """SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                      EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND c.relname = ANY(%s)""",
            [dbsecurity.POLICY, tables],
        )
    }
    unprotected = [t for t in tables if rows.get(t) != (True, True, True)]
    if unprotected:
        return fail(
            "postgres.row_level_security",
            f"{len(unprotected)} of {len(tables)} tenant tables lack ENABLE/FORCE ROW LEVEL SECURITY or "
            f"the {dbsecurity.POLICY} policy: {', '.join(unprotected[:5])}",
            "run manage.py migrate (or manage.py db_roles) with DATABASE_OWNER_URL set",
        )
    return ok("postgres.row_level_security", f"enabled and forced on all {len(tables)} tenant tables")


def _privileges() -> Item:
    from django.db import connection

    from billing import dbsecurity

    truncatable = [
        r[0]
        for r in _rows(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND c.relkind = 'r'
                 AND has_table_privilege(current_user, c.oid, 'TRUNCATE') ORDER BY 1"""
        )
    ]
    append_only = dbsecurity.append_only_tables(connection)
    changeable = [
        r[0]
        for r in _rows(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND c.relname = ANY(%s)
                 AND (has_table_privilege(current_user, c.oid, 'UPDATE')
                      OR has_table_privilege(current_user, c.oid, 'DELETE')) ORDER BY 1""",
            [append_only],
        )
    ]
    problems = []
    if truncatable:
        problems.append(f"may TRUNCATE {', '.join(truncatable[:5])}")
    if changeable:
        problems.append(f"may UPDATE or DELETE the append-only {', '.join(changeable[:5])}")
    if problems:
        return fail(
            "postgres.privileges",
            "the application role " + "; ".join(problems),
            "run manage.py db_roles with DATABASE_OWNER_URL set (it grants exactly what is needed)",
        )
    return ok("postgres.privileges", f"no TRUNCATE; {len(append_only)} append-only tables insert-only")


def _migrations() -> Item:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = [f"{m.app_label}.{m.name}" for m, _ in plan]
        return fail(
            "postgres.migrations",
            f"{len(names)} unapplied: {', '.join(names[:5])}{' …' if len(names) > 5 else ''}",
            "run manage.py migrate (with DATABASE_OWNER_URL) before starting the new release",
        )
    return ok("postgres.migrations", "all applied")


def _wal_level() -> Item:
    level = _setting("wal_level")
    if level not in ("replica", "logical"):
        return fail(
            "postgres.wal_level",
            f"wal_level = {level}: neither a standby nor WAL archiving can follow this server",
            "wal_level = replica in postgresql.conf (restart)",
        )
    return ok("postgres.wal_level", f"wal_level = {level}")


def _archive_mode() -> Item:
    mode = _setting("archive_mode")
    fix = (
        "archive_mode = on and archive_command (or archive_library) copying each WAL segment off this "
        "host (pgBackRest, WAL-G, barman) in postgresql.conf, then restart; without it a lost disk loses "
        "every payment since the last base backup"
    )
    if mode not in ("on", "always"):
        return fail("postgres.archive_mode", f"archive_mode = {mode}: WAL is not archived", fix)
    command, library = _setting("archive_command"), _setting("archive_library")
    if command is not None and library is not None and not (command.strip() or library.strip()):
        return fail(
            "postgres.archive_mode", "archive_mode is on but nothing archives (no archive_command)", fix
        )
    (failed, last_failed, last_archived), *_ = _rows(
        "SELECT failed_count, last_failed_time, last_archived_time FROM pg_stat_archiver"
    )
    if last_failed is not None and (last_archived is None or last_failed > last_archived):
        return fail(
            "postgres.archive_mode",
            f"archiving fails: {failed} failures, the last at {last_failed:%Y-%m-%d %H:%M:%S %Z}",
            "see the PostgreSQL log for the archive_command's error; WAL piles up until it works",
        )
    return ok("postgres.archive_mode", f"archive_mode = {mode}, last archived {last_archived or 'never yet'}")


def _standby() -> Item:
    """pg_stat_replication shows one row per connected standby to any role (its details only to
    pg_read_all_stats): enough to count them."""
    (count,), *_ = _rows("SELECT count(*) FROM pg_stat_replication")
    if not count:
        return fail(
            "postgres.standby",
            "no standby is connected to this server (pg_stat_replication is empty)",
            "run a streaming-replication standby (primary_conninfo) to fail over to; a managed service "
            "whose replicas this role cannot see: waive postgres.standby",
        )
    names = _setting("synchronous_standby_names") or ""
    return ok("postgres.standby", f"{count} standby(s) streaming; synchronous_standby_names = {names!r}")


def _durability() -> Item:
    """As the application's sessions see them (ALTER ROLE/DATABASE … SET included)."""
    values = {
        name: _rows(f"SHOW {name}")[0][0] for name in ("fsync", "full_page_writes", "synchronous_commit")
    }
    bad = [
        f"{name} = {value}"
        for name, value in values.items()
        if (value == "off" if name != "synchronous_commit" else value in ("off", "local"))
    ]
    if bad:
        return fail(
            "postgres.durability",
            f"{', '.join(bad)}: a committed payment can be lost in a crash (or corrupted)",
            "fsync = on, full_page_writes = on, synchronous_commit = on (postgresql.conf, and no ALTER "
            "ROLE/DATABASE … SET turning them off)",
        )
    return ok("postgres.durability", ", ".join(f"{k} = {v}" for k, v in values.items()))


def _statement_timeout() -> Item:
    value = _setting("statement_timeout")  # as the session sees it, in ms
    ms = int(value or 0)
    if 0 < ms < STATEMENT_TIMEOUT_MIN_MS:
        return fail(
            "postgres.statement_timeout",
            f"statement_timeout = {ms} ms for the application role: it cancels long CSV imports and "
            "reconciliation runs",
            f"0 or at least {STATEMENT_TIMEOUT_MIN_MS // 1000} s (ALTER ROLE … SET statement_timeout); the "
            "product sets short ones itself where it must answer fast (the line, /readyz)",
        )
    return ok(
        "postgres.statement_timeout",
        f"statement_timeout = {ms} ms" + (" (none: the line and /readyz set their own)" if not ms else ""),
    )


# --- Redis ---------------------------------------------------------------------------------------------


def redis_items() -> list[Item]:
    import redis

    url = getattr(settings, "REDIS_URL", None)
    if not url:
        return [
            fail(
                "redis.connect",
                "REDIS_URL is not set: the broker is the file broker, for one host and development",
                "set REDIS_URL=redis://<host>:6379/<db>",
            )
        ]
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        server = client.info("server")
        memory = client.info("memory")
        persistence = client.info("persistence")
    except redis.RedisError as exc:
        return [
            fail("redis.connect", f"cannot reach Redis at REDIS_URL: {exc}", "check REDIS_URL and the server")
        ]
    version = str(server.get("redis_version", "0"))
    numbers = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    items = []
    if numbers < REDIS_MIN_VERSION:
        items.append(
            fail(
                "redis.connect",
                f"Redis {version}",
                f"Redis {'.'.join(map(str, REDIS_MIN_VERSION))} or newer",
            )
        )
    else:
        items.append(ok("redis.connect", f"Redis {version}"))
    policy = str(memory.get("maxmemory_policy", "unknown"))
    if policy != "noeviction":
        items.append(
            fail(
                "redis.maxmemory_policy",
                f"maxmemory-policy = {policy}: under memory pressure Redis deletes keys, queued tasks "
                "among them, without a word",
                "maxmemory-policy noeviction in redis.conf (CONFIG SET maxmemory-policy noeviction now)",
            )
        )
    else:
        items.append(ok("redis.maxmemory_policy", "maxmemory-policy = noeviction"))
    items.append(_redis_persistence(client, persistence))
    return items


def _redis_persistence(client: Any, info: dict[str, Any]) -> Item:
    """Required: a Redis restart must not lose the queues. Payments and webhooks would survive it (the
    sweeper and beat re-drive them from PostgreSQL), but receipts, invitations, password resets,
    publication e-mails and CSV imports live only in the queue: without persistence they are lost."""
    import redis

    fix = (
        "appendonly yes with appendfsync everysec in redis.conf (CONFIG SET appendonly yes, then "
        "CONFIG REWRITE): a restart then loses at most a second of queued tasks"
    )
    if not int(info.get("aof_enabled", 0)):
        return fail(
            "redis.persistence",
            "appendonly is off: a Redis restart loses every queued e-mail (receipts, invitations, "
            "password resets) and CSV import; payments would be re-driven, those are not",
            fix,
        )
    try:
        fsync = str(client.config_get("appendfsync").get("appendfsync", "unknown"))
    except redis.RedisError:  # CONFIG disabled (a managed service): appendonly is what it offers
        fsync = "unknown"
    if fsync == "no":
        return fail("redis.persistence", "appendfsync no: the tail of the log is the kernel's to write", fix)
    if str(info.get("aof_last_write_status", "ok")) != "ok":
        return fail(
            "redis.persistence", "the last append-only file write failed", "see Redis's log (disk full?)"
        )
    return ok("redis.persistence", f"appendonly yes, appendfsync {fsync}")


# --- Celery --------------------------------------------------------------------------------------------


def registered_tasks(app: Any) -> dict[str, Any]:
    """The product's tasks, as a worker registers them (autodiscovery of every app's tasks module)."""
    import importlib

    from django.apps import apps

    for config in apps.get_app_configs():
        try:
            importlib.import_module(f"{config.name}.tasks")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.tasks":
                raise
    app.finalize()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def longest_countdown(task: Any) -> int:
    """The longest countdown a task's own retries wait (autoretry_for: retry_backoff up to
    retry_backoff_max, else default_retry_delay)."""
    if not getattr(task, "autoretry_for", ()):
        return 0
    if getattr(task, "retry_backoff", False):
        return int(getattr(task, "retry_backoff_max", 600))
    return int(getattr(task, "default_retry_delay", 180) or 0)


def celery_items() -> list[Item]:
    from config.celery import app

    conf = app.conf
    items = []
    delivery = {
        "task_acks_late": (conf.task_acks_late, True),
        "task_reject_on_worker_lost": (conf.task_reject_on_worker_lost, True),
        "worker_prefetch_multiplier": (conf.worker_prefetch_multiplier, 1),
        "task_always_eager": (conf.task_always_eager, False),
    }
    wrong = [f"{k} = {v!r} (needs {want!r})" for k, (v, want) in delivery.items() if v != want]
    if wrong:
        items.append(
            fail(
                "celery.delivery",
                "; ".join(wrong),
                "config/settings/tasks.py: a task is acknowledged after it ran, given back when its "
                "worker dies, one at a time per process, never run in the web process",
            )
        )
    else:
        items.append(ok("celery.delivery", "acks late, rejected on worker loss, prefetch 1, not eager"))
    retries, on_startup = conf.broker_connection_max_retries, conf.broker_connection_retry_on_startup
    if retries is not None or not on_startup:
        items.append(
            fail(
                "celery.broker_retries",
                f"broker_connection_max_retries = {retries!r}, retry_on_startup = {on_startup!r}: a worker "
                "gives up on a Redis that is away for long",
                "CELERY_BROKER_CONNECTION_MAX_RETRIES = None and CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP",
            )
        )
    else:
        items.append(ok("celery.broker_retries", "a worker waits for the broker however long it is away"))

    tasks = registered_tasks(app)
    routes = getattr(settings, "CELERY_TASK_ROUTES", {})
    queues = set(getattr(settings, "TASK_QUEUES", ()))
    unrouted = sorted(n for n in tasks if routes.get(n, {}).get("queue") not in queues)
    if unrouted:
        items.append(
            fail(
                "celery.routes",
                f"without a route to a declared queue: {', '.join(unrouted)}",
                "add each to CELERY_TASK_ROUTES (config/settings/tasks.py) with the queue of its kind",
            )
        )
    else:
        items.append(ok("celery.routes", f"all {len(tasks)} tasks routed to declared queues"))

    default_limit = conf.task_time_limit
    limits = {n: (t.time_limit if t.time_limit is not None else default_limit) for n, t in tasks.items()}
    unlimited = sorted(n for n, limit in limits.items() if not limit)
    if unlimited:
        items.append(
            fail(
                "celery.time_limits",
                f"no hard time limit: {', '.join(unlimited)}",
                "CELERY_TASK_TIME_LIMIT, or a task's own in PAYEASY_TASK_TIME_LIMITS",
            )
        )
    else:
        items.append(
            ok("celery.time_limits", f"every task has a hard time limit (default {default_limit} s)")
        )
    items.append(_visibility(conf, tasks, limits))
    return items


def _visibility(conf: Any, tasks: dict[str, Any], limits: dict[str, Any]) -> Item:
    """A message stays unacknowledged from its delivery until its task ends: through a retry's countdown
    (waited out in the worker) and the run, up to the time limit. Redis gives it to another worker after
    the visibility timeout: it must be longer."""
    broker = str(conf.broker_url or "")
    if not broker.startswith(("redis://", "rediss://")):
        return ok("celery.visibility_timeout", f"not a Redis broker ({broker.split(':', 1)[0]})")
    timeout = int((conf.broker_transport_options or {}).get("visibility_timeout", 3600))
    needs = {n: int(limits[n] or 0) + longest_countdown(t) for n, t in tasks.items()}
    name, longest = max(needs.items(), key=lambda kv: kv[1])
    if timeout < longest + VISIBILITY_MARGIN_SECONDS:
        return fail(
            "celery.visibility_timeout",
            f"visibility_timeout = {timeout} s, but {name} may stay unacknowledged {longest} s (time "
            f"limit {limits[name]} s + retry countdown {longest_countdown(tasks[name])} s): Redis would "
            "give it to a second worker while the first still runs it",
            f"more than {longest + VISIBILITY_MARGIN_SECONDS} s: it follows CELERY_TASK_TIME_LIMIT and "
            "PAYEASY_TASK_TIME_LIMITS in config/settings/tasks.py",
        )
    return ok(
        "celery.visibility_timeout",
        f"visibility_timeout = {timeout} s > {name}: {longest} s (time limit + retry countdown)",
    )
