"""python manage.py commserver [--host H] [--port P]: the MPN line's communication server."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


def _wake_workers() -> None:
    from payeasy import tasks

    try:
        tasks.notices_apply.delay()
    except Exception:  # the notices are committed; the sweeper applies them within 30 s
        logging.getLogger("payeasy.commserver").exception("could not wake the workers")


class Command(BaseCommand):
    help = "Run the communication server (通信サーバ) that the MPN side connects to (spec §1)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.COMMSERVER_HOST)
        parser.add_argument("--port", type=int, default=settings.COMMSERVER_PORT)
        parser.add_argument("--batch", type=int, default=settings.COMMSERVER_BATCH)

    def handle(self, *args: object, host: str, port: int, batch: int, **options: object) -> None:
        from payeasy import commserver

        def ready(bound: int) -> None:
            self.stdout.write(f"commserver listening on {host}:{bound} (SIGTERM stops it cleanly)")
            self.stdout.flush()

        commserver.run(host=host, port=port, batch_max=batch, on_new_notices=_wake_workers, on_ready=ready)
        self.stdout.write("commserver stopped")
