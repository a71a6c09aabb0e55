"""After-commit announcements: how a service starts work in a worker without importing tasks.

A service never imports a ``tasks`` module (tasks import services, so the reverse would be a cycle).
It names the Celery task that must run once its transaction commits::

    events.after_commit("billing.tasks.invitation_send", invitation.pk, token)

This module knows no services and no tasks: it looks the task up by its registered name in the Celery
app (every app's ``tasks`` module is loaded on first use) and calls ``delay``, so eager mode in tests
and the queue routes of ``config/settings/tasks.py`` apply as before. ``tests/billing/test_events.py``
checks that every name announced anywhere in the code is a registered task.

A broker that is away never undoes a committed write: the failure is logged with the task name, and
the caller's own recovery (a sweeper, a resend button, the job list) takes over.
"""

from __future__ import annotations

import logging
from typing import Any

from amqp.exceptions import AMQPError
from django.db import transaction
from kombu.exceptions import KombuError

log = logging.getLogger("billing.events")

# What publishing raises when the broker cannot take a message (kombu wraps Redis's connection errors in
# its OperationalError; the file broker raises amqp's ChannelError or an OSError). Anything else is the
# task's own failure (eager mode runs it here) and propagates as it did before.
BROKER_ERRORS = (KombuError, AMQPError, OSError)


def send(task: str, *args: Any) -> bool:
    """Queue ``task`` now; False (logged) when the broker refused it."""
    registered = _task(task)
    try:
        registered.delay(*args)
    except BROKER_ERRORS:  # the broker is away; the write is committed
        log.exception("task %s not queued", task)
        return False
    return True


def _task(name: str) -> Any:
    from celery import current_app  # the app of config.celery, loaded with Django's settings

    if name not in current_app.tasks:  # first use in this process: load every app's tasks module
        current_app.autodiscover_tasks(force=True)
    return current_app.tasks[name]  # KeyError: not a task, a programming error (tests check names)


def after_commit(task: str, *args: Any, using: str | None = None) -> None:
    """Queue ``task`` with ``args`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: send(task, *args), using=using)
