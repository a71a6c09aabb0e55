"""The customer portal's use of the login throttle (billing.throttling, policy ``PORTAL``).

Failures count per login at the biller (``PORTAL_LOGIN_MAX_FAILURES``) and per client address
(``PORTAL_LOGIN_MAX_FAILURES_PER_IP``) within ``PORTAL_LOGIN_WINDOW_SECONDS``.
"""

from __future__ import annotations

from billing import throttling
from billing.models import Biller
from billing.throttling import UNKNOWN_IP, Lock, attempts_prune, client_ip, normalise_login

__all__ = ["UNKNOWN_IP", "Lock", "attempts_prune", "client_ip", "lock_for", "normalise_login", "record"]


def lock_for(*, biller: Biller, login: str, ip: str) -> Lock | None:
    """The lock on this login at this biller, or on this address; None when an attempt may be made."""
    return throttling.lock_for(policy=throttling.PORTAL, biller=biller, login=login, ip=ip)


def record(*, biller: Biller, login: str, ip: str, succeeded: bool) -> None:
    throttling.record(policy=throttling.PORTAL, biller=biller, login=login, ip=ip, succeeded=succeeded)
