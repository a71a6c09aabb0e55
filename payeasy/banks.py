"""The bank directory: 全銀 bank and branch master data from the ``zengin-code`` package.

The package ships the master the 全銀 network publishes (1,100+ banks with
their branches); nothing here is typed by hand. It is loaded once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from billing.kana import to_zengin_kana


@dataclass(frozen=True, slots=True)
class Bank:
    code: str
    name: str
    kana: str  # half-width 全銀 kana
    hira: str
    roma: str

    @property
    def label(self) -> str:
        return f"{self.code} {self.name}"


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
    """Banks whose code, name, kana, hiragana or romaji contains the query (prefix matches first)."""
    q = query.strip()
    if not q:
        return []
    q_kana = to_zengin_kana(q)
    q_lower = q.lower()
    prefix: list[Bank] = []
    contains: list[Bank] = []
    for bank in _master().values():
        fields = (bank.code, bank.name, bank.kana, bank.hira, bank.roma.lower())
        needles = (q, q, q_kana, q, q_lower)
        if any(f.startswith(n) for f, n in zip(fields, needles, strict=True)):
            prefix.append(bank)
        elif any(n in f for f, n in zip(fields, needles, strict=True)):
            contains.append(bank)
    return (prefix + contains)[:limit]
