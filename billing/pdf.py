"""PDF of an invoice: a Japanese qualified invoice (適格請求書) with its Pay-easy payment numbers.

``invoice_pdf(invoice)`` returns the bytes of an A4 portrait PDF. The same
invoice always gives the same bytes (reportlab's ``invariant`` mode: no
timestamps, no random document id), so a PDF can be cached, hashed or stored.

The Japanese font is embedded (as a subset), so the PDF shows the same in
every viewer. It is IPAexGothic (ipaexg.ttf, TrueType outlines), shipped in
``billing/fonts/`` under the IPA Font License v1.0 (redistribution unmodified
with the licence, and embedding, are allowed), unless ``settings.PDF_FONT_PATH``
names another .ttf (or a .ttc, with ``PDF_FONT_SUBFONT_INDEX``) with TrueType
outlines: CFF-based OpenType (.otf, Noto CJK) does not work with reportlab.

What the document shows follows the qualified-invoice rules: the issuer and
its registration number, the recipient, the date, the items with the reduced
rate (8%) marked ※, the amounts and the tax per rate (tax computed once per
rate with the invoice's rounding rule, see ``billing.invoicing``).

Who reads the PDF decides whether it carries the payment numbers: ``numbers`` is what
``billing.portal.services.numbers_visibility`` says for a portal user (the お客様番号, the 確認番号 and
the registration code are then replaced by a plain sentence saying when they appear); the console and
the iDC staff pass nothing and get the whole bill, as it is printed on paper.
"""

from __future__ import annotations

import datetime
import io
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.invoicing import TAX_CATEGORY_LABELS
from billing.models import Customer, Invoice
from billing.numbers import ATM_CASH_LIMIT

if TYPE_CHECKING:
    from billing.portal.services import NumbersVisibility

__all__ = ["find_font", "invoice_pdf", "pdf_font"]

BUNDLED_FONT = Path(__file__).resolve().parent / "fonts" / "ipaexg.ttf"

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
INK = colors.HexColor("#1f2937")
MUTED = colors.HexColor("#6b7280")
RULE = colors.HexColor("#9ca3af")
SHADE = colors.HexColor("#eef2f7")
ACCENT = colors.HexColor("#1e3a8a")
WARN = colors.HexColor("#b91c1c")

ROUNDING_LABELS = {"floor": "切り捨て", "half_up": "四捨五入", "ceiling": "切り上げ"}
PAYEASY_INSTRUCTIONS = (
    "ATM・インターネットバンキングで「税金・料金払込み」からペイジーを選び、上記の番号を入力してください。"
)

# What the payment box says instead of a number a portal user may not see (see NumbersVisibility).
WITHHELD_NUMBER = {
    "approval": "社内承認後に表示されます",
    "payers_after_approval": "承認後、お支払い担当者に表示されます",
    "payers": "お支払い担当者に表示されます",
}
WITHHELD_NOTE = {
    "approval": "お支払い番号は、社内で承認された後にWeb明細の請求書ページとこのPDFに表示されます。",
    "payers_after_approval": (
        "お支払い番号は、社内で承認された後、お支払い担当者の方のWeb明細とPDFにのみ表示されます。"
    ),
    "payers": "お支払い番号は、お支払い担当者の方のWeb明細とPDFにのみ表示されます。",
}

# reportlab keeps per-font subset state: one PDF (invoice, receipt, daily report) built at a time
build_lock = threading.Lock()


# --- the font -------------------------------------------------------------------------------------


def find_font() -> tuple[Path, int]:
    """The Japanese TrueType font to embed, and its index inside a .ttc collection (0 for a .ttf)."""
    configured = getattr(settings, "PDF_FONT_PATH", None)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ImproperlyConfigured(f"PDF_FONT_PATH {configured!s} is not a file")
        return path, int(getattr(settings, "PDF_FONT_SUBFONT_INDEX", 0) or 0)
    return BUNDLED_FONT, 0


@lru_cache(maxsize=4)
def _registered_font(path: Path, subfont_index: int) -> str:
    name = f"InvoiceJP-{path.stem}-{subfont_index}"
    pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=subfont_index))
    return name


def pdf_font() -> str:
    """The registered name of the Japanese font every PDF of the product is drawn in (``find_font``)."""
    return _registered_font(*find_font())


# --- formatting -----------------------------------------------------------------------------------


def yen(amount: int) -> str:
    return f"{amount:,}円"


