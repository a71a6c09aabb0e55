"""Requests to hosts that tenants name (their webhook endpoints): the public internet only.

Three rules, enforced here for every request:

1. **Only globally routable addresses.** ``ipaddress``'s ``is_global`` and the special-purpose kinds
   (private, shared 100.64.0.0/10, loopback, link-local — where cloud metadata lives —, multicast,
   reserved, unspecified, documentation, benchmarking). IPv6 forms that carry an IPv4 address are
   judged by it too: IPv4-mapped (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), NAT64
   (``64:ff9b::/96``, ``64:ff9b:1::/48``), 6to4 (``2002::/16``) and Teredo (``2001::/32``).
   ``PAYEASY_WEBHOOK_ALLOW_PRIVATE`` (development) lets loopback and private addresses through, never
   link-local, multicast or unspecified ones.
2. **Resolve once, connect to what was checked.** The host name is resolved once; every address must
   pass; the connection goes to those addresses and no other (a custom ``httpcore`` network backend,
   :class:`_PinnedBackend`), so a DNS answer that changes between the check and the connection (DNS
   rebinding) cannot move the request to this machine. The URL keeps its host name, so the ``Host``
   header, TLS SNI and the certificate check are for the host name, exactly as without pinning.
3. **Nothing from the environment, no redirects.** No proxy (``trust_env=False``); a redirect is an
   answer like any other, never followed.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import certifi
import httpcore
import httpx
from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")

# what each kind of refused address is called (the delivery log keeps the key, in English)
KINDS: dict[str, Promise] = {
    "unspecified": gettext_lazy("unspecified"),
    "loopback": gettext_lazy("loopback"),
    "link-local": gettext_lazy("link-local"),
    "multicast": gettext_lazy("multicast"),
    "shared": gettext_lazy("shared (carrier-grade NAT)"),
    "private": gettext_lazy("private or special-purpose"),
    "reserved": gettext_lazy("reserved"),
    "not global": gettext_lazy("not globally routable"),
}
ALWAYS_REFUSED = {"unspecified", "link-local", "multicast"}  # even in development


@dataclass(frozen=True)
class Problem:
    """Why an address is refused: ``address`` (as given or resolved) is of ``kind``; ``inner`` is the
    IPv4 address it carries when that is what was refused."""

    host: str
    address: str
    kind: str
    inner: str = ""

    def message(self) -> str:
        """For the person saving the URL (translated)."""
        values = {"host": self.host, "address": self.address, "inner": self.inner, "kind": KINDS[self.kind]}
        if self.host != self.address and self.inner:
            text = _(
                "%(host)s resolves to %(address)s, which carries %(inner)s, a %(kind)s address. "
                "Webhooks are sent to public internet addresses only."
            )
        elif self.host != self.address:
            text = _(
                "%(host)s resolves to %(address)s, a %(kind)s address. "
                "Webhooks are sent to public internet addresses only."
            )
        elif self.inner:
            text = _(
                "%(address)s carries %(inner)s, a %(kind)s address. "
                "Webhooks are sent to public internet addresses only."
            )
        else:
            text = _(
                "%(address)s is a %(kind)s address. Webhooks are sent to public internet addresses only."
            )
        return text % values

    def log_text(self) -> str:
        """For the delivery log (English, like an HTTP error)."""
        carries = f" (carrying {self.inner})" if self.inner else ""
        return (
            f"refused: {self.host} is {self.address}{carries}, a {self.kind} address; "
            "webhooks go to public internet addresses only"
        )


def _kind(ip: IPAddress) -> str:
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _SHARED:
        return "shared"
    if ip.is_private or (isinstance(ip, ipaddress.IPv6Address) and ip in _SITE_LOCAL):
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not global"
    return ""


def _carried(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (6to4, Teredo server and client, IPv4-compatible,
    local-use NAT64 with the address in its last 32 bits)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    value = int(ip)
    if value >> 32 == 0 and value > 0xFFFF:  # ::a.b.c.d (not :: or ::1)
        found.append(ipaddress.IPv4Address(value))
    if ip in _NAT64_LOCAL:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    return found


def address_kind(ip: IPAddress) -> tuple[str, str]:
    """``(kind, inner)``: what is wrong with ``ip`` (``""`` when it is a public address), and the IPv4
    address it carries when that is what decided. No setting is consulted."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d
            return _kind(ip.ipv4_mapped), str(ip.ipv4_mapped)
        if ip in _NAT64:  # the well-known NAT64 prefix: the IPv4 address decides
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            return _kind(inner), str(inner)
        for inner in _carried(ip):
            if kind := _kind(inner):
                return kind, str(inner)
        kind = _kind(ip)
        if not kind and int(ip) >> 32 == 0:  # IPv4-compatible: deprecated, never sent to
            kind = "reserved"
        return kind, ""
    return _kind(ip), ""


