"""Half-width kana in the 全銀 (Zengin) character set, as bank data carries it.

Names in bank data are half-width katakana with small kana enlarged. What the
MPN line carries in a ``K`` field (spec §2) is the intersection of the 全銀 set
and JIS X 0201: half-width katakana, ``A-Z``, ``0-9``, space and ``( ) . - /``.
``¥ , ｢ ｣`` are 全銀 characters the line cannot carry, so they are refused here.
"""

from __future__ import annotations

import contextlib
import unicodedata

import jaconv

KATAKANA = "ｦｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝﾞﾟ"
ZENGIN_KANA_CHARS = frozenset(KATAKANA + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ().-/")

_SMALL_TO_LARGE = str.maketrans("ｧｨｩｪｫｬｭｮｯ", "ｱｲｳｴｵﾔﾕﾖﾂ")
_DASHES = str.maketrans({"ｰ": "-", "‐": "-", "−": "-", "–": "-", "—": "-", "―": "-"})


def to_zengin_kana(value: str) -> str:
    """Convert what a person typed to half-width 全銀 kana.

    Hiragana and full-width katakana, letters and digits become half-width;
    small kana are enlarged (ｯ → ﾂ); lower-case letters become upper-case; the
    long-vowel mark and dashes become ``-``; runs of spaces collapse. Characters
    that have no 全銀 form are left as they are for :func:`zengin_kana_errors`
    to report.
    """
    text = unicodedata.normalize("NFC", value).replace("\u3000", " ")
    text = jaconv.hira2kata(text)
    text = jaconv.z2h(text, kana=True, ascii=True, digit=True)
    # Small katakana that z2h cannot map (ヵ, ヶ, ゎ) become their large forms first.
    text = text.replace("ヵ", "ｶ").replace("ヶ", "ｹ").replace("ヮ", "ﾜ")
    text = text.translate(_SMALL_TO_LARGE).translate(_DASHES).upper()
    return " ".join(text.split())


def zengin_kana_errors(value: str) -> list[tuple[int, str]]:
    """Return (position, character) for every character outside the set."""
    if ZENGIN_KANA_CHARS.issuperset(value):  # the common case, in C
        return []
    return [(i, ch) for i, ch in enumerate(value) if ch not in ZENGIN_KANA_CHARS]


def to_double_byte(value: str) -> str:
    """Convert to full-width so every character is two bytes in cp932 (a ``J`` field)."""
    text = unicodedata.normalize("NFC", value)
    return jaconv.h2z(text, kana=True, ascii=True, digit=True).replace(" ", "\u3000")


def double_byte_errors(value: str) -> list[tuple[int, str]]:
    """Return (position, character) for every character that is not one double-byte cp932 character."""
    with contextlib.suppress(UnicodeEncodeError):
        # cp932 characters are one or two bytes: twice as many bytes as characters means all are two
        if len(value.encode("cp932")) == 2 * len(value):
            return []
    bad = []
    for i, ch in enumerate(value):
        try:
            encoded = ch.encode("cp932")
        except UnicodeEncodeError:
            bad.append((i, ch))
            continue
        if len(encoded) != 2:
            bad.append((i, ch))
    return bad
