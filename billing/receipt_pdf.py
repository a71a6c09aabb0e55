"""PDF of a receipt (領収書): the biller's receipt of a payment that paid a bill.

``receipt_pdf(receipt)`` returns the bytes of an A4 portrait PDF in the product's Japanese font
(``billing.pdf.pdf_font``, embedded as a subset) and reportlab's ``invariant`` mode, as the invoice PDF:
the same receipt always gives the same bytes. It shows the receipt number (R-2026-000001), the date of
issue, the customer, the amount, what it was for (the invoice's number and description), when and how it
was paid (Pay-easy, the bank and the channel), the biller with its registration number (登録番号 T…)
and, from the invoice, the amount and the tax per rate, which make it a qualified receipt when the
biller is registered.

Who may have it is the caller's business: the portal and the console serve it only for a bill the reader
may see (``billing.portal.payment_views``).
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from django.utils import timezone, translation
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.models import Customer, Receipt
from billing.pdf import (
    ACCENT,
    CONTENT_WIDTH,
    INK,
    MARGIN,
    MUTED,
    RULE,
    SHADE,
    build_lock,
    japanese_date,
    pdf_font,
    yen,
)

__all__ = ["receipt_filename", "receipt_pdf"]


def receipt_filename(receipt: Receipt) -> str:
    """The download name of a receipt's PDF."""
    return f"receipt-{receipt.number}.pdf"


def _recipient(receipt: Receipt) -> str:
    invoice = receipt.payment.invoice
    name = invoice.recipient_name or (invoice.customer.name if invoice.customer else "")
    if not name:
        return ""
    corporate = invoice.customer is not None and invoice.customer.kind == Customer.Kind.CORPORATE
    return f"{name} {'御中' if corporate else '様'}"


def _method(receipt: Receipt, bank: str) -> str:
    payment = receipt.payment
    with translation.override("ja"):
        channel = str(payment.get_channel_display())
    return "ペイジー（Pay-easy）" + "　".join(x for x in ("", bank, channel) if x)


def receipt_pdf(receipt: Receipt, *, bank: str = "") -> bytes:
    """The receipt as an A4 PDF with the embedded Japanese font; ``bank`` is the bank's name (the
    payment's bank code when empty)."""
    payment = receipt.payment
    invoice = payment.invoice
    biller = invoice.biller
    font = pdf_font()
    base = ParagraphStyle("base", fontName=font, fontSize=10, leading=15, textColor=INK, wordWrap="CJK")
    title = ParagraphStyle(
        "title", parent=base, fontSize=24, leading=30, alignment=TA_CENTER, textColor=ACCENT
    )
    big = ParagraphStyle("big", parent=base, fontSize=15, leading=20)
    amount = ParagraphStyle("amount", parent=base, fontSize=22, leading=28, alignment=TA_CENTER)
    right = ParagraphStyle("right", parent=base, alignment=TA_RIGHT)
    small = ParagraphStyle("small", parent=base, fontSize=8, leading=11, textColor=MUTED)

    def p(text: str, style: ParagraphStyle = base) -> Paragraph:
        return Paragraph(escape(text), style)

    def style(*commands: tuple) -> TableStyle:
        return TableStyle([("FONTNAME", (0, 0), (-1, -1), font), *commands])

    issued = timezone.localtime(receipt.sent_at).date()
    paid_at = timezone.localtime(payment.paid_at)
    meta = Table(
        [
            [p("領収書番号"), p(receipt.number, right)],
            [p("発行日"), p(japanese_date(issued), right)],
        ],
        colWidths=[28 * mm, 46 * mm],
        style=style(("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE), ("LEFTPADDING", (0, 0), (-1, -1), 0)),
        hAlign="RIGHT",
    )
    story: list[Flowable] = [p("領収書", title), Spacer(0, 6 * mm), meta, Spacer(0, 6 * mm)]
    recipient = _recipient(receipt)
    if recipient:
        story += [p(recipient, big), Spacer(0, 5 * mm)]
    story.append(
        Table(
            [[p(f"金額　{yen(payment.amount)}（税込）", amount)]],
            colWidths=[120 * mm],
            style=style(
                ("BOX", (0, 0), (-1, -1), 1.2, ACCENT),
                ("BACKGROUND", (0, 0), (-1, -1), SHADE),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
            ),
        )
    )
    story += [
        Spacer(0, 4 * mm),
        p(f"但し　{invoice.description}として", ParagraphStyle("for", parent=base, alignment=TA_CENTER)),
        p("上記正に領収いたしました。", ParagraphStyle("ack", parent=base, alignment=TA_CENTER)),
        Spacer(0, 6 * mm),
    ]
    facts = [
        ["請求書番号", invoice.number],
        ["お支払日時", f"{japanese_date(paid_at.date())} {paid_at:%H:%M}"],
        ["お支払方法", _method(receipt, bank or payment.bank_code)],
        ["受付番号", payment.payment_key],
    ]
    story.append(
        Table(
            [[p(label), p(value)] for label, value in facts],
            colWidths=[30 * mm, CONTENT_WIDTH - 30 * mm],
            style=style(("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE), ("LEFTPADDING", (0, 0), (-1, -1), 0)),
        )
    )
    rows = invoice.rate_rows()
    if rows:
        head = ["税率", "対象額（税抜）" if not invoice.tax_inclusive else "対象額", "消費税額"]
        story += [
            Spacer(0, 5 * mm),
            p("内訳（請求書より）", small),
            Table(
                [[p(h) for h in head]]
                + [[p(label), p(yen(subtotal), right), p(yen(tax), right)] for label, subtotal, tax in rows],
                colWidths=[30 * mm, 50 * mm, 50 * mm],
                style=style(
                    ("GRID", (0, 0), (-1, -1), 0.4, RULE),
                    ("BACKGROUND", (0, 0), (-1, 0), SHADE),
                ),
                hAlign="LEFT",
            ),
        ]
        if any(label.startswith("8%") for label, _s, _t in rows):
            story.append(p("※ 軽減税率対象", small))
    story += [Spacer(0, 10 * mm), p(biller.legal_name, big)]
    if biller.registration_number:
        story.append(p(f"登録番号　{biller.registration_number}"))
    phone = f"TEL：{biller.contact_phone}" if biller.contact_phone else ""
    reach = "　".join(x for x in (phone, biller.contact_email) if x)
    if reach:
        story.append(p(reach, small))

    buffer = io.BytesIO()
    label = f"領収書 {receipt.number}"
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=label,
        author=biller.legal_name,
        subject=f"{invoice.number} {invoice.description}",
        creator="payeasy-portal",
        invariant=True,
        initialFontName=font,
    )
    with build_lock:
        doc.build(story)
    return buffer.getvalue()
