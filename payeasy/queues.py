"""The Celery queues and how many messages wait in each: read by /metrics (``payeasy.metrics``) and the
operator alerts (``payeasy.alerts``) alike, from the broker itself."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

REDIS_TIMEOUT_SECONDS = 1.0
# kombu's Redis transport: a queue's messages of priority p > 0 are in the list "<queue>\x06\x16<p>"
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)


def queue_names() -> list[str]:
    """The Celery queues (config/settings/tasks.py), each once."""
    names = [q.name for q in getattr(settings, "CELERY_TASK_QUEUES", ())]
    names += [r["queue"] for r in getattr(settings, "CELERY_TASK_ROUTES", {}).values() if r.get("queue")]
    return list(dict.fromkeys(names))


def queue_depths() -> dict[str, int] | None:
    """Messages waiting in each queue: Redis, the lengths of its lists (one pipelined round trip); the
    filesystem broker, its message files (``<time>_<uuid>.<queue>.msg``); None for any other broker."""
    names = queue_names()
    url = settings.CELERY_BROKER_URL
    scheme = urlsplit(url).scheme.lower()
    if scheme in {"redis", "rediss", "unix"}:
        from payeasy.health import redis_client

        client = redis_client(url, REDIS_TIMEOUT_SECONDS)
        try:
            pipe = client.pipeline(transaction=False)
            for name in names:
                for step in REDIS_PRIORITY_STEPS:
                    pipe.llen(name if step == 0 else f"{name}{REDIS_PRIORITY_SEP}{step}")
            lengths = pipe.execute()
        finally:
            client.close()
        steps = len(REDIS_PRIORITY_STEPS)
        return {name: sum(lengths[i * steps : (i + 1) * steps]) for i, name in enumerate(names)}
    if scheme == "filesystem":
        options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
        folder = options.get("data_folder_in")
        if not folder:
            return None
        depths = dict.fromkeys(names, 0)
        with os.scandir(Path(folder)) as entries:
            for entry in entries:
                queue = entry.name.partition(".")[2].removesuffix(".msg")
                if queue in depths and entry.name.endswith(".msg"):
                    depths[queue] += 1
        return depths
    return None
