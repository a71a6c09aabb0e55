"""The log scan: no log line of a test run may carry a payment number, a name, an e-mail address or a secret.

During the run every process writes JSON log lines (config/logs.py) into one directory,
``.run/test-logs/run-<pid>/``: this process through a handler on the root logger, and every server,
worker, beat and commserver the tests start through ``LOG_FILE``, which they inherit from the
environment. Meanwhile the sensitive values the tests create are recorded as they are saved
(customer numbers, confirmation numbers, names and kana, e-mail addresses, account numbers, secrets)
together with the secrets of the settings.

At the end of the session — of the whole suite, or of any run with ``LOGSCAN=1`` (``LOGSCAN=0`` turns
it off) — every line of every file is read: it must be a JSON object with the fields every line has,
must not contain any of the recorded values, and must not carry ``redacted`` (the masking filter
caught something the code should not have logged). Anything found fails the session with the file,
the line and the kind of value; the directory is kept for reading. A clean run's directory is removed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from config import logs

ROOT = Path(__file__).resolve().parents[1]
LOG_ROOT = ROOT / ".run" / "test-logs"
RUN_DIR = LOG_ROOT / f"run-{os.getpid()}"
REQUIRED_FIELDS = ("time", "level", "logger", "message", "request_id", "trace_id", "tenant", "role")
# fields whose values are made by the logging itself (times, random ids, the pid): not scanned for values
ID_FIELDS = frozenset({"time", "request_id", "trace_id", "span_id", "pid", "task_id", "level", "role"})
MIN_LENGTH = 6  # shorter values hit by chance; text with non-ASCII characters (Japanese names): 4
MIN_LENGTH_NON_ASCII = 4
MAX_REPORTED = 40
STALE_AFTER = 24 * 3600  # seconds

# Sensitive fields by model field name (any model), and ``name`` only on these models (a file's or a
# plan's name is not personal data).
SENSITIVE_FIELDS = {
    "customer_number": "customer number",
    "confirmation_number": "confirmation number",
    "name_kana": "name (kana)",
    "payer_name_kana": "name (kana)",
    "requester_name_kana": "name (kana)",
    "holder_kana": "name (kana)",
    "recipient_name": "name",
    "contact_name": "name",
    "email": "e-mail address",
    "recipient_email": "e-mail address",
    "contact_email": "e-mail address",
    "contact_phone": "phone number",
    "account_number": "account number",
    "secret": "secret",
    "previous_secret": "secret",
    "totp_secret": "secret",
    "token_hash": "secret",
    "password": "password hash",
}
NAMED_MODELS = {"billing.customer", "billing.user"}
SECRET_SETTING_RE = re.compile(r"SECRET|KEK|TOKEN|PASSWORD", re.IGNORECASE)
TEST_PASSWORDS = ("correct horse battery",)  # the factories' default password


@dataclass
class Finding:
    path: Path
    line: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.kind}: {self.detail}"


class Registry:
    """The sensitive values of the run, by kind. Digit-only values are matched as whole digit runs;
    others as substrings."""

    def __init__(self) -> None:
        self.digits: dict[str, str] = {}
        self.text: dict[str, str] = {}

    def add(self, value: object, kind: str) -> None:
        if not isinstance(value, str):
            return
        value = value.strip()
        if value.isdigit() and value.isascii():
            if len(value) >= MIN_LENGTH and not _made_up(value):
                self.digits.setdefault(value, kind)
            return
        minimum = MIN_LENGTH if value.isascii() else MIN_LENGTH_NON_ASCII
        if len(value) >= minimum:
            self.text.setdefault(value, kind)

    def matcher(self) -> _Matcher:
        return _Matcher(self)


def _made_up(digits: str) -> bool:
    """A number a test wrote by hand (999999, 123456, 100000): also the id, amount or port some other
    line names, so looking for it finds them. The product's numbers are random (billing.numbers)."""
    return len(set(digits)) <= 2 or digits in "01234567890123456789" or digits in "98765432109876543210"


# Identifiers in hexadecimal inside a message — a task's UUID in Celery's lines, a request or trace id —
# whose digit runs are no numbers: "…-a44d325192bd" is not the confirmation number 325192. At least one
# letter a–f, so that a run of digits alone is never taken for one.
HEX_IDENTIFIER = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b(?=[0-9a-f]*[a-f])[0-9a-f]{16,}\b"
)


