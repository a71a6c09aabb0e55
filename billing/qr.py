"""QR codes for authenticator set-up pages (segno: pure Python, no image library, SVG inline).

The SVG carries no style attribute or script, so it passes the Content-Security-Policy as it is, and a
``<title>`` for screen readers; the set-up key stays on the page as text beside it.
"""

from __future__ import annotations

import segno
from django.utils.safestring import SafeString, mark_safe


def qr_svg(data: str, *, title: str) -> SafeString:
    """``data`` (an ``otpauth://`` URI) as an inline SVG QR code with a light quiet zone."""
    svg = segno.make(data, error="m").svg_inline(
        scale=4, border=4, dark="#000", light="#fff", title=title, svgclass="qr", lineclass=None
    )
    svg = svg.replace("<svg ", '<svg role="img" focusable="false" ', 1)
    return mark_safe(svg)  # noqa: S308 - segno's own markup; segno escapes the title
