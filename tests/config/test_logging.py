"""Structured logs (config/logs.py): the ids of a request on its lines, in its tasks, and the masking."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from celery.signals import task_prerun
from django.test import Client

from billing.models import Biller
from config import logs

pytestmark = pytest.mark.django_db  # requests open the tenant's transaction (PostgreSQL)


class JsonLines:
    """A JSON handler, with the product's filters, on the root logger for the test."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(logs.JsonFormatter())
        self.handler.addFilter(logs.ContextFilter())
        self.handler.addFilter(logs.RedactFilter())

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def json_lines() -> Iterator[JsonLines]:
    lines = JsonLines()
    root = logging.getLogger()
    root.addHandler(lines.handler)
    try:
        yield lines
    finally:
        root.removeHandler(lines.handler)


def _access(lines: JsonLines) -> list[dict[str, Any]]:
    return [e for e in lines.entries() if e["logger"] == "payeasy.access"]


def test_a_request_logs_a_json_line_with_its_request_id_and_tenant(
    admin_client: Client, biller: Biller, json_lines: JsonLines
) -> None:
    response = admin_client.get(f"/b/{biller.slug}/api/v1/customers/", HTTP_X_REQUEST_ID="req-4f2a9c.1")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-4f2a9c.1"
    [entry] = _access(json_lines)
    assert entry["request_id"] == "req-4f2a9c.1"
    assert entry["tenant"] == str(biller.pk)  # the id, not the name
    assert entry["role"] == "test"
    assert entry["level"] == "INFO"
    assert entry["time"].endswith("+00:00") and "T" in entry["time"]
    assert len(entry["trace_id"]) == 32 and len(entry["span_id"]) == 16
    assert entry["message"].startswith("GET api:") or entry["message"].startswith("GET ")
    assert biller.slug not in entry["message"]  # the URL name, not the path


@pytest.mark.parametrize(
    "given",
    ["has space", "x" * 129, "12345678901234", "id\nforged: line", "<script>", ""],
)
def test_an_unusable_request_id_is_replaced(client: Client, given: str, json_lines: JsonLines) -> None:
    response = client.get("/", HTTP_X_REQUEST_ID=given)
    generated = response["X-Request-ID"]
    assert generated != given and len(generated) == 32
    assert _access(json_lines)[-1]["request_id"] == generated


def test_the_trace_id_comes_from_a_valid_traceparent(client: Client, json_lines: JsonLines) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    client.get("/", HTTP_TRACEPARENT=f"00-{trace}-00f067aa0ba902b7-01")
    client.get("/", HTTP_TRACEPARENT=f"00-{'0' * 32}-00f067aa0ba902b7-01")  # all-zero: invalid
    client.get("/", HTTP_TRACEPARENT="ff-" + trace + "-00f067aa0ba902b7-01")  # version ff: invalid
    first, second, third = _access(json_lines)[-3:]
    assert first["trace_id"] == trace
    assert second["trace_id"] not in {trace, "0" * 32}
    assert third["trace_id"] != trace
    assert len({first["span_id"], second["span_id"], third["span_id"]}) == 3


def test_no_ids_outside_a_request(client: Client, json_lines: JsonLines) -> None:
    client.get("/")
    logging.getLogger("tests.logging").warning("after the request")
    entry = json_lines.entries()[-1]
    assert entry["message"] == "after the request"
    assert entry["request_id"] is None and entry["tenant"] is None


@pytest.mark.django_db(transaction=True)
def test_a_task_sent_by_a_request_runs_with_its_ids(admin_client: Client, biller: Biller) -> None:
    """Tests run tasks eagerly in the request's thread: the task sees the request's ids (a worker
    gets them from the message's headers: tests/integration/test_log_ids.py)."""
    seen: list[dict[str, str | None]] = []

    def record(task: Any = None, **kwargs: Any) -> None:
        if task is not None and task.name == "billing.tasks.invitation_send":
            seen.append(logs.current_ids())

    task_prerun.connect(record, weak=False)
    try:
        response = admin_client.post(
            f"/b/{biller.slug}/console/members/",
            {"email": "op@example.jp", "role": "operator"},
            HTTP_X_REQUEST_ID="req-invite-1",
        )
    finally:
        task_prerun.disconnect(record)
    assert response.status_code == 302
    assert response["X-Request-ID"] == "req-invite-1"
    [ids] = seen
    assert ids["request_id"] == "req-invite-1"
    assert ids["tenant"] == str(biller.pk)
    assert ids["trace_id"]


def test_the_headers_of_a_published_task_carry_the_ids() -> None:
    headers: dict[str, Any] = {"id": "t1"}
    with logs.log_context(request_id="req-1", trace_id="a" * 32, span_id="b" * 16, tenant="7"):
        logs.task_headers_add(headers)
    assert headers[logs.TASK_HEADER] == {"request_id": "req-1", "trace_id": "a" * 32, "tenant": "7"}
    empty: dict[str, Any] = {}
    logs.task_headers_add(empty)  # nothing to carry outside a request
    assert logs.TASK_HEADER not in empty


# --- masking ------------------------------------------------------------------------------------


