"""billing.events: services start tasks by name, after commit; every announced name is a task."""

from __future__ import annotations

import ast
import pathlib

import pytest
from celery import current_app
from django.db import transaction

from billing import events

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _announced_names() -> set[str]:
    names: set[str] = set()
    for path in [*ROOT.joinpath("billing").rglob("*.py"), *ROOT.joinpath("payeasy").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"after_commit", "send"}
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "events"
                and node.args
            ):
                first = node.args[0]
                assert isinstance(first, ast.Constant), f"{path}:{node.lineno}: name the task literally"
                names.add(first.value)
    return names


def test_every_announced_task_is_registered() -> None:
    names = _announced_names()
    assert names, "no service announces anything: the scan is broken"
    events._task("billing.tasks.sessions_clear")  # loads every tasks module
    assert sorted(n for n in names if n not in current_app.tasks) == []


@pytest.mark.django_db(transaction=True)
def test_after_commit_runs_only_when_the_transaction_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    task = events._task("billing.tasks.sessions_clear")
    monkeypatch.setattr(task, "delay", lambda *args: calls.append(args))
    with pytest.raises(RuntimeError), transaction.atomic():
        events.after_commit("billing.tasks.sessions_clear", 1)
        raise RuntimeError("rolled back")
    assert calls == []
    with transaction.atomic():
        events.after_commit("billing.tasks.sessions_clear", 2)
        assert calls == []
    assert calls == [(2,)]


def test_a_broker_failure_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    task = events._task("billing.tasks.sessions_clear")

    def refuse(*args: object) -> None:
        raise ConnectionError("broker away")

    monkeypatch.setattr(task, "delay", refuse)
    assert events.send("billing.tasks.sessions_clear") is False
    assert "billing.tasks.sessions_clear not queued" in caplog.text


def test_an_unknown_name_fails_loudly() -> None:
    with pytest.raises(KeyError):
        events.send("billing.tasks.no_such_task")


def test_a_task_failing_in_eager_mode_is_not_reported_as_a_broker_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = events._task("billing.tasks.sessions_clear")

    def fail(*args: object) -> None:
        raise ValueError("the task itself failed")

    monkeypatch.setattr(task, "delay", fail)
    with pytest.raises(ValueError, match="the task itself failed"):
        events.send("billing.tasks.sessions_clear")
