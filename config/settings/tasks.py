"""Celery: the broker, delivery guarantees, the beat schedule.

With REDIS_URL set, Redis is the broker. Without it the product runs on
kombu's filesystem transport under the run directory: real worker and beat
processes, no server to install.
"""

from celery.schedules import crontab

from config.settings.env import RUN_DIR, env_bool, env_int, env_str

REDIS_URL = env_str("REDIS_URL")

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
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
CELERY_TIMEZONE = "Asia/Tokyo"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(RUN_DIR / "celerybeat-schedule")

# Payments are applied on the default queue; what talks to the outside (receipt e-mails, webhooks)
# has a queue of its own, so a slow SMTP relay or tenant endpoint never delays applying payments.
# Workers consume both (-Q celery,notify); a busy installation runs one worker per queue.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "payeasy.tasks.receipts_send": {"queue": "notify"},
    "payeasy.tasks.webhooks_deliver": {"queue": "notify"},
    "payeasy.tasks.webhooks_retry_due": {"queue": "notify"},
}

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
    "due-date-reminders": {
        "task": "billing.tasks.due_reminders_send",
        "schedule": crontab(hour=9, minute=0),
    },
    "clear-expired-sessions": {
        "task": "billing.tasks.sessions_clear",
        "schedule": crontab(minute="*/15"),
    },
    "portal-login-attempts-prune": {
        "task": "billing.tasks.portal_login_attempts_prune",
        "schedule": crontab(minute=7),
    },
}