class _Matcher:
    """Finds registered values in a text in one pass: digit runs looked up in a set, other values
    by their first four characters at every position."""

    def __init__(self, registry: Registry) -> None:
        self.digits = dict(registry.digits)
        self.by_prefix: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for value, kind in registry.text.items():
            self.by_prefix[value[:MIN_LENGTH_NON_ASCII]].append((value, kind))

    def find(self, text: str) -> Iterable[tuple[str, str]]:
        for run in re.findall(r"\d+", HEX_IDENTIFIER.sub(" ", text)):
            kind = self.digits.get(run)
            if kind is not None:
                yield kind, run
        if not self.by_prefix:
            return
        prefixes = self.by_prefix
        for i in range(len(text) - MIN_LENGTH_NON_ASCII + 1):
            candidates = prefixes.get(text[i : i + MIN_LENGTH_NON_ASCII])
            if candidates:
                for value, kind in candidates:
                    if text.startswith(value, i):
                        yield kind, value


registry = Registry()


def _mask(value: str) -> str:
    """How a found value is shown in the report: enough to find it, not the value itself."""
    return f"{value[:2]}…{value[-2:]} ({len(value)} characters)" if len(value) > 6 else "…"


# --- recording the sensitive values ---------------------------------------------------------------


def _record_instance(sender: Any, instance: Any, **kwargs: Any) -> None:
    meta = getattr(sender, "_meta", None)
    if meta is None:
        return
    for field in meta.concrete_fields:
        kind = SENSITIVE_FIELDS.get(field.name)
        if kind is None and field.name == "name" and meta.label_lower in NAMED_MODELS:
            kind = "name"
        if kind is not None:
            registry.add(getattr(instance, field.attname, None), kind)
    if meta.label_lower == "billing.invoice":
        _record_customer_number(instance)


def _record_customer_number(invoice: Any) -> None:
    """お客様番号 is computed, not stored: from the biller's number key, when the biller is loaded
    (no query here: tests count queries)."""
    biller = invoice._state.fields_cache.get("biller")
    if biller is None or invoice.confirmation_number is None or invoice.pk is None:
        return
    from billing.numbers import issuer_for

    registry.add(issuer_for(biller.number_key).customer_number(invoice.pk), "customer number")


def _record_setting(setting: str, value: Any, **kwargs: Any) -> None:
    if SECRET_SETTING_RE.search(setting) and isinstance(value, str):
        registry.add(value, f"setting {setting}")


def _record_settings() -> None:
    from django.conf import settings

    for name in dir(settings):
        if name.isupper() and SECRET_SETTING_RE.search(name):
            _record_setting(name, getattr(settings, name, None))
    for alias in settings.DATABASES.values():
        registry.add(alias.get("PASSWORD"), "database password")
    for password in TEST_PASSWORDS:
        registry.add(password, "password")


# --- the log files --------------------------------------------------------------------------------


def _remove_stale_directories() -> None:
    """Directories of runs whose process is gone, a day after their last line (a clean run removes
    its own at once; a failed one keeps it to be read)."""
    if not LOG_ROOT.is_dir():
        return
    for path in LOG_ROOT.glob("run-*"):
        try:
            pid = int(path.name.removeprefix("run-"))
            if time.time() - path.stat().st_mtime < STALE_AFTER:
                continue
            os.kill(pid, 0)
        except (ValueError, OSError) as exc:
            if isinstance(exc, ProcessLookupError):
                shutil.rmtree(path, ignore_errors=True)


def _handler() -> logs.ProcessFileHandler:
    handler = logs.ProcessFileHandler(str(RUN_DIR / "{role}-{pid}.jsonl"))
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    handler.addFilter(logs.RedactFilter())
    handler.set_name("logscan")
    return handler


def _attach(handler: logging.Handler) -> None:
    """On the root logger (again, if a test configured logging anew and dropped it)."""
    root = logging.getLogger()
    if handler not in root.handlers:
        root.addHandler(handler)


