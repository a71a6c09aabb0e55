"""Sign-in protection: failed-login counts and the console's second factor."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models.tenants import Biller, User
from billing.scoping import TenantManager


class LoginAttempt(models.Model):
    """One attempt to log in (password or second-factor step), for throttling and lockout.

    ``realm`` says whose login it was: a biller's customer portal (``biller`` set) or the console
    of iDC staff and tenant members, the Django admin included (``biller`` empty). ``login`` is the
    e-mail as typed (normalised); ``ip`` the client address (REMOTE_ADDR, or the address a trusted
    proxy reports, see billing.throttling).
    """

    class Realm(models.TextChoices):
        PORTAL = "portal", _("Customer portal")
        CONSOLE = "console", _("Console")

    realm = models.CharField(max_length=8, choices=Realm, default=Realm.PORTAL)
    biller = models.ForeignKey(
        Biller, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    login = models.CharField(max_length=254)
    ip = models.GenericIPAddressField()
    succeeded = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        indexes = [
            models.Index(fields=["biller", "login", "created_at"], name="portal_attempt_login"),
            models.Index(fields=["ip", "created_at"], name="portal_attempt_ip"),
            models.Index(fields=["created_at"], name="portal_attempt_time"),
            models.Index(
                fields=["login", "created_at"], name="console_attempt_login", condition=Q(realm="console")
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(realm="portal", biller__isnull=False) | Q(realm="console", biller__isnull=True),
                name="login_attempt_realm_matches_biller",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.realm} {self.login} from {self.ip} {'ok' if self.succeeded else 'failed'}"


PortalLoginAttempt = LoginAttempt  # its name from when only the portal counted attempts


class ConsoleTwoFactor(models.Model):
    """A console user's TOTP second factor (RFC 6238) and recovery codes.

    The secret counts once a code from the app has confirmed it (``enabled_at``); ``last_step`` is
    the time step of the last code accepted, so a code is accepted once. Recovery codes are stored
    as SHA-256 digests only (they are random, 50 bits each); a used one is removed from the list.
    """

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="console_two_factor")
    secret = models.CharField(max_length=64)
    enabled_at = models.DateTimeField(null=True, blank=True)
    last_step = models.BigIntegerField(null=True, blank=True)
    recovery_hashes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user} ({'on' if self.enabled else 'enrolling'})"

    @property
    def enabled(self) -> bool:
        return self.enabled_at is not None