def japanese_date(day: datetime.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _title(invoice: Invoice) -> str:
    qualified = bool(invoice.biller.registration_number)
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        return "適格返還請求書" if qualified else "返還請求書"
    if invoice.kind == Invoice.Kind.PAYMENT_REQUEST:
        return "お支払いのご案内"
    return "請求書"


def _recipient(invoice: Invoice) -> str:
    name = invoice.recipient_name or (invoice.customer.name if invoice.customer else "")
    if not name:
        return ""
    corporate = invoice.customer is not None and invoice.customer.kind == Customer.Kind.CORPORATE
    return f"{name} {'御中' if corporate else '様'}"


def _shows_payment_box(invoice: Invoice) -> bool:
    return (
        invoice.kind != Invoice.Kind.CREDIT_NOTE
        and bool(invoice.customer_number)
        and invoice.status not in (Invoice.Status.PAID, Invoice.Status.CANCELLED)
    )


# --- layout ---------------------------------------------------------------------------------------


class _Styles:
    def __init__(self, font: str) -> None:
        self.font = font
        base = ParagraphStyle("base", fontName=font, fontSize=9, leading=13, textColor=INK, wordWrap="CJK")
        self.body = base
        self.small = ParagraphStyle("small", parent=base, fontSize=7.5, leading=10.5, textColor=MUTED)
        self.title = ParagraphStyle(
            "title", parent=base, fontSize=22, leading=28, alignment=TA_CENTER, textColor=ACCENT
        )
        self.subtitle = ParagraphStyle(
            "subtitle", parent=base, fontSize=8, leading=11, alignment=TA_CENTER, textColor=MUTED
        )
        self.recipient = ParagraphStyle("recipient", parent=base, fontSize=14, leading=19)
        self.issuer = ParagraphStyle("issuer", parent=base, fontSize=10.5, leading=15)
        self.cell = ParagraphStyle("cell", parent=base, fontSize=8.5, leading=11.5)
        self.cell_right = ParagraphStyle("cell_right", parent=self.cell, alignment=TA_RIGHT)
        self.cell_center = ParagraphStyle("cell_center", parent=self.cell, alignment=TA_CENTER)
        self.head = ParagraphStyle("head", parent=self.cell, alignment=TA_CENTER, textColor=colors.white)
        self.total_label = ParagraphStyle("total_label", parent=base, fontSize=12, leading=16)
        self.total_amount = ParagraphStyle(
            "total_amount", parent=base, fontSize=20, leading=24, alignment=TA_RIGHT
        )
        self.box_title = ParagraphStyle(
            "box_title", parent=base, fontSize=10.5, leading=14, textColor=colors.white, alignment=TA_LEFT
        )
        self.number = ParagraphStyle("number", parent=base, fontSize=12, leading=16)
        self.warn = ParagraphStyle("warn", parent=base, textColor=WARN)


def _table_style(s: _Styles, commands: list[Any]) -> TableStyle:
    # Every cell in the Japanese font, so no other font is referenced by the PDF.
    return TableStyle([("FONTNAME", (0, 0), (-1, -1), s.font), *commands])


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _header(invoice: Invoice, s: _Styles) -> list[Flowable]:
    biller = invoice.biller
    story: list[Flowable] = [_p(_title(invoice), s.title)]
    if invoice.kind == Invoice.Kind.INVOICE and biller.registration_number:
        story.append(_p("（適格請求書）", s.subtitle))
    if invoice.status == Invoice.Status.DRAFT:
        story.append(_p("下書き（未発行）", ParagraphStyle("draft", parent=s.warn, alignment=TA_CENTER)))
    elif invoice.status == Invoice.Status.CANCELLED:
        story.append(_p("取消済", ParagraphStyle("cancelled", parent=s.warn, alignment=TA_CENTER)))
    story.append(Spacer(0, 5 * mm))

    # Left: the recipient. Right: the document's numbers and dates, then the issuer.
    left: list[Flowable] = []
    customer = invoice.customer
    if customer is not None and (customer.postal_code or customer.address):
        postal = f"〒{customer.postal_code} " if customer.postal_code else ""
        left.append(_p(f"{postal}{customer.address}", s.small))
    recipient = _recipient(invoice)
    if recipient:
        left.append(_p(recipient, s.recipient))
    left.append(Spacer(0, 3 * mm))
    subject = "返還理由" if invoice.kind == Invoice.Kind.CREDIT_NOTE else "件名"
    left.append(_p(f"{subject}：{invoice.description}", s.body))
    greeting = {
        "credit_note": "下記のとおりご返還いたします。",
        "payment_request": "下記のとおりお支払いをお願い申し上げます。",
    }.get(str(invoice.kind), "下記のとおりご請求申し上げます。")
    left.append(_p(greeting, s.body))

    number_label = {"credit_note": "返還請求書番号", "payment_request": "ご案内番号"}.get(
        str(invoice.kind), "請求書番号"
    )
    meta_rows = [[number_label, invoice.number]]
    meta_rows.append(["発行日", japanese_date(invoice.issue_date)])
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        original = invoice.original
        if original is not None:
            meta_rows.append(["元の請求書番号", original.number])
            meta_rows.append(["元の取引日", japanese_date(original.issue_date)])
    else:
        meta_rows.append(["お支払期限", japanese_date(invoice.due_date)])
    meta = Table(
        [[_p(label, s.cell), _p(value, s.cell_right)] for label, value in meta_rows],
        colWidths=[26 * mm, 44 * mm],
        style=_table_style(
            s,
            [
                ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
            ],
        ),
        hAlign="RIGHT",
    )
    right: list[Flowable] = [meta, Spacer(0, 4 * mm), _p(biller.legal_name, s.issuer)]
    if biller.registration_number:
        right.append(_p(f"登録番号 {biller.registration_number}", s.body))
    header = Table(
        [[left, right]],
        colWidths=[CONTENT_WIDTH - 72 * mm, 72 * mm],
        style=_table_style(
            s,
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (0, 0), 6 * mm),
                ("RIGHTPADDING", (1, 0), (1, 0), 0),
            ],
        ),
    )
    story += [header, Spacer(0, 5 * mm)]

    label = "返還金額（税込）" if invoice.kind == Invoice.Kind.CREDIT_NOTE else "ご請求金額（税込）"
    total = Table(
        [[_p(label, s.total_label), _p(yen(invoice.total), s.total_amount)]],
        colWidths=[45 * mm, 65 * mm],
        style=_table_style(
            s,
            [
                ("BOX", (0, 0), (-1, -1), 1.2, ACCENT),
                ("BACKGROUND", (0, 0), (0, 0), SHADE),
                ("LINEAFTER", (0, 0), (0, 0), 0.6, ACCENT),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ("RIGHTPADDING", (0, 0), (-1, -1), 6),
            ],
        ),
        hAlign="LEFT",
    )
    story += [total, Spacer(0, 6 * mm)]
    return story


