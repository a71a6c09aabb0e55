"""python manage.py commserver [--host H] [--port P] [--insecure-plaintext]: the MPN line's communication
server. Mutual TLS from the COMMSERVER_TLS_* settings (payeasy.peers); production refuses to start without
them, naming what is missing. The command parses its options and runs ``payeasy.commserver``, which wakes
the workers itself (``payeasy.wakeup``).

Several may run for one line (active/standby, ``payeasy.line_lock``): only the holder of the line lock
listens; the others log "commserver: standing by (…)" and take over when it dies. "commserver listening
on HOST:PORT" is printed each time this process starts listening."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser


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

        commserver.run(host=host, port=port, batch_max=batch, on_ready=ready, policy=policy)
        self.stdout.write("commserver stopped")
