"""The cache, shared by every process (web, worker): Redis when configured, else files in the run directory.

It carries short-lived state that must be visible across processes, such as
the progress of a background import.
"""

from config.settings.env import RUN_DIR, env_str

_redis = env_str("REDIS_URL")
if _redis:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _redis,
            "KEY_PREFIX": "portal",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(RUN_DIR / "cache"),
        }
    }
