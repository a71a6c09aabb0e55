"""Reading settings from the environment.

Every setting the product takes from outside comes through these helpers, so
that a missing or malformed value fails at start-up with the variable's name.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
RUN_DIR = Path(os.environ.get("PAYEASY_RUN_DIR", BASE_DIR / ".run"))

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0/true/false/yes/no/on/off, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def required(name: str, value: object) -> None:
    """Refuse to start without a value that production cannot guess."""
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. Production settings need it; set DJANGO_DEBUG=1 only for development."
        )


DEBUG = env_bool("DJANGO_DEBUG", False)
