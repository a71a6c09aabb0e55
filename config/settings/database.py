"""The system of record: PostgreSQL in production, SQLite as the embedded default."""

import dj_database_url

from config.settings.env import RUN_DIR, env_int, env_str

DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{RUN_DIR / 'db.sqlite3'}"

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
    # A database host that does not answer at all (a network cut, a failover in progress) must not hold
    # a process for the operating system's minutes-long connect timeout: the commserver answers 9001
    # meanwhile, but its lane's thread waits for the connect to give up.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5)
