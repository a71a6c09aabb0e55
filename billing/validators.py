"""Validators for the identifiers of Pay-easy and Japanese invoicing."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.kana import double_byte_errors, zengin_kana_errors

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

_DIGITS = re.compile(r"\d+")
DESCRIPTION_MAX_LENGTH = 20  # 料金名: ATM screens show 20 full-width characters


def digits(value: str, *, length: int, label: object) -> None:
    if not _DIGITS.fullmatch(value or "") or len(value) != length:
        raise ValidationError(
            _("%(label)s must be exactly %(length)d digits (got %(value)r)."),
            code="digits",
            params={"label": label, "length": length, "value": value},
        )


def validate_payee_number(value: str) -> None:
    """収納機関番号: 5 digits."""
    digits(value, length=5, label=_("Payee number (収納機関番号)"))


def validate_biller_code(value: str) -> None:
    """収納機関コード: 8 digits."""
    digits(value, length=8, label=_("Biller code (収納機関コード)"))


def validate_bank_code(value: str) -> None:
    digits(value, length=4, label=_("Bank code"))


def corporate_check_digit(base12: str) -> int:
    """Check digit of a 13-digit 法人番号 / 適格請求書発行事業者登録番号.

    9 − (Σ Pn × Qn mod 9), Pn the n-th digit of the 12-digit base counted from
    the right, Qn = 1 for odd n and 2 for even n (国税庁, 法人番号の指定等に関する省令).
    """
    total = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(base12), start=1))
    return 9 - (total % 9)


def validate_registration_number(value: str) -> None:
    """適格請求書発行事業者登録番号: ``T`` and 13 digits whose first is a valid check digit."""
    if not re.fullmatch(r"T\d{13}", value or ""):
        raise ValidationError(
            _("The registration number must be T followed by 13 digits (got %(value)r)."),
            code="format",
            params={"value": value},
        )
    number = value[1:]
    if int(number[0]) != corporate_check_digit(number[1:]):
        raise ValidationError(
            _("The registration number %(value)s has a wrong check digit."),
            code="check_digit",
            params={"value": value},
        )


def _reject_characters(bad: list[tuple[int, str]], message: StrOrPromise, code: str) -> None:
    """ValidationError naming the first five (position, character) in ``bad``, if any."""
    if bad:
        shown = ", ".join(f"{pos + 1}: {ch!r}" for pos, ch in bad[:5])
        raise ValidationError(message, code=code, params={"shown": shown})


def validate_zengin_kana(value: str) -> None:
    _reject_characters(
        zengin_kana_errors(value),
        _(
            "Only half-width katakana, A-Z, 0-9, space and ( ) . - / are allowed "
            "(全銀 character set); not allowed at position %(shown)s."
        ),
        "zengin_kana",
    )


def validate_double_byte(value: str) -> None:
    _reject_characters(
        double_byte_errors(value),
        _("Only full-width characters that exist in Shift_JIS (cp932) are allowed; not at %(shown)s."),
        "double_byte",
    )


def description_errors(value: str) -> list[str]:
    """Every problem of an invoice's description (料金名), the one to show alone first: required, at most
    20 characters, no NUL, and only characters Shift_JIS (cp932) carries. Empty when it is fine.

    The one rule of the CSV import, the console form, the API and the services."""
    if not value:
        return [gettext("is required")]
    errors = []
    if len(value) > DESCRIPTION_MAX_LENGTH:
        errors.append(
            gettext("must be at most 20 characters (ATM screens show 20 full-width); got %(n)d")
            % {"n": len(value)}
        )
    if "\x00" in value:
        errors.append(gettext("must not contain NUL characters"))
    try:
        value.encode("cp932")
    except UnicodeEncodeError:
        bad = "".join(ch for ch in value if not _cp932_encodes(ch))
        errors.append(
            gettext("has characters Shift_JIS (cp932) cannot carry: %(chars)r") % {"chars": bad[:5]}
        )
    return errors


def _cp932_encodes(ch: str) -> bool:
    try:
        ch.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


def validate_description(value: str) -> None:
    """``description_errors`` as a form and serializer field validator."""
    errors = description_errors(value)
    if errors:
        raise ValidationError(errors, code="description")
