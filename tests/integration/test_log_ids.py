"""A worker process logs a task with the request, trace and tenant ids of the request that sent it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from billing.models import Biller

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _task_lines(folder: Path, task: str) -> list[dict[str, Any]]:
    out = []
    for path in folder.glob("worker-*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if task in entry["message"] and "succeeded" in entry["message"]:
                out.append(entry)
    return out


@pytest.mark.parametrize("celery_broker", ["filesystem"], indirect=True)
def test_the_worker_logs_the_task_with_the_ids_of_the_request(  # type: ignore[no-untyped-def]
    celery_broker, worker_factory, admin_client: Client, biller: Biller, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    mail = tmp_path / "mail"
    mail.mkdir()
    worker = worker_factory(
        LOG_FILE=str(logs / "{role}-{pid}.jsonl"),
        DJANGO_EMAIL_BACKEND="file",
        DJANGO_EMAIL_FILE_PATH=str(mail),
        **celery_broker,
    )
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = admin_client.post(
        f"/b/{biller.slug}/console/members/",
        {"email": "op@example.jp", "role": "operator"},
        HTTP_X_REQUEST_ID="req-worker-7",
        HTTP_TRACEPARENT=f"00-{trace}-00f067aa0ba902b7-01",
    )
    assert response.status_code == 302
    deadline = time.monotonic() + 30
    while not (lines := _task_lines(logs, "billing.tasks.invitation_send")):
        if time.monotonic() > deadline:
            raise AssertionError(f"no task line in the worker's JSON log; worker output:\n{worker.output()}")
        time.sleep(0.2)
    [entry] = lines
    assert entry["role"] == "worker"
    assert entry["request_id"] == "req-worker-7"
    assert entry["trace_id"] == trace
    assert entry["tenant"] == str(biller.pk)
    assert entry["span_id"] and entry["span_id"] != "00f067aa0ba902b7"
    # the worker's own lines outside any task carry no request's ids
    ready = [
        json.loads(line)
        for path in logs.glob("worker-*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
        if " ready." in line
    ]
    assert ready and all(e["request_id"] is None for e in ready)
