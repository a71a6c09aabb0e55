"""Invoice PDFs: deterministic bytes, an embedded Japanese font, the qualified-invoice content, pages.

The text checks read the PDF back with poppler's pdftotext (Debian's poppler-utils) and are
skipped where it is not installed. Set INVOICE_PDF_SAMPLE=path to write the sample document
(docs/samples/invoice-sample.pdf is made that way).
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from billing import services
from billing.models import Biller, Invoice
from billing.pdf import find_font, invoice_pdf
from tests.conftest import need
from tests.factories import (
    MIXED_RATE_LINES,
    make_biller,
    make_credit_note,
    make_customer,
    make_invoice,
    registration_number,
)

pytestmark = pytest.mark.django_db
D = datetime.date
PDFTOTEXT = shutil.which("pdftotext")


def sample_invoice(biller: Biller, *, customer_kind: str = "corporate", **overrides: Any) -> Invoice:
    """INV-0001 of 株式会社サンプル商事 (with its address), 2026-11-01 to 11-30, both tax rates, published."""
    customer = overrides.pop("customer", None) or make_customer(
        biller,
        name="株式会社サンプル商事",
        kind=customer_kind,
        postal_code="100-0005",
        address="東京都千代田区丸の内1-1-1",
    )
    defaults = {"number": "INV-0001", "due_date": D(2026, 11, 30), "lines": MIXED_RATE_LINES}
    return make_invoice(biller=biller, customer=customer, **{**defaults, **overrides})


def pdf_text(pdf: bytes, tmp_path: Path, *, first: int | None = None, last: int | None = None) -> str:
    if not PDFTOTEXT:
        need(False, "pdftotext (Debian's poppler-utils) is not installed")
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    result = subprocess.run(
        [PDFTOTEXT, "-layout", "-enc", "UTF-8", *pages, str(path), "-"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return result.stdout.decode()


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def test_same_invoice_renders_the_same_bytes_with_the_font_embedded(biller: Biller) -> None:
    invoice = sample_invoice(biller)
    first = invoice_pdf(invoice)
    again = invoice_pdf(Invoice.objects.select_related("biller", "customer").get(pk=invoice.pk))
    assert first.startswith(b"%PDF-") and first.rstrip().endswith(b"%%EOF")
    assert first == again
    assert b"/FontFile2" in first  # a TrueType font program is embedded, not only referenced
    assert b"IPAexGothic" in first
    assert page_count(first) == 1


def test_qualified_invoice_content(biller: Biller, tmp_path: Path) -> None:
    invoice = sample_invoice(biller)
    text = pdf_text(invoice_pdf(invoice), tmp_path)
    assert "請求書" in text and "（適格請求書）" in text
    assert f"登録番号 {biller.registration_number}" in text
    assert biller.legal_name in text
    assert "株式会社サンプル商事 御中" in text
    assert "INV-0001" in text and "2026年11月1日" in text and "2026年11月30日" in text
    for header in ("品目", "数量", "単価（税抜）", "金額（税抜）", "税率"):
        assert header in text
    assert re.search(r"定期購読 新聞※.*4,400円.*8%※", text)
    assert "※は軽減税率（8%）対象" in text
    assert re.search(r"10%対象\s+10,500円\s+消費税\s+1,050円", text)
    assert re.search(r"8%対象※\s+4,400円\s+消費税\s+352円", text)
    assert "非課税" not in text  # only the rates that occur
    assert re.search(r"ご請求金額（税込）\s+16,302円", text)
    assert "税抜表示" in text and "端数処理：切り捨て" in text
    assert "ペイジー（Pay-easy）でのお支払い" in text
    assert re.search(rf"収納機関番号\s+{biller.payee_number}", text)
    assert re.search(rf"お客様番号\s+{invoice.customer_number}", text)
    assert re.search(rf"確認番号\s+{invoice.confirmation_number}", text)
    assert "「税金・料金払込み」からペイジーを選び" in text
    assert "10万円まで" not in text
    assert biller.contact_name in text and biller.contact_phone in text and biller.contact_email in text


def test_consumer_inclusive_prices_rounding_and_the_atm_cash_limit(tmp_path: Path) -> None:
    biller = make_biller(tax_rounding=Biller.TaxRounding.HALF_UP)
    lines = [
        {"description": "ノートPC", "quantity": 1, "unit_price": 165_001, "tax_category": "10"},
        {"description": "お弁当", "quantity": 3, "unit_price": 541, "tax_category": "8"},
        {"description": "収入印紙代", "quantity": 1, "unit_price": 200, "tax_category": "exempt"},
    ]
    invoice = sample_invoice(biller, customer_kind="consumer", lines=lines, tax_inclusive=True)
    assert invoice.total == 165_001 + 1623 + 200
    text = pdf_text(invoice_pdf(invoice), tmp_path)
    assert "株式会社サンプル商事 様" in text
    assert "単価（税込）" in text and "税込表示" in text and "端数処理：四捨五入" in text
    assert re.search(rf"10%対象（税込）\s+165,001円\s+うち消費税\s+{invoice.tax_10:,}円", text)
    assert re.search(rf"8%対象（税込）※\s+1,623円\s+うち消費税\s+{invoice.tax_8:,}円", text)
    assert re.search(r"非課税\s+200円", text)
    assert "ATMで現金によるお支払いは10万円までです。" in text


def test_without_a_registration_number_it_is_no_qualified_invoice(tmp_path: Path) -> None:
    biller = make_biller(registration_number="")
    text = pdf_text(invoice_pdf(sample_invoice(biller)), tmp_path)
    assert "請求書" in text and "登録番号" not in text and "適格" not in text


def test_long_invoices_continue_on_further_pages_with_the_header_repeated(
    biller: Biller, tmp_path: Path
) -> None:
    lines = [
        {
            "description": f"明細行 {i:03d} 保守サービス料",
            "quantity": i,
            "unit_price": 1000,
            "tax_category": "10",
        }
        for i in range(1, 61)
    ]
    pdf = invoice_pdf(sample_invoice(biller, lines=lines))
    assert page_count(pdf) >= 2
    if PDFTOTEXT:
        last = pdf_text(pdf, tmp_path, first=2, last=2)
        assert "品目" in last and "（続き）" in last
        assert re.search(rf"1\s*/\s*{page_count(pdf)}\s*$", pdf_text(pdf, tmp_path, first=1, last=1).strip())
        everything = pdf_text(pdf, tmp_path)
        assert all(f"明細行 {i:03d}" in everything for i in range(1, 61))


def test_credit_note_names_the_original_and_has_no_payment_box(biller: Biller, tmp_path: Path) -> None:
    invoice = sample_invoice(biller)
    Invoice.objects.filter(pk=invoice.pk).update(status="paid")
    invoice.refresh_from_db()
    note = make_credit_note(invoice, number="CN-1", amount=1000, issue_date=D(2026, 12, 5))
    pdf = invoice_pdf(note)
    assert pdf == invoice_pdf(note)
    text = pdf_text(pdf, tmp_path)
    assert "適格返還請求書" in text and "返還" in text
    assert re.search(r"元の請求書番号\s+INV-0001", text)
    assert re.search(r"返還金額（税込）\s+1,100円", text)
    assert "お客様番号" not in text and "ペイジー" not in text and "お支払期限" not in text


def test_payment_request_without_lines_or_customer(biller: Biller, tmp_path: Path) -> None:
    request = Invoice.objects.create(
        biller=biller,
        kind=Invoice.Kind.PAYMENT_REQUEST,
        number="PR-1",
        issue_date=D(2026, 11, 1),
        due_date=D(2026, 11, 10),
        description="ご注文代金",
        tax_rounding="floor",
        subtotal_10=5000,
        tax_10=500,
        total=5500,
        status=Invoice.Status.PUBLISHED,
        confirmation_number="123456",
    )
    text = pdf_text(invoice_pdf(request), tmp_path)
    assert "お支払いのご案内" in text and "品目" not in text
    assert re.search(rf"お客様番号\s+{request.customer_number}", text)


def test_markup_in_names_is_printed_as_text(biller: Biller, tmp_path: Path) -> None:
    customer = make_customer(biller, name="<b>A&B</b> 商会", kind="corporate")
    lines = [
        {
            "description": "<font size=40>x</font> & 部品",
            "quantity": 2,
            "unit_price": 10,
            "tax_category": "10",
        }
    ]
    text = pdf_text(invoice_pdf(sample_invoice(biller, customer=customer, lines=lines)), tmp_path)
    assert "<b>A&B</b> 商会 御中" in text and "<font size=40>x</font> & 部品" in text


def test_cancelled_invoice_offers_no_payment(biller: Biller, tmp_path: Path) -> None:
    invoice = services.invoice_cancel(
        actor=None, biller=biller, invoice=sample_invoice(biller), reason="誤請求"
    )
    text = pdf_text(invoice_pdf(invoice), tmp_path)
    assert "取消済" in text and "ペイジー" not in text


def test_a_missing_configured_font_is_an_error(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.PDF_FONT_PATH = str(tmp_path / "missing.ttf")
    with pytest.raises(ImproperlyConfigured, match="PDF_FONT_PATH"):
        find_font()


def test_the_font_ships_with_the_product_with_its_licence() -> None:
    path, index = find_font()
    assert path.name == "ipaexg.ttf" and index == 0 and path.stat().st_size > 1_000_000
    assert (path.parent / "IPA_Font_License_Agreement_v1.0.txt").is_file()


def test_sample_document(tmp_path: Path) -> None:
    """A realistic invoice; written to $INVOICE_PDF_SAMPLE when set (docs/samples/invoice-sample.pdf)."""
    biller = make_biller(
        legal_name="株式会社みなと電力サービス",
        registration_number=registration_number("701000012345"),
        contact_name="料金センター 佐藤",
        contact_phone="03-1234-5678",
        contact_email="billing@minato-denryoku.example.jp",
    )
    customer = make_customer(
        biller,
        name="株式会社サンプル商事",
        kind="corporate",
        postal_code="100-0005",
        address="東京都千代田区丸の内1-1-1 サンプルビル12階",
    )
    lines = [
        {
            "description": "基本料金（高圧・業務用 50kW）",
            "quantity": 1,
            "unit_price": 85_800,
            "tax_category": "10",
        },
        {"description": "電力量料金（11月分）", "quantity": 4_200, "unit_price": 28, "tax_category": "10"},
        {
            "description": "再生可能エネルギー発電促進賦課金",
            "quantity": 4_200,
            "unit_price": 3,
            "tax_category": "10",
        },
        {"description": "業務用飲料水（12L × 4本）", "quantity": 4, "unit_price": 1_080, "tax_category": "8"},
        {"description": "収入印紙代（立替金）", "quantity": 1, "unit_price": 200, "tax_category": "exempt"},
    ]
    invoice = sample_invoice(biller, customer=customer, number="INV-2026-11-0042", lines=lines)
    pdf = invoice_pdf(invoice)
    assert page_count(pdf) == 1
    target = os.environ.get("INVOICE_PDF_SAMPLE")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_bytes(pdf)
