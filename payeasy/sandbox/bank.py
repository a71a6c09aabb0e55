"""What the sandbox bank sends over the MPN line: inquiries (1100) and payments (1200) to the running
commserver (``settings.COMMSERVER_HOST``/``COMMSERVER_PORT``), built and sent with the simulator's
Frames and Line, as the bank and the MPN centre together would; over TLS when MPN_SIMULATOR_TLS_CA is
set (presenting MPN_SIMULATOR_TLS_CERT/KEY, whose subject COMMSERVER_PEERS must map to ``SANDBOXBNK``).

Like the simulator, it opens the online day (0800) first when the line is closed. Transaction keys are
its own (sending centre ``SANDBOXBNK``) and fresh: the next serial after the highest one stored for the
day; if a concurrent payment took the same key (the commserver then answers 0000 for a duplicate and
stores nothing), the payment is sent again under the next one.
"""

from __future__ import annotations

import asyncio
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from billing.models import Biller
from payeasy import codec, simulator
from payeasy.banks import Bank
from payeasy.models import Channel, LineState, Notice
from payeasy.simulator import Answer, Frames, Line

CENTRE = "SANDBOXBNK"  # H2: 10 characters
BRANCH = "001"  # the sandbox bank's branch (its internet banking's virtual branch)
PAYER_KANA = "ﾃﾞﾓ ﾀﾛｳ"  # the demo account holder, element 14
ATTEMPTS = 3

CODE_MESSAGES = {
    "A001": _("The MPN line is not open (the online day has not started, or it is closed)."),
    "A002": _("This bank has no Pay-easy contract with the biller (or the contract is not in force)."),
    "A010": _("The biller does not take payments through this channel at this bank."),
    "B001": _("There is no bill with these numbers."),
    "B002": _("The bill is already paid."),
    "B003": _("The bill is past its due date and the biller does not accept late payment."),
    "B004": _("The bill was cancelled by the biller."),
    "B005": _("The bill cannot be paid yet."),
    "9001": _(
        "The communication server refused the message (format error, unknown biller or internal error)."
    ),
}


@dataclass
class LineResult:
    """One exchange with the commserver: the response code ("" when nothing answered) and what it said."""

    code: str
    transaction_key: str = ""
    elements: dict[int, codec.ElementValue] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.code == "0000"

    @property
    def message(self) -> str:
        if self.ok:
            return ""
        if self.error:
            return self.error
        return str(
            CODE_MESSAGES.get(
                self.code, _("The communication server answered %(code)s.") % {"code": self.code}
            )
        )


