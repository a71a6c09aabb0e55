"""Validators for the identifiers of Pay-easy and Japanese invoicing."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from billing.kana import double_byte_errors, zengin_kana_errors

_DIGITS = re.compile(r"\d+")


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


def validate_zengin_kana(value: str) -> None:
    bad = zengin_kana_errors(value)
    if bad:
        shown = ", ".join(f"{pos + 1}: {ch!r}" for pos, ch in bad[:5])
        raise ValidationError(
            _(
                "Only half-width katakana, A-Z, 0-9, space and ( ) . - / are allowed "
                "(全銀 character set); not allowed at position %(shown)s."
            ),
            code="zengin_kana",
            params={"shown": shown},
        )


def validate_double_byte(value: str) -> None:
    bad = double_byte_errors(value)
    if bad:
        shown = ", ".join(f"{pos + 1}: {ch!r}" for pos, ch in bad[:5])
        raise ValidationError(
            _("Only full-width characters that exist in Shift_JIS (cp932) are allowed; not at %(shown)s."),
            code="double_byte",
            params={"shown": shown},
        )
