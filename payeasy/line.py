"""What the communication server does with the frames it receives (spec §5), without the sockets.

:class:`LineProcessor` takes a batch of received frame bodies and returns one answer per body, after
one transaction has stored every frame and its response in the message history (電文履歴) and every
new payment or reversal as a :class:`~payeasy.models.Notice`. The server writes the answers only
after that commit (persist, then acknowledge), and workers apply the notices afterwards. A batch is
whatever arrived while the previous one was being committed: one commit serves many frames.

Inquiries (1100) only read billing data; the server runs them in their own lane so that a slow
payment commit never delays a payer waiting at an ATM.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from billing.models import Biller, Invoice
from billing.numbers import issuer_for
from config.logs import exception_summary
from payeasy import codec
from payeasy.codec import CodecError, Message
from payeasy.line_store import line_state_read, messages_and_notices_insert, rows_insert
from payeasy.models import Channel, ContractedBank, LineState, Notice
from payeasy.models import Message as LoggedMessage
from payeasy.selectors import contract_code, line_payment_counts

log = logging.getLogger("payeasy.line")

BUSINESS_TYPES = frozenset({"1100", "1200", "1300", "1600", "1700"})
PAYMENT_TYPES = frozenset({"1200", "1700"})
NOTICE_TYPES = frozenset({b"1200", b"1300", b"1700"})
ONE_STATEMENT_TYPES = frozenset({b"1100", b"1200", b"1700"})
BILLER_CACHE_SECONDS = 30.0


@dataclass
class Received:
    """One frame body as it came off a connection."""

    body: bytes
    peer: str = ""
    received_at: datetime.datetime = field(default_factory=timezone.now)
    stream_error: str = ""  # the bytes could not be cut into a frame (bad length prefix)
    centres: frozenset[str] | None = None  # the H2 codes this connection's peer may send; None: any
    arrived: float = field(default_factory=time.monotonic)  # when the 2 s to answer it began


@dataclass
class Answer:
    """What to send back: a response body, or None to close the connection (unreadable header)."""

    body: bytes | None
    code: str = ""
    new_notice: bool = False


def _date(text: str) -> datetime.date:
    return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def _jst_datetime(text: str) -> datetime.datetime:
    return datetime.datetime(
        int(text[:4]),
        int(text[4:6]),
        int(text[6:8]),
        int(text[8:10]),
        int(text[10:12]),
        int(text[12:14]),
        tzinfo=codec.JST,
    )


def _outcome_of(code: str) -> str:
    """What an answer with response ``code`` did to its message: processed (0000) or refused."""
    return LoggedMessage.Outcome.PROCESSED if code == "0000" else LoggedMessage.Outcome.REFUSED


def today_jst() -> datetime.date:
    return timezone.now().astimezone(codec.JST).date()


def _text(value: str) -> str:
    """Text for a column: PostgreSQL text cannot hold NUL."""
    return value.replace("\x00", "\ufffd")


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot take writes now (unreachable, restarting, its backend
    terminated, read-only), as opposed to a statement it refused: the whole batch fails then, and the
    connection is dropped so that the next batch opens a new one."""
    from django import db

    return isinstance(
        exc,
        psycopg.OperationalError
        | psycopg.InterfaceError
        | psycopg.InternalError
        | db.OperationalError
        | db.InterfaceError
        | db.InternalError,
    )


def refusal(received: Received) -> Answer:
    """The answer to a frame that could not be stored: 9001 when its header can be read, otherwise the
    connection closes. Needs no database."""
    header = codec.peek_header(received.body) if not received.stream_error else None
    if header is None or not header.answerable:
        return Answer(None)
    return Answer(codec.build_format_error(header), "9001")


