"""Who may talk to the line (spec §1): mutual TLS, source addresses, and which sending centres (H2) each
client certificate may use.

The commserver builds one :class:`PeerPolicy` at start-up (:func:`policy_from_settings`). Its ``tls``
context makes the TLS handshake require a client certificate signed by the configured client CA;
:meth:`PeerPolicy.centres_for` then decides, per connection, whether the source address may connect at
all and which H2 codes the connection may send.

A client certificate is identified by its **subject**, the whole distinguished name (every attribute,
not only the CN), compared exactly, attribute by attribute. A renewed certificate keeps its subject, so
a routine renewal needs no change here; revoking one certificate means having the CA issue its
replacement under a new subject and mapping that one instead. Only a CA that issues line certificates
belongs in the client CA bundle: the subject is only an identity among certificates that CA signed.

``COMMSERVER_PEERS`` maps subjects to centres. Entries are separated by ``;``; in each, the subject in
RFC 4514 form (as the log prints it), a colon, then the H2 codes separated by commas::

    CN=mpn-centre-1,O=MPN,C=JP:MPNC000001,MPNC000002;CN=mpn-dr,O=MPN,C=JP:MPNC000001

H2 codes never contain ``:`` or ``,``, so the subject is everything before the last colon (a ``,`` or
``;`` inside a subject value is escaped with a backslash, as RFC 4514 writes it).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from billing.errors import ProductError

log = logging.getLogger("payeasy.peers")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# A subject as compared: RDNs most specific first (RFC 4514 order), each a sorted tuple of (OID, value).
Identity = tuple[tuple[tuple[str, str], ...], ...]

TLS_SETTINGS = ("COMMSERVER_TLS_CERT", "COMMSERVER_TLS_KEY", "COMMSERVER_TLS_CLIENT_CA")
PEERS_EXAMPLE = "CN=mpn-centre-1,O=MPN,C=JP:MPNC000001,MPNC000002;CN=mpn-dr,O=MPN,C=JP:MPNC000001"
_CENTRE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ]{0,8}[A-Za-z0-9])?")  # X(10), fill removed
_DOTTED = re.compile(r"\d+(?:\.\d+)+")
# attribute names accepted in any case (OpenSSL itself knows these, and more, in its own spelling)
_NAMES = (
    "CN",
    "O",
    "OU",
    "C",
    "L",
    "ST",
    "street",
    "DC",
    "UID",
    "emailAddress",
    "serialNumber",
    "title",
    "GN",
    "SN",
    "initials",
    "pseudonym",
    "generationQualifier",
    "dnQualifier",
    "businessCategory",
    "postalCode",
    "organizationIdentifier",
)
_SPECIAL = ' "#+,;<=>\\'


class PeerRefused(ProductError):
    """A connection that may not talk to the line; ``str(exc)`` says why."""

    code = "peer_refused"


# --- subjects -------------------------------------------------------------------------------------------


def _oid_of(name: str) -> str:
    """The dotted OID of an attribute name: an OID itself, OpenSSL's short or long name, or a common
    one in any case (``cn``, ``commonName``, ``CN``)."""
    if _DOTTED.fullmatch(name):
        return name
    try:
        return ssl._ASN1Object.fromname(name).oid
    except ValueError:
        pass
    for known in _NAMES:
        obj = ssl._ASN1Object.fromname(known)
        if name.lower() in {obj.shortname.lower(), obj.longname.lower()}:
            return obj.oid
    raise ValueError(f"unknown attribute type {name!r}")


def _short_name(oid: str) -> str:
    try:
        return ssl._ASN1Object.fromname(oid).shortname
    except ValueError:
        return oid


def _split(text: str, separators: str) -> list[str]:
    """``text`` cut at every separator not escaped with a backslash (the escapes are kept)."""
    parts, current, i = [], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    """An RFC 4514 attribute value: ``\\,`` and friends, and ``\\XX`` hex bytes (UTF-8)."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\":
            out += char.encode()
            i += 1
            continue
        pair = text[i + 1 : i + 3]
        if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
            out.append(int(pair, 16))
            i += 3
        elif pair[:1] and pair[0] in _SPECIAL:
            out += pair[0].encode()
            i += 2
        else:
            raise ValueError(f"a backslash must escape one of {_SPECIAL.strip()!r} or two hex digits")
    try:
        return out.decode()
    except UnicodeDecodeError as exc:
        raise ValueError("escaped bytes that are not UTF-8") from exc


