"""The Celery application shared by the worker, beat and every process that enqueues."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Celery's Django fix-up closes the database connection after every task by
# default; reusing it is 3x faster (design/research-performance.md §3.4).
# CONN_HEALTH_CHECKS is on, and no task sets a hard time limit inside a query.
os.environ.setdefault("CELERY_DB_REUSE_MAX", "1000")

app = Celery("payeasy_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