def _masked(*args: Any, msg: str = "%s", exc: BaseException | None = None) -> dict[str, Any]:
    """One record through the product's filters and formatter, on a logger of the test's own (not the
    root's: these records carry on purpose what the run's log scan looks for)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    handler.addFilter(logs.RedactFilter())
    logger = logging.Logger("tests.masking")  # not registered: does not propagate to the root
    logger.addHandler(handler)
    if exc is not None:
        try:
            raise exc
        except BaseException:
            logger.exception(msg, *args)
    else:
        logger.warning(msg, *args)
    return json.loads(stream.getvalue())


def test_a_customer_number_and_a_password_in_args_are_masked() -> None:
    entry = _masked(
        "1234567890123456", {"password": "hunter2hunter2", "transaction_key": "MPNC00001", "n": 3}
    )
    assert "1234567890123456" not in entry["message"] and "[digits]" in entry["message"]
    assert "hunter2hunter2" not in entry["message"] and "[redacted]" in entry["message"]
    assert "MPNC00001" in entry["message"] and "'n': 3" in entry["message"]
    assert entry["redacted"] == ["digits", "keys"]


def test_a_mapping_argument_is_masked_by_key() -> None:
    entry = _masked({"customer_number": "1234", "token": "abc", "name": "x.y"}, msg="%(name)s %(token)s")
    assert entry["message"] == "x.y [redacted]"  # a task's name (Celery's records) stays


def test_what_stays_readable() -> None:
    """Transaction keys, hex ids, times and short numbers are what makes a log useful."""
    text = (
        "MPNC0000012026112607000000 at 2026-12-03T16:18:55.123+00:00, id 4bf92f3577b34da6a3ce929d0e0e4736, "
        "1234567890abcdef, 42 frames, port 7200, 0.0123 s, confirmation 123456, "
        "task 2c2d86e7-3b0e-4c42-9e55-123456789012"
    )
    entry = _masked(text)
    assert entry["message"] == text
    assert "redacted" not in entry


def test_arguments_that_do_not_fit_are_masked_too() -> None:
    entry = _masked("1234567890123456", "x", msg="only %s")
    assert "1234567890123456" not in entry["message"] and "[digits]" in entry["message"]


def test_emails_cards_and_tracebacks_are_masked() -> None:
    entry = _masked(
        "mail to taro.yamada@example.co.jp, card 4111-1111-1111-1111",
        exc=ValueError("Key (customer_number)=(9876543210987654) already exists"),
    )
    assert entry["message"] == "mail to [email], card [digits]"
    assert "9876543210987654" not in entry["exc_info"] and "[digits]" in entry["exc_info"]
    assert "ValueError" in entry["exc_info"]
    assert entry["redacted"] == ["digits", "email"]


def test_the_log_format_follows_debug_and_log_format() -> None:
    assert (
        logs.logging_config(debug=True, log_format=None, log_file=None, level="INFO")["handlers"]["stderr"][
            "formatter"
        ]
        == "plain"
    )
    assert (
        logs.logging_config(debug=False, log_format=None, log_file=None, level="INFO")["handlers"]["stderr"][
            "formatter"
        ]
        == "json"
    )
    config = logs.logging_config(debug=True, log_format="json", log_file="/tmp/x-{pid}.jsonl", level="INFO")
    assert config["handlers"]["stderr"]["formatter"] == "json"
    assert config["handlers"]["file"]["formatter"] == "json"
    assert config["root"]["handlers"] == ["stderr", "file"]


@pytest.mark.parametrize(
    ("argv", "role"),
    [
        (["/x/celery/__main__.py", "-A", "config", "worker", "--pool=solo"], "worker"),
        (["/x/celery/__main__.py", "-A", "config", "beat"], "beat"),
        (["manage.py", "commserver", "--port", "0"], "commserver"),
        (["manage.py", "runserver"], "web"),
        (["/x/bin/gunicorn", "config.wsgi"], "web"),
        (["/x/uvicorn/__main__.py", "config.asgi:application"], "web"),
        (["/x/pytest/__main__.py", "tests"], "test"),
    ],
)
def test_the_process_role_from_the_command_line(argv: list[str], role: str, monkeypatch: Any) -> None:
    monkeypatch.delenv("PAYEASY_PROCESS_ROLE", raising=False)
    assert logs.process_role(argv) == role


def test_a_record_for_two_handlers_is_masked_and_formatted_once_and_the_same_in_both() -> None:
    """The stderr and the file handler (LOG_FILE) each filter the original record: the masked copy and
    its JSON line are made once and written by both."""
    streams = [io.StringIO(), io.StringIO()]
    logger = logging.Logger("tests.masking.twice")  # not registered: does not propagate to the root
    for stream in streams:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logs.JsonFormatter())
        handler.addFilter(logs.ContextFilter())
        handler.addFilter(logs.RedactFilter())
        logger.addHandler(handler)
    masked: list[logging.LogRecord] = []
    original = logs.mask_text
    try:
        logs.mask_text = lambda text: masked.append(text) or original(text)  # type: ignore[assignment, func-returns-value]
        logger.warning("pay %s", "1234567890123456")
    finally:
        logs.mask_text = original  # type: ignore[assignment]
    first, second = (json.loads(s.getvalue()) for s in streams)
    assert first == second and first["message"] == "pay [digits]" and first["redacted"] == ["digits"]
    assert len(masked) == 1


@pytest.mark.parametrize("method", ["BREW1234567890123456", "PROPFIND"])
def test_the_access_line_names_an_unknown_method_other(
    client: Client, json_lines: JsonLines, method: str
) -> None:
    """The access line is the product's own words (a known method, the URL's name, status, time) and is
    not masked: a method that is not HTTP's own is logged as other, never as sent."""
    client.generic(method, "/healthz-not-a-page/")
    [entry] = _access(json_lines)
    assert entry["message"].startswith("other - ") and method not in entry["message"]
    assert "redacted" not in entry
