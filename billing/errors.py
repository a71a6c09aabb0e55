"""Exceptions of the product. Every domain error derives from ProductError."""

from __future__ import annotations


class ProductError(Exception):
    """Base of every error the product raises on purpose.

    ``field`` names the input that was wrong, so forms, the API and command
    line can point at it.
    """

    code = "error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class ValidationFailed(ProductError):
    """Input broke a rule. Nothing was changed."""

    code = "invalid"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        first_field, messages = next(iter(errors.items()))
        super().__init__(f"{first_field}: {messages[0]}", field=first_field)


class NotFound(ProductError):
    code = "not_found"


class Conflict(ProductError):
    code = "conflict"


class InvalidTransition(ProductError):
    code = "invalid_transition"


class Forbidden(ProductError):
    """The actor may not do this (for example a viewer approving an invoice)."""

    code = "forbidden"
