"""What every service does with its input before writing: refuse unknown fields, run the model's rules.

Both raise :class:`billing.errors.ValidationFailed` naming the field, the one error shape of the API
and the forms. payeasy's services use them too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext as _

from billing.errors import ValidationFailed


def reject_unknown_fields(data: dict[str, Any], allowed: Iterable[str]) -> None:
    """A service takes only the fields it knows: anything else is an error naming it, not ignored."""
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValidationFailed({name: [_("unknown field")] for name in sorted(unknown)})


def model_full_clean(instance: models.Model, *, prefix: str = "", exclude: list[str] | None = None) -> None:
    """``instance.full_clean()``, its errors as ValidationFailed with each field name prefixed."""
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as exc:
        raise ValidationFailed(
            {f"{prefix}{field}": [str(m) for m in messages] for field, messages in exc.message_dict.items()}
        ) from exc


__all__ = ["model_full_clean", "reject_unknown_fields"]
