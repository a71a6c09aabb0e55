"""Outbound webhooks, hardened: where they may go, what the log keeps, and the signing secrets at rest.

Real PostgreSQL, real HTTP(S) servers on 127.0.0.1 in threads. Name resolution is the one thing taken
over: ``socket.getaddrinfo`` answers from a table the test controls (and may change its answer between
calls, as a rebinding DNS server does), and every ``socket.connect`` is recorded; a connection to
anything but 127.0.0.1 is refused at once, standing in for the internet.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from http.server import BaseHTTPRequestHandler
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from billing.models import Biller
from payeasy.events import Event
from payeasy.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from payeasy.services import webhook_endpoints, webhooks
from payeasy.webhook_signing import verify_signature
from tests import factories
from tests.payeasy.test_webhooks import Receiver

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "93.184.216.34"  # a globally routable address; nothing here ever really connects to it
K1 = "11" * 32
K2 = "22" * 32
K3 = "33" * 32


# --- the network under the test's control ----------------------------------------------------------------


class Net:
    """``answers[name]``: a list of answers (each a list of addresses); each lookup takes the next one,
    the last one repeats. ``lookups`` counts them per name; ``connects`` lists every address connected to.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: dict[str, int] = {}
        self.connects: list[str] = []
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        net = self

        def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0):  # type: ignore[no-untyped-def]
            name = host.decode() if isinstance(host, bytes) else host
            if name not in net.answers:
                return real_getaddrinfo(host, port, family, type, proto, flags)
            n = net.lookups.get(name, 0)
            net.lookups[name] = n + 1
            answers = net.answers[name]
            result = []
            for address in answers[min(n, len(answers) - 1)]:
                ip = ipaddress.ip_address(address)
                fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
                sockaddr: tuple[Any, ...] = (
                    (address, int(port or 0)) if ip.version == 4 else (address, int(port or 0), 0, 0)
                )
                result.append((fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
            return result

        def connect(sock: socket.socket, address: Any) -> None:
            host = address[0] if isinstance(address, tuple) else str(address)
            net.connects.append(host)
            if host != "127.0.0.1" and sock.family in (socket.AF_INET, socket.AF_INET6):
                raise ConnectionRefusedError(111, "the test network reaches 127.0.0.1 only")
            real_connect(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Net:
    return Net(monkeypatch)


@pytest.fixture
def production(settings: Any) -> Any:
    """The production rules: only the public internet."""
    settings.PAYEASY_WEBHOOK_ALLOW_PRIVATE = False
    return settings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def deliver_one(biller: Biller) -> WebhookDelivery:
    webhooks.events_record([Event("payment.received", biller.pk, None, {"amount": 1})])
    webhooks.deliver_due()
    return WebhookDelivery.objects.order_by("-id").first()  # type: ignore[return-value]


def console(biller: Biller, path: str = "") -> str:
    return f"/b/{biller.slug}/console/webhooks/{path}"


# --- 1. only the public internet -------------------------------------------------------------------------

REFUSED = [
    "10.0.0.5",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "100.64.0.1",  # shared address space (CGNAT)
    "198.18.0.1",  # benchmarking
    "127.0.0.1",
    "0.0.0.0",  # noqa: S104
    "169.254.169.254",  # cloud metadata
    "192.0.2.1",  # documentation
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fd00::1",
    "fc00::1",
    "fe80::1",
    "ff02::1",
    "2001:db8::1",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::a00:5",  # NAT64 of 10.0.0.5
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2002:a00:5::1",  # 6to4 of 10.0.0.5
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:10.0.0.5",
    "::ffff:127.0.0.1",
    "::169.254.169.254",  # IPv4-compatible
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "2001:0:808:808::80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:2::1",  # benchmarking
]


def _url(address: str) -> str:
    return f"https://[{address}]/hook" if ":" in address else f"https://{address}/hook"


@pytest.mark.parametrize("address", REFUSED)
def test_a_non_global_address_is_refused_at_save(production: Any, address: str) -> None:
    assert webhook_endpoints.url_problem(_url(address)), address


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "64:ff9b::808:808"])
def test_a_public_address_is_accepted(production: Any, address: str) -> None:
    assert webhook_endpoints.url_problem(_url(address)) == ""


def test_the_form_says_why_a_url_is_refused(
    admin_client: Client, biller: Biller, production: Any, net: Net
) -> None:
    net.answers["erp.tenant.test"] = [["10.1.2.3"]]
    for url, words in [
        ("https://10.0.0.5/hook", "10.0.0.5"),
        ("https://[64:ff9b::a9fe:a9fe]/hook", "169.254.169.254"),
        ("https://erp.tenant.test/hook", "10.1.2.3"),  # a name is resolved when saved
    ]:
        response = admin_client.post(console(biller, "new/"), {"url": url, "event_types": ["invoice.paid"]})
        assert response.status_code == 400, url
        errors = response.context["form"].errors["url"]
        assert any(words in e and "public" in e for e in errors), errors
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("address", ["10.0.0.5", "100.64.0.1", "64:ff9b::a9fe:a9fe", "::ffff:10.0.0.5"])
def test_a_private_address_is_refused_when_sending_too(
    biller: Biller, production: Any, net: Net, address: str
) -> None:
    """Saved when it was allowed (or written by hand): refused on every attempt, never connected to."""
    net.answers["moved.tenant.test"] = [[PUBLIC]]
    endpoint, _secret = webhook_endpoints.webhook_endpoint_create(
        actor=None, biller=biller, url="https://moved.tenant.test/hook", event_types=["payment.received"]
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=_url(address))
    net.answers["moved.tenant.test"] = [[address]]
    delivery = deliver_one(biller)
    assert delivery.last_error.startswith("refused"), delivery.last_error
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="https://moved.tenant.test/hook")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=datetime.datetime.now(datetime.UTC))
    webhooks.deliver_due()
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("refused") and address in delivery.last_error
    assert net.connects == []


