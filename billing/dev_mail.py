"""Development e-mail: each message printed as a person reads it, not as MIME.

Django's console backend prints the wire form: a Japanese subject as ``=?utf-8?b?…?=`` and the body in
base64, so an invitation link cannot be read or clicked in `make run`'s output. This backend (the default
under DJANGO_DEBUG=1, ``DJANGO_EMAIL_BACKEND=readable``; config/settings/email.py) prints the decoded
headers (Date, From, To, Cc, Bcc, Reply-To, Subject), the decoded text/plain body, the links in it one
per line, the other versions (text/html) by type and length, and each attachment by name, type and size.
Nothing is sent anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message

from django.core.mail import EmailMessage
from django.core.mail.backends.console import EmailBackend as ConsoleBackend

RULE = "=" * 72
THIN = "-" * 72
HEADERS = ("Date", "From", "To", "Cc", "Reply-To", "Subject")
# A link: http(s):// and printable ASCII up to a space, a quote or an angle bracket (Japanese text right
# after a URL is not part of it), without the punctuation that ends a sentence.
LINK = re.compile(r"https?://[^\s\"'<>`\u0080-\U0010ffff]+")
LINK_TAIL = ".,;:!?)]}>'\""


def links_in(text: str) -> list[str]:
    """The http(s) links in ``text``, in order, each once."""
    found: list[str] = []
    for match in LINK.finditer(text):
        link = match.group(0).rstrip(LINK_TAIL)
        if link not in found:
            found.append(link)
    return found


def _is_attachment(part: Message) -> bool:
    return part.get_content_disposition() == "attachment" or part.get_content_type() == "message/rfc822"


def _size(part: Message) -> int:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return len(payload)
    return len(part.as_bytes())  # message/rfc822: the attached message as a whole


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return payload.decode(part.get_content_charset() or "utf-8", errors="replace")


def _leaves(part: Message) -> Iterator[Message]:
    """The parts a reader sees: inline leaves and attachments (an attached message as one)."""
    if _is_attachment(part) or not part.is_multipart():
        yield part
        return
    for child in part.get_payload():
        if isinstance(child, Message):
            yield from _leaves(child)


def readable(message: EmailMessage) -> str:
    """``message`` as plain text for a terminal: decoded headers, body, links, versions, attachments."""
    mime = message.message()
    lines = [RULE, "E-mail (development: printed here, not sent)"]
    for name in HEADERS:
        value = mime.get(name)
        if value is not None:
            lines.append(f"{name + ':':<10}{' '.join(str(value).split())}")
        if name == "Cc" and message.bcc:  # not a header: Django keeps it on the message
            lines.append(f"{'Bcc:':<10}{', '.join(message.bcc)}")
    bodies: list[str] = []
    html: list[str] = []
    versions: list[str] = []
    attachments: list[str] = []
    for part in _leaves(mime):
        kind = part.get_content_type()
        if _is_attachment(part):
            name = part.get_filename() or f"(unnamed {kind})"
            attachments.append(f"  {name} ({kind}, {_size(part):,} bytes)")
        elif kind == "text/plain":
            bodies.append(_text(part).rstrip("\n"))
        else:
            if kind == "text/html":
                html.append(_text(part))
            versions.append(f"Also as {kind} ({_size(part):,} bytes), not shown")
    text = "\n\n".join(bodies)
    lines += [THIN, text or "(no text/plain body)"]
    found = links_in(text) if text else links_in("\n".join(html))
    if found:
        lines += [THIN, "Links:", *(f"  {link}" for link in found)]
    if versions or attachments:
        lines.append(THIN)
    lines += versions
    if attachments:
        lines += ["Attachments:", *attachments]
    lines.append(RULE)
    return "\n".join(lines) + "\n"


class EmailBackend(ConsoleBackend):
    """Django's console backend (its lock; ``stream=`` to write elsewhere than stdout), writing
    :func:`readable` instead of the MIME text."""

    def write_message(self, message: EmailMessage) -> None:
        self.stream.write(readable(message))
