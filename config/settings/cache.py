"""The cache, shared by every process (web, worker): Redis when configured, else files in the run directory.

It carries short-lived state that must be visible across processes, such as
the progress of a background import.
"""

from config.settings.env import RUN_DIR, env_str

_redis = env_str("REDIS_URL")
if _redis:
    CACHES = {
        "default": {
            "BACKEND": "config.redis_cache.RedisCache",  # one client per pool (config/redis_cache.py)
            "LOCATION": _redis,
            "KEY_PREFIX": "portal",
            # pages read the cache on every view (billing.page_cache): a Redis host that does not
            # answer must cost a page a moment, not the operating system's connect timeout
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 2.0},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(RUN_DIR / "cache"),
        }
    }