def address_problem(ip: IPAddress, host: str = "") -> Problem | None:
    """Why the webhook may not go to ``ip`` under the settings in force, or None."""
    kind, inner = address_kind(ip)
    if not kind:
        return None
    if settings.PAYEASY_WEBHOOK_ALLOW_PRIVATE and kind not in ALWAYS_REFUSED:
        inner_kind = _kind(ipaddress.IPv4Address(inner)) if inner else ""
        if inner_kind not in ALWAYS_REFUSED:
            return None
    return Problem(host=host or str(ip), address=str(ip), kind=kind, inner=inner)


def local_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host``, in the resolver's order, without repeats. OSError when none."""
    addresses: list[str] = []
    for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(info[4][0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OSError(f"{host} has no address")
    return addresses


# --- the pinned connection ------------------------------------------------------------------------------


class Refused(Exception):
    """The request was not sent; ``str()`` says why, in English, for the delivery log."""


@dataclass(frozen=True)
class Target:
    """Where one request goes: the URL's host (as httpx spells it: IDNA, IPv6 without brackets), its
    port, and the checked addresses it may connect to."""

    host: str
    port: int
    addresses: tuple[str, ...]


def target_for(url: str) -> Target:
    """Resolve ``url``'s host once and check every address: the Target, or Refused."""
    parsed = httpx.URL(url)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if local_name(host) and not settings.PAYEASY_WEBHOOK_ALLOW_PRIVATE:
        raise Refused(f"refused: {host} names this machine")
    ip = literal(host)
    try:
        addresses = [str(ip)] if ip is not None else resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"ConnectError: cannot resolve {host}: {exc}") from None
    for address in addresses:
        problem = address_problem(ipaddress.ip_address(address), host)
        if problem is not None:
            raise Refused(problem.log_text())
    return Target(host=host.lower(), port=port, addresses=tuple(addresses))


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects only to the target's checked addresses (in order, the next when one refuses)."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if host.lower() != self._target.host or port != self._target.port:
            raise httpcore.ConnectError(f"refused: {host}:{port} is not the checked target")
        last: Exception = httpcore.ConnectError("no address")
        for address in self._target.addresses:
            try:
                return self._backend.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("refused: no unix sockets")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _httpx_error(exc: httpcore.TimeoutException | Exception, request: httpx.Request) -> httpx.TransportError:
    kind = getattr(httpx, type(exc).__name__, None)
    if not (isinstance(kind, type) and issubclass(kind, httpx.TransportError)):
        kind = httpx.TransportError
    return kind(str(exc), request=request)


class _Stream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes], request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except httpcore.TimeoutException as exc:
            raise _httpx_error(exc, self._request) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise _httpx_error(exc, self._request) from exc

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class PinnedTransport(httpx.BaseTransport):
    """An httpx transport over an httpcore pool whose network backend is :class:`_PinnedBackend`.
    Public APIs only (httpx.BaseTransport, httpcore.ConnectionPool, httpcore.NetworkBackend): a change
    in either library breaks it loudly instead of quietly connecting elsewhere."""

    def __init__(self, target: Target) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=tls_context(),
            max_connections=1,
            http1=True,
            http2=False,
            retries=0,
            network_backend=_PinnedBackend(target),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = self._pool.handle_request(core)
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise _httpx_error(exc, request) from exc
        except httpcore.UnsupportedProtocol as exc:
            raise _httpx_error(exc, request) from exc
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Stream(response.stream, request),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def tls_context() -> ssl.SSLContext:
    """Certificates checked against certifi's roots (as httpx does by default), for the URL's host."""
    return ssl.create_default_context(cafile=certifi.where())


def client(url: str, *, timeout: httpx.Timeout) -> httpx.Client:
    """A client for one request to ``url``: resolved and checked now (Refused), pinned to what was
    checked, no proxy from the environment, no redirects followed."""
    return httpx.Client(
        transport=PinnedTransport(target_for(url)), timeout=timeout, follow_redirects=False, trust_env=False
    )
