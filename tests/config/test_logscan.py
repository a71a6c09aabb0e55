"""The run's log scan (tests/logscan.py) finds what it is there to find, and passes a clean log."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from config import logs
from tests import logscan


def _line(message: str, **fields: object) -> str:
    """A line as the product writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    handler.addFilter(logs.RedactFilter())
    logger = logging.Logger("tests.logscan")  # not registered: nothing reaches the run's own logs
    logger.addHandler(handler)
    logger.warning("%s", message)
    entry = json.loads(stream.getvalue())
    entry.update(fields)
    return json.dumps(entry, ensure_ascii=False)


def _registry() -> logscan._Matcher:
    registry = logscan.Registry()
    registry.add("4821907733105522", "customer number")
    registry.add("482190", "confirmation number")
    registry.add("ﾔﾏﾀﾞ ﾀﾛｳ", "name (kana)")
    registry.add("山田太郎", "name")
    registry.add("abc", "secret")  # too short to look for
    registry.add("999999", "confirmation number")  # written by hand in a test: an id elsewhere
    registry.add("123456", "confirmation number")
    return registry.matcher()


def test_a_clean_line_passes() -> None:
    line = _line("notice MPNC0000012026112607000000 applied in 12 ms (request 4821907)")
    assert logscan.scan_line(line, _registry()) == []


def test_registered_values_are_found_where_they_are() -> None:
    matcher = _registry()
    kinds = [kind for kind, _ in logscan.scan_line(_line("payer ﾔﾏﾀﾞ ﾀﾛｳ paid, 確認番号 482190"), matcher)]
    assert kinds == ["confirmation number", "name (kana)"]
    assert [k for k, _ in logscan.scan_line(_line("x", exc_info="山田太郎さん"), matcher)] == ["name"]
    # a confirmation number is a whole digit run, not a part of a longer one
    assert logscan.scan_line(_line("port 4821905"), matcher) == []
    assert logscan.scan_line(_line("abc abc"), matcher) == []
    assert logscan.scan_line(_line("Not Found: /staff/operations/messages/999999/ 123456"), matcher) == []
    # nor the digits of a hexadecimal identifier (a Celery task's UUID, a request id) in a message
    task = "Task billing.tasks.import_job_run[300a15ef-bce5-4029-a943-a44d482190bd] succeeded in 0.02s: None"
    assert logscan.scan_line(_line(task), matcher) == []
    assert logscan.scan_line(_line("request 9f3c482190ab77e1d0c5b2a4e6f8a0c1 done"), matcher) == []
    assert [k for k, _ in logscan.scan_line(_line("task a44d-482190 bd"), matcher)] == ["confirmation number"]


def test_what_the_filter_had_to_mask_is_a_finding() -> None:
    [(kind, detail)] = logscan.scan_line(_line("customer 4821907733105522"), _registry())
    assert "redaction filter" in kind and "digits" in detail
    assert "4821907733105522" not in detail


def test_lines_that_are_not_json_or_lack_fields_are_findings() -> None:
    matcher = _registry()
    assert logscan.scan_line("2026-12-03 INFO plain text", matcher) == [
        ("not JSON", "2026-12-03 INFO plain text")
    ]
    entry = json.loads(_line("fine"))
    del entry["request_id"]
    assert logscan.scan_line(json.dumps(entry), matcher) == [("missing field", "request_id")]


def test_a_directory_is_scanned_line_by_line(tmp_path: Path) -> None:
    (tmp_path / "worker-1.jsonl").write_text(_line("ok") + "\n" + _line("paid by 山田太郎") + "\n")
    (tmp_path / "commserver-2.jsonl").write_text(_line("ok") + "\n")
    (tmp_path / "notes.txt").write_text("not a log\n")
    findings, files, lines = logscan.scan_directory(tmp_path, _registry())
    assert (files, lines) == (2, 3)
    [finding] = findings
    assert (finding.path.name, finding.line, finding.kind) == ("worker-1.jsonl", 2, "name")


def test_the_development_mailbox_is_not_the_log() -> None:
    """A worker under DEBUG prints e-mails (billing.dev_mail) to its standard output, which Celery logs."""
    mail = f"{'=' * 72}\n{logscan.DEV_MAIL_MARK}\nTo:       山田太郎 <taro@example.jp>"
    entry = json.loads(_line("x"))
    entry.update(logger="celery.redirected", message=mail)
    assert logscan.scan_line(json.dumps(entry, ensure_ascii=False), _registry()) == []
    entry["logger"] = "billing.mail"
    assert [k for k, _ in logscan.scan_line(json.dumps(entry, ensure_ascii=False), _registry())] == ["name"]