# The development e-mail backend (billing.dev_mail, the default under DEBUG only) prints each message
# to standard output for the developer to read; a worker turns its standard output into log records.
# That is the development mailbox, not the product's log: its lines are checked for form only.
DEV_MAIL_LOGGER = "celery.redirected"
DEV_MAIL_MARK = "E-mail (development: printed here, not sent)"


def scan_line(text: str, matcher: _Matcher) -> list[tuple[str, str]]:
    """What is wrong with one log line: (kind, detail) pairs, none for a clean line."""
    try:
        entry = json.loads(text)
    except ValueError:
        return [("not JSON", text[:60])]
    if not isinstance(entry, dict):
        return [("not a JSON object", text[:60])]
    problems = [("missing field", name) for name in REQUIRED_FIELDS if name not in entry]
    if entry.get("logger") == DEV_MAIL_LOGGER and DEV_MAIL_MARK in str(entry.get("message")):
        return problems
    if entry.get("redacted"):
        problems.append(
            (
                "masked by the redaction filter (the code logged it)",
                f"{', '.join(entry['redacted'])} in {entry.get('logger')}: {str(entry.get('message'))[:120]}",
            )
        )
    for name, value in entry.items():
        if name in ID_FIELDS or not isinstance(value, str):
            continue
        for kind, found in matcher.find(value):
            problems.append((kind, f"{_mask(found)} in field {name!r} of {entry.get('logger')}"))
    return problems


def scan_directory(directory: Path, matcher: _Matcher) -> tuple[list[Finding], int, int]:
    """Every line of every ``*.jsonl`` file: the findings, the number of files and of lines."""
    findings: list[Finding] = []
    files = lines = 0
    for path in sorted(directory.glob("*.jsonl")):
        files += 1
        with path.open(encoding="utf-8", errors="replace") as f:
            for number, text in enumerate(f, 1):
                if not text.strip():
                    continue
                lines += 1
                for kind, detail in scan_line(text, matcher):
                    findings.append(Finding(path, number, kind, detail))
    return findings, files, lines


# --- the hooks ------------------------------------------------------------------------------------


def _wanted(config: pytest.Config) -> bool:
    """The whole suite (no paths given: ``testpaths``), or ``LOGSCAN=1``; ``LOGSCAN=0`` never."""
    flag = os.environ.get("LOGSCAN", "").strip().lower()
    if flag in {"0", "false", "no", "off"}:
        return False
    if flag in {"1", "true", "yes", "on"}:
        return True
    return config.args_source == pytest.Config.ArgsSource.TESTPATHS


_state: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # a parallel worker's own run: its parent scans
    _remove_stale_directories()
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    RUN_DIR.mkdir(parents=True)
    os.environ["LOG_FILE"] = str(RUN_DIR / "{role}-{pid}.jsonl")  # the processes the tests start
    handler = _handler()
    _attach(handler)
    _state["handler"] = handler

    from django.core.signals import setting_changed
    from django.db.models.signals import post_save

    post_save.connect(_record_instance, dispatch_uid="tests.logscan.record", weak=False)
    setting_changed.connect(_record_setting, dispatch_uid="tests.logscan.settings", weak=False)
    _record_settings()


def pytest_runtest_setup(item: pytest.Item) -> None:
    handler = _state.get("handler")
    if handler is not None:
        _attach(handler)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    handler = _state.pop("handler", None)
    if handler is None:
        return
    logging.getLogger().removeHandler(handler)
    handler.close()
    if not _wanted(session.config):
        shutil.rmtree(RUN_DIR, ignore_errors=True)
        return
    findings, files, lines = scan_directory(RUN_DIR, registry.matcher())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def write(text: str, **markup: bool) -> None:
        if reporter is not None:
            reporter.write_line(text, **markup)
        else:
            print(text)

    values = len(registry.digits) + len(registry.text)
    if not findings:
        write(f"log scan: {lines} lines in {files} files clean ({values} sensitive values looked for)")
        shutil.rmtree(RUN_DIR, ignore_errors=True)
        return
    write("")
    write(
        f"log scan FAILED: {len(findings)} findings in {lines} lines of {files} files ({RUN_DIR}):", red=True
    )
    for finding in findings[:MAX_REPORTED]:
        write(f"  {finding}", red=True)
    if len(findings) > MAX_REPORTED:
        write(f"  … and {len(findings) - MAX_REPORTED} more", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
