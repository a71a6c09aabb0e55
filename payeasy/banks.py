"""The bank directory: 全銀 bank and branch master data from the ``zengin-code`` package.

The package ships the master the 全銀 network publishes (1,100+ banks with
their branches); nothing here is typed by hand. It is loaded once per process.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

from billing.kana import to_zengin_kana


@dataclass(frozen=True, slots=True)
class Bank:
    code: str
    name: str  # the 全銀 master's short name, as it is: みずほ, 三菱ＵＦＪ, ＰａｙＰａｙ
    kana: str  # half-width 全銀 kana
    hira: str
    roma: str

    @property
    def label(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def display_name(self) -> str:
        """The name people know the bank by (:func:`bank_display_name`): みずほ銀行, PayPay銀行."""
        return bank_display_name(self)

    @property
    def monogram(self) -> str:
        """One character standing for the bank where it has no logo (:func:`bank_monogram`)."""
        return bank_monogram(self)

    @property
    def logo_url(self) -> str:
        """The bank's logo (settings.PAYEASY_BANK_LOGOS), or "" (:func:`bank_logo_url`)."""
        return bank_logo_url(self.code)


@dataclass(frozen=True, slots=True)
class Branch:
    bank_code: str
    code: str
    name: str
    kana: str


@cache
def _master() -> dict[str, Bank]:
    import zengin_code

    return {
        code: Bank(code=code, name=b.name, kana=to_zengin_kana(b.kana), hira=b.hira, roma=b.roma)
        for code, b in sorted(zengin_code.Bank.all.items())
    }


def bank_get(code: str) -> Bank | None:
    return _master().get(code)


def bank_all() -> list[Bank]:
    return list(_master().values())


def branch_get(bank_code: str, branch_code: str) -> Branch | None:
    import zengin_code

    bank = zengin_code.Bank.all.get(bank_code)
    if bank is None:
        return None
    br = bank.branches.get(branch_code)
    if br is None:
        return None
    return Branch(bank_code=bank_code, code=br.code, name=br.name, kana=to_zengin_kana(br.kana))


def bank_search(query: str, *, limit: int = 20) -> list[Bank]:
    """Banks whose code, name (the master's or the readable one), kana, hiragana or romaji contains the
    query (prefix matches first)."""
    q = query.strip()
    if not q:
        return []
    q_kana = to_zengin_kana(q)
    q_lower = q.lower()
    prefix: list[Bank] = []
    contains: list[Bank] = []
    q_folded = _folded(q)
    for bank in _master().values():
        fields = (bank.code, bank.name, bank.kana, bank.hira, bank.roma.lower(), _folded(bank.display_name))
        needles = (q, q, q_kana, q, q_lower, q_folded)
        if any(n and f.startswith(n) for f, n in zip(fields, needles, strict=True)):
            prefix.append(bank)
        elif any(n and n in f for f, n in zip(fields, needles, strict=True)):
            contains.append(bank)
    return (prefix + contains)[:limit]


# --- the names people read ---------------------------------------------------------------------------------
#
# The master holds short names in full-width letters (三菱ＵＦＪ, ＰａｙＰａｙ) and without the kind of
# institution (みずほ, not みずほ銀行), abbreviated for credit unions and co-operatives (北海道信金,
# 東京厚生信組, 中央労金, 札幌市農協). People read the full name: NFKC-normalised, the kind spelled out.
# The code says the kind (the 全銀 numbering): 0001–0999 banks (06xx foreign ones among them), 1xxx
# 信用金庫, 2xxx 信用組合 and 労働金庫 (29xx), 3xxx–9xxx JA and JF co-operatives, 9900 ゆうちょ銀行.

# Names a rule cannot give: central institutions, a fund-transfer company, the usual English-style names.
_DISPLAY_NAMES = {
    "0200": "ワイズ・ペイメンツ・ジャパン",  # a fund-transfer company (資金移動業者), not a bank
    "0402": "JPモルガン・チェース銀行",
    "1000": "信金中央金庫",
    "2004": "商工組合中央金庫",
    "2010": "全国信用協同組合連合会",
    "2213": "整理回収機構",
    "2950": "労働金庫連合会",
    "3000": "農林中央金庫",
    "3771": "秋田たかのす農業協同組合",
}
# Abbreviated endings of the master, spelled out (longest first).
_ENDINGS = (
    ("信漁連", "信用漁業協同組合連合会"),
    ("信連", "信用農業協同組合連合会"),
    ("信金", "信用金庫"),
    ("信組", "信用組合"),
    ("労金", "労働金庫"),
    ("農協", "農業協同組合"),
    ("漁協", "漁業協同組合"),
)
# A bank's name that already says what it is (foreign banks' own spelling) takes no 銀行.
_BANK_WORDS = ("銀行", "バンク", "エヌ・エイ", "リミテッド", "エヌ・ヴィ")


def bank_display_name(bank: Bank | str) -> str:
    """The readable name of a bank (a :class:`Bank` or its code; an unknown code is returned as it is):
    NFKC-normalised (三菱ＵＦＪ → 三菱UFJ, ＰａｙＰａｙ → PayPay) with the kind of institution spelled out
    — みずほ銀行, 三菱UFJ銀行, 三井住友銀行, PayPay銀行, ゆうちょ銀行, 城南信用金庫, 中央労働金庫. The one
    function for a bank's name on a page (the 情報リンク chooser, the sandbox bank, the bank lists)."""
    found = bank_get(bank) if isinstance(bank, str) else bank
    if found is None:
        return str(bank)
    return _display_name(found.code, found.name)


@cache
def _display_name(code: str, name: str) -> str:
    if code in _DISPLAY_NAMES:
        return _DISPLAY_NAMES[code]
    text = " ".join(unicodedata.normalize("NFKC", name).split())
    if code == "9900" or code < "1000":
        return text if any(word in text for word in _BANK_WORDS) else f"{text}銀行"
    for short, full in _ENDINGS:
        if text.endswith(short):
            return text[: -len(short)] + full
    return text


def _folded(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def bank_name_matches(bank: Bank, query: str) -> bool:
    """Whether ``query`` is in the bank's readable name, in any width and case: 三菱UFJ, ＵＦＪ, paypay."""
    q = _folded(query)
    return bool(q) and q in _folded(bank_display_name(bank))


def bank_monogram(bank: Bank | str) -> str:
    """The first character of the bank's readable name (upper case for a letter): the placeholder of its
    logo, み for みずほ銀行, P for PayPay銀行."""
    return bank_display_name(bank)[:1].upper()


def bank_logo_url(code: str) -> str:
    """The logo configured for bank ``code`` (settings.PAYEASY_BANK_LOGOS: a URL, or a path under
    STATIC_URL), or "" when it has none."""
    from django.conf import settings
    from django.templatetags.static import static

    logo = (getattr(settings, "PAYEASY_BANK_LOGOS", None) or {}).get(code, "")
    if not logo:
        return ""
    if logo.startswith(("https://", "http://", "/")):
        return logo
    return static(logo)