class _Billers:
    """Billers by 収納機関コード and their contracted banks, refreshed every half minute (an onboarded
    biller or a changed contract applies within that) — an inquiry then costs no query for either."""

    def __init__(self) -> None:
        self._by_code: dict[str, Biller] = {}
        self._contracts: dict[int, list[ContractedBank]] = {}
        self._loaded = 0.0

    def get(self, code: str) -> Biller | None:
        now = time.monotonic()
        if now - self._loaded > BILLER_CACHE_SECONDS or (
            code not in self._by_code and now - self._loaded > 1
        ):
            self._by_code = {b.biller_code: b for b in Biller.objects.all()}
            contracts: dict[int, list[ContractedBank]] = {}
            for row in ContractedBank.objects.all():
                contracts.setdefault(row.biller_id, []).append(row)
            self._contracts = contracts
            self._loaded = now
        return self._by_code.get(code)

    def contracts(self, biller: Biller) -> list[ContractedBank]:
        return self._contracts.get(biller.pk, [])


@dataclass
class _Batch:
    """Rows of one batch waiting to be inserted, and the keys they will add."""

    messages: list[LoggedMessage] = field(default_factory=list)
    notices: list[tuple[Notice, LoggedMessage]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)  # notice keys this batch adds
    stored: set[str] = field(default_factory=set)  # notice keys of this batch already in the database
    reversed_keys: set[str] = field(default_factory=set)
    invoices: dict[int, Invoice] = field(default_factory=dict)  # the bills this batch's inquiries ask for
    ids: list[int] = field(default_factory=list)  # message ids drawn for this batch (PostgreSQL)
    together: bool = False  # messages and notices go in one statement (PostgreSQL, no transaction open)

    def has_notice(self, key: str) -> bool:
        return key in self.keys or key in self.stored


