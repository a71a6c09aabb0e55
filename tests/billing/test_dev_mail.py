"""Development e-mail (billing.dev_mail): `make run` prints each message readably, never as base64 MIME."""

from __future__ import annotations

import base64
import importlib
import io

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.test import override_settings

from billing import dev_mail
from billing.models import Biller, Membership
from billing.notifications import invitation_email_send
from billing.services.invitations import invitation_create
from tests.factories import make_user

LINK = "https://portal.example.jp/b/toto-denryoku/my/invitations/AbC_123-xyz/"


def message() -> EmailMultiAlternatives:
    body = (
        "山田 太郎 様\n\n東都電力のWeb明細にご招待します。次のリンクを開いてください。\n\n"
        f"{LINK}\n\n詳しくは（{LINK}）をご覧ください。\n"
    )
    msg = EmailMultiAlternatives(
        "【東都電力】Web明細へのご招待",
        body,
        "東都電力 料金センター <no-reply@toto-denryoku.example>",
        ["山田 太郎 <taro@example.jp>"],
        cc=["経理 <keiri@aoba.example.jp>"],
        bcc=["audit@toto-denryoku.example"],
        reply_to=["billing@toto-denryoku.example"],
    )
    msg.attach_alternative(f'<p><a href="{LINK}">ご招待を受ける</a></p>', "text/html")
    msg.attach("請求書_2026-11-000101.pdf", b"%PDF-1.4\n" + b"x" * 1991, "application/pdf")
    return msg


def test_headers_body_links_and_attachments_are_printed_decoded() -> None:
    text = dev_mail.readable(message())
    assert "Subject:  【東都電力】Web明細へのご招待" in text
    assert "From:     東都電力 料金センター <no-reply@toto-denryoku.example>" in text
    assert "To:       山田 太郎 <taro@example.jp>" in text
    assert "Cc:       経理 <keiri@aoba.example.jp>" in text
    assert "Bcc:      audit@toto-denryoku.example" in text
    assert "Reply-To: billing@toto-denryoku.example" in text
    assert "東都電力のWeb明細にご招待します。次のリンクを開いてください。" in text
    assert f"\n{LINK}\n" in text  # the link on a line of its own, as written
    links = text.split("Links:\n", 1)[1].split("\n---", 1)[0]
    assert links.splitlines() == [f"  {LINK}"]  # once, without the closing bracket of the second mention
    assert "Also as text/html" in text and "<p>" not in text
    assert "Attachments:\n  請求書_2026-11-000101.pdf (application/pdf, 2,000 bytes)" in text
    # nothing in the wire form: no encoded words, no base64 of the body or of the attachment
    assert "=?utf-8?" not in text and "Content-Transfer-Encoding" not in text
    assert base64.b64encode("山田 太郎 様".encode()).decode()[:12] not in text
    assert "JVBERi0xLjQ" not in text


def test_a_message_with_html_only_lists_the_html_links() -> None:
    msg = EmailMultiAlternatives("HTML only", "", "a@example.jp", ["b@example.jp"])
    msg.content_subtype = "html"
    msg.body = f'<p>Open <a href="{LINK}">this</a>.</p>'
    text = dev_mail.readable(msg)
    assert "(no text/plain body)" in text
    assert f"Links:\n  {LINK}\n" in text


def test_links_stop_at_japanese_text_and_sentence_punctuation() -> None:
    assert dev_mail.links_in(
        "こちら https://a.example/x?y=1&z=2。次は http://127.0.0.1:8100/b/s/pay/t/ です"
    ) == [
        "https://a.example/x?y=1&z=2",
        "http://127.0.0.1:8100/b/s/pay/t/",
    ]


@pytest.mark.django_db
def test_the_backend_prints_the_real_invitation_e_mail_readably(biller: Biller) -> None:
    out = io.StringIO()
    mailers = {"default": {"BACKEND": "billing.dev_mail.EmailBackend", "OPTIONS": {"stream": out}}}
    admin = make_user()
    with override_settings(MAILERS=mailers, PORTAL_BASE_URL="http://127.0.0.1:8100"):
        invitation, token = invitation_create(
            actor=admin, biller=biller, email="new.member@example.jp", role=Membership.Role.OPERATOR
        )
        assert invitation_email_send(invitation_id=invitation.pk, token=token)
        mail.mailers["default"].close()
    text = out.getvalue()
    link = f"http://127.0.0.1:8100/accounts/invitations/{token}/"
    assert text.count("E-mail (development: printed here, not sent)") == 1
    assert "To:       new.member@example.jp" in text
    assert f"{biller.legal_name}" in text and "招待されました" in text
    assert f"\n{link}\n" in text and f"Links:\n  {link}\n" in text


def test_development_settings_choose_the_readable_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from config.settings import email

    monkeypatch.delenv("DJANGO_EMAIL_BACKEND", raising=False)
    monkeypatch.setenv("DJANGO_DEBUG", "1")
    try:
        assert importlib.reload(email).MAILERS["default"]["BACKEND"] == "billing.dev_mail.EmailBackend"
        monkeypatch.setenv("DJANGO_EMAIL_BACKEND", "console")  # the raw MIME, on request
        assert (
            importlib.reload(email)
            .MAILERS["default"]["BACKEND"]
            .startswith("django.core.mail.backends.console")
        )
    finally:
        monkeypatch.undo()
        importlib.reload(email)
