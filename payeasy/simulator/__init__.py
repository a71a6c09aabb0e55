"""The MPN simulator: plays the MPN centre and the banks against a running communication server.

Used by ``manage.py mpn_simulate``, the demo, the integration tests and the benchmarks. The database is
read only to learn what a bank would know (the three numbers and amount of published bills, a
contracted bank and channel, the line's processing date, the next free processing serial); everything
else goes over TCP, exactly as the MPN centre would send it: pipelined frames on several connections,
answers matched by message type and transaction key (spec §1).

Network work runs in asyncio (:class:`Line`); the database reads happen before and after, outside the
event loop (:func:`targets_load`, :func:`serial_base`). The modules:

- :mod:`~payeasy.simulator.database` — what the centre and the banks know (bills, serials, counts);
- :mod:`~payeasy.simulator.frames` — requests with fresh transaction keys (:class:`Frames`);
- :mod:`~payeasy.simulator.stats` — what a step sent and got back (:class:`Stats`);
- :mod:`~payeasy.simulator.client` — connections, TLS, :class:`Line`, the open-loop :func:`load`.
"""

from __future__ import annotations

from payeasy.simulator.client import (
    Answer,
    Connection,
    Line,
    PaidWatcher,
    load,
    match_of,
    tls_context,
)
from payeasy.simulator.database import (
    CENTRE,
    PREFERRED_CHANNELS,
    Target,
    centre_counts,
    first_biller_code,
    line_state,
    processing_day,
    serial_base,
    targets_load,
    teller_serial_base,
    today_and_before,
)
from payeasy.simulator.frames import Frames, now_jst
from payeasy.simulator.stats import MESSAGE_NAMES, TIMEOUT, Stats, percentile

__all__ = [
    "CENTRE",
    "MESSAGE_NAMES",
    "PREFERRED_CHANNELS",
    "TIMEOUT",
    "Answer",
    "Connection",
    "Frames",
    "Line",
    "PaidWatcher",
    "Stats",
    "Target",
    "centre_counts",
    "first_biller_code",
    "line_state",
    "load",
    "match_of",
    "now_jst",
    "percentile",
    "processing_day",
    "serial_base",
    "targets_load",
    "teller_serial_base",
    "tls_context",
    "today_and_before",
]
