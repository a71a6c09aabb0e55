"""Every task has a queue by its kind; nothing but money runs on the payments queue.

A new task without a route fails here, instead of landing silently on the default queue (which, until
issue 11, was the payments queue: a 60,000-invoice publication delayed acknowledged payments by
minutes). The layout of config/Procfile is checked against the queues too.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]

# What applies money. Adding a task here is a decision: it will compete with the line's wake-ups.
PAYMENT_TASKS = {
    "payeasy.tasks.notices_apply",
    "payeasy.tasks.notices_sweep",
    "payeasy.tasks.teller_drop_scan",
}


def registered_tasks() -> list[str]:
    # autodiscovery, as a worker does at start (without the worker's model checks, which would open a
    # database connection while pytest collects)
    for config in apps.get_app_configs():
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"{config.name}.tasks")
    names = sorted(name for name in app.tasks if not name.startswith("celery."))
    assert "payeasy.tasks.notices_apply" in names  # autodiscovery did run
    return names


def routed_queue(name: str) -> str:
    return app.amqp.router.route({}, name)["queue"].name


@pytest.mark.parametrize("name", registered_tasks())
def test_every_task_has_an_explicit_route_to_a_declared_queue(name: str) -> None:
    assert name in settings.CELERY_TASK_ROUTES, (
        f"{name} has no route in CELERY_TASK_ROUTES (config/settings/tasks.py): give it the queue of its kind"
    )
    queue = settings.CELERY_TASK_ROUTES[name]["queue"]
    assert queue in settings.TASK_QUEUES
    assert routed_queue(name) == queue  # the route is the one celery uses


def test_nothing_but_money_runs_on_the_payments_queue() -> None:
    on_payments = {name for name in registered_tasks() if routed_queue(name) == settings.PAYMENTS_QUEUE}
    assert on_payments == PAYMENT_TASKS


def test_email_goes_to_notifications() -> None:
    for name in (
        "billing.tasks.receipts_send",
        "billing.tasks.invitation_send",
        "billing.tasks.invoice_published_notify",
        "billing.tasks.due_reminders_send",
        "billing.tasks.portal_invitation_send",
        "billing.tasks.portal_password_reset_send",
        "billing.tasks.payment_request_notify",
    ):
        assert routed_queue(name) == settings.NOTIFICATIONS_QUEUE, name


def test_the_default_queue_is_declared_and_is_not_payments() -> None:
    assert settings.CELERY_TASK_DEFAULT_QUEUE in settings.TASK_QUEUES
    assert settings.CELERY_TASK_DEFAULT_QUEUE != settings.PAYMENTS_QUEUE
    assert settings.CELERY_TASK_DEFAULT_QUEUE in settings.BACKGROUND_QUEUES
    assert routed_queue("some.task.without.a.route") == settings.CELERY_TASK_DEFAULT_QUEUE
    assert [q.name for q in settings.CELERY_TASK_QUEUES] == list(settings.TASK_QUEUES)


def test_every_beat_entry_runs_a_routed_task() -> None:
    names = set(registered_tasks())
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in names
        assert entry["task"] in settings.CELERY_TASK_ROUTES
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert set(settings.PAYEASY_BEAT_RUNS_ITSELF) <= scheduled


def procfile_workers() -> dict[str, list[str]]:
    workers = {}
    for line in (ROOT / "config" / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if "celery -A config worker" in command:
            match = re.search(r"(?:--queues[= ]|-Q )(\S+)", command)
            assert match, f"the Procfile's {name} names no queues: it would consume every queue"
            workers[name.strip()] = match.group(1).split(",")
    return workers


def test_the_procfile_workers_consume_every_queue_and_one_only_payments() -> None:
    workers = procfile_workers()
    consumed = {queue for queues in workers.values() for queue in queues}
    assert consumed == set(settings.TASK_QUEUES)
    assert [settings.PAYMENTS_QUEUE] in workers.values()  # a worker that does nothing else
    assert sum(settings.PAYMENTS_QUEUE in queues for queues in workers.values()) == 1
