"""Settings for the test suite: development defaults, fast hashing, e-mail in memory."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("PAYEASY_RUN_DIR", os.path.join(os.path.dirname(__file__), "..", ".run", "test"))

from config.settings import *  # noqa: F403
from config.settings import DATABASES, RUN_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
# Unit tests run tasks in the test process; tests/integration starts real workers.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
LANGUAGE_CODE = "en"

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so worker processes started by integration tests see the same data;
    # one per test process so parallel runs never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(RUN_DIR / f"test-{os.getpid()}.sqlite3")}