def _lines_table(invoice: Invoice, s: _Styles) -> list[Flowable]:
    if not invoice.lines:
        return []
    basis = "税込" if invoice.tax_inclusive else "税抜"
    rows: list[list[Any]] = [
        [_p(text, s.head) for text in ("品目", "数量", f"単価（{basis}）", f"金額（{basis}）", "税率")]
    ]
    reduced = False
    for line in invoice.lines:
        category = str(line.get("tax_category", ""))
        reduced = reduced or category == "8"
        mark = "※" if category == "8" else ""
        rows.append(
            [
                _p(f"{line.get('description', '')}{mark}", s.cell),
                _p(f"{int(line.get('quantity', 0)):,}", s.cell_right),
                _p(yen(int(line.get("unit_price", 0))), s.cell_right),
                _p(yen(int(line.get("amount", 0))), s.cell_right),
                _p(TAX_CATEGORY_LABELS.get(category, category), s.cell_center),
            ]
        )
    widths = [CONTENT_WIDTH - 102 * mm, 18 * mm, 30 * mm, 34 * mm, 20 * mm]
    table = Table(
        rows,
        colWidths=widths,
        repeatRows=1,
        style=_table_style(
            s,
            [
                ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f8fafc")]),
                ("LINEBELOW", (0, 1), (-1, -1), 0.3, RULE),
                ("BOX", (0, 0), (-1, -1), 0.6, ACCENT),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
            ],
        ),
    )
    story: list[Flowable] = [table]
    if reduced:
        story += [Spacer(0, 1.5 * mm), _p("※は軽減税率（8%）対象", s.small)]
    story.append(Spacer(0, 4 * mm))
    return story


