"""Certificates for TLS tests, made at test time with ``cryptography`` (none is committed).

:func:`make_pki` writes into a directory: a line CA, the commserver's certificate (SAN 127.0.0.1 and
localhost) and client certificates — mapped subjects, an unmapped one, one signed by another CA, one
expired — each as ``NAME.pem`` and ``NAME.key``. :class:`TlsLineClient` is the blocking test client of
``line_helpers`` over TLS.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from payeasy import codec, peers
from tests.payeasy import line_helpers as h

# subjects in RFC 4514 form, as COMMSERVER_PEERS takes them
CENTRE_SUBJECT = "CN=mpn-centre-1,O=MPN Test,C=JP"  # mapped to line_helpers.CENTRE and the simulator
SANDBOX_SUBJECT = "CN=sandbox-bank,O=MPN Test,C=JP"  # mapped to the sandbox bank's centre
UNMAPPED_SUBJECT = "CN=mpn-unknown,O=MPN Test,C=JP"


def _name(subject: str) -> x509.Name:
    return x509.Name.from_rfc4514_string(subject)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (directory / f"{name}.key").chmod(0o600)


def _ca(subject: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    subject: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    server: bool,
    expired: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    if expired:
        valid = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
    else:
        valid = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


@dataclass(frozen=True)
class Pki:
    """Where the files are. ``ca`` signs everything but ``rogue`` (signed by ``other_ca``)."""

    directory: Path

    def path(self, name: str, kind: str = "pem") -> str:
        return str(self.directory / f"{name}.{kind}")

    @property
    def ca(self) -> str:
        return self.path("ca")

    @property
    def other_ca(self) -> str:
        return self.path("other-ca")

    def server_env(self, mapping: str | None = None, **extra: str) -> dict[str, str]:
        """The commserver's environment for mutual TLS with these files; ``mapping`` defaults to the
        centre certificate → line_helpers.CENTRE and the simulator's centre, the sandbox certificate
        → the sandbox bank's centre."""
        return {
            "COMMSERVER_TLS_CERT": self.path("server"),
            "COMMSERVER_TLS_KEY": self.path("server", "key"),
            "COMMSERVER_TLS_CLIENT_CA": self.ca,
            "COMMSERVER_PEERS": default_peers() if mapping is None else mapping,
            **extra,
        }

    def client_env(self, name: str = "client") -> dict[str, str]:
        """The simulator's (and sandbox bank's) environment to present certificate ``name``."""
        return {
            "MPN_SIMULATOR_TLS_CA": self.ca,
            "MPN_SIMULATOR_TLS_CERT": self.path(name),
            "MPN_SIMULATOR_TLS_KEY": self.path(name, "key"),
        }

    def client_context(self, name: str | None = "client") -> ssl.SSLContext:
        if name is None:
            return peers.client_context(ca=self.ca)
        return peers.client_context(ca=self.ca, cert=self.path(name), key=self.path(name, "key"))


def default_peers() -> str:
    from payeasy.sandbox.bank import CENTRE as SANDBOX_CENTRE
    from payeasy.simulator import CENTRE as SIMULATOR_CENTRE

    return f"{CENTRE_SUBJECT}:{h.CENTRE},{SIMULATOR_CENTRE};{SANDBOX_SUBJECT}:{SANDBOX_CENTRE}"


def make_pki(directory: Path) -> Pki:
    """Write the test PKI into ``directory``:

    - ``ca`` (the line's CA), ``other-ca`` (a CA the commserver does not trust);
    - ``server``: the commserver, SAN localhost and 127.0.0.1;
    - ``client``: CENTRE_SUBJECT; ``sandbox``: SANDBOX_SUBJECT; ``unmapped``: UNMAPPED_SUBJECT;
    - ``rogue``: CENTRE_SUBJECT signed by ``other-ca``; ``expired``: CENTRE_SUBJECT, expired yesterday.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("CN=MPN Test Line CA,O=MPN Test,C=JP")
    other = _ca("CN=Somebody Else CA,O=Elsewhere,C=JP")
    _write(directory, "ca", *ca)
    _write(directory, "other-ca", *other)
    _write(directory, "server", *_leaf("CN=localhost,O=Payeasy Test iDC,C=JP", ca, server=True))
    _write(directory, "client", *_leaf(CENTRE_SUBJECT, ca, server=False))
    _write(directory, "sandbox", *_leaf(SANDBOX_SUBJECT, ca, server=False))
    _write(directory, "unmapped", *_leaf(UNMAPPED_SUBJECT, ca, server=False))
    _write(directory, "rogue", *_leaf(CENTRE_SUBJECT, other, server=False))
    _write(directory, "expired", *_leaf(CENTRE_SUBJECT, ca, server=False, expired=True))
    return Pki(directory)


class TlsLineClient(h.LineClient):
    """``line_helpers.LineClient`` over TLS with ``context`` (the handshake happens here; with TLS 1.3
    a refused client certificate shows only at the first read, as an SSLError or a closed connection).
    """

    def __init__(
        self,
        port: int,
        context: ssl.SSLContext,
        host: str = "127.0.0.1",
        timeout: float = 10.0,
        source: str | None = None,
    ) -> None:
        raw = socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0) if source else None
        )
        try:
            self.sock = context.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        self.decoder = codec.FrameDecoder()
        self.received = []

    def refused(self) -> bool:
        """True when the server ends the session without answering (alert, reset or close)."""
        try:
            return self.sock.recv(1) == b""
        except (ssl.SSLError, ConnectionError):
            return True
