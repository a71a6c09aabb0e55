"""Byte mutations of good files and frames for the Hypothesis fuzz tests (codec, teller files), and the
settings of the fuzz tests that use the database (teller files, invoice imports)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

INTERESTING_BYTES = [0x00, 0x0A, 0x0D, 0x20, 0x22, 0x2C, 0x30, 0x31, 0x39, 0x41, 0x46, 0x61, 0x81, 0x82]
INTERESTING_BYTES += [0xA1, 0xA6, 0xDE, 0xE0, 0xED, 0xEF, 0xF0, 0xFA, 0xFC, 0xFF]


def database_fuzz_settings(examples_variable: str, default: int = 150) -> settings:
    """Hypothesis settings of a fuzz test on the database: ``examples_variable`` (an environment
    variable) examples or ``default``, no deadline, the same examples every run, no example database,
    function-scoped fixtures (the database) allowed."""
    return settings(
        max_examples=int(os.environ.get(examples_variable, default)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@st.composite
def mutated(draw: st.DrawFn, originals: list[bytes], record: int = 0) -> bytes:
    """One of ``originals`` with 1–4 bit flips, byte sets, truncations, insertions or deletions — and, with
    ``record`` (a fixed record length), a record twice."""
    data = bytearray(draw(st.sampled_from(originals)))
    ops = ["flip", "set", "truncate", "insert", "delete"] + (["duplicate"] if record else [])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(ops))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from(INTERESTING_BYTES) | st.integers(0, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "duplicate":
            start = pos - pos % record
            data[start:start] = data[start : start + record]
    return bytes(data)