def _escape(value: str) -> str:
    out = "".join("\\" + c if c in '"+,;<>\\=' else c for c in value)
    if out[:1] in {" ", "#"}:
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out


def _strip(text: str) -> str:
    """Spaces around a value, except an escaped last one."""
    text = text.lstrip()
    while text.endswith(" ") and not text.endswith("\\ "):
        text = text[:-1]
    return text


def parse_subject(text: str) -> Identity:
    """An RFC 4514 subject (``CN=mpn-centre-1,O=MPN,C=JP``) as compared; ValueError says what is wrong.
    Attribute names may be in any case and spaces after commas are allowed; values are compared exactly.
    """
    if not text.strip():
        raise ValueError("the subject is empty")
    rdns = []
    for rdn_text in _split(text, ","):
        attributes = []
        for part in _split(rdn_text, "+"):
            name, sep, raw = part.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"{part.strip()!r} is not TYPE=value")
            if raw.strip().startswith("#"):
                raise ValueError(f"{part.strip()!r}: hex-encoded (#…) values are not supported")
            value = _unescape(_strip(raw))
            if not value:
                raise ValueError(f"{part.strip()!r} has no value")
            attributes.append((_oid_of(name.strip()), value))
        rdns.append(tuple(sorted(attributes)))
    return tuple(rdns)


def subject_text(identity: Identity) -> str:
    """The RFC 4514 text of a subject (what the logs print and COMMSERVER_PEERS takes)."""
    return ",".join(
        "+".join(f"{_short_name(oid)}={_escape(value)}" for oid, value in rdn) for rdn in identity
    )


def identity_of(peercert: Mapping[str, Any] | None) -> Identity | None:
    """The subject of a certificate as :meth:`ssl.SSLSocket.getpeercert` returns it (cert order, OpenSSL's
    long names), most specific first; None without a certificate or a readable subject."""
    if not peercert or not peercert.get("subject"):
        return None
    try:
        return tuple(
            tuple(sorted((_oid_of(str(name)), str(value)) for name, value in rdn))
            for rdn in reversed(peercert["subject"])
        )
    except (ValueError, TypeError):
        return None


