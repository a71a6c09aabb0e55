"""The system of record: PostgreSQL in production, SQLite as the embedded default.

On PostgreSQL two roles: ``DATABASE_URL`` is the application's role, which owns nothing;
``DATABASE_OWNER_URL`` (optional) is the role that owns the tables. ``manage.py migrate`` (and the test
suite's database setup) switch to the owner by themselves, then grant the application role exactly its
privileges (billing.dbsecurity, docs/operators.md). Only the owner's credentials are read from
``DATABASE_OWNER_URL``: the database name is always the one of ``DATABASE_URL``. Without it one role
does everything, as on SQLite, where none of this applies.
"""

import dj_database_url

from config.settings.env import RUN_DIR, env_int, env_str

DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{RUN_DIR / 'db.sqlite3'}"

DATABASE_OWNER_URL = env_str("DATABASE_OWNER_URL")

DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    # Web, worker and beat share the file: WAL lets readers run beside one
    # writer, IMMEDIATE makes a writer wait for the lock instead of failing
    # half-way, and the timeout is how long it waits.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # Django's backend with a health check that needs no round trip (config/postgresql/base.py)
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    # A database host that does not answer at all (a network cut, a failover in progress) must not hold
    # a process for the operating system's minutes-long connect timeout: the commserver answers 9001
    # meanwhile, but its lane's thread waits for the connect to give up.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5)

DATABASE_OWNER: dict[str, object] | None = None
if DATABASE_OWNER_URL and DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    _owner = dj_database_url.parse(DATABASE_OWNER_URL)
    DATABASE_OWNER = {k: _owner.get(k, "") for k in ("USER", "PASSWORD", "HOST", "PORT")}
