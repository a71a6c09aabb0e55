"""The items of ``manage.py prod_check`` (``payeasy.prodcheck``): what one verified property says, and the
limits the checks hold settings and servers to."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

OK, FAIL, WAIVED = "OK", "FAIL", "WAIVED"

# A secret that guards something (the metrics endpoint) is at least this long, with this many different
# characters: 32 random URL-safe characters carry ~190 bits.
TOKEN_MIN_LENGTH = 32
TOKEN_MIN_DISTINCT = 10
# Django asks for 50 characters and 5 different ones (security.W009); a generated key has ~30 different.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_DISTINCT = 10
HSTS_MIN_SECONDS = 31536000  # a year: what SECURE_HSTS_PRELOAD (on in production) requires
# A role- or database-wide statement_timeout shorter than this cancels long imports and reconciliation
# runs; the product sets short ones itself where latency matters (the line's sessions, /readyz).
STATEMENT_TIMEOUT_MIN_MS = 300_000
REDIS_MIN_VERSION = (6, 2)
# Development mail backends: they print, keep in memory or write files; nobody receives anything.
DEV_MAIL_BACKENDS = {
    "billing.dev_mail.EmailBackend",
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}
VISIBILITY_MARGIN_SECONDS = 60
WAIVE_SETTING = "PAYEASY_PROD_CHECK_WAIVE"


@dataclass
class Item:
    """One verified property: ``id`` (stable, for waivers), what was found, and what to change."""

    id: str
    ok: bool
    found: str
    fix: str = ""
    waived: bool = False

    @property
    def status(self) -> str:
        return OK if self.ok else WAIVED if self.waived else FAIL

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status
        return data


def ok(id: str, found: str) -> Item:
    return Item(id, True, found)


def fail(id: str, found: str, fix: str) -> Item:
    return Item(id, False, found, fix)


def strength(value: str) -> tuple[int, int]:
    return len(value), len(set(value))


def each(section: str, checks: Iterable[Callable[[], Item]]) -> list[Item]:
    """Every check's item; one that breaks is a failed item naming the error, and the others still run."""
    items = []
    for check in checks:
        try:
            items.append(check())
        except Exception as exc:
            name = f"{section}.{check.__name__.lstrip('_')}"
            items.append(fail(name, f"the check broke: {type(exc).__name__}: {exc}", "see the error"))
    return items