def test_dns_rebinding_never_reaches_loopback(
    biller: Biller, production: Any, net: Net, receiver: Receiver
) -> None:
    """The name answers a public address when checked, then 127.0.0.1: the request must go to the
    address that was checked (here refused by the test network), never to the receiver on loopback."""
    port = receiver.server.server_address[1]
    url = f"http://rebind.tenant.test:{port}/hooks/payeasy"
    production.PAYEASY_WEBHOOK_REQUIRE_HTTPS = False
    net.answers["rebind.tenant.test"] = [[PUBLIC]]
    endpoint, _secret = webhook_endpoints.webhook_endpoint_create(
        actor=None, biller=biller, url=url, event_types=["payment.received"]
    )
    for _ in range(3):
        net.answers["rebind.tenant.test"] = [[PUBLIC], ["127.0.0.1"]]
        net.lookups.clear()
        delivery = deliver_one(biller)
        assert receiver.requests == [] and "127.0.0.1" not in net.connects
        assert net.lookups["rebind.tenant.test"] == 1  # resolved once, connected to what was checked
        assert delivery.status == "pending" and delivery.last_response_status is None
        assert "ConnectError" in delivery.last_error
    assert receiver.requests == []
    assert "127.0.0.1" not in net.connects and PUBLIC in net.connects
    # every address of a name must pass: one private among public ones refuses the lot
    net.answers["rebind.tenant.test"] = [[PUBLIC, "127.0.0.1"]]
    net.connects.clear()
    delivery = deliver_one(biller)
    assert delivery.last_error.startswith("refused") and net.connects == [] and receiver.requests == []
    assert endpoint.pk == delivery.endpoint_id


# --- connecting to the checked address keeps the host name for HTTP and TLS -----------------------------


def _cert(directory: Path, hostname: str) -> tuple[str, str, str]:
    """A CA and a server certificate for ``hostname`` (only): paths of the CA, the cert and its key."""
    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: x509.Name | None, key: Any, signer: Any, ca: bool) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("Webhook Test CA", None, ca_key, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = build(hostname, ca.subject, key, ca_key, False)
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(paths[0]), str(paths[1]), str(paths[2])


class TlsReceiver(Receiver):
    """``Receiver`` over TLS with a certificate for one host name; keeps the SNI names it was sent."""

    def __init__(self, cert: str, key: str) -> None:
        super().__init__()
        self.sni: list[str | None] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)  # type: ignore[assignment,misc,return-value]
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)


