"""The daily report as an A4 PDF (日次照合レポート): the tables of ``selectors.reports.report_tables``, in the
Japanese font the invoices use (``billing.pdf.find_font``: the bundled IPAexGothic or the configured one,
embedded as a subset).

The same report gives the same bytes (reportlab's ``invariant`` mode; the report carries its own
``generated_at``), so a test can compare two renderings.
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.pdf import ACCENT, INK, MUTED, RULE, SHADE, build_lock, japanese_date, pdf_font
from reconciliation.selectors.reports import DailyReport, ReportTable, report_heading, report_tables

__all__ = ["TITLE", "daily_report_pdf", "pdf_filename"]

TITLE = "日次照合レポート"
PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 15 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN


def font_name() -> str:
    """The registered name of the Japanese font the report is drawn in: the invoices' (billing.pdf)."""
    return pdf_font()


class _Styles:
    def __init__(self, font: str) -> None:
        base = ParagraphStyle("base", fontName=font, fontSize=9, leading=13, textColor=INK, wordWrap="CJK")
        self.font = font
        self.body = base
        self.title = ParagraphStyle(
            "title", parent=base, fontSize=18, leading=24, alignment=TA_CENTER, textColor=ACCENT
        )
        self.heading = ParagraphStyle(
            "heading", parent=base, fontSize=11, leading=15, textColor=ACCENT, spaceBefore=6, spaceAfter=3
        )
        self.note = ParagraphStyle("note", parent=base, fontSize=7.5, leading=10, textColor=MUTED)
        self.cell = ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9.5)
        self.cell_right = ParagraphStyle("cell_right", parent=self.cell, alignment=TA_RIGHT)
        self.head = ParagraphStyle("head", parent=self.cell, alignment=TA_CENTER)


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _number(value: Any, header: str) -> str:
    if not isinstance(value, int):
        return str(value)
    if header.endswith("金額") or header.endswith("入金額"):
        return f"{value:,}円"
    if header.endswith("件数"):
        return f"{value:,}件"
    return f"{value:,}"


def _cells(table: ReportTable) -> tuple[list[str], list[list[Any]]]:
    """Header and cell texts; (count, amount) pairs merged into one cell of two lines."""
    k = table.pairs_from
    if k is None:
        rows = [[_number(c, table.header[i]) for i, c in enumerate(row)] for row in table.rows]
        return table.header, rows
    header = [*table.header[:k], *(h.removesuffix("件数") for h in table.header[k::2])]
    merged = []
    for row in table.rows:
        cells = [str(c) for c in row[:k]]
        cells += [f"{row[i]:,}件\n{row[i + 1]:,}円" for i in range(k, len(row), 2)]
        merged.append(cells)
    return header, merged


def _table(table: ReportTable, s: _Styles) -> list[Flowable]:
    story: list[Flowable] = [_p(table.title, s.heading)]
    header, rows = _cells(table)
    if not rows:
        story.append(_p(table.note or "該当なし", s.body))
        return [KeepTogether(story)]
    first_numeric = table.pairs_from if table.pairs_from is not None else 1
    data = [[_p(h, s.head) for h in header]]
    for row in rows:
        data.append([_p(str(c), s.cell_right if i >= first_numeric else s.cell) for i, c in enumerate(row)])
    label_width = 36 * mm if first_numeric == 1 else 14 * mm
    widths = [label_width] + ([30 * mm] if first_numeric == 2 else [])
    rest = (CONTENT_WIDTH - sum(widths)) / (len(header) - len(widths))
    widths += [rest] * (len(header) - len(widths))
    if len(header) == 2:  # item and value
        widths = [50 * mm, 70 * mm]
    elif len(header) == 3:  # label, count, amount: less than the full width
        widths = [70 * mm, 30 * mm, 40 * mm]
    grid = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    grid.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), s.font),
                ("BACKGROUND", (0, 0), (-1, 0), SHADE),
                ("GRID", (0, 0), (-1, -1), 0.4, RULE),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    story.append(grid)
    if table.note:
        story.append(_p(table.note, s.note))
    return [KeepTogether(story)] if len(rows) < 15 else story


def pdf_filename(report: DailyReport) -> str:
    return f"daily-report-{report.biller.slug}-{report.processing_date:%Y%m%d}.pdf"


def daily_report_pdf(report: DailyReport) -> bytes:
    """The report as an A4 portrait PDF with the Japanese font embedded."""
    font = font_name()
    s = _Styles(font)
    biller = report.biller.legal_name
    label = f"{TITLE} {report.processing_date:%Y-%m-%d}"

    def every_page(canv: canvas.Canvas, doc: SimpleDocTemplate) -> None:
        canv.saveState()
        canv.setFont(font, 7.5)
        canv.setFillColor(MUTED)
        canv.drawString(MARGIN, 9 * mm, f"{label}　{biller}")
        canv.drawRightString(PAGE_WIDTH - MARGIN, 9 * mm, str(canv.getPageNumber()))
        canv.restoreState()

    heading = report_heading(report)
    story: list[Flowable] = [
        _p(TITLE, s.title),
        _p(f"{biller}　処理日 {japanese_date(report.processing_date)}", s.body),
        _p("　".join(f"{k}：{v}" for k, v in heading[2:]), s.note),
        Spacer(1, 4 * mm),
    ]
    for table in report_tables(report):
        story += _table(table, s)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=label,
        author=biller,
        subject=TITLE,
        creator="payeasy-portal",
        invariant=True,
        initialFontName=font,
    )
    with build_lock:
        doc.build(story, onFirstPage=every_page, onLaterPages=every_page)
    return buffer.getvalue()
