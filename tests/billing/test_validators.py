import pytest
from django.core.exceptions import ValidationError

from billing.kana import double_byte_errors, to_double_byte, to_zengin_kana, zengin_kana_errors
from billing.validators import (
    corporate_check_digit,
    validate_biller_code,
    validate_registration_number,
    validate_zengin_kana,
)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ﾄｳﾄﾃﾞﾝﾘｮｸ", "ﾄｳﾄﾃﾞﾝﾘﾖｸ"),  # small kana enlarged
        ("とうとでんりょく（かぶ）", "ﾄｳﾄﾃﾞﾝﾘﾖｸ(ｶﾌﾞ)"),  # hiragana, full-width brackets
        ("カ）ミドリツウハン", "ｶ)ﾐﾄﾞﾘﾂｳﾊﾝ"),
        ("ｺｰﾋｰ abc", "ｺ-ﾋ- ABC"),  # long vowel → hyphen, upper-case
        ("ヴァイオリン", "ｳﾞｱｲｵﾘﾝ"),
        ("ケ　ーキ", "ｹ -ｷ"),  # ideographic space
    ],
)
def test_kana_is_converted_to_zengin_half_width(typed: str, expected: str) -> None:
    converted = to_zengin_kana(typed)
    assert converted == expected
    assert zengin_kana_errors(converted) == []


def test_kana_outside_the_zengin_set_is_reported_with_position() -> None:
    with pytest.raises(ValidationError) as exc:
        validate_zengin_kana(to_zengin_kana("ﾄｳｷﾖｳ電力"))
    assert "6: '電'" in str(exc.value)
    for bad in ["ｱ,ｲ", "ｱ¥", "｢ｱ｣", "ｱ&"]:
        assert zengin_kana_errors(bad), bad


def test_double_byte_names_for_j_fields() -> None:
    assert to_double_byte("東都電力 AB1") == "東都電力\u3000ＡＢ１"
    assert double_byte_errors("東都電力") == []
    assert double_byte_errors("東都ｱ") == [(2, "ｱ")]
    assert double_byte_errors("東🙂") == [(1, "🙂")]


def test_registration_number_check_digit() -> None:
    # 国税庁's own corporate number is 7000012050002.
    assert corporate_check_digit("000012050002") == 7
    validate_registration_number("T7000012050002")
    with pytest.raises(ValidationError, match="check digit"):
        validate_registration_number("T8000012050002")
    for bad in ["7000012050002", "T700001205000", "T70000120500021", "t7000012050002", "TA000012050002"]:
        with pytest.raises(ValidationError, match="T followed by 13 digits"):
            validate_registration_number(bad)


@pytest.mark.parametrize("bad", ["5819100", "581910011", "5819100a", ""])
def test_biller_code_is_eight_digits(bad: str) -> None:
    with pytest.raises(ValidationError, match="exactly 8 digits"):
        validate_biller_code(bad)
