"""Login throttling with lockout: one implementation for the customer portal and the console.

Every attempt is a ``LoginAttempt`` row in the database, so every web process sees the same
counts and nothing is lost when a cache is flushed. Each use is a ``Policy`` (its realm and its
settings); counts never mix between realms, so customers failing behind one office address do not
lock out the iDC's staff, nor the other way round.

Two keys are counted per realm:

- the login (for the portal: at one biller): ``<PREFIX>_MAX_FAILURES`` failures (password or
  second-factor step) since its last successful login, within ``<PREFIX>_WINDOW_SECONDS``, lock it;
- the client address: ``<PREFIX>_MAX_FAILURES_PER_IP`` failures within the window lock the address
  (any login, and for the portal any biller), so trying many logins from one place is stopped too.

A locked attempt is refused without looking at the password and is not itself counted: the lock
ends when the oldest counted failure leaves the window.

The client address is ``REMOTE_ADDR``. ``X-Forwarded-For`` is read only when ``REMOTE_ADDR`` is
one of ``PORTAL_TRUSTED_PROXIES`` (the load balancers in front of every page, console included),
and then from the right, skipping those proxies: the address the outermost trusted proxy saw. A
header the client made up never changes the key.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from billing.models import Biller, LoginAttempt
from billing.tenancy import cross_tenant

UNKNOWN_IP = "0.0.0.0"  # noqa: S104 - a key for requests without a usable address, not a bind address

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Policy:
    """One use of the throttle: the realm its attempts are counted in and its settings' prefix."""

    realm: str
    prefix: str

    @property
    def max_failures(self) -> int:
        return int(getattr(settings, f"{self.prefix}_MAX_FAILURES"))

    @property
    def max_failures_per_ip(self) -> int:
        return int(getattr(settings, f"{self.prefix}_MAX_FAILURES_PER_IP"))

    @property
    def window_seconds(self) -> int:
        return int(getattr(settings, f"{self.prefix}_WINDOW_SECONDS"))


PORTAL = Policy(realm=LoginAttempt.Realm.PORTAL, prefix="PORTAL_LOGIN")
CONSOLE = Policy(realm=LoginAttempt.Realm.CONSOLE, prefix="CONSOLE_LOGIN")


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


def _lock_from(failures: list[datetime.datetime], limit: int, window: int) -> Lock | None:
    """Locked while ``limit`` failures are in the window: until the limit-th newest one leaves it."""
    if limit <= 0 or len(failures) < limit:
        return None
    return Lock(until=failures[limit - 1] + datetime.timedelta(seconds=window))


def lock_for(*, policy: Policy, biller: Biller | None, login: str, ip: str) -> Lock | None:
    """The lock on this login (at this biller, for the portal) or on this address; None when an
    attempt may be made. An address's failures count at every biller: a sign-in path crosses tenants."""
    with cross_tenant("accounts"):
        return _lock_for(policy=policy, biller=biller, login=login, ip=ip)


def _lock_for(*, policy: Policy, biller: Biller | None, login: str, ip: str) -> Lock | None:
    window = policy.window_seconds
    since = timezone.now() - datetime.timedelta(seconds=window)
    attempts = LoginAttempt.objects.filter(realm=policy.realm)
    mine = attempts.filter(biller=biller, login=normalise_login(login))
    limit = policy.max_failures
    last_success = (
        mine.filter(succeeded=True, created_at__gte=since)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    login_failures = list(
        mine.filter(succeeded=False, created_at__gte=last_success or since)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    ip_limit = policy.max_failures_per_ip
    ip_failures = list(
        attempts.filter(ip=ip, succeeded=False, created_at__gte=since)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:ip_limit]
    )
    locks = [
        lock
        for lock in (_lock_from(login_failures, limit, window), _lock_from(ip_failures, ip_limit, window))
        if lock
    ]
    return max(locks, key=lambda lock: lock.until) if locks else None


def record(*, policy: Policy, biller: Biller | None, login: str, ip: str, succeeded: bool) -> None:
    with cross_tenant("accounts"):  # a console attempt belongs to no biller
        LoginAttempt.objects.create(
            realm=policy.realm, biller=biller, login=normalise_login(login), ip=ip, succeeded=succeeded
        )


def attempts_prune(*, older_than: datetime.timedelta = datetime.timedelta(days=2)) -> int:
    """Delete attempts no window looks at any more, of every realm (run by beat)."""
    deleted, _ = LoginAttempt.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
