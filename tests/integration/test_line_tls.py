"""Who may talk to the line (issue 11): the real commserver process with mutual TLS, certificates made
for the test run (tests/payeasy/tls_helpers.py), on PostgreSQL.

Refused: no client certificate, one from another CA, an expired one, a valid one whose subject is not
mapped, a source address not allowed, a plain TCP client — and nothing of theirs is stored. A mapped
client pays; the same client sending as another centre (H2) gets 9001, recorded as refused. Production
settings without TLS do not start (naming what is missing) unless ``--insecure-plaintext``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from billing.models import Invoice
from payeasy.models import Message, Notice
from tests.factories import make_contract
from tests.integration.conftest import ROOT, CommServerProcess, process_env, wait_for
from tests.payeasy import line_helpers as h
from tests.payeasy import tls_helpers
from tests.payeasy.tls_helpers import CENTRE_SUBJECT, UNMAPPED_SUBJECT, Pki, TlsLineClient

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "tls-test-" + "k" * 50,
    "DJANGO_ALLOWED_HOSTS": "localhost",
}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return tls_helpers.make_pki(tmp_path / "pki")


@pytest.fixture
def tls_line(postgres: None, celery_broker, commserver_factory, pki: Pki):  # type: ignore[no-untyped-def]
    """A biller with a published invoice, a commserver on mutual TLS, the line opened by the mapped
    client."""
    biller = h.line_biller()
    invoice = h.published_invoice(biller, price=5000)
    server = commserver_factory(**celery_broker, **pki.server_env())
    assert "mutual TLS" in server.output()
    with TlsLineClient(server.port, pki.client_context("client")) as client:
        client.send(h.open_day(biller))
        assert client.receive(1)[0].response_code == "0000"
    return biller, invoice, server


def stored() -> tuple[int, int]:
    return Message.objects.count(), Notice.objects.count()


def assert_refused(connect: Callable[[], Any], payment: Any) -> None:
    """``connect()`` either fails (the handshake) or gives a client the server ends without answering
    the payment it sends; nothing is stored."""
    before = stored()
    try:
        client = connect()
    except (ssl.SSLError, ConnectionError):
        pass
    else:
        with client:
            with contextlib.suppress(ssl.SSLError, OSError):
                client.send(payment)
            assert client.refused() if isinstance(client, TlsLineClient) else client.closed_by_server()
    time.sleep(0.5)  # anything the server had taken would be stored by now
    assert stored() == before


def log_has(server: CommServerProcess, text: str) -> None:
    wait_for(lambda: text in server.output(), 5)


# --- refused ---------------------------------------------------------------------------------------------


def test_a_client_without_a_certificate_is_refused(tls_line, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    biller, invoice, server = tls_line
    assert_refused(lambda: TlsLineClient(server.port, pki.client_context(None)), h.payment(biller, invoice))
    log_has(server, "refused: TLS handshake failed")


@pytest.mark.parametrize("certificate", ["rogue", "expired"])
def test_a_certificate_of_another_ca_or_expired_is_refused(tls_line, pki: Pki, certificate: str) -> None:  # type: ignore[no-untyped-def]
    biller, invoice, server = tls_line
    assert_refused(
        lambda: TlsLineClient(server.port, pki.client_context(certificate)), h.payment(biller, invoice)
    )


def test_a_valid_certificate_whose_subject_is_not_mapped_is_refused_and_logged(tls_line, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    biller, invoice, server = tls_line
    assert_refused(
        lambda: TlsLineClient(server.port, pki.client_context("unmapped")), h.payment(biller, invoice)
    )
    log_has(server, f"certificate subject {UNMAPPED_SUBJECT} is not mapped in COMMSERVER_PEERS")


def test_a_plain_tcp_client_gets_nothing_from_a_tls_line(tls_line) -> None:  # type: ignore[no-untyped-def]
    biller, invoice, server = tls_line
    assert_refused(lambda: h.LineClient(server.port), h.payment(biller, invoice))
    log_has(server, "refused: TLS handshake failed")


def test_a_source_address_not_allowed_is_refused_and_logged(  # type: ignore[no-untyped-def]
    postgres, celery_broker, commserver_factory, pki: Pki
) -> None:
    biller = h.line_biller()
    invoice = h.published_invoice(biller, price=5000)
    server = commserver_factory(**celery_broker, **pki.server_env(COMMSERVER_ALLOWED_SOURCES="127.0.0.2/32"))
    context = pki.client_context("client")
    assert_refused(lambda: TlsLineClient(server.port, context), h.open_day(biller))  # from 127.0.0.1
    log_has(server, "source address 127.0.0.1 is not in COMMSERVER_ALLOWED_SOURCES")
    with TlsLineClient(server.port, context, source="127.0.0.2") as client:  # the allowed address
        client.send(h.open_day(biller))
        assert client.receive(1)[0].response_code == "0000"
        payment = h.payment(biller, invoice)
        client.send(payment)
        assert client.receive(1)[0].response_code == "0000"
    assert Notice.objects.filter(transaction_key=payment.transaction_key).exists()


# --- a mapped client, its own centres only ------------------------------------------------------------------


def test_a_mapped_client_pays_and_another_centre_is_answered_9001(  # type: ignore[no-untyped-def]
    tls_line, pki: Pki, celery_broker, worker_factory
) -> None:
    biller, invoice, server = tls_line
    payment = h.payment(biller, invoice)
    foreign = dataclasses.replace(h.payment(biller, invoice), centre="MPNC000009")
    with TlsLineClient(server.port, pki.client_context("client")) as client:
        client.send(h.inquiry(biller, invoice), payment)
        assert {r.response_code for r in client.receive(2)} == {"0000"}
        client.send(foreign)
        answer = client.receive(1)[0]
        assert (answer.message_type, answer.response_code) == ("1210", "9001")
        assert answer.transaction_key == foreign.transaction_key
        again = h.payment(biller, invoice)  # the connection goes on
        client.send(again)
        assert client.receive(1)[0].response_code == "0000"
    stored_payment = Message.objects.get(transaction_key=payment.transaction_key)
    assert CENTRE_SUBJECT in stored_payment.peer
    refused = Message.objects.get(transaction_key=foreign.transaction_key)
    assert (refused.outcome, refused.response_code) == ("refused", "9001")
    assert "MPNC000009" in refused.error and CENTRE_SUBJECT[:20] in refused.error + refused.peer
    assert not Notice.objects.filter(transaction_key=foreign.transaction_key).exists()
    assert Notice.objects.filter(transaction_key=payment.transaction_key).exists()
    worker_factory(**celery_broker)
    wait_for(lambda: Invoice.objects.get(pk=invoice.pk).status == "paid", 20)


def test_the_simulator_pays_over_tls(  # type: ignore[no-untyped-def]
    postgres, celery_broker, commserver_factory, worker_factory, pki: Pki
) -> None:
    biller = h.line_biller()
    invoice = h.published_invoice(biller, price=5000)
    server = commserver_factory(**celery_broker, **pki.server_env())
    worker_factory(**celery_broker)
    args = ["pay", "--biller", biller.biller_code, "--invoice", invoice.number, "--port", str(server.port)]
    tls = ["--tls-ca", pki.ca, "--tls-cert", pki.path("client"), "--tls-key", pki.path("client", "key")]
    out = _manage("mpn_simulate", *args, *tls, **celery_broker)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"invoice {invoice.number} is paid" in out.stdout
    # the settings do the same (make pay against a TLS line)
    unpaid = h.published_invoice(biller, price=6000)
    args[4] = unpaid.number
    out = _manage("mpn_simulate", *args, **celery_broker, **pki.client_env())
    assert f"invoice {unpaid.number} is paid" in out.stdout, out.stdout + out.stderr
    # a certificate the line does not map, and plain TCP: no answer, nothing paid
    refused = h.published_invoice(biller, price=7000)
    args[4] = refused.number
    for how in (pki.client_env("unmapped"), {"MPN_SIMULATOR_TLS_CA": ""}):
        out = _manage("mpn_simulate", *args, **celery_broker, **how)
        assert f"{refused.number}: inquiry answered no answer; not paid" in out.stdout, (
            out.stdout + out.stderr
        )
    assert Invoice.objects.get(pk=refused.pk).status == "published"


def test_the_sandbox_bank_speaks_tls_when_the_settings_say_so(tls_line, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    from payeasy.sandbox import bank

    biller, invoice, server = tls_line
    make_contract(biller, bank.bank_code(), channels=("02",))
    client = {k: v for k, v in pki.client_env("sandbox").items()}
    with override_settings(COMMSERVER_HOST="127.0.0.1", COMMSERVER_PORT=server.port, **client):
        result = bank.inquire(
            biller_code=biller.biller_code,
            customer_number=str(invoice.customer_number),
            confirmation_number=str(invoice.confirmation_number),
        )
    assert result.ok, result.message
    assert result.elements[4] == invoice.total
    logged = Message.objects.filter(message_type="1100", transaction_key__startswith=bank.CENTRE).get()
    assert "sandbox-bank" in logged.peer
    with override_settings(COMMSERVER_HOST="127.0.0.1", COMMSERVER_PORT=server.port, MPN_SIMULATOR_TLS_CA=""):
        plain = bank.inquire(
            biller_code=biller.biller_code,
            customer_number=str(invoice.customer_number),
            confirmation_number=str(invoice.confirmation_number),
        )
    assert not plain.ok


# --- production settings -----------------------------------------------------------------------------------


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=process_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_without_tls_does_not_start_and_names_the_missing_settings(postgres: None) -> None:
    result = _manage("commserver", "--port", "0", **PRODUCTION)
    assert result.returncode != 0
    assert "the commserver does not start" in result.stderr
    assert "COMMSERVER_TLS_CERT, COMMSERVER_TLS_KEY, COMMSERVER_TLS_CLIENT_CA not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_tls_without_peers_does_not_start(postgres: None, pki: Pki) -> None:
    result = _manage("commserver", "--port", "0", **PRODUCTION, **pki.server_env(mapping=""))
    assert result.returncode != 0
    assert "COMMSERVER_PEERS is not set" in result.stderr


def test_production_starts_with_insecure_plaintext_or_with_tls(  # type: ignore[no-untyped-def]
    postgres, celery_broker, commserver_factory, pki: Pki
) -> None:
    biller = h.line_biller()
    plain = commserver_factory("--insecure-plaintext", **PRODUCTION, **celery_broker)
    assert "plain TCP, --insecure-plaintext" in plain.output()
    assert "NOT encrypted" in plain.output()
    with h.LineClient(plain.port) as client:
        client.send(h.open_day(biller))
        assert client.receive(1)[0].response_code == "0000"
    tls = commserver_factory(**PRODUCTION, **celery_broker, **pki.server_env())
    assert "mutual TLS" in tls.output()
    with TlsLineClient(tls.port, pki.client_context("client")) as client:
        client.send(h.counters(biller))
        assert client.receive(1)[0].message_type == "1610"
