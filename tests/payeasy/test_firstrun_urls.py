"""Every absolute link comes from one setting, PORTAL_BASE_URL, which follows WEB_ADDR in development: with
`WEB_ADDR=127.0.0.1:8100 make run` the banner, the invitation links, the pay-later links and the PDF's
registration URL say :8100. The commserver and the MPN simulator (`make pay`) both follow COMMSERVER_PORT."""

from __future__ import annotations

import importlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import RequestFactory, override_settings

from billing.models import Biller, Invoice, Membership
from billing.notifications import invitation_email_send, payment_request_email_send
from billing.paylater import paylater_link, paylater_url
from billing.portal.services.invitations import published_invoice_link
from billing.services.invitations import invitation_create
from config.settings import product
from tests.factories import make_customer, make_invoice, make_user

ROOT = Path(__file__).resolve().parents[2]
ADDR = "127.0.0.1:8100"
BASE = "http://127.0.0.1:8100"


@pytest.fixture
def reload_product(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """config/settings/product.py read again under the environment the test sets (restored after)."""
    monkeypatch.delenv("PORTAL_BASE_URL", raising=False)
    monkeypatch.delenv("WEB_ADDR", raising=False)
    yield monkeypatch
    monkeypatch.undo()
    importlib.reload(product)


def base_url_for(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return importlib.reload(product).PORTAL_BASE_URL


@pytest.mark.parametrize(
    ("web_addr", "url"),
    [
        ("127.0.0.1:8100", "http://127.0.0.1:8100"),
        ("8100", "http://127.0.0.1:8100"),
        ("localhost:8100", "http://localhost:8100"),
        ("0.0.0.0:8100", "http://127.0.0.1:8100"),
        ("0:9000", "http://127.0.0.1:9000"),
        ("[::1]:8100", "http://[::1]:8100"),
        ("[::]:8100", "http://[::1]:8100"),
        (" 127.0.0.1:8000 ", "http://127.0.0.1:8000"),
    ],
)
def test_web_base_url_reads_runservers_address_forms(web_addr: str, url: str) -> None:
    assert product.web_base_url(web_addr) == url


@pytest.mark.parametrize(
    "web_addr", ["", "127.0.0.1", "http://127.0.0.1:8100", "host:port", "127.0.0.1:70000"]
)
def test_a_bad_web_addr_is_refused_with_its_name(web_addr: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"WEB_ADDR must be PORT, HOST:PORT"):
        product.web_base_url(web_addr)


def test_portal_base_url_follows_web_addr_in_development(reload_product: pytest.MonkeyPatch) -> None:
    assert base_url_for(reload_product) == "http://127.0.0.1:8000"  # make run's default
    assert base_url_for(reload_product, WEB_ADDR=ADDR) == BASE
    # set explicitly, PORTAL_BASE_URL wins (a proxy in front, another host name)
    assert (
        base_url_for(reload_product, PORTAL_BASE_URL="https://portal.example.jp/")
        == "https://portal.example.jp"
    )


def test_the_procfile_serves_where_the_links_point() -> None:
    procfile = (ROOT / "config" / "Procfile").read_text()
    web = re.search(r"^web: .*runserver \$\{WEB_ADDR:-([^}]+)\}$", procfile, re.M)
    assert web and web.group(1) == product.DEFAULT_WEB_ADDR
    commserver = re.search(r"^commserver: (.*)$", procfile, re.M)
    assert commserver and "--port" not in commserver.group(1)  # settings.COMMSERVER_PORT decides
    pay = (ROOT / "Makefile").read_text().split("\npay:", 1)[1].split("\n\n", 1)[0]
    assert "mpn_simulate pay" in pay and "--port" not in pay and "7700" not in pay


def _settings_of(*expressions: str, **env: str) -> list[str]:
    """Values of a fresh process's settings under ``env`` (development settings, as `make run` has them)."""
    clean = {
        k: v for k, v in os.environ.items() if k not in {"PORTAL_BASE_URL", "WEB_ADDR", "COMMSERVER_PORT"}
    }
    clean.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1", **env})
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from payeasy.management.commands import commserver, mpn_simulate\n"
        "def port(c, name): return c.Command().create_parser('manage.py', name).get_default('port')\n"
        f"for e in {list(expressions)!r}: print(eval(e))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_fresh_process_takes_web_addr_and_commserver_port_from_the_environment() -> None:
    expressions = (
        "settings.PORTAL_BASE_URL",
        "settings.COMMSERVER_PORT",
        "port(commserver, 'commserver')",
        "port(mpn_simulate, 'mpn_simulate')",
    )
    assert _settings_of(*expressions, WEB_ADDR=ADDR, COMMSERVER_PORT="7811") == [BASE, "7811", "7811", "7811"]
    assert _settings_of(*expressions) == ["http://127.0.0.1:8000", "7700", "7700", "7700"]


# --- the links, with PORTAL_BASE_URL as WEB_ADDR=127.0.0.1:8100 gives it ------------------------------------


@pytest.fixture
def web_addr_8100(reload_product: pytest.MonkeyPatch) -> Iterator[str]:
    base = base_url_for(reload_product, WEB_ADDR=ADDR)
    with override_settings(PORTAL_BASE_URL=base):
        yield base


@pytest.mark.django_db
def test_console_invitation_link_carries_web_addr(
    web_addr_8100: str, biller: Biller, mailoutbox: list
) -> None:
    invitation, token = invitation_create(
        actor=make_user(), biller=biller, email="new@example.jp", role=Membership.Role.OPERATOR
    )
    assert invitation_email_send(invitation_id=invitation.pk, token=token)
    assert f"{BASE}/accounts/invitations/{token}/" in mailoutbox[-1].body
    assert ":8000" not in mailoutbox[-1].body


@pytest.mark.django_db
def test_portal_invitation_link_carries_web_addr(web_addr_8100: str, biller: Biller) -> None:
    invoice = make_invoice(biller=biller, customer=make_customer(biller, email="first@example.jp"))
    url, is_invitation = published_invoice_link(invoice=invoice)
    assert is_invitation and url.startswith(f"{BASE}/b/{biller.slug}/my/")


@pytest.mark.django_db
def test_pay_later_links_carry_web_addr(web_addr_8100: str, biller: Biller, mailoutbox: list) -> None:
    order = make_invoice(biller=biller, kind=Invoice.Kind.PAYMENT_REQUEST, amount=12800)
    url = paylater_url(order)
    assert url.startswith(f"{BASE}/b/{biller.slug}/pay/")
    # the console and the API show the e-mail's link, whatever host the admin came by
    request = RequestFactory().get("/", HTTP_HOST=f"{biller.slug}.localhost:8100")
    assert paylater_link(request, order) == url
    Invoice.objects.filter(pk=order.pk).update(notified_at=None)
    assert payment_request_email_send(invoice_id=order.pk)
    assert url in mailoutbox[-1].body and ":8000" not in mailoutbox[-1].body


def _texts(item: Any) -> Iterator[str]:
    """The paragraphs' text in flowables (tables and KeepTogether opened)."""
    if isinstance(item, list | tuple):
        for child in item:
            yield from _texts(child)
    elif hasattr(item, "_cellvalues"):
        yield from _texts(item._cellvalues)
    elif hasattr(item, "_content"):
        yield from _texts(item._content)
    elif isinstance(getattr(item, "text", None), str):
        yield item.text


@pytest.mark.django_db
def test_pdf_registration_url_carries_web_addr(web_addr_8100: str, biller: Biller) -> None:
    from billing import pdf

    invoice = make_invoice(biller=biller, customer=make_customer(biller, registration_code="ABCDEFGHJKMN"))
    flowables = pdf._portal_registration(invoice, pdf._Styles(pdf.pdf_font()), None)
    texts = list(_texts(flowables))
    assert any(t.startswith(f"{BASE}/b/{biller.slug}/my/register/") for t in texts), texts


@pytest.mark.django_db
def test_demo_banner_carries_web_addr(web_addr_8100: str) -> None:
    call_command("seed_demo", stdout=io.StringIO())
    out = io.StringIO()
    call_command("demo_info", stdout=out)
    banner = out.getvalue()
    assert f"{BASE}/staff/" in banner and f"{BASE}/b/toto-denryoku/my/" in banner
    assert f"{BASE}/b/toto-denryoku/pay/" in banner  # the pay-later order
    assert f"{BASE}/sandbox-bank/" in banner
    assert ":8000" not in banner