def test_host_header_sni_and_certificate_are_for_the_host_name(
    biller: Biller, production: Any, net: Net, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """127.0.0.1 is let through the address rule for this test only, and only 127.0.0.1: the name
    answers 127.0.0.1 once, then 127.0.0.2 (where nothing listens, and which the rule refuses), so
    the request arrives only if it goes to the very address that was checked."""
    from payeasy import outbound

    ca, cert, key = _cert(tmp_path, "hooks.tenant.test")
    server = TlsReceiver(cert, key)
    try:
        port = server.server.server_address[1]
        real_problem = outbound.address_problem
        monkeypatch.setattr(
            outbound,
            "address_problem",
            lambda ip, *rest: None if str(ip) == "127.0.0.1" else real_problem(ip, *rest),
        )
        monkeypatch.setattr(outbound, "tls_context", lambda: ssl.create_default_context(cafile=ca))
        net.answers["hooks.tenant.test"] = [["127.0.0.1"]]
        net.answers["other.tenant.test"] = [["127.0.0.1"]]
        _endpoint, secret = webhook_endpoints.webhook_endpoint_create(
            actor=None,
            biller=biller,
            url=f"https://hooks.tenant.test:{port}/hooks/payeasy",
            event_types=["payment.received"],
        )
        net.answers["hooks.tenant.test"] = [["127.0.0.1"], ["127.0.0.2"]]
        net.lookups.clear()
        delivery = deliver_one(biller)
        assert delivery.status == "succeeded", delivery.last_error
        assert net.lookups["hooks.tenant.test"] == 1
        (request,) = server.requests
        assert request.headers["Host"] == f"hooks.tenant.test:{port}"
        assert server.sni == ["hooks.tenant.test"]
        assert verify_signature(secret, request.headers["Payeasy-Signature"], request.body)
        # a certificate for another name is refused, though the address is the same and allowed
        webhook_endpoints.webhook_endpoint_set_active(
            actor=None, biller=biller, endpoint_id=_endpoint.pk, active=False
        )
        webhook_endpoints.webhook_endpoint_create(
            actor=None,
            biller=biller,
            url=f"https://other.tenant.test:{port}/hooks/payeasy",
            event_types=["payment.received"],
        )
        delivery = deliver_one(biller)
        assert delivery.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
        assert server.sni[-1] == "other.tenant.test" and len(server.requests) == 1
    finally:
        server.close()


# --- no proxy, no redirect -------------------------------------------------------------------------------


def test_a_proxy_from_the_environment_is_ignored(
    biller: Biller, settings: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PAYEASY_WEBHOOK_ALLOW_PRIVATE = True  # development: the receiver is on 127.0.0.1
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[bytes] = []

    def proxy() -> None:
        while True:
            try:
                conn, _addr = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    accepted.append(conn.recv(4096))
                except OSError:
                    accepted.append(b"")

    threading.Thread(target=proxy, daemon=True).start()
    proxy_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy_url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    try:
        webhook_endpoints.webhook_endpoint_create(
            actor=None, biller=biller, url=receiver.url, event_types=["payment.received"]
        )
        delivery = deliver_one(biller)
    finally:
        listener.close()
    assert accepted == []
    assert delivery.status == "succeeded" and len(receiver.requests) == 1


def test_a_redirect_is_not_followed(biller: Biller, settings: Any, receiver: Receiver) -> None:
    settings.PAYEASY_WEBHOOK_ALLOW_PRIVATE = True
    target = Receiver()
    try:
        redirecting = Receiver()
        redirecting.answers = [302]
        original = redirecting.server.RequestHandlerClass.send_header

        def send_header(handler: Any, name: str, value: str) -> None:
            original(handler, name, value)
            if name == "X-Receiver":
                original(handler, "Location", target.url)

        redirecting.server.RequestHandlerClass.send_header = send_header  # type: ignore[method-assign]
        webhook_endpoints.webhook_endpoint_create(
            actor=None, biller=biller, url=redirecting.url, event_types=["payment.received"]
        )
        delivery = deliver_one(biller)
        redirecting.close()
    finally:
        target.close()
    assert delivery.last_response_status == 302 and delivery.status == "pending"
    assert target.requests == []


# --- the delivery log keeps no bodies of arbitrary hosts -------------------------------------------------


class TalkativeReceiver(Receiver):
    """Answers with ``body`` and a cookie and an internal header."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                me.requests.append(None)  # type: ignore[arg-type]
                status = me.answers.pop(0) if me.answers else 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Set-Cookie", "session=internal-admin-session")
                self.send_header("X-Internal-Token", "tok_internal_0123456789")
                self.send_header("X-Request-Id", "req-42")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server.RequestHandlerClass = Handler


SECRET_BODY = b"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY internal=1"


def test_the_log_keeps_no_body_of_a_failed_answer(
    admin_client: Client, biller: Biller, settings: Any
) -> None:
    settings.PAYEASY_WEBHOOK_ALLOW_PRIVATE = True
    server = TalkativeReceiver(SECRET_BODY + b" " + b"x" * 1000)
    try:
        webhook_endpoints.webhook_endpoint_create(
            actor=None, biller=biller, url=server.url, event_types=["payment.received"]
        )
        server.answers = [500, 200]
        failed = deliver_one(biller)
        assert failed.last_response_status == 500
        WebhookDelivery.objects.filter(pk=failed.pk).update(
            next_attempt_at=datetime.datetime.now(datetime.UTC)
        )
        webhooks.deliver_due()
    finally:
        server.close()
    first, second = WebhookAttempt.objects.order_by("id")
    failed.refresh_from_db()
    assert first.response_status == 500 and first.response_body == ""
    assert sorted(first.response_headers) == ["content-length", "content-type", "date", "x-request-id"]
    assert first.response_headers["x-request-id"] == "req-42"
    # a 2xx answer: a short excerpt, marked as cut
    assert second.response_status == 200 and len(second.response_body) <= 220
    assert second.response_body.startswith(SECRET_BODY[:100].decode()) and "truncated" in second.response_body
    page = admin_client.get(console(biller, f"deliveries/{failed.pk}/")).content.decode()
    assert "HTTP 500" in page and "req-42" in page
    assert "internal=1" not in page.split("Attempt 2")[0]  # nothing of the 500's body
    assert "internal-admin-session" not in page and "tok_internal" not in page
    # a body stored before this rule is not shown for a failed answer either
    WebhookAttempt.objects.filter(pk=first.pk).update(response_body=SECRET_BODY.decode())
    page = admin_client.get(console(biller, f"deliveries/{failed.pk}/")).content.decode()
    assert page.count("wJalrXUtnFEMI") == 1  # the 2xx excerpt only


# --- the development switch is explicit and check --deploy warns ----------------------------------------


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PAYEASY_"))}
    clean.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PAYEASY_RUN_DIR": "/tmp/payeasy-settings-test",
            "DJANGO_SECRET_KEY": "k3y-" + "Zq8!vR2#mW5$tY7%pL0^nB4&xC6*jH9(" * 2,
            "DJANGO_ALLOWED_HOSTS": "portal.example.jp,.portal.example.jp",
            "PORTAL_DOMAIN": "portal.example.jp",
            "PORTAL_BASE_URL": "https://portal.example.jp",
        }
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_warns_when_private_addresses_are_allowed() -> None:
    result = manage("check", "--deploy", PAYEASY_WEBHOOK_ALLOW_PRIVATE="1")
    assert "PAYEASY_WEBHOOK_ALLOW_PRIVATE" in result.stdout + result.stderr, result.stdout + result.stderr
    assert "payeasy.W001" in result.stdout + result.stderr


# --- 2. signing secrets at rest --------------------------------------------------------------------------


def as_owner() -> AbstractContextManager[Any]:
    """Migrations run as the database owner where the owner and the application role are two roles."""
    try:
        from billing.dbsecurity import as_owner as owner
    except ImportError:  # one role for both
        return nullcontext()
    return owner(connection)


def stored(endpoint_id: int) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret, previous_secret FROM payeasy_webhookendpoint WHERE id = %s", [endpoint_id]
        )
        return cursor.fetchone()  # type: ignore[return-value]


def test_secrets_are_stored_encrypted_and_still_sign(
    admin_client: Client, biller: Biller, settings: Any, receiver: Receiver
) -> None:
    settings.PAYEASY_HANDOFF_KEK = K1
    response = admin_client.post(
        console(biller, "new/"), {"url": receiver.url, "description": "", "event_types": ["payment.received"]}
    )
    assert response.status_code == 200
    secret = response.context["secret"]
    endpoint = WebhookEndpoint.objects.get(biller=biller)
    column, previous = stored(endpoint.pk)
    assert secret not in column and secret[6:] not in column and column.startswith("w1.")
    response = admin_client.post(console(biller, f"{endpoint.pk}/rotate/"))
    new = response.context["secret"]
    column, previous = stored(endpoint.pk)
    assert (
        new not in column
        and secret not in previous
        and column.startswith("w1.")
        and previous.startswith("w1.")
    )
    deliver_one(biller)
    header = receiver.requests[0].headers["Payeasy-Signature"]
    assert verify_signature(new, header, receiver.requests[0].body)
    assert verify_signature(secret, header, receiver.requests[0].body)
    # the database alone is not enough: another KEK does not open it
    settings.PAYEASY_HANDOFF_KEK = K2
    delivery = deliver_one(biller)
    assert len(receiver.requests) == 1 and "key-encryption key" in delivery.last_error


def test_the_migration_encrypts_existing_secrets_and_blanks_failed_bodies(
    transactional_db: None, settings: Any
) -> None:
    from django.db.migrations.executor import MigrationExecutor

    settings.PAYEASY_HANDOFF_KEK = K1
    before = [("payeasy", "0008_notice_suspect")]
    with as_owner():
        executor = MigrationExecutor(connection)
        executor.migrate(before)
    old = MigrationExecutor(connection).loader.project_state(before).apps
    biller = old.get_model("billing", "Biller").objects.get(pk=factories.make_biller().pk)
    Endpoint = old.get_model("payeasy", "WebhookEndpoint")
    now = datetime.datetime.now(datetime.UTC)
    plain = Endpoint.objects.create(
        biller=biller,
        url="https://erp.example.jp/x",
        event_types=["invoice.paid"],
        secret="whsec_current_" + "a" * 30,
        previous_secret="whsec_previous_" + "b" * 30,
        previous_secret_expires_at=now + datetime.timedelta(hours=1),
    )
    Delivery = old.get_model("payeasy", "WebhookDelivery")
    Attempt = old.get_model("payeasy", "WebhookAttempt")
    delivery = Delivery.objects.create(
        endpoint=plain,
        biller=biller,
        event_id="1b4e28ba-2fa1-4d2b-8f3a-9c1e6b0f7a21",
        event_type="invoice.paid",
        payload="{}",
        give_up_at=now,
        last_response_status=500,
        last_response_body=SECRET_BODY.decode(),
    )
    for status in (500, 200):
        Attempt.objects.create(
            delivery=delivery,
            biller=biller,
            started_at=now,
            duration_ms=1,
            url="https://erp.example.jp/x",
            response_status=status,
            response_body=SECRET_BODY.decode() + "y" * 500,
        )
    with as_owner():
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    column, previous = stored(plain.pk)
    assert column.startswith("w1.") and "whsec_" not in column and "whsec_" not in previous
    endpoint = WebhookEndpoint.objects.get(pk=plain.pk)
    assert webhook_endpoints.signing_secrets(endpoint, now) == [plain.secret, plain.previous_secret]
    failed, ok = WebhookAttempt.objects.order_by("response_status").reverse()
    assert failed.response_body == "" and WebhookDelivery.objects.get().last_response_body == ""
    assert len(ok.response_body) <= 220 and ok.response_body.startswith("aws_secret")
    # reversible: back to plaintext, and forward again
    with as_owner():
        executor = MigrationExecutor(connection)
        executor.migrate(before)
    assert stored(plain.pk) == (plain.secret, plain.previous_secret)
    with as_owner():
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert stored(plain.pk)[0].startswith("w1.")


def test_rewrapping_under_a_new_kek_while_deliveries_continue(
    transactional_db: None, settings: Any, receiver: Receiver
) -> None:
    from payeasy.services import handoff as handoff_services

    settings.PAYEASY_HANDOFF_KEK = K1
    settings.PAYEASY_WEBHOOK_ALLOW_PRIVATE = True
    biller = factories.make_biller()
    plain: dict[int, list[str]] = {}
    for n in range(8):
        endpoint, secret = webhook_endpoints.webhook_endpoint_create(
            actor=None, biller=biller, url=f"{receiver.url}?n={n}", event_types=["payment.received"]
        )
        plain[endpoint.pk] = [secret]
        if n % 3 == 0:
            _e, new = webhook_endpoints.webhook_secret_rotate(
                actor=None, biller=biller, endpoint_id=endpoint.pk
            )
            plain[endpoint.pk] = [new, secret]
    bank = handoff_services.handoff_endpoint_create(
        actor=None, bank_code="0001", entry_url="https://bank.example/in"
    )
    key, material = handoff_services.handoff_key_create(actor=None, endpoint=bank)

    settings.PAYEASY_HANDOFF_KEK = f"{K2},{K1}"  # step 1: the new KEK first, the old one after
    stop = threading.Event()
    errors: list[str] = []

    def keep_delivering() -> None:
        try:
            while not stop.is_set():
                webhooks.events_record([Event("payment.received", biller.pk, None, {"amount": 1})])
                webhooks.deliver_due(limit=100)
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connection.close()

    worker = threading.Thread(target=keep_delivering)
    worker.start()
    try:
        time.sleep(0.3)
        call_command("rewrap_secrets", batch_size=2, stdout=StringIO())
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join(30)
    assert errors == []
    deliveries = list(WebhookDelivery.objects.all())
    assert len(deliveries) >= 16
    assert [(d.status, d.last_error) for d in deliveries if d.status != "succeeded"] == []
    by_path = {e.pk: e for e in WebhookEndpoint.objects.all()}
    for request in receiver.requests:
        endpoint_id = next(pk for pk, e in by_path.items() if e.url.endswith(request.path.split("?")[1]))
        assert all(
            verify_signature(s, request.headers["Payeasy-Signature"], request.body)
            for s in plain[endpoint_id]
        )
    settings.PAYEASY_HANDOFF_KEK = K2  # step 3: the old KEK is gone; everything still opens
    now = datetime.datetime.now(datetime.UTC)
    for endpoint in WebhookEndpoint.objects.all():
        assert webhook_endpoints.signing_secrets(endpoint, now) == plain[endpoint.pk]
    from payeasy import handoff

    key.refresh_from_db()
    assert handoff.key_unwrap(key.wrapped_key, key.kid) == material
    report = StringIO()
    call_command("rewrap_secrets", stdout=report)  # idempotent: nothing left to do
    assert "0 re-wrapped" in report.getvalue()


def test_a_wrong_kek_gives_a_clear_error_not_a_500(
    admin_client: Client,
    biller: Biller,
    settings: Any,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.PAYEASY_HANDOFF_KEK = K1
    endpoint, _secret = webhook_endpoints.webhook_endpoint_create(
        actor=None, biller=biller, url=receiver.url, event_types=["payment.received"]
    )
    settings.PAYEASY_HANDOFF_KEK = K3  # the KEK was changed without rewrapping
    page = admin_client.get(console(biller, f"{endpoint.pk}/"))
    assert page.status_code == 200 and "key-encryption key" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(console(biller, f"{endpoint.pk}/test/"), follow=True)
    assert response.status_code == 200 and receiver.requests == []
    delivery = WebhookDelivery.objects.get()
    assert "key-encryption key" in delivery.last_error
    page = admin_client.get(console(biller, f"deliveries/{delivery.pk}/"))
    assert page.status_code == 200 and "key-encryption key" in page.content.decode()
    with pytest.raises(CommandError, match=f"webhook endpoint {endpoint.pk}"):
        call_command("rewrap_secrets", stdout=StringIO())
    # a KEK that is not a key at all: the console says so instead of failing
    settings.PAYEASY_HANDOFF_KEK = "not-a-key"
    response = admin_client.post(
        console(biller, "new/"), {"url": "https://erp.example.jp/x", "event_types": ["invoice.paid"]}
    )
    assert response.status_code == 503 and "PAYEASY_HANDOFF_KEK" in response.content.decode()
    assert WebhookEndpoint.objects.count() == 1
