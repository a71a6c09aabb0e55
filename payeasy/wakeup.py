"""Waking the workers once the line has committed new notices (the communication server's wake-up).

The notices are in the database; the queue only carries wake-ups, and a worker's task claims whatever
is waiting, in batches. So a burst of commits is one wake-up, and a wake-up that fails is not retried:
the sweeper (``payeasy.tasks.notices_sweep``) applies the committed notices within 30 s.
"""

from __future__ import annotations

import logging
import threading
import time

from billing import events

log = logging.getLogger("payeasy.commserver")

WAKE_INTERVAL = 0.1  # seconds: at most one wake-up per interval, however many commits


class WorkerWaker:
    """Wakes the workers after a commit, at most once per ``interval``: calling it only sets a flag, so
    the database thread never waits on the broker. The task is started by name (``billing.events``),
    from a thread of its own."""

    def __init__(self, *, interval: float = WAKE_INTERVAL) -> None:
        self.interval = interval
        self.due = threading.Event()
        self.thread = threading.Thread(target=self._run, name="wake-workers", daemon=True)
        self.thread.start()

    def __call__(self) -> None:
        self.due.set()

    def _run(self) -> None:
        while True:
            self.due.wait()
            self.due.clear()
            if not events.send("payeasy.tasks.notices_apply"):  # the failure is logged with its cause
                # the notices are committed; the sweeper applies them within 30 s
                log.error("could not wake the workers")
            time.sleep(self.interval)


__all__ = ["WAKE_INTERVAL", "WorkerWaker"]
