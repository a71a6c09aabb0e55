"""The files the exports page streams (docs/exports.md): the payments CSV, the invoices CSV and the
弥生会計 journal import (弥生インポート形式). Pure writers: they take the rows of
``reconciliation.selectors.exports`` and yield bytes, a chunk at a time.

Every CSV goes through ``billing.csvsafe`` (a cell that a spreadsheet would run as a formula is
neutralised). Lines end in CRLF; headers are Japanese; yen are integers; dates are YYYY/MM/DD (JST).

Encodings: UTF-8 with a BOM (so that Excel opens it as UTF-8), or cp932 (Shift_JIS as Windows has it,
what 弥生 and older Excel read). A character cp932 does not have (``𠮷``, most emoji) is written as
``〓`` (GETA MARK, the customary stand-in in Japanese print), never an error; characters that Unicode and
cp932 merely map differently (``〜`` WAVE DASH, ``−`` MINUS SIGN, …) are first mapped to the cp932 form
a Japanese user typed them as.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from django.utils import translation

from billing import csvsafe
from billing.models import Invoice
from payeasy import banks
from payeasy.codec import JST
from payeasy.models import Channel, LedgerEntry, Notice
from reconciliation.selectors.exports import InvoiceRow, PaymentRow

UTF8 = "utf-8"
CP932 = "cp932"
ENCODINGS = (UTF8, CP932)
BOM = "\ufeff"
SUBSTITUTE = "〓"  # U+3013 GETA MARK: what a character cp932 lacks becomes
FLUSH_AT = 64 * 1024  # characters of CSV text per chunk of the response

# Unicode characters that JIS/Mac text carries where cp932 has a look-alike: written as that one
CP932_FIXUPS = str.maketrans(
    {
        "\u301c": "\uff5e",  # 〜 WAVE DASH → ～ FULLWIDTH TILDE
        "\u2016": "\u2225",  # ‖ DOUBLE VERTICAL LINE → ∥ PARALLEL TO
        "\u2212": "\uff0d",  # − MINUS SIGN → － FULLWIDTH HYPHEN-MINUS
        "\u00a2": "\uffe0",  # ¢ → ￠
        "\u00a3": "\uffe1",  # £ → ￡
        "\u00ac": "\uffe2",  # ¬ → ￢
        "\u2014": "\u2015",  # — EM DASH → ― HORIZONTAL BAR
    }
)


def _geta(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    # one stand-in per character (a character outside the BMP is one code point in a Python str)
    return SUBSTITUTE * (error.end - error.start), error.end


codecs.register_error("reconciliation-geta", _geta)


def to_cp932(text: str) -> bytes:
    """``text`` in cp932; what cp932 lacks becomes 〓 (see the module docstring)."""
    return text.translate(CP932_FIXUPS).encode(CP932, errors="reconciliation-geta")


def cp932_clip(text: str, limit: int) -> str:
    """The longest start of ``text`` that is at most ``limit`` bytes in cp932 (half-width 桁, as 弥生
    counts): a double-byte character is never cut in half."""
    text = text.translate(CP932_FIXUPS)
    out: list[str] = []
    used = 0
    for ch in text:
        size = len(to_cp932(ch))
        if used + size > limit:
            break
        out.append(ch)
        used += size
    return "".join(out)


def csv_stream(
    rows: Iterable[Sequence[Any]], *, header: Sequence[str] | None, encoding: str
) -> Iterator[bytes]:
    """``rows`` as CSV (CRLF, safe cells) in ``encoding``, in chunks of about ``FLUSH_AT`` characters;
    UTF-8 starts with a BOM."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}")
    encode: Callable[[str], bytes] = to_cp932 if encoding == CP932 else (lambda s: s.encode(UTF8))
    buffer = io.StringIO()
    if encoding == UTF8:
        buffer.write(BOM)
    writer = csvsafe.writer(buffer, lineterminator="\r\n")
    if header is not None:
        writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() >= FLUSH_AT:
            yield encode(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
    yield encode(buffer.getvalue())


def ymd(value: Any) -> str:
    """A date (or an aware datetime, taken in JST) as YYYY/MM/DD; "" for none."""
    if value is None:
        return ""
    if hasattr(value, "astimezone"):
        value = value.astimezone(JST).date()
    return f"{value:%Y/%m/%d}"


def _labels(choices: Any) -> dict[str, str]:
    """The Japanese labels of a model's choices (the files are Japanese whatever the page language)."""
    with translation.override("ja"):
        return {value: str(label) for value, label in choices.choices}


# ---------------------------------------------------------------------------------------------------
# Payments CSV

PAYMENT_HEADER = (
    "台帳番号",
    "入金日",
    "入金時刻",
    "処理日",
    "区分",
    "理由",
    "金額",
    "銀行コード",
    "銀行名",
    "支店コード",
    "支店名",
    "チャネル",
    "通知元",
    "取引キー",
    "払込人名カナ",
    "請求書番号",
    "顧客コード",
    "顧客名",
    "取消対象台帳番号",
)


class _BankNames:
    """Bank and branch names from the 全銀 master (payeasy.banks), looked up once per code."""

    def __init__(self) -> None:
        self._banks: dict[str, str] = {}
        self._branches: dict[tuple[str, str], str] = {}

    def bank(self, code: str) -> str:
        if code not in self._banks:
            found = banks.bank_get(code)
            self._banks[code] = found.name if found else ""
        return self._banks[code]

    def branch(self, bank_code: str, code: str) -> str:
        key = (bank_code, code)
        if key not in self._branches:
            found = banks.branch_get(bank_code, code)
            self._branches[key] = found.name if found else ""
        return self._branches[key]


def payment_lines(rows: Iterable[PaymentRow]) -> Iterator[list[Any]]:
    outcomes = _labels(LedgerEntry.Outcome)
    reasons = {**_labels(LedgerEntry.Reason), "": ""}
    channels = _labels(Channel)
    sources = _labels(Notice.Source)
    names = _BankNames()
    for r in rows:
        paid_at = r.paid_at.astimezone(JST)
        yield [
            r.entry_id,
            ymd(paid_at),
            f"{paid_at:%H:%M:%S}",
            ymd(r.processing_date),
            outcomes.get(r.outcome, r.outcome),
            reasons.get(r.reason, r.reason),
            r.amount,
            r.bank_code,
            names.bank(r.bank_code),
            r.branch_code,
            names.branch(r.bank_code, r.branch_code),
            channels.get(r.channel, r.channel),
            sources.get(r.source, r.source),
            r.transaction_key,
            r.payer_kana,
            r.invoice_number,
            r.customer_code,
            r.customer_name,
            r.reverses_id or "",
        ]


def payments_csv(rows: Iterable[PaymentRow], *, encoding: str) -> Iterator[bytes]:
    return csv_stream(payment_lines(rows), header=PAYMENT_HEADER, encoding=encoding)


# ---------------------------------------------------------------------------------------------------
# Invoices CSV

INVOICE_HEADER = (
    "請求書番号",
    "種別",
    "発行日",
    "支払期日",
    "顧客コード",
    "顧客名",
    "10%対象額(税抜)",
    "10%消費税額",
    "8%対象額(税抜)",
    "8%消費税額",
    "非課税額",
    "消費税額合計",
    "合計金額",
    "状態",
    "入金日",
)


def invoice_lines(rows: Iterable[InvoiceRow]) -> Iterator[list[Any]]:
    kinds = _labels(Invoice.Kind)
    statuses = _labels(Invoice.Status)
    for r in rows:
        yield [
            r.number,
            kinds.get(r.kind, r.kind),
            ymd(r.issue_date),
            ymd(r.due_date),
            r.customer_code,
            r.customer_name,
            r.subtotal_10,
            r.tax_10,
            r.subtotal_8,
            r.tax_8,
            r.subtotal_exempt,
            r.tax_10 + r.tax_8,
            r.total,
            statuses.get(r.status, r.status),
            ymd(r.paid_at),
        ]


def invoices_csv(rows: Iterable[InvoiceRow], *, encoding: str) -> Iterator[bytes]:
    return csv_stream(invoice_lines(rows), header=INVOICE_HEADER, encoding=encoding)


# ---------------------------------------------------------------------------------------------------
# 弥生会計 仕訳日記帳 (弥生インポート形式, 25 columns; docs/exports.md has the table and the source)

YAYOI_COLUMNS = (
    "識別フラグ",
    "伝票No.",
    "決算",
    "取引日付",
    "借方勘定科目",
    "借方補助科目",
    "借方部門",
    "借方税区分",
    "借方金額",
    "借方税金額",
    "貸方勘定科目",
    "貸方補助科目",
    "貸方部門",
    "貸方税区分",
    "貸方金額",
    "貸方税金額",
    "摘要",
    "番号",
    "期日",
    "タイプ",
    "生成元",
    "仕訳メモ",
    "付箋1",
    "付箋2",
    "調整",
)
YAYOI_FLAG_ONE_LINE = "2000"  # 伝票以外の仕訳データ (one line)
YAYOI_TYPE_JOURNAL = 0  # タイプ 0: 仕訳データ
YAYOI_NOT_ADJUSTMENT = "no"
YAYOI_SUMMARY_BYTES = 64  # 摘要: 半角64桁
YAYOI_MEMO_BYTES = 180  # 仕訳メモ: 半角180桁

ACCOUNT_BANK = "普通預金"  # where Pay-easy collections arrive
ACCOUNT_RECEIVABLE = "売掛金"  # the bill the payment settles (売掛金消込)
ACCOUNT_SUSPENSE = "仮受金"  # money received that settles no bill yet: provisional, double payment
TAX_NONE = "対象外"  # a settlement is outside consumption tax (the sale was taxed when invoiced)


def yayoi_accounts(outcome: str, reversed_outcome: str = "") -> tuple[str, str]:
    """(debit, credit) of the journal of a ledger entry: a payment that paid its bill settles the
    receivable; a provisional or double payment is held as 仮受金; a reversal is the opposite journal
    of the entry it undoes."""
    if outcome == LedgerEntry.Outcome.REVERSAL:
        debit, credit = yayoi_accounts(reversed_outcome or LedgerEntry.Outcome.PAID)
        return credit, debit
    if outcome == LedgerEntry.Outcome.PAID:
        return ACCOUNT_BANK, ACCOUNT_RECEIVABLE
    return ACCOUNT_BANK, ACCOUNT_SUSPENSE


def yayoi_summary(r: PaymentRow) -> str:
    """摘要: what was paid, for which bill, by whom; clipped to 64 cp932 bytes."""
    head = "ペイジー入金取消" if r.outcome == LedgerEntry.Outcome.REVERSAL else "ペイジー入金"
    if r.outcome == LedgerEntry.Outcome.DOUBLE_PAYMENT:
        head += "(二重支払)"
    elif r.outcome == LedgerEntry.Outcome.PROVISIONAL:
        head += "(仮消込)"
    parts = [head, r.invoice_number or "請求書なし", r.customer_name or r.payer_kana]
    return cp932_clip(" ".join(p for p in parts if p), YAYOI_SUMMARY_BYTES)


def yayoi_line(r: PaymentRow) -> list[Any]:
    debit, credit = yayoi_accounts(r.outcome, r.reversed_outcome)
    amount = abs(r.amount)  # 弥生 takes no negative amount: a reversal is the opposite journal
    memo = f"取引キー {r.transaction_key} 台帳番号 {r.entry_id}"
    return [
        YAYOI_FLAG_ONE_LINE,  # 識別フラグ
        "",  # 伝票No. (弥生 numbers it)
        "",  # 決算 (a normal journal)
        ymd(r.paid_on),  # 取引日付
        debit,  # 借方勘定科目
        "",  # 借方補助科目
        "",  # 借方部門
        TAX_NONE,  # 借方税区分
        amount,  # 借方金額
        "",  # 借方税金額
        credit,  # 貸方勘定科目
        "",  # 貸方補助科目
        "",  # 貸方部門
        TAX_NONE,  # 貸方税区分
        amount,  # 貸方金額
        "",  # 貸方税金額
        yayoi_summary(r),  # 摘要
        "",  # 番号 (手形番号)
        "",  # 期日 (手形期日)
        YAYOI_TYPE_JOURNAL,  # タイプ
        "",  # 生成元
        cp932_clip(memo, YAYOI_MEMO_BYTES),  # 仕訳メモ
        0,  # 付箋1
        0,  # 付箋2
        YAYOI_NOT_ADJUSTMENT,  # 調整
    ]


def yayoi_journal(rows: Iterable[PaymentRow]) -> Iterator[bytes]:
    """One journal line per ledger entry, cp932, CRLF, no header line (弥生 reads every line as data)."""
    return csv_stream((yayoi_line(r) for r in rows), header=None, encoding=CP932)
