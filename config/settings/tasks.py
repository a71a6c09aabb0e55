"""Celery: the broker, delivery guarantees, the beat schedule.

With REDIS_URL set, Redis is the broker. Without it the product runs on
kombu's filesystem transport under the run directory: real worker and beat
processes, no server to install.
"""

from celery.schedules import crontab
from kombu import Exchange, Queue

from config.settings.env import RUN_DIR, env_bool, env_int, env_str

REDIS_URL = env_str("REDIS_URL")

# Every task has a hard time limit: a task that hangs (an SMTP server that stops answering, a lock held
# for ever) is killed, its worker process replaced, and the message acknowledged as failed instead of
# being delivered again to a second worker while the first still runs it. CELERY_TASK_TIME_LIMIT is the
# default; the tasks that legitimately run longer have their own below (CELERY_TASK_ANNOTATIONS). Hard
# limits only: a soft limit raises an exception wherever the task happens to be, a query included.
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600)
PAYEASY_TASK_TIME_LIMITS = {
    # a CSV import of IMPORT_MAX_BYTES (a million rows take under a minute on PostgreSQL: docs/line.md)
    "billing.tasks.import_job_run": env_int("PAYEASY_IMPORT_TIME_LIMIT", 3600),
    # one batch of posts, each up to its timeouts (payeasy.services.webhooks: 32 × 5 s connect + 20 s body)
    "payeasy.tasks.webhooks_deliver": 1200,
    "payeasy.tasks.webhooks_retry_due": 1200,
    # every active biller's closed day (8 s for a million bills: docs/architecture.md)
    "reconciliation.tasks.reconcile_after_close": 1800,
    "reconciliation.tasks.reconcile_run": 1800,
}
CELERY_TASK_ANNOTATIONS = {name: {"time_limit": limit} for name, limit in PAYEASY_TASK_TIME_LIMITS.items()}
# The longest countdown any task is sent with: retries with retry_backoff wait at most celery's
# retry_backoff_max (600 s); no task is sent with a countdown or eta of its own.
PAYEASY_TASK_MAX_COUNTDOWN = 600
# Redis hands an unacknowledged message to another worker after the visibility timeout. With late
# acknowledgement a message is unacknowledged from its delivery (a retry's countdown is waited out in
# the worker) until its task ends, so the timeout exceeds the longest countdown plus the longest time
# limit, with a margin: otherwise a long task runs twice at once. `manage.py prod_check` verifies it
# against every registered task.
PAYEASY_BROKER_VISIBILITY_TIMEOUT = (
    max(CELERY_TASK_TIME_LIMIT, *PAYEASY_TASK_TIME_LIMITS.values()) + PAYEASY_TASK_MAX_COUNTDOWN + 300
)

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": PAYEASY_BROKER_VISIBILITY_TIMEOUT}
else:
    _broker_dir = RUN_DIR / "broker"
    for _sub in ("queue", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# a worker waits for Redis however long it is away (celery's default gives up after 100 tries)
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TIMEZONE = "Asia/Tokyo"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(RUN_DIR / "celerybeat-schedule")

# Every task has a queue by its kind, so that no amount of one kind of work delays another
# (docs/operators.md, "Workers, queues and supervision"):
#   payments       applying money: the wake-ups of the line, teller files. Its own worker, never busy
#                  with anything else: a 60,000-invoice publication must not delay an acknowledged payment.
#   notifications  every e-mail: receipts, invitations, publications, reminders, password resets,
#                  payment requests.
#   webhooks       posts to tenants' systems: a slow endpoint must not hold up e-mail, nor e-mail it.
#   imports        CSV imports and what they fan out (minutes of one worker for a large file).
#   maintenance    housekeeping on a clock (sessions, login attempts, hand-off nonces), and the default.
# tests/config/test_tasks_routing.py fails for a task without a route here, so a new task cannot land on
# payments by accident. The default queue is one that every worker layout consumes and that is not
# payments: a task sent by name without a route still runs, and still delays no payment.
PAYMENTS_QUEUE = "payments"
NOTIFICATIONS_QUEUE = "notifications"
WEBHOOKS_QUEUE = "webhooks"
IMPORTS_QUEUE = "imports"
MAINTENANCE_QUEUE = "maintenance"
TASK_QUEUES = (PAYMENTS_QUEUE, NOTIFICATIONS_QUEUE, WEBHOOKS_QUEUE, IMPORTS_QUEUE, MAINTENANCE_QUEUE)
# Workers other than the payments one consume these (config/Procfile, docs/operators.md).
BACKGROUND_QUEUES = (NOTIFICATIONS_QUEUE, WEBHOOKS_QUEUE, IMPORTS_QUEUE, MAINTENANCE_QUEUE)

CELERY_TASK_QUEUES = tuple(Queue(name, Exchange(name), routing_key=name) for name in TASK_QUEUES)
CELERY_TASK_DEFAULT_QUEUE = MAINTENANCE_QUEUE
CELERY_TASK_CREATE_MISSING_QUEUES = False  # a route to a queue that is not above is an error, not a new queue


def _routes(queue: str, *names: str) -> dict[str, dict[str, str]]:
    return {name: {"queue": queue, "routing_key": queue} for name in names}


CELERY_TASK_ROUTES = {
    **_routes(
        PAYMENTS_QUEUE,
        "payeasy.tasks.notices_apply",
        "payeasy.tasks.notices_sweep",
        "payeasy.tasks.teller_drop_scan",
    ),
    **_routes(
        NOTIFICATIONS_QUEUE,
        "billing.tasks.receipts_send",
        "billing.tasks.invitation_send",
        "billing.tasks.invoice_published_notify",
        "billing.tasks.due_reminders_send",
        "billing.tasks.portal_invitation_send",
        "billing.tasks.portal_password_reset_send",
        "billing.tasks.payment_request_notify",
    ),
    **_routes(
        WEBHOOKS_QUEUE,
        "payeasy.tasks.webhooks_deliver",
        "payeasy.tasks.webhooks_retry_due",
    ),
    **_routes(
        IMPORTS_QUEUE,
        "billing.tasks.import_job_run",
        "billing.tasks.import_notify",
    ),
    **_routes(
        MAINTENANCE_QUEUE,
        "billing.tasks.sessions_clear",
        "billing.tasks.kept_answers_prune",
        "billing.tasks.customer_changes_compact",
        "billing.tasks.portal_login_attempts_prune",
        "payeasy.tasks.handoff_nonces_prune",
        "reconciliation.tasks.reconcile_after_close",
        "reconciliation.tasks.reconcile_run",
    ),
}

# The worker survives losing Redis (celery 5.7 + kombu 5.7 exit otherwise: config/celery.py).
CELERY_WORKER_CONSUMER = "config.celery:WorkerConsumer"
# Beat runs the payment sweeper itself, in its own thread against the database, instead of sending it
# to a worker through Redis: the one path that applies payments when Redis is down, flushed, or a
# worker is dead or has stopped consuming needs nothing but PostgreSQL and beat (config/celery.py).
CELERY_BEAT_SCHEDULER = "config.celery:BeatScheduler"
PAYEASY_BEAT_RUNS_ITSELF = ("payeasy.tasks.notices_sweep",)

# Beat runs exactly once: a second beat (another host, or one started twice) stands by and sends
# nothing until the first is gone (config.celery.BeatScheduler). On PostgreSQL the lock is a
# session-level advisory lock under this key ("payeasyb"), held on a connection of beat's own; on
# SQLite it is an exclusive flock() on a file in PAYEASY_BEAT_LOCK_DIR named after the database file
# (one beat per database, as on PostgreSQL, whose advisory locks are per database). A beat standing by
# (or one whose lock connection broke) tries again every PAYEASY_BEAT_LOCK_RETRY_SECONDS.
PAYEASY_BEAT_LOCK_KEY = env_int("PAYEASY_BEAT_LOCK_KEY", 0x7061796561737962)
PAYEASY_BEAT_LOCK_DIR = RUN_DIR
PAYEASY_BEAT_LOCK_RETRY_SECONDS = float(env_int("PAYEASY_BEAT_LOCK_RETRY_SECONDS", 3))

CELERY_BEAT_SCHEDULE = {
    "payeasy-notices-sweep": {
        "task": "payeasy.tasks.notices_sweep",
        "schedule": float(env_int("PAYEASY_SWEEP_EVERY_SECONDS", 10)),  # seconds
    },
    "payeasy-teller-drop-scan": {
        "task": "payeasy.tasks.teller_drop_scan",
        "schedule": float(env_int("PAYEASY_TELLER_DROP_EVERY", 30)),  # seconds
    },
    "payeasy-webhooks-retry": {
        "task": "payeasy.tasks.webhooks_retry_due",
        "schedule": float(env_int("PAYEASY_WEBHOOK_RETRY_EVERY_SECONDS", 15)),  # seconds
    },
    "payeasy-handoff-nonces-prune": {
        "task": "payeasy.tasks.handoff_nonces_prune",
        "schedule": crontab(minute="*/10"),
    },
    # after the line's 閉局: reconcile the closed day (and again the days a new deposit statement covers)
    "reconcile-after-close": {
        "task": "reconciliation.tasks.reconcile_after_close",
        "schedule": float(env_int("RECONCILE_EVERY_SECONDS", 300)),  # seconds
    },
    "due-date-reminders": {
        "task": "billing.tasks.due_reminders_send",
        "schedule": crontab(hour=9, minute=0),
    },
    "clear-expired-sessions": {
        "task": "billing.tasks.sessions_clear",
        "schedule": crontab(minute="*/15"),
    },
    # the kept answers of pages (billing.page_replay) live two minutes: their rows are deleted after
    "kept-answers-prune": {
        "task": "billing.tasks.kept_answers_prune",
        "schedule": crontab(minute="*"),
    },
    # the change counters of customers the invoice list's fingerprint sums (billing.models.CustomerChange)
    "customer-changes-compact": {
        "task": "billing.tasks.customer_changes_compact",
        "schedule": crontab(minute="*"),
    },
    "portal-login-attempts-prune": {
        "task": "billing.tasks.portal_login_attempts_prune",
        "schedule": crontab(minute=7),
    },
}