# --- the policy -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerPolicy:
    """Who may connect and which sending centres (H2) each connection may use.

    ``tls``: the server context (TLS 1.2 or newer, client certificate required, only the client CA
    trusted), None for plain TCP. ``sources``: the networks a client may connect from (empty: any).
    ``centres``: certificate subject (RFC 4514) → the H2 codes it may send (fill removed).

    With TLS, a certificate whose subject is not mapped is refused — an empty mapping refuses everyone
    (fail closed). Without TLS there is no identity: a connection may then send any centre the mapping
    names (all of them, for every connection), or any centre at all when there is no mapping.
    """

    tls: ssl.SSLContext | None
    sources: tuple[Network, ...] = ()
    centres: Mapping[str, frozenset[str]] = field(default_factory=dict)
    _by_identity: dict[Identity, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_identity: dict[Identity, frozenset[str]] = {}
        for subject, codes in self.centres.items():
            by_identity[parse_subject(subject)] = frozenset(codes)
        object.__setattr__(self, "_by_identity", by_identity)

    def centres_for(self, *, host: str, peercert: Mapping[str, Any] | None) -> frozenset[str] | None:
        """The H2 codes this connection may send; None = no restriction (plain TCP without a mapping).
        Raises :class:`PeerRefused` if the source address is not allowed, or TLS is on and the
        certificate's subject is not mapped."""
        if self.sources and not self.source_allowed(host):
            raise PeerRefused(f"source address {host} is not in COMMSERVER_ALLOWED_SOURCES")
        if self.tls is None:
            if not self._by_identity:
                return None
            return frozenset().union(*self._by_identity.values())
        identity = identity_of(peercert)
        if identity is None:
            raise PeerRefused("no client certificate subject")
        allowed = self._by_identity.get(identity)
        if allowed is None:
            raise PeerRefused(
                f"certificate subject {subject_text(identity)} is not mapped in COMMSERVER_PEERS"
            )
        return allowed

    def source_allowed(self, host: str) -> bool:
        if not self.sources:
            return True
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d
        return any(address in network for network in self.sources)

    def describe(self, peercert: Mapping[str, Any] | None) -> str:
        """Short text for the logs and the message history: the certificate's subject in RFC 4514 form
        (``CN=mpn-centre-1,O=MPN,C=JP``), or why there is none."""
        if self.tls is None and not peercert:
            return "plain TCP"
        identity = identity_of(peercert)
        if identity is None:
            return "no certificate" if not peercert else "unreadable certificate subject"
        return subject_text(identity)


# --- TLS contexts ---------------------------------------------------------------------------------------


def server_context(*, cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    """The commserver's context: TLS 1.2 or newer (1.3 when the client has it), a client certificate
    required and verified against ``client_ca`` alone (never the system's CA store)."""
    context = _new_server_context()
    context.load_cert_chain(cert, key, password=_no_password)
    context.load_verify_locations(cafile=client_ca)
    return context


def _new_server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # loads no CA: only the client CA is trusted
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _no_password() -> bytes:
    """An encrypted key fails to load instead of OpenSSL asking for a password on the terminal."""
    return b""


def client_context(*, ca: str, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """For the simulator, the sandbox bank and the benchmarks: verifies the commserver's certificate
    (and its name: the host connected to must be in the certificate's subjectAltName) against ``ca``,
    and presents ``cert`` (with ``key``, or a key inside ``cert``) as the client certificate."""
    if key and not cert:
        raise ValueError("a client key without a client certificate")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=ca)
    if cert:
        context.load_cert_chain(cert, key or None, password=_no_password)
    return context


# --- settings -------------------------------------------------------------------------------------------


def parse_centre(code: str, *, setting: str = "COMMSERVER_PEERS") -> str:
    text = code.strip()
    if not _CENTRE.fullmatch(text):
        raise ImproperlyConfigured(
            f"{setting}: {code!r} is not a sending-centre code (H2: 1–10 ASCII letters and digits)"
        )
    return text


def parse_peers(
    value: str | Mapping[str, Iterable[str]], *, setting: str = "COMMSERVER_PEERS"
) -> dict[str, frozenset[str]]:
    """``SUBJECT:CENTRE[,CENTRE…][;…]`` (or a mapping, for settings written in Python) → subject in
    RFC 4514 form → H2 codes. Errors name the setting and the entry."""
    entries: list[tuple[str, Iterable[str]]] = []
    if isinstance(value, Mapping):
        entries = [
            (str(subject), [codes] if isinstance(codes, str) else codes) for subject, codes in value.items()
        ]
    else:
        for number, entry in enumerate((e.strip() for e in _split(value, ";\n")), start=1):
            if not entry:
                continue
            subject, sep, listed = entry.rpartition(":")
            if not sep or not subject.strip() or not listed.strip():
                raise ImproperlyConfigured(
                    f"{setting}: entry {number} ({entry!r}) is not SUBJECT:CENTRE[,CENTRE…]; "
                    f"e.g. {PEERS_EXAMPLE}"
                )
            entries.append((subject, listed.split(",")))
    peers: dict[str, frozenset[str]] = {}
    for subject, codes in entries:
        try:
            identity = parse_subject(subject)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{setting}: subject {subject.strip()!r}: {exc}") from exc
        text = subject_text(identity)
        if text in peers:
            raise ImproperlyConfigured(f"{setting}: subject {text} is listed twice; list its centres once")
        centres = frozenset(parse_centre(c, setting=setting) for c in codes if c.strip())
        if not centres:
            raise ImproperlyConfigured(f"{setting}: subject {text} has no sending-centre code")
        peers[text] = centres
    return peers


def parse_sources(
    value: str | Iterable[str], *, setting: str = "COMMSERVER_ALLOWED_SOURCES"
) -> tuple[Network, ...]:
    """Addresses and networks (``10.1.2.3``, ``10.1.2.0/24``, ``2001:db8::/32``), comma-separated."""
    items = value.split(",") if isinstance(value, str) else list(value)
    networks = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{setting}: {item!r} is not an address or network: {exc}") from exc
    return tuple(networks)


def tls_path(setting: str, value: str) -> str:
    """A certificate or key file named by ``setting``: absolute, existing and readable."""
    if not os.path.isabs(value):
        raise ImproperlyConfigured(f"{setting} must be an absolute path, not {value!r}")
    if not os.path.isfile(value):
        raise ImproperlyConfigured(f"{setting}: {value} does not exist or is not a file")
    if not os.access(value, os.R_OK):
        raise ImproperlyConfigured(f"{setting}: {value} cannot be read by this process")
    return value


def policy_from_settings(*, insecure_plaintext: bool = False) -> PeerPolicy:
    """The commserver's policy from COMMSERVER_TLS_CERT, COMMSERVER_TLS_KEY, COMMSERVER_TLS_CLIENT_CA,
    COMMSERVER_PEERS and COMMSERVER_ALLOWED_SOURCES.

    - ``insecure_plaintext`` (``--insecure-plaintext``): plain TCP whatever the TLS settings say.
    - Otherwise, TLS when the three TLS settings are set; all three or none, else ImproperlyConfigured
      naming the missing ones. Without any of them, plain TCP under DEBUG (``make run``, tests) and
      ImproperlyConfigured in production.
    - With TLS, COMMSERVER_PEERS must map at least one subject: mutual TLS says only that the client
      holds *a* certificate of the client CA; without a mapping every such certificate (a test or DR
      centre's included) could send as any centre. An empty mapping would refuse every client, so the
      server refuses to start instead of listening to no one.
    """
    values = {name: str(getattr(settings, name, "") or "") for name in TLS_SETTINGS}
    sources = parse_sources(getattr(settings, "COMMSERVER_ALLOWED_SOURCES", ()) or ())
    peers = parse_peers(getattr(settings, "COMMSERVER_PEERS", "") or "")
    given = [name for name in TLS_SETTINGS if values[name]]
    missing = [name for name in TLS_SETTINGS if not values[name]]
    if insecure_plaintext:
        if given:
            log.warning("--insecure-plaintext: the line is plain TCP; %s ignored", ", ".join(given))
        if not settings.DEBUG:
            log.warning("--insecure-plaintext with production settings: the MPN line is NOT encrypted")
        return PeerPolicy(tls=None, sources=sources, centres=peers)
    if not given and settings.DEBUG:
        return PeerPolicy(tls=None, sources=sources, centres=peers)
    if missing:
        why = (
            f"some of the commserver's TLS settings are set ({', '.join(given)}) but not all"
            if given
            else "production needs mutual TLS on the line (spec §1)"
        )
        raise ImproperlyConfigured(
            f"{why}: {', '.join(missing)} not set. Set COMMSERVER_TLS_CERT (server certificate chain, PEM), "
            "COMMSERVER_TLS_KEY (its private key) and COMMSERVER_TLS_CLIENT_CA (the CA bundle that "
            "signs the MPN side's client certificates) to absolute paths, and COMMSERVER_PEERS; or "
            "pass --insecure-plaintext (development and tests only)."
        )
    paths = {name: tls_path(name, values[name]) for name in TLS_SETTINGS}
    if not peers:
        raise ImproperlyConfigured(
            "COMMSERVER_PEERS is not set: with mutual TLS every client certificate subject must be "
            f"mapped to the sending-centre codes (H2) it may use, e.g. COMMSERVER_PEERS='{PEERS_EXAMPLE}'"
        )
    cert, key, ca = (paths[name] for name in TLS_SETTINGS)
    context = _new_server_context()
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except (ssl.SSLError, OSError) as exc:
        raise ImproperlyConfigured(
            f"COMMSERVER_TLS_CERT/COMMSERVER_TLS_KEY: cannot load the server certificate {cert} with the "
            f"key {key} (PEM; the key unencrypted, readable only by the commserver's user): {exc}"
        ) from exc
    try:
        context.load_verify_locations(cafile=ca)
    except (ssl.SSLError, OSError) as exc:
        raise ImproperlyConfigured(
            f"COMMSERVER_TLS_CLIENT_CA: cannot load {ca} as PEM CA certificates: {exc}"
        ) from exc
    return PeerPolicy(tls=context, sources=sources, centres=peers)


__all__ = [
    "PeerPolicy",
    "PeerRefused",
    "client_context",
    "parse_peers",
    "parse_sources",
    "parse_subject",
    "policy_from_settings",
    "server_context",
    "subject_text",
]
