"""python manage.py commserver [--host H] [--port P]: the MPN line's communication server."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


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

    def handle(self, *args: object, host: str, port: int, batch: int, **options: object) -> None:
        from payeasy import commserver

        def ready(bound: int) -> None:
            self.stdout.write(f"commserver listening on {host}:{bound} (SIGTERM stops it cleanly)")
            self.stdout.flush()

        commserver.run(host=host, port=port, batch_max=batch, on_new_notices=_Waker(), on_ready=ready)
        self.stdout.write("commserver stopped")
