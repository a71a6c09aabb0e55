"""Structured logs: one JSON object per line, with the ids that tie a line to its request, and masking.

Every line says which request (``request_id``), which trace (``trace_id``, ``span_id``), which tenant
(``tenant``: the biller's id, never its name) and which process (``role``: web, worker, beat,
commserver, command, test) it belongs to. The ids live in context variables: the web middleware
(:class:`RequestIdMiddleware`) sets them for a request, a task carries them in its message headers to
the worker (config/celery.py), and :class:`ContextFilter` copies them onto every record.

The rule is that the code does not log payment numbers (お客様番号, 確認番号), names, e-mail addresses or
secrets. :class:`RedactFilter` is the second line of defence, on every handler: in the final message
and the traceback it masks

- whole tokens of 10 or more digits (``[digits]``), and digits grouped like a card number
  (``1234-5678-9012-3456``): a customer number is 16 digits. Digits glued to letters are identifiers
  and stay (a transaction key such as ``MPNC0000012026112607000000``, a hex id); an ISO time
  (``2026-12-03T16:18:55``) has no run that long. A 6-digit confirmation number cannot be told from
  other numbers and is the code's to keep out;
- e-mail addresses (``[email]``);
- the DETAIL line of a PostgreSQL error (the refused row's values);
- in a record whose argument is a mapping (``log.info("%(x)s", {...})``) or has mappings among its
  arguments, the values of keys named like a secret or personal data (password, secret, token, key,
  authorization, cookie, customer_number, email, kana, payer_name…; not ``transaction_key``).

A record it had to mask says so (``"redacted": ["digits", …]`` in its JSON line), so the test suite's
log scan (tests/logscan.py) can tell code that logged something it must not from a clean log.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import logging
import os
import re
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

# --- the ids ---------------------------------------------------------------------------------------

IDS = ("request_id", "trace_id", "span_id", "tenant")
_vars: dict[str, ContextVar[str | None]] = {name: ContextVar(f"log_{name}", default=None) for name in IDS}

# An incoming X-Request-ID is kept when it is a plain token: 1–128 characters of letters, digits and
# ._:- (a UUID, a load balancer's id), not all digits (a number is no request id, and may be a payment
# number). Anything else is replaced by a new id.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")
# W3C Trace Context: version-traceid-parentid-flags, lower-case hex; version ff and all-zero ids invalid
TRACEPARENT_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\Z")


def current_ids() -> dict[str, str | None]:
    """The ids of the request or task running in this context (None where there is none)."""
    return {name: var.get() for name, var in _vars.items()}


def bind_ids(**ids: str | None) -> None:
    """Set ids for the rest of this context (a task's run, a request): names from ``IDS``."""
    for name, value in ids.items():
        _vars[name].set(value)


def clear_ids() -> None:
    for var in _vars.values():
        var.set(None)


@contextlib.contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """The ids for the block, the previous ones put back after it."""
    tokens = [(_vars[name], _vars[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


def sane_request_id(value: str | None) -> str | None:
    """``value`` if it may be used as a request id as given, else None."""
    if value and REQUEST_ID_RE.match(value) and not value.isdigit():
        return value
    return None


def trace_id_from_traceparent(value: str | None) -> str | None:
    """The trace id of a valid W3C ``traceparent`` header, else None."""
    if not value:
        return None
    match = TRACEPARENT_RE.match(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return None
    return trace_id


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_name(request: HttpRequest) -> str:
    """The request's method if it is one of HTTP's usual ones, else ``other``: never what a client sent
    as it sent it (the access line, the metrics' label)."""
    method = (request.method or "").upper()
    return method if method in HTTP_METHODS else "other"


class RequestIdMiddleware:
    """Gives each request its ids: ``request_id`` from a sane ``X-Request-ID`` or a new one, returned
    in the response's ``X-Request-ID``; ``trace_id`` from a valid ``traceparent`` or a new one, and a new
    ``span_id``; the ``tenant`` once the tenant middleware has found the biller. Ends each request with
    one line: method, URL name (not the path, which may carry numbers), status, duration.

    The ids stay set until the request is finished (``request_finished``), so that Django's own log of
    a 4xx/5xx, written after the last middleware, carries them too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        connect_request_finished()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META  # not request.headers: a mapping of every header, for two of them
        request_id = sane_request_id(meta.get("HTTP_X_REQUEST_ID")) or new_request_id()
        trace_id = trace_id_from_traceparent(meta.get("HTTP_TRACEPARENT")) or new_trace_id()
        bind_ids(request_id=request_id, trace_id=trace_id, span_id=new_span_id(), tenant=None)
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.monotonic()
        response = self.get_response(request)
        response.headers["X-Request-ID"] = request_id
        biller = getattr(request, "biller", None)
        if biller is not None:
            _vars["tenant"].set(str(biller.pk))
        match = getattr(request, "resolver_match", None)
        # every part is the product's own (a known method, a URL pattern's name, the status, the time):
        # nothing to mask, so the line skips the redaction every other record goes through
        access_log.info(
            "%s %s %s %.0f ms",
            method_name(request),
            (match.view_name if match is not None else "-") or "-",
            response.status_code,
            (time.monotonic() - started) * 1000,
            extra={"redaction_done": True},
        )
        return response

    def process_view(self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any) -> None:
        """The tenant is known once the tenant middleware has run (it sets ``request.biller``)."""
        biller = getattr(request, "biller", None)
        _vars["tenant"].set(None if biller is None else str(biller.pk))
        return None


access_log = logging.getLogger("payeasy.access")


def _request_finished(**kwargs: Any) -> None:
    clear_ids()


# --- tasks: the ids travel in a header of the task's message ---------------------------------------

TASK_HEADER = "payeasy_log_ids"


def task_headers_add(headers: dict[str, Any] | None) -> None:
    """Celery's before_task_publish: the sender's request, trace and tenant ids into the message."""
    if headers is None or TASK_HEADER in headers:
        return
    ids = {name: value for name, value in current_ids().items() if value and name != "span_id"}
    if ids:
        headers[TASK_HEADER] = ids


def task_started(task: Any) -> None:
    """Celery's task_prerun in a worker: the ids of the request that sent the task (a new trace when
    it came from no request: beat, a command), a new span for the run. A task run eagerly in the
    caller's process keeps the caller's ids."""
    request = getattr(task, "request", None)
    if request is None or getattr(request, "is_eager", False):
        return
    ids = getattr(request, TASK_HEADER, None)
    if not isinstance(ids, dict):
        ids = (getattr(request, "headers", None) or {}).get(TASK_HEADER) or {}
    bind_ids(
        request_id=_str_or_none(ids.get("request_id")),
        trace_id=_str_or_none(ids.get("trace_id")) or new_trace_id(),
        span_id=new_span_id(),
        tenant=_str_or_none(ids.get("tenant")),
    )


def task_finished(task: Any) -> None:
    if not getattr(getattr(task, "request", None), "is_eager", False):
        clear_ids()


def _str_or_none(value: object) -> str | None:
    return value[:128] if isinstance(value, str) and value else None


def connect_request_finished() -> None:
    from django.core.signals import request_finished

    request_finished.connect(_request_finished, dispatch_uid="config.logs.clear_ids")


# --- the process ----------------------------------------------------------------------------------


def process_role(argv: list[str] | None = None) -> str:
    """What this process is: ``PAYEASY_PROCESS_ROLE`` if set, else guessed from the command line."""
    role = os.environ.get("PAYEASY_PROCESS_ROLE")
    if role:
        return role
    argv = sys.argv if argv is None else argv
    program = os.path.basename(argv[0]) if argv else ""
    if program == "__main__.py":  # python -m <package>: the package's name
        program = os.path.basename(os.path.dirname(argv[0]))
    words = argv[1:]
    if "celery" in argv[0]:
        for word in words:
            if word in {"worker", "beat", "flower"}:
                return word
        return "celery"
    if program.startswith(("gunicorn", "uvicorn", "daphne", "hypercorn")):
        return "web"
    if "pytest" in argv[0]:
        return "test"
    if program == "manage.py" or program.startswith("django"):
        command = next((w for w in words if not w.startswith("-")), "")
        if command in {"runserver", "runserver_plus"}:
            return "web"
        return command or "command"
    program = program.removesuffix(".py")
    return program if program and not program.startswith("-") else "python"


_role: str | None = None


def role() -> str:
    global _role
    if _role is None:
        _role = process_role()
    return _role


# --- the filters and the formatter ----------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Puts the ids of the running request or task, and the process role, on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _vars.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        if getattr(record, "role", None) is None:
            record.role = role()
        return True


DIGITS_RE = re.compile(
    # a UUID (a task id) is matched first and kept: its last group may be all digits
    r"(?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?<![0-9A-Za-z])(?:\d{10,}|\d{4}(?:[ -]\d{4}){2}[ -]\d{1,7})(?![0-9A-Za-z])",
)
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
SENSITIVE_KEY_RE = re.compile(
    r"pass(word|wd|phrase)?|secret|token|authori[sz]ation|cookie|credential|kek|signature|otp|"
    r"(^|[_-])key$|^key|customer_number|confirmation|e-?mail|kana|phone|"
    r"(customer|payer|recipient|contact|holder|requester|user|full|first|last|given|family)_?name",
    re.IGNORECASE,
)
SAFE_KEYS = frozenset({"transaction_key", "file_name", "filename", "task_name", "view_name", "hostname"})
MASK = "[redacted]"


# PostgreSQL's DETAIL of a refused write repeats the row's values ("Failing row contains (…)",
# "Key (…)=(…)"); psycopg puts it in the exception's text
DB_DETAIL_RE = re.compile(r"^(\s*DETAIL:).*$", re.MULTILINE)


def mask_text(text: str) -> tuple[str, list[str]]:
    """``text`` with digit runs, e-mail addresses and database row details masked, and which kinds
    were found."""
    found: list[str] = []
    masked, n = DB_DETAIL_RE.subn(r"\1 [redacted]", text)
    if n:
        found.append("db-detail")
    digits = 0

    def digit_run(match: re.Match[str]) -> str:
        nonlocal digits
        if match["uuid"]:
            return match["uuid"]
        digits += 1
        return "[digits]"

    masked = DIGITS_RE.sub(digit_run, masked)
    if digits:
        found.append("digits")
    masked, n = EMAIL_RE.subn("[email]", masked)
    if n:
        found.append("email")
    return masked, found


def _sensitive_key(key: object) -> bool:
    return isinstance(key, str) and key.lower() not in SAFE_KEYS and bool(SENSITIVE_KEY_RE.search(key))


def mask_mapping(value: Mapping[Any, Any]) -> tuple[dict[Any, Any], bool]:
    """A copy of ``value`` with the values of secret-like and personal keys masked (nested too)."""
    masked: dict[Any, Any] = {}
    changed = False
    for key, item in value.items():
        if _sensitive_key(key) and item not in (None, ""):
            masked[key] = MASK
            changed = True
        elif isinstance(item, Mapping):
            masked[key], inner = mask_mapping(item)
            changed = changed or inner
        else:
            masked[key] = item
    return masked, changed


def exception_summary(exc: BaseException, *, frames: bool = False) -> str:
    """An exception for a log line without what its text may repeat of the data: its type and the
    first line of its text (a database error's DETAIL, which has the refused row's values, is on a
    later line), and with ``frames`` the frames of its traceback."""
    import traceback

    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first}"
    if frames:
        text += "\n" + "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    return text


class RedactFilter(logging.Filter):
    """Masks what looks like a payment number, an e-mail address or a secret (module docstring) in a
    copy of the record, message and traceback both, and notes on it what it masked."""

    _exc_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> logging.LogRecord | bool:
        if getattr(record, "redaction_done", False):
            return record
        masked = record.__dict__.get("_masked_copy")
        if masked is not None:  # masked already for another handler: the same copy
            return masked  # type: ignore[no-any-return]
        found: list[str] = []
        args = record.args
        if isinstance(args, Mapping):
            args, changed = mask_mapping(args)
            if changed:
                found.append("keys")
        elif isinstance(args, tuple) and any(isinstance(a, Mapping) for a in args):
            masked_args = []
            for arg in args:
                if isinstance(arg, Mapping):
                    arg, changed = mask_mapping(arg)
                    if changed:
                        found.append("keys")
                masked_args.append(arg)
            args = tuple(masked_args)
        try:
            message = str(record.msg) % args if args else str(record.msg)
        except Exception:  # arguments that do not fit the message: both, masked, rather than an error
            message = f"{record.msg} % {args!r}"
        message, kinds = mask_text(message)
        found += kinds
        exc_text = record.exc_text
        if record.exc_info and not exc_text:
            exc_text = self._exc_formatter.formatException(record.exc_info)
        if exc_text:
            exc_text, kinds = mask_text(exc_text)
            found += kinds
        stack = record.stack_info
        if stack:
            stack, kinds = mask_text(stack)
            found += kinds
        out = copy.copy(record)
        out.msg, out.args, out.exc_text, out.stack_info = message, None, exc_text, stack
        out.redacted = sorted(set(found + list(getattr(record, "redacted", None) or [])))
        out.redaction_done = True
        record._masked_copy = out  # each handler filters the original record: mask it once
        return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC, milliseconds), level, logger, message, the ids,
    role, pid, and the traceback as text (``exc_info``) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = record.__dict__.get("_json_line")
        if line is None:  # formatted once for all the JSON handlers of the record (stderr, the file)
            line = record._json_line = self._format(record)
        return line  # type: ignore[no-any-return]

    def _format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in IDS:
            entry[name] = getattr(record, name, None)
        entry["role"] = getattr(record, "role", None) or role()
        entry["pid"] = record.process
        task_id = getattr(record, "task_id", None)
        if isinstance(task_id, str):
            entry["task_id"] = task_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        redacted = getattr(record, "redacted", None)
        if redacted:
            entry["redacted"] = list(redacted)
        return json.dumps(entry, ensure_ascii=False, default=str)


class ProcessFileHandler(logging.FileHandler):
    """A file of this process's own: ``{pid}`` and ``{role}`` in the path are this process's, and a
    forked child (a prefork worker, a gunicorn worker) opens its own file at its first record instead
    of writing into its parent's."""

    def __init__(self, filename: str, mode: str = "a", encoding: str | None = "utf-8") -> None:
        self.template = os.fspath(filename)
        self._pid = os.getpid()
        super().__init__(self._path(), mode=mode, encoding=encoding, delay=True)

    def _path(self) -> str:
        path = self.template.format(pid=os.getpid(), role=role())
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return os.path.abspath(path)

    def emit(self, record: logging.LogRecord) -> None:
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self.stream = None  # type: ignore[assignment]  # the parent's; not closed here, it is shared
            self.baseFilename = self._path()
        super().emit(record)


def logging_config(
    *, debug: bool, log_format: str | None, log_file: str | None, level: str
) -> dict[str, Any]:
    """The LOGGING setting: standard error as JSON (``log_format="json"``, the default without DEBUG)
    or plain text (the default under DEBUG), plus, with ``log_file``, JSON lines into that file
    (a :class:`ProcessFileHandler` path). Every handler has the ids and the masking."""
    log_format = (log_format or ("plain" if debug else "json")).strip().lower()
    if log_format not in {"json", "plain"}:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {log_format!r}")
    filters = ["context", "redact"]
    handlers: dict[str, Any] = {
        "stderr": {"class": "logging.StreamHandler", "formatter": log_format, "filters": filters},
    }
    if log_file:
        handlers["file"] = {
            "()": "config.logs.ProcessFileHandler",
            "filename": log_file,
            "formatter": "json",
            "filters": filters,
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "config.logs.ContextFilter"},
            "redact": {"()": "config.logs.RedactFilter"},
        },
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "json": {"()": "config.logs.JsonFormatter"},
        },
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        "loggers": {"django.db.backends": {"level": "WARNING"}},
    }
