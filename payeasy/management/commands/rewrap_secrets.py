"""Re-wrap every stored secret under the first key-encryption key (a KEK rotation, docs/operators.md).

The webhook signing secrets (current and previous) and the 情報リンク banks' keys. Each value that the
first KEK of PAYEASY_HANDOFF_KEK does not open but a later one does is decrypted and encrypted again
under the first. Idempotent (a value already under the first KEK is left as it is) and resumable (rows
are taken in id order, a batch per short transaction, each row locked while it is rewritten, so a
stop loses nothing and the next run goes on). Safe while the product runs: readers try every KEK, and
a secret rotated meanwhile is either seen and rewritten under the lock or written under the first KEK
already.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction

from billing import tenancy
from payeasy import keywrap
from payeasy.models import HandoffKey, WebhookEndpoint


def _every_tenant() -> AbstractContextManager[Any]:
    """Every biller's rows: the named cross-tenant path of management commands (billing.tenancy), where
    the database enforces tenant policies (a command that saw no rows would report nothing to re-wrap)."""
    return tenancy.cross_tenant("command")


@dataclass
class Tally:
    rewrapped: int = 0
    current: int = 0
    unreadable: list[str] = field(default_factory=list)


def _rewrap(
    model: type[models.Model],
    fields: tuple[str, ...],
    aad: Callable[[Any], bytes],
    label: str,
    *,
    batch_size: int,
    check_only: bool,
) -> Tally:
    tally = Tally()
    last = 0
    while True:
        ids = list(model.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:batch_size])  # type: ignore[attr-defined]
        if not ids:
            return tally
        last = ids[-1]
        with transaction.atomic():
            for row in model.objects.select_for_update().filter(pk__in=ids).order_by("pk"):  # type: ignore[attr-defined]
                changes: dict[str, str] = {}
                for name in fields:
                    value = getattr(row, name)
                    if not value:
                        continue
                    try:
                        plaintext, position = keywrap.opened_by(value, aad(row))
                    except keywrap.Unreadable:
                        tally.unreadable.append(f"{label} {row.pk} ({name})")
                        continue
                    if position == 0:
                        tally.current += 1
                    else:
                        tally.rewrapped += 1
                        changes[name] = keywrap.wrap(plaintext, aad(row))
                if changes and not check_only:
                    model.objects.filter(pk=row.pk).update(**changes)  # type: ignore[attr-defined]


class Command(BaseCommand):
    help = (
        "Re-wrap every stored secret (webhook signing secrets, 情報リンク bank keys) under the first "
        "key-encryption key of PAYEASY_HANDOFF_KEK. Idempotent, resumable, safe while the product runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=200, help="rows per transaction (200)")
        parser.add_argument(
            "--check",
            action="store_true",
            help="change nothing; fail when a value is not under the first key-encryption key yet",
        )

    def handle(self, *args: Any, batch_size: int, check: bool, **options: Any) -> None:
        try:
            keks = keywrap.keks()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        if len(keks) < 2:
            self.stdout.write(
                "One key-encryption key is configured: everything is wrapped under it or unreadable."
            )
        with _every_tenant():
            results = self._run(batch_size=batch_size, check=check)
        verb = "to re-wrap" if check else "re-wrapped"
        unreadable: list[str] = []
        pending = 0
        for label, tally in results:
            self.stdout.write(
                f"{label}: {tally.rewrapped} {verb}, {tally.current} already under the first key, "
                f"{len(tally.unreadable)} unreadable"
            )
            unreadable += tally.unreadable
            pending += tally.rewrapped
        if unreadable:
            raise CommandError(
                "no configured key-encryption key opens: "
                + ", ".join(unreadable)
                + ". Add the key they were wrapped with to PAYEASY_HANDOFF_KEK (after the first) "
                "and run again."
            )
        if check and pending:
            raise CommandError(f"{pending} values are not under the first key-encryption key yet")

    def _run(self, *, batch_size: int, check: bool) -> list[tuple[str, Tally]]:
        return [
            (
                "webhook signing secrets",
                _rewrap(
                    WebhookEndpoint,
                    ("secret", "previous_secret"),
                    lambda row: keywrap.webhook_secret_aad(row.pk),
                    "webhook endpoint",
                    batch_size=batch_size,
                    check_only=check,
                ),
            ),
            (
                "情報リンク bank keys",
                _rewrap(
                    HandoffKey,
                    ("wrapped_key",),
                    lambda row: keywrap.handoff_key_aad(row.kid),
                    "情報リンク key",
                    batch_size=batch_size,
                    check_only=check,
                ),
            ),
        ]
