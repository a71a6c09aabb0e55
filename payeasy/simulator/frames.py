"""Requests as the MPN centre sends them: :class:`Frames` builds each message type with a fresh key."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from django.utils import timezone

from payeasy import codec
from payeasy.models import Channel
from payeasy.simulator.database import CENTRE, Target

__all__ = ["Frames", "now_jst"]


def now_jst() -> str:
    return timezone.now().astimezone(codec.JST).strftime("%Y%m%d%H%M%S")


class Frames:
    """Builds requests with fresh transaction keys for one processing date."""

    def __init__(self, day: str, first_serial: int, centre: str = CENTRE) -> None:
        self.day = day
        self.centre = centre
        self._serials = itertools.count(first_serial)
        self._lock = threading.Lock()

    def message(
        self, kind: str, biller_code: str, elements: dict[int, Any], *, serial: int | None = None
    ) -> codec.Message:
        if serial is None:
            with self._lock:
                serial = next(self._serials)
        return codec.Message(
            message_type=kind,
            centre=self.centre,
            processing_date=self.day,
            serial=f"{serial:08d}",
            sent_at=now_jst(),
            biller_code=biller_code,
            elements=elements,
        )

    def open_day(self, biller_code: str) -> codec.Message:
        return self.message("0800", biller_code, {})

    def close(self, biller_code: str, kind: int) -> codec.Message:
        return self.message("0820", biller_code, {20: kind})

    def inquiry(self, t: Target) -> codec.Message:
        return self.message(
            "1100",
            t.biller_code,
            {1: t.customer_number, 2: t.confirmation_number, 5: t.bank_code, 6: "001", 7: t.channel},
        )

    def payment(
        self, t: Target, *, amount: int | None = None, kind: str = "1200", channel: str | None = None
    ) -> codec.Message:
        return self.message(
            kind,
            t.biller_code,
            {
                1: t.customer_number,
                2: t.confirmation_number,
                4: t.amount if amount is None else amount,
                5: t.bank_code,
                6: "001",
                7: channel or t.channel,
                8: now_jst(),
                14: "ｼﾐﾕﾚ-ﾀ",
            },
        )

    def resend(self, original: codec.Message) -> codec.Message:
        """A 1700 for ``original``'s payment, under the payment's own key."""
        return codec.Message(
            message_type="1700",
            centre=original.centre,
            processing_date=original.processing_date,
            serial=original.serial,
            sent_at=now_jst(),
            biller_code=original.biller_code,
            elements=dict(original.elements),
        )

    def reversal(self, original: codec.Message) -> codec.Message:
        e = original.elements
        return self.message(
            "1300",
            original.biller_code,
            {
                1: e[1],
                2: e[2],
                4: e[4],
                5: e[5],
                6: e[6],
                7: Channel.TELLER,
                8: now_jst(),
                9: original.transaction_key,
            },
        )

    def counters(self, biller_code: str, day: str, figures: tuple[int, int, int, int]) -> codec.Message:
        return self.message(
            "1600", biller_code, {15: day, 16: figures[0], 17: figures[1], 18: figures[2], 19: figures[3]}
        )
