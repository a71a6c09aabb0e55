"""python manage.py commserver [--host H] [--port P] [--insecure-plaintext]: the MPN line's communication
server. Mutual TLS from the COMMSERVER_TLS_* settings (payeasy.peers); production refuses to start without
them, naming what is missing."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser


class _Waker:
    """Wakes the workers after a commit, at most once per ``interval``: calling it only sets a flag, so
    the database thread never waits on the broker, and a burst of commits is one wake-up (a worker's
    task claims whatever is waiting, in batches). A wake-up that fails is not retried: the notices are
    committed and the sweeper applies them."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.due = threading.Event()
        threading.Thread(target=self._run, name="wake-workers", daemon=True).start()

    def __call__(self) -> None:
        self.due.set()

    def _run(self) -> None:
        from payeasy import tasks

        while True:
            self.due.wait()
            self.due.clear()
            try:
                tasks.notices_apply.delay()
            except Exception:  # the notices are committed; the sweeper applies them within 30 s
                logging.getLogger("payeasy.commserver").exception("could not wake the workers")
            time.sleep(self.interval)


class Command(BaseCommand):
    help = "Run the communication server (通信サーバ) that the MPN side connects to (spec §1)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.COMMSERVER_HOST)
        parser.add_argument("--port", type=int, default=settings.COMMSERVER_PORT)
        parser.add_argument("--batch", type=int, default=settings.COMMSERVER_BATCH)
        parser.add_argument(
            "--insecure-plaintext",
            action="store_true",
            help="plain TCP even with production settings or TLS settings (development, tests, the "
            "simulator); under DEBUG without COMMSERVER_TLS_* the line is plain TCP anyway",
        )

    def handle(
        self, *args: object, host: str, port: int, batch: int, insecure_plaintext: bool, **options: object
    ) -> None:
        from billing.tenancy import bind_cross_tenant

        bind_cross_tenant("line")  # the line answers for every biller (billing.tenancy)
        from payeasy import commserver, peers

        try:
            policy = peers.policy_from_settings(insecure_plaintext=insecure_plaintext)
        except ImproperlyConfigured as exc:
            raise CommandError(f"the commserver does not start: {exc}") from exc
        if policy.tls is not None:
            how = f"mutual TLS, {len(policy.centres)} client certificate subject(s) mapped"
        else:
            how = "plain TCP" + (", --insecure-plaintext" if insecure_plaintext else "")
        if policy.sources:
            how += ", sources " + ", ".join(str(n) for n in policy.sources)

        def ready(bound: int) -> None:
            self.stdout.write(f"commserver listening on {host}:{bound} ({how}; SIGTERM stops it cleanly)")
            self.stdout.flush()

        commserver.run(
            host=host, port=port, batch_max=batch, on_new_notices=_Waker(), on_ready=ready, policy=policy
        )
        self.stdout.write("commserver stopped")