class LineProcessor:
    """Answers batches of frames. One instance per thread: it uses that thread's database connection."""

    def __init__(self, *, on_new_notices: Callable[[], None] | None = None) -> None:
        self.billers = _Billers()
        self.on_new_notices = on_new_notices
        LineState.objects.get_or_create(pk=1)

    # --- the batch ---------------------------------------------------------------------------------------

    def process(self, batch: Sequence[Received]) -> list[Answer]:
        """Store and answer ``batch``: one transaction, or — when storing it fails for something other
        than the database being unreachable — each frame in a transaction of its own, so that one frame
        no statement can store never takes the others of its batch down with it. A frame that cannot be
        stored even alone is answered 9001 (the connection closed if its header is unreadable): nothing
        of it was stored, so nothing is acknowledged. Raises only if the database is unavailable.
        """
        try:
            return self._process(batch)
        except Exception as exc:
            if is_unavailable(exc):
                raise
            log.error(
                "a batch of %d frames could not be stored; storing them one by one: %s",
                len(batch),
                exception_summary(exc, frames=True),
            )
        answers = []
        for received in batch:
            try:
                answers += self._process([received])
            except Exception as exc:
                if is_unavailable(exc):
                    raise
                log.error(
                    "a %r frame of %d bytes from %s could not be stored: %s",
                    bytes(received.body[:4]),  # the message type; the rest holds payment numbers and names
                    len(received.body),
                    received.peer,
                    exception_summary(exc, frames=True),
                )
                answers.append(self._unstorable(received, exc))
        return answers

    def _unstorable(self, received: Received, exc: Exception) -> Answer:
        """What no statement could store: its bytes and the error alone, and the answer ``refuse``
        gives. Not even that row? Then the process log has it (:func:`refusal`)."""
        answer = refusal(received)
        row = LoggedMessage(
            received_at=received.received_at,
            peer=_text(received.peer)[:64],
            raw=received.body,
            outcome=LoggedMessage.Outcome.INTERNAL_ERROR,
            error=_text(f"could not be stored: {type(exc).__name__}: {exc}")[:300],
            response_code=answer.code,
            response_raw=answer.body,
        )
        try:
            with transaction.atomic():
                row.save()
        except Exception as stored:
            log.error(
                "not even the bytes of a frame from %s could be stored: %s",
                received.peer,
                exception_summary(stored, frames=True),
            )
        return answer

    def record_unstored(self, frames: Sequence[tuple[Received, Answer]]) -> None:
        """Put into the message history the frames answered while the database was unavailable (the
        commserver answered them 9001 or closed their connection, storing nothing)."""
        rows = []
        for received, answer in frames:
            row = LoggedMessage(
                received_at=received.received_at,
                peer=_text(received.peer)[:64],
                raw=received.body,
                outcome=LoggedMessage.Outcome.INTERNAL_ERROR,
                error="database unavailable: answered without being stored",
                response_code=answer.code,
                response_raw=answer.body,
            )
            header = codec.peek_header(received.body) if not received.stream_error else None
            if header is not None:
                row.message_type, row.transaction_key = header.message_type, header.transaction_key
                row.biller_code = header.biller_code
                row.biller = self.billers.get(header.biller_code)
            rows.append(row)
        LoggedMessage.objects.bulk_create(rows)

    def _process(self, batch: Sequence[Received]) -> list[Answer]:
        """Store and answer ``batch`` in one transaction. Raises only if the database fails.

        On PostgreSQL a batch of inquiries, payments and resends — the line's bulk — costs two round
        trips and no explicit transaction: one query reads the online state and the stored keys and
        draws the new messages' ids, and one statement inserts the messages and the notices together
        (a data-modifying WITH), atomic as every statement is. Other batches run in ``atomic()``."""
        together = connection.vendor == "postgresql" and all(r.body[:4] in ONE_STATEMENT_TYPES for r in batch)
        with contextlib.nullcontext() if together else transaction.atomic():
            answers = self._decide(batch, together=together)
        if any(a.new_notice for a in answers) and self.on_new_notices is not None:
            transaction.on_commit(self.on_new_notices)  # now, unless a caller's transaction is open
        return answers

    def _decide(self, batch: Sequence[Received], *, together: bool) -> list[Answer]:
        pending = _Batch(together=together)
        changes_state = any(r.body[:4] in (b"0800", b"0820") for r in batch)
        # one query for the whole batch: which of its payment/reversal keys are stored already
        # (H2+H3+H4 sit at bytes 4–30 of every body; a body that does not parse is never looked up)
        keys = [
            r.body[4:30].decode("ascii")
            for r in batch
            if r.body[:4] in NOTICE_TYPES and r.body[4:30].replace(b" ", b"").isalnum()  # no NUL, no kana
        ]
        line, pending.stored, pending.ids = line_state_read(keys=keys, frames=len(batch), lock=changes_state)
        pending.invoices = self._inquired_invoices(batch)
        answers = [self._one(received, line, pending) for received in batch]
        self._flush(pending)
        return answers

    def _inquired_invoices(self, batch: Sequence[Received]) -> dict[int, Invoice]:
        """One query for the bills of every inquiry in the batch (a body that does not parse asks for none:
        H6 sits at bytes 44–52, element 1 — required in a 1100 — at 72–92)."""
        wanted: set[int] = set()
        for r in batch:
            if r.body[:4] != b"1100" or len(r.body) < 92:
                continue
            biller = self.billers.get(r.body[44:52].decode("ascii", "replace"))
            number = r.body[72:92].decode("ascii", "replace").rstrip()
            if biller is None or not number.isdigit():
                continue
            counter = issuer_for(biller.number_key).counter_of(number)
            if counter is not None:
                wanted.add(counter)
        if not wanted:
            return {}
        fields = (
            "id",
            "biller_id",
            "kind",
            "confirmation_number",
            "status",
            "total",
            "due_date",
            "description",
        )
        return {i.pk: i for i in Invoice.objects.filter(pk__in=wanted).only(*fields)}

    def _one(self, received: Received, line: LineState, pending: _Batch) -> Answer:
        row = LoggedMessage(
            received_at=received.received_at, peer=_text(received.peer)[:64], raw=received.body
        )
        if received.stream_error:
            row.outcome, row.error = LoggedMessage.Outcome.UNREADABLE, received.stream_error[:300]
            pending.messages.append(row)
            return Answer(None)
        try:
            message = codec.parse_body(received.body)
        except CodecError as exc:
            return self._unparseable(received, row, exc, pending)
        row.message_type = message.message_type
        row.transaction_key = message.transaction_key
        row.biller_code = message.biller_code
        if not message.is_request:
            row.outcome, row.error = LoggedMessage.Outcome.FORMAT_ERROR, "a response type sent as a request"
            pending.messages.append(row)
            return Answer(None)
        if received.centres is not None and message.centre not in received.centres:
            log.warning("%s sent H2 %r, which its certificate may not use", received.peer, message.centre)
            row.error = f"sending centre {message.centre!r} is not allowed for {received.peer}"[:300]
            return self._answer(row, message, "9001", LoggedMessage.Outcome.REFUSED, pending)
        number = message.elements.get(1)
        if isinstance(number, str):
            row.customer_number = number
        amount = message.elements.get(4)
        if isinstance(amount, int):
            row.amount = amount
        biller = self.billers.get(message.biller_code)
        if biller is None:
            return self._answer(row, message, "9001", LoggedMessage.Outcome.UNKNOWN_BILLER, pending)
        row.biller = biller
        try:
            return self._route(message, biller, row, line, pending)
        except Exception as exc:  # a bug must not take the other frames of the batch with it
            log.error(
                "internal error on %s %s: %s",
                message.message_type,
                message.transaction_key,
                exception_summary(exc, frames=True),
            )
            row.error = f"internal error: {type(exc).__name__}: {exc}"[:300]
            return self._answer(row, message, "9001", LoggedMessage.Outcome.INTERNAL_ERROR, pending)

    def _unparseable(
        self, received: Received, row: LoggedMessage, exc: CodecError, pending: _Batch
    ) -> Answer:
        row.error = str(exc)[:300]
        header = codec.peek_header(received.body)
        if header is None or not header.answerable:
            row.outcome = LoggedMessage.Outcome.UNREADABLE
            if header is not None:
                row.message_type, row.transaction_key = header.message_type, header.transaction_key
            pending.messages.append(row)
            return Answer(None)
        row.message_type, row.transaction_key = header.message_type, header.transaction_key
        row.biller_code = header.biller_code
        biller = self.billers.get(header.biller_code)
        row.biller = biller
        row.outcome, row.response_code = LoggedMessage.Outcome.FORMAT_ERROR, "9001"
        row.response_raw = codec.build_format_error(header)
        pending.messages.append(row)
        return Answer(row.response_raw, "9001")

    def _answer(
        self,
        row: LoggedMessage,
        message: Message,
        code: str,
        outcome: str,
        pending: _Batch,
        elements: dict[int, codec.ElementValue] | None = None,
        *,
        new_notice: bool = False,
    ) -> Answer:
        row.response_code, row.outcome = code, outcome
        row.response_raw = codec.build_response(message, code, elements)
        pending.messages.append(row)
        return Answer(row.response_raw, code, new_notice)

    # --- by message type ---------------------------------------------------------------------------------

    def _route(
        self, message: Message, biller: Biller, row: LoggedMessage, line: LineState, pending: _Batch
    ) -> Answer:
        kind = message.message_type
        outcome = LoggedMessage.Outcome
        if kind == "0800":
            self._open(line, _date(message.processing_date))
            return self._answer(row, message, "0000", outcome.PROCESSED, pending)
        if kind == "0820":
            code = self._close(line, int(message.elements[20]))
            return self._answer(row, message, code, _outcome_of(code), pending)
        if line.state == LineState.State.CLOSED or (
            kind == "1100" and line.state == LineState.State.PRE_CLOSED
        ):
            return self._answer(row, message, "A001", outcome.DISCARDED, pending)
        if kind == "1100":
            code, elements = self._inquire(message, biller, pending)
            return self._answer(row, message, code, _outcome_of(code), pending, elements)
        if kind in PAYMENT_TYPES:
            key = message.transaction_key
            if pending.has_notice(key):
                return self._answer(row, message, "0000", outcome.DUPLICATE, pending)
            pending.keys.add(key)
            pending.notices.append((self._notice(message, biller, Notice.Kind.PAYMENT, line), row))
            return self._answer(row, message, "0000", outcome.PROCESSED, pending, new_notice=True)
        if kind == "1300":
            return self._reversal(message, biller, row, pending)
        if kind == "1600":
            code, elements = self._counters(message, biller, line, pending)
            return self._answer(row, message, code, _outcome_of(code), pending, elements)
        raise AssertionError(f"unrouted message type {kind}")  # the codec admits no other request

    def _open(self, line: LineState, day: datetime.date) -> None:
        """0800 starts the online day ``day`` (H3); repeated, it changes nothing."""
        if line.processing_date != day:
            line.previous_processing_date, line.processing_date = line.processing_date, day
        if line.state != LineState.State.OPEN:
            line.state, line.since = LineState.State.OPEN, timezone.now()
        line.save()

    def _close(self, line: LineState, close_kind: int) -> str:
        target = LineState.State.PRE_CLOSED if close_kind == 1 else LineState.State.CLOSED
        if line.state == target:
            return "0000"  # a repeated request changes nothing
        if line.state == LineState.State.CLOSED:
            return "A001"  # pre-closing a closed line: the day has not started
        line.state, line.since = target, timezone.now()
        line.save()
        return "0000"

    def _inquire(
        self, message: Message, biller: Biller, pending: _Batch
    ) -> tuple[str, dict[int, codec.ElementValue] | None]:
        """Spec §5 rule 5: bank and channel first, then the bill."""
        e = message.elements
        today = today_jst()
        code = contract_code(
            self.billers.contracts(biller), bank_code=str(e[5]), channel=str(e[7]), day=today
        )
        if code:
            return code, None
        counter = issuer_for(biller.number_key).counter_of(str(e[1]))
        invoice = pending.invoices.get(counter) if counter is not None else None
        if (
            invoice is None
            or invoice.biller_id != biller.pk
            or invoice.confirmation_number is None
            or invoice.confirmation_number != e[2]
            or invoice.kind == Invoice.Kind.CREDIT_NOTE
        ):
            return "B001", None
        if invoice.status == Invoice.Status.CANCELLED:
            return "B004", None
        if invoice.status == Invoice.Status.PAID:
            return "B002", None
        if invoice.status != Invoice.Status.PUBLISHED or biller.is_suspended:
            return "B005", None
        if invoice.due_date < today and biller.late_payment_policy == Biller.LatePaymentPolicy.REFUSE:
            return "B003", None
        return "0000", {
            1: e[1],
            2: e[2],
            4: invoice.total,
            10: invoice.due_date.strftime("%Y%m%d"),
            11: codec.fit_kana(biller.name_kana, 24),
            12: codec.fit_double_byte(biller.short_name, 24),
            13: codec.fit_double_byte(invoice.description, 40),
        }

    def _notice(self, message: Message, biller: Biller, kind: str, line: LineState | None = None) -> Notice:
        """The notice of a 1200/1700 (``line``: the online state it arrived in) or a 1300. A payment that
        looks wrong is flagged now (``suspect``), while the online day is known: the applier, later,
        makes it provisional (仮消込) with that reason. The frame is answered 0000 all the same."""
        e = message.elements
        key_date, paid_at = _date(message.processing_date), _jst_datetime(str(e[8]))
        received_at = timezone.now()
        suspect = ""
        if kind == Notice.Kind.PAYMENT and line is not None:
            suspect = Notice.suspect_of(
                key_date=key_date,
                paid_at=paid_at,
                received_at=received_at,
                online_days=(line.processing_date, line.previous_processing_date),
            )
        return Notice(
            transaction_key=message.transaction_key,
            kind=kind,
            source=Notice.Source.LINE,
            biller=biller,
            key_date=key_date,
            customer_number=str(e[1]),
            confirmation_number=str(e[2]),
            amount=int(e[4]),
            bank_code=str(e[5]),
            branch_code=str(e[6]),
            channel=str(e[7]),
            paid_at=paid_at,
            payer_name_kana=str(e.get(14, "")),
            original_key=str(e.get(9, "")) if kind == Notice.Kind.REVERSAL else "",
            received_at=received_at,
            suspect=suspect,
        )

    def _reversal(self, message: Message, biller: Biller, row: LoggedMessage, pending: _Batch) -> Answer:
        """Spec §5 rule 6. The original must be a payment of this biller, for the same numbers and amount,
        not yet reversed; anything else is B006 (a reversal never guesses which payment it undoes)."""
        outcome = LoggedMessage.Outcome
        if pending.has_notice(message.transaction_key):
            return self._answer(row, message, "0000", outcome.DUPLICATE, pending)
        if message.elements[7] != Channel.TELLER:
            return self._answer(row, message, "A301", outcome.REFUSED, pending)
        self._flush(pending)  # the original may have arrived earlier in this batch
        original_key = str(message.elements[9])
        original = Notice.objects.filter(
            transaction_key=original_key, kind=Notice.Kind.PAYMENT, biller=biller
        ).first()
        e = message.elements
        if (
            original is None
            or original_key in pending.reversed_keys
            or Notice.objects.filter(kind=Notice.Kind.REVERSAL, original_key=original_key).exists()
            or (original.customer_number, original.confirmation_number, original.amount) != (e[1], e[2], e[4])
        ):
            return self._answer(row, message, "B006", outcome.REFUSED, pending)
        pending.keys.add(message.transaction_key)
        pending.reversed_keys.add(original_key)
        pending.notices.append((self._notice(message, biller, Notice.Kind.REVERSAL), row))
        return self._answer(row, message, "0000", outcome.PROCESSED, pending, new_notice=True)

    def _counters(
        self, message: Message, biller: Biller, line: LineState, pending: _Batch
    ) -> tuple[str, dict[int, codec.ElementValue] | None]:
        """Spec §5 rule 7: distinct payments (1200, 1700) received on the line; reversals not subtracted."""
        day = _date(str(message.elements[15]))
        if day not in {line.processing_date, line.previous_processing_date}:
            return "A601", None
        self._flush(pending)
        counts = line_payment_counts(biller=biller, days=[day, day - datetime.timedelta(days=1)])
        today_n, today_total = counts.get(day, (0, 0))
        before_n, before_total = counts.get(day - datetime.timedelta(days=1), (0, 0))
        return "0000", {
            15: message.elements[15],
            16: today_n,
            17: today_total,
            18: before_n,
            19: before_total,
        }

    # --- writing -----------------------------------------------------------------------------------------

    def _flush(self, pending: _Batch) -> None:
        """Insert what the batch has decided so far: messages first (notices point at them)."""
        messages, pending.messages = pending.messages, []
        for row in messages:
            if pending.ids:  # PostgreSQL: drawn with the online state; elsewhere the insert sets them
                row.pk = pending.ids.pop()
        if messages and not pending.together:
            rows_insert(model=LoggedMessage, rows=messages, skip_conflicts=False)
        notices = []
        for notice, row in pending.notices:
            notice.message_id = row.pk
            notices.append(notice)
        pending.notices = []
        if pending.together:
            messages_and_notices_insert(messages=messages, notices=notices)
        elif notices:
            # ignore conflicts: a key stored meanwhile by another server or a teller file is the same notice
            rows_insert(model=Notice, rows=notices, skip_conflicts=True)
