"""The simulator's figures: what each scenario step sent and got back, and round-trip percentiles."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MESSAGE_NAMES", "TIMEOUT", "Stats", "percentile"]

MESSAGE_NAMES = {
    "0800": "開局",
    "0820": "閉局",
    "1100": "照会",
    "1200": "消込",
    "1300": "取消",
    "1600": "カウンタ",
    "1700": "再送確認",
}
TIMEOUT = 10.0  # seconds an answer may take before the simulator counts it lost (the spec allows 2)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Stats:
    """What one scenario step sent and got back."""

    sent: Counter[str] = field(default_factory=Counter)  # by message type
    codes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (response type, code)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # seconds by type
    lost: int = 0
    elapsed: float = 0.0
    paid_latencies: list[float] = field(default_factory=list)  # frame sent → invoice.paid event, seconds
    paid_missing: int = 0

    def add(self, other: Stats) -> None:
        self.sent.update(other.sent)
        self.codes.update(other.codes)
        for kind, values in other.latencies.items():
            self.latencies[kind].extend(values)
        self.lost += other.lost
        self.elapsed += other.elapsed
        self.paid_latencies += other.paid_latencies
        self.paid_missing += other.paid_missing

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data: counts, answers by code, round-trip percentiles in ms."""
        return {
            "elapsed_seconds": round(self.elapsed, 3),
            "sent": dict(self.sent),
            "answers": {f"{rtype} {code}": n for (rtype, code), n in self.codes.items()},
            "lost": self.lost,
            "round_trip_ms": {
                kind: {
                    "count": len(values),
                    **{f"p{q}": round(percentile(values, q) * 1000, 2) for q in (50, 90, 99)},
                    "max": round(max(values) * 1000, 2),
                }
                for kind, values in self.latencies.items()
                if values
            },
        }

    def summary(self) -> list[str]:
        lines = []
        for kind in sorted(self.sent):
            got = {
                code: n for (rtype, code), n in sorted(self.codes.items()) if rtype == f"{int(kind) + 10:04d}"
            }
            lat = [v * 1000 for v in self.latencies.get(kind, [])]
            rate = f", {self.sent[kind] / self.elapsed:,.0f}/s" if self.elapsed > 0.5 else ""
            lines.append(
                f"  {kind} {MESSAGE_NAMES.get(kind, '')}: sent {self.sent[kind]:,}{rate}; answers "
                + (", ".join(f"{c} ×{n:,}" for c, n in got.items()) or "none")
                + (
                    f"; round trip ms p50 {percentile(lat, 50):.2f} p90 {percentile(lat, 90):.2f} "
                    f"p99 {percentile(lat, 99):.2f} max {max(lat):.2f}"
                    if lat
                    else ""
                )
            )
        if self.lost:
            lines.append(f"  unanswered within {TIMEOUT:.0f} s: {self.lost:,}")
        if self.paid_latencies or self.paid_missing:
            ms = [v * 1000 for v in self.paid_latencies]
            lines.append(
                f"  frame sent → invoice paid (committed): {len(ms):,} bills, "
                f"ms p50 {percentile(ms, 50):.1f} p90 {percentile(ms, 90):.1f} "
                f"p99 {percentile(ms, 99):.1f} max {max(ms, default=0):.1f}"
                + (f"; NOT PAID in time: {self.paid_missing:,}" if self.paid_missing else "")
            )
        return lines