def _run(coroutine: Any) -> Any:
    """Run ``coroutine`` to its end from this synchronous view: in this thread when it has no event loop
    (WSGI), else in a thread of its own (a view called where a loop is running, e.g. under ASGI's
    async_to_sync or beside another library's loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-line") as pool:
        return pool.submit(asyncio.run, coroutine).result()


def bank_code() -> str:
    return settings.PAYEASY_SANDBOX_BANK_CODE


def plays(code: str) -> bool:
    """Whether the sandbox bank plays bank ``code``: its own code, or a bank whose 情報リンク endpoint is a
    path on this site (only the sandbox bank's entries can be: payeasy.services.handoff), as the demo
    wires the banks its billers have 情報リンク contracts with (payeasy.demo.seed_sandbox_bank)."""
    from payeasy.models import HandoffEndpoint

    if code == bank_code():
        return True
    return HandoffEndpoint.objects.filter(bank_code=code, entry_url__startswith="/").exists()


def played_banks() -> list[Bank]:
    """The other banks the sandbox bank plays (:func:`plays`), by code."""
    from payeasy.banks import bank_get
    from payeasy.models import HandoffEndpoint

    codes = (
        HandoffEndpoint.objects.filter(entry_url__startswith="/")
        .exclude(bank_code=bank_code())
        .order_by("bank_code")
        .values_list("bank_code", flat=True)
    )
    return [found for code in codes if (found := bank_get(code)) is not None]


def biller_code_for(payee_number: str) -> str:
    """The 収納機関コード behind a 収納機関番号, as the MPN directory would give it to a bank: the first
    biller with that number (suspended ones included: the line answers for them), else suffix 001."""
    code = (
        Biller.objects.filter(payee_number=payee_number)
        .order_by("biller_code")
        .values_list("biller_code", flat=True)
        .first()
    )
    return code or f"{payee_number}001"


async def _exchange(
    frames: Frames, opening: codec.Message | None, request: codec.Message, tls: ssl.SSLContext | None
) -> list[Answer | None]:
    async with Line(settings.COMMSERVER_HOST, settings.COMMSERVER_PORT, frames, tls=tls) as line:
        await line.connect()
        answers: list[Answer | None] = []
        if opening is not None:
            answers.append(await line.request(opening))
            if answers[-1] is None or answers[-1].code != "0000":
                return answers
        answers.append(await line.request(request))
        return answers


def _round_trip(
    biller_code: str, kind: str, elements: dict[int, codec.ElementValue]
) -> tuple[LineResult, codec.Message | None]:
    """Send one request (after a 0800 when the line is closed); the result and the request sent."""
    state = simulator.line_state()
    day = simulator.processing_day(state)
    frames = Frames(day, simulator.serial_base(CENTRE, day), centre=CENTRE)
    opening = frames.open_day(biller_code) if state.state == LineState.State.CLOSED else None
    request = frames.message(kind, biller_code, elements)
    try:
        tls = simulator.tls_context()  # MPN_SIMULATOR_TLS_*: TLS when the line is TLS
    except (ValueError, ImproperlyConfigured) as exc:
        return LineResult(
            code="", error=str(_("Cannot reach the communication server: %(error)s") % {"error": exc})
        ), None
    try:
        answers = _run(_exchange(frames, opening, request, tls))
    except OSError as exc:
        return LineResult(
            code="", error=str(_("Cannot reach the communication server: %(error)s") % {"error": exc})
        ), None
    last = answers[-1]
    if last is None:
        return LineResult(code="", error=str(_("The communication server did not answer in time."))), request
    if opening is not None and len(answers) == 1:  # the 0800 was refused
        return LineResult(
            code=last.code,
            error=str(_("The line could not be opened (0800 answered %(code)s).") % {"code": last.code}),
        ), request
    response = codec.parse_body(last.body)
    return LineResult(
        code=last.code, transaction_key=request.transaction_key, elements=dict(response.elements)
    ), request


def inquire(
    *, biller_code: str, customer_number: str, confirmation_number: str, channel: str = Channel.ATM
) -> LineResult:
    """1100 照会: on 0000 the elements carry the amount (4), due date (10), names (11, 12), 料金名 (13)."""
    result, _request = _round_trip(
        biller_code,
        "1100",
        {1: customer_number, 2: confirmation_number, 5: bank_code(), 6: BRANCH, 7: str(channel)},
    )
    return result


def pay(
    *,
    biller_code: str,
    customer_number: str,
    confirmation_number: str,
    amount: int,
    channel: str,
    as_bank: str = "",
) -> LineResult:
    """1200 消込 of ``amount`` through ``channel``; 0000 once the commserver has stored it. ``as_bank``: the
    bank code the payment comes from (element 5) when the sandbox plays another bank (:func:`plays`)."""
    for _attempt in range(ATTEMPTS):
        result, request = _round_trip(
            biller_code,
            "1200",
            {
                1: customer_number,
                2: confirmation_number,
                4: amount,
                5: as_bank or bank_code(),
                6: BRANCH,
                7: str(channel),
                8: simulator.now_jst(),
                14: PAYER_KANA,
            },
        )
        if not result.ok or request is None:
            return result
        stored = Notice.objects.filter(transaction_key=request.transaction_key).first()
        if stored is not None and (stored.customer_number, stored.amount) == (customer_number, amount):
            return result
        # another payment took this key first: ours was answered as its duplicate; send again
    return LineResult(code="", error=str(_("No fresh transaction key could be found; try again.")))
