"""Login throttling with lockout for the customer portal.

Two keys are counted, in the database (``PortalLoginAttempt``), so every web process sees the
same counts and nothing is lost when a cache is flushed:

- the login at the biller: ``PORTAL_LOGIN_MAX_FAILURES`` failures (password or TOTP step) since
  its last successful login, within ``PORTAL_LOGIN_WINDOW_SECONDS``, lock it;
- the client address: ``PORTAL_LOGIN_MAX_FAILURES_PER_IP`` failures within the window lock the
  address (any login, any biller), so trying many logins from one place is stopped too.

A locked attempt is refused without looking at the password and is not itself counted: the lock
ends when the oldest counted failure leaves the window.

The client address is ``REMOTE_ADDR``. ``X-Forwarded-For`` is read only when ``REMOTE_ADDR`` is
one of ``PORTAL_TRUSTED_PROXIES``, and then from the right, skipping those proxies: the address
the outermost trusted proxy saw. A header the client made up never changes the key.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from billing.models import Biller, PortalLoginAttempt

UNKNOWN_IP = "0.0.0.0"  # noqa: S104 - a key for requests without a usable address, not a bind address

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str:
    """The client's address, forged headers notwithstanding (see the module docstring)."""
    remote = _parse(request.META.get("REMOTE_ADDR", ""))
    if remote is None:
        return UNKNOWN_IP
    trusted = _networks(tuple(getattr(settings, "PORTAL_TRUSTED_PROXIES", ()) or ()))
    if not trusted or not any(remote in net for net in trusted):
        return str(remote)
    hops = [h for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break  # garbage from a client: trust nothing further left
        if not any(address in net for net in trusted):
            return str(address)
    return str(remote)


def normalise_login(login: str) -> str:
    return login.strip().lower()[:254]


@dataclass(frozen=True)
class Lock:
    until: datetime.datetime

    @property
    def minutes(self) -> int:
        seconds = max(0, (self.until - timezone.now()).total_seconds())
        return max(1, int((seconds + 59) // 60))


def _window_start() -> datetime.datetime:
    return timezone.now() - datetime.timedelta(seconds=settings.PORTAL_LOGIN_WINDOW_SECONDS)


def _lock_from(failures: list[datetime.datetime], limit: int) -> Lock | None:
    """Locked while ``limit`` failures are in the window: until the limit-th newest one leaves it."""
    if limit <= 0 or len(failures) < limit:
        return None
    return Lock(until=failures[limit - 1] + datetime.timedelta(seconds=settings.PORTAL_LOGIN_WINDOW_SECONDS))


def lock_for(*, biller: Biller, login: str, ip: str) -> Lock | None:
    """The lock on this login at this biller, or on this address; None when an attempt may be made."""
    since = _window_start()
    login = normalise_login(login)
    limit = settings.PORTAL_LOGIN_MAX_FAILURES
    last_success = (
        PortalLoginAttempt.objects.filter(biller=biller, login=login, succeeded=True, created_at__gte=since)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    login_failures = list(
        PortalLoginAttempt.objects.filter(
            biller=biller, login=login, succeeded=False, created_at__gte=last_success or since
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    ip_limit = settings.PORTAL_LOGIN_MAX_FAILURES_PER_IP
    ip_failures = list(
        PortalLoginAttempt.objects.filter(ip=ip, succeeded=False, created_at__gte=since)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:ip_limit]
    )
    locks = [lock for lock in (_lock_from(login_failures, limit), _lock_from(ip_failures, ip_limit)) if lock]
    return max(locks, key=lambda lock: lock.until) if locks else None


def record(*, biller: Biller, login: str, ip: str, succeeded: bool) -> None:
    PortalLoginAttempt.objects.create(biller=biller, login=normalise_login(login), ip=ip, succeeded=succeeded)


def attempts_prune(*, older_than: datetime.timedelta = datetime.timedelta(days=2)) -> int:
    """Delete attempts no window looks at any more (run by beat)."""
    deleted, _ = PortalLoginAttempt.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