def _rate_summary(invoice: Invoice, s: _Styles) -> list[Flowable]:
    inclusive = invoice.tax_inclusive
    rows: list[list[Any]] = []
    for label, subtotal, tax in invoice.rate_rows():
        if label == "非課税":
            rows.append(
                [_p("非課税", s.cell), _p(yen(subtotal), s.cell_right), _p("", s.cell), _p("", s.cell)]
            )
            continue
        rate = label.rstrip("※")
        name = f"{rate}対象{'（税込）' if inclusive else ''}{'※' if label.endswith('※') else ''}"
        base = subtotal + tax if inclusive else subtotal
        rows.append(
            [
                _p(name, s.cell),
                _p(yen(base), s.cell_right),
                _p("うち消費税" if inclusive else "消費税", s.cell_right),
                _p(yen(tax), s.cell_right),
            ]
        )
    rows.append(
        [_p("合計（税込）", s.cell), _p(yen(invoice.total), s.cell_right), _p("", s.cell), _p("", s.cell)]
    )
    table = Table(
        rows,
        colWidths=[34 * mm, 32 * mm, 22 * mm, 28 * mm],
        hAlign="RIGHT",
        style=_table_style(
            s,
            [
                ("LINEBELOW", (0, 0), (-1, -2), 0.3, RULE),
                ("LINEABOVE", (0, -1), (-1, -1), 0.9, INK),
                ("BACKGROUND", (0, -1), (-1, -1), SHADE),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
            ],
        ),
    )
    rounding = ROUNDING_LABELS.get(invoice.tax_rounding, invoice.tax_rounding)
    basis = "税込表示" if inclusive else "税抜表示"
    note = f"価格は{basis}です。消費税は税率ごとに合計した金額から1回計算しています（端数処理：{rounding}）。"
    return [
        KeepTogether([table, Spacer(0, 1.5 * mm), _p(note, ParagraphStyle("n", parent=s.small))]),
        Spacer(0, 6 * mm),
    ]


def _payment_box(invoice: Invoice, s: _Styles, numbers: NumbersVisibility | None) -> list[Flowable]:
    if not _shows_payment_box(invoice):
        return []
    shown = numbers is None or numbers.visible
    reason = numbers.reason if numbers is not None else ""
    withheld = "" if shown else WITHHELD_NUMBER.get(reason, "表示されません")
    rows: list[list[Any]] = [[_p("ペイジー（Pay-easy）でのお支払い", s.box_title), _p("", s.body)]]
    for label, value in (
        ("収納機関番号", invoice.biller.payee_number),
        ("お客様番号", (invoice.customer_number or "") if shown else withheld),
        ("確認番号", (invoice.confirmation_number or "") if shown else withheld),
        ("お支払金額", yen(invoice.total)),
        ("お支払期限", japanese_date(invoice.due_date)),
    ):
        rows.append([_p(label, s.body), _p(value, s.number)])
    if shown:
        rows.append([_p(PAYEASY_INSTRUCTIONS, s.body), _p("", s.body)])
    else:
        note = WITHHELD_NOTE.get(reason, "お支払い番号はこのPDFには表示されません。")
        rows.append([_p(note, s.body), _p("", s.body)])
    if invoice.total > ATM_CASH_LIMIT:
        rows.append([_p("ATMで現金によるお支払いは10万円までです。", s.warn), _p("", s.body)])
    first_note = 6
    table = Table(
        rows,
        colWidths=[40 * mm, CONTENT_WIDTH - 40 * mm],
        style=_table_style(
            s,
            [
                ("SPAN", (0, 0), (-1, 0)),
                ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
                ("BOX", (0, 0), (-1, -1), 1, ACCENT),
                ("BACKGROUND", (0, 1), (0, first_note - 1), SHADE),
                ("LINEBELOW", (0, 1), (-1, first_note - 1), 0.3, RULE),
                *[("SPAN", (0, row), (-1, row)) for row in range(first_note, len(rows))],
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ("LEFTPADDING", (0, 0), (-1, -1), 6),
            ],
        ),
    )
    return [KeepTogether([table]), Spacer(0, 6 * mm)]


def _status_note(invoice: Invoice, s: _Styles) -> list[Flowable]:
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        return []
    if invoice.status == Invoice.Status.PAID:
        return [_p("このご請求はお支払い済みです。", s.body), Spacer(0, 4 * mm)]
    if invoice.status == Invoice.Status.CANCELLED:
        return [_p("このご請求は取り消されました。お支払いはできません。", s.warn), Spacer(0, 4 * mm)]
    return []


def _portal_registration(invoice: Invoice, s: _Styles, numbers: NumbersVisibility | None) -> list[Flowable]:
    """The customer portal: the registration code that, with this bill's お客様番号, opens an account.

    It goes with the お客様番号: a reader who may not see that number gets neither."""
    customer = invoice.customer
    if customer is None or not customer.registration_code or not invoice.customer_number:
        return []
    if numbers is not None and not numbers.visible:
        return []
    from billing.portal.services import portal_url

    note = (
        f"{portal_url(invoice.biller, 'portal:register')} で、お客様番号とこの登録コードを入力すると"
        "Web明細・お支払いサービスにご登録いただけます（他の方に知らせないでください）。"
    )
    table = Table(
        [
            [
                _p("Web明細 登録コード", s.body),
                [_p(customer.registration_code_display, s.body), _p(note, s.small)],
            ]
        ],
        colWidths=[40 * mm, CONTENT_WIDTH - 40 * mm],
        style=_table_style(
            s,
            [
                ("BOX", (0, 0), (-1, -1), 0.6, RULE),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ("LEFTPADDING", (0, 0), (-1, -1), 6),
            ],
        ),
    )
    return [KeepTogether([table]), Spacer(0, 4 * mm)]


def _contact(invoice: Invoice, s: _Styles) -> list[Flowable]:
    biller = invoice.biller
    who = [biller.legal_name]
    if biller.contact_name:
        who.append(f"担当：{biller.contact_name}")
    reach = []
    if biller.contact_phone:
        reach.append(f"TEL：{biller.contact_phone}")
    if biller.contact_email:
        reach.append(f"E-mail：{biller.contact_email}")
    details = [_p("　".join(who), s.body)] + ([_p("　".join(reach), s.body)] if reach else [])
    table = Table(
        [[_p("お問い合わせ先", s.body), details]],
        colWidths=[28 * mm, CONTENT_WIDTH - 28 * mm],
        style=_table_style(
            s,
            [
                ("LINEABOVE", (0, 0), (-1, 0), 0.6, RULE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
            ],
        ),
    )
    return [KeepTogether([table])]


# --- pages ----------------------------------------------------------------------------------------


class _NumberedCanvas(canvas.Canvas):
    """A canvas that writes "page / pages" on every page once the page count is known."""

    footer_font = "Helvetica"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # reportlab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        count = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(self.footer_font, 7.5)
            self.setFillColor(MUTED)
            self.drawRightString(PAGE_WIDTH - MARGIN, 10 * mm, f"{self._pageNumber} / {count}")
            super().showPage()
        super().save()


def _canvas_maker(font: str) -> type[_NumberedCanvas]:
    return type("InvoiceCanvas", (_NumberedCanvas,), {"footer_font": font})


def pdf_filename(invoice: Invoice) -> str:
    """The download name of an invoice's PDF (console, portal, the portal's ZIP)."""
    return "invoice-{}.pdf".format(invoice.number.replace("/", "-"))


def invoice_pdf(invoice: Invoice, *, numbers: NumbersVisibility | None = None) -> bytes:
    """The invoice as an A4 PDF with an embedded Japanese font; the same invoice gives the same bytes.

    ``numbers``: for a portal user, ``numbers_visibility(user, invoice)``: withheld numbers and the
    registration code are left out, with a sentence saying when they appear. None (the console, the
    iDC staff): the whole bill, numbers included."""
    font = pdf_font()
    s = _Styles(font)
    title = _title(invoice)
    label = f"{title} {invoice.number}"

    def first_page(canv: canvas.Canvas, doc: SimpleDocTemplate) -> None:
        canv.saveState()
        canv.setFont(font, 7.5)
        canv.setFillColor(MUTED)
        canv.drawString(MARGIN, 10 * mm, f"{label}　{invoice.biller.legal_name}")
        canv.restoreState()

    def later_pages(canv: canvas.Canvas, doc: SimpleDocTemplate) -> None:
        first_page(canv, doc)
        canv.saveState()
        canv.setFont(font, 8)
        canv.setFillColor(MUTED)
        canv.drawString(MARGIN, PAGE_HEIGHT - 12 * mm, f"{label}（続き）")
        canv.restoreState()

    story: list[Flowable] = [
        *_header(invoice, s),
        *_lines_table(invoice, s),
        *_rate_summary(invoice, s),
        *_status_note(invoice, s),
        *_payment_box(invoice, s, numbers),
        *_portal_registration(invoice, s, numbers),
        *_contact(invoice, s),
    ]
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=label,
        author=invoice.biller.legal_name,
        subject=invoice.description,
        creator="payeasy-portal",
        invariant=True,
        initialFontName=font,
    )
    with build_lock:  # reportlab keeps per-font subset state; one build at a time is the safe side
        doc.build(story, onFirstPage=first_page, onLaterPages=later_pages, canvasmaker=_canvas_maker(font))
    return buffer.getvalue()
