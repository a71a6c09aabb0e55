"""The line (spec §5): online state, message history (電文履歴), notices, the payment ledger, teller files."""

from __future__ import annotations

import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import Biller, InvoicePayment
from billing.scoping import TenantManager
from payeasy.models.contracts import Channel


class LineState(models.Model):
    """The one online state of the MPN line (spec §5 rule 1), persisted in the row with id 1."""

    class State(models.TextChoices):
        CLOSED = "closed", _("Closed")
        OPEN = "open", _("Open")
        PRE_CLOSED = "pre_closed", _("Pre-closed (予備閉局)")

    state = models.CharField(_("state"), max_length=10, choices=State, default=State.CLOSED)
    processing_date = models.DateField(_("processing date"), null=True, blank=True)
    previous_processing_date = models.DateField(_("previous processing date"), null=True, blank=True)
    since = models.DateTimeField(_("since"), default=timezone.now)

    def __str__(self) -> str:
        return f"{self.state} since {self.since:%Y-%m-%d %H:%M:%S}"


class Message(models.Model):
    """電文履歴: one received frame and the response written for it, stored before the response is sent.

    Append-only. ``raw`` is the frame body exactly as received (parseable or not); ``response_raw``
    the body sent back (empty when the connection was closed instead).
    """

    class Outcome(models.TextChoices):
        PROCESSED = "processed", _("Processed")
        DUPLICATE = "duplicate", _("Duplicate (already stored)")
        REFUSED = "refused", _("Answered with a business code")
        DISCARDED = "discarded", _("Discarded: line not open (A001)")
        FORMAT_ERROR = "format_error", _("Format error (9001)")
        UNKNOWN_BILLER = "unknown_biller", _("Unknown biller code (9001)")
        UNREADABLE = "unreadable", _("Unreadable: connection closed")
        INTERNAL_ERROR = "internal_error", _("Internal error (9001)")

    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    peer = models.CharField(_("connection"), max_length=64, blank=True)
    message_type = models.CharField(_("message type"), max_length=4, blank=True)
    transaction_key = models.CharField(_("transaction key"), max_length=26, blank=True)
    biller = models.ForeignKey(
        Biller, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    biller_code = models.CharField(_("biller code"), max_length=8, blank=True)
    customer_number = models.CharField(_("customer number"), max_length=20, blank=True)
    amount = models.BigIntegerField(_("amount"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome)
    response_code = models.CharField(_("response code"), max_length=4, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    raw = models.BinaryField(_("frame as received"))
    response_raw = models.BinaryField(_("response as sent"), default=b"", blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["transaction_key"], name="message_key"),
            models.Index(fields=["biller", "received_at"], name="message_biller_time"),
            models.Index(fields=["received_at"], name="message_time"),
            models.Index(
                fields=["customer_number"], condition=~Q(customer_number=""), name="message_customer_number"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_type} {self.transaction_key} {self.response_code}"


class Notice(models.Model):
    """A payment or reversal as the network reported it: a 1200/1700/1300 on the line or a teller batch
    record. Stored once per transaction key (the unique constraint is the idempotency), committed
    before the line is answered, and applied to the ledger by workers (``applied_at``)."""

    class Kind(models.TextChoices):
        PAYMENT = "payment", _("Payment")
        REVERSAL = "reversal", _("Reversal")

    class Source(models.TextChoices):
        LINE = "line", _("MPN line")
        TELLER_FILE = "teller_file", _("Teller batch file")

    class Suspect(models.TextChoices):
        """Why a payment looked wrong when it was received. Decided then, because only then is the online
        day known (it may have moved on when a worker applies the notice); the applier makes a suspect
        payment provisional (仮消込) with this reason — the values are LedgerEntry.Reason values."""

        NONE = "", _("—")
        PROCESSING_DATE_MISMATCH = (
            "processing_date_mismatch",
            _("The processing date (H3) is neither the online day nor the previous one"),
        )
        PAID_AT_FUTURE = "paid_at_future", _("The paid-at time (element 8) is in the future")
        PAID_AT_TOO_OLD = (
            "paid_at_too_old",
            _("The paid-at time (element 8) is long before the processing date"),
        )

    # paid at later than received + this: in the future. Ten minutes is far more than the drift of the
    # NTP-synchronised clocks of a bank, the centre and this server, and far less than any real mistake.
    PAID_AT_CLOCK_SKEW = datetime.timedelta(minutes=10)
    # paid at (JST day) more than this before the processing date: too old. The longest real gap is a
    # payment made before a long holiday and processed after it (New Year, Golden Week: about ten days),
    # or a teller file's 取扱日 a business day or two after its 収納日; a year is never legitimate. A month
    # keeps three times that margin and still catches a wrong year (365 days), which "366 days" would
    # not. Measured from the processing date, not from the clock: for the line H3 is pinned to the
    # online day, a teller file is judged by its own dates (a file imported late is not suspect for
    # that), and the same notice is judged the same whenever it is looked at.
    PAID_AT_MAX_AGE_DAYS = 31

    # unique by the constraint notice_key_once below, not unique=True: that would add a second index
    # (varchar_pattern_ops, for LIKE) that nothing reads and every stored notice has to update
    transaction_key = models.CharField(_("transaction key"), max_length=26)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind)
    source = models.CharField(_("source"), max_length=12, choices=Source, default=Source.LINE)
    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    key_date = models.DateField(_("processing date"))
    customer_number = models.CharField(_("customer number"), max_length=20)
    confirmation_number = models.CharField(_("confirmation number"), max_length=6)
    amount = models.BigIntegerField(_("amount"))
    bank_code = models.CharField(_("bank code"), max_length=4)
    branch_code = models.CharField(_("branch code"), max_length=3)
    channel = models.CharField(_("channel"), max_length=2, choices=Channel)
    paid_at = models.DateTimeField(_("paid at"))
    payer_name_kana = models.CharField(_("payer name (kana)"), max_length=30, blank=True)
    original_key = models.CharField(_("original transaction key"), max_length=26, blank=True)
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    teller_file = models.ForeignKey(
        "TellerFile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="notices",
        db_index=False,  # notice_teller_file below: only the rows that have one (the line's have none)
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    # payments only; db_default too, so that a commserver of the previous release, still inserting
    # without this column while the migration runs, stores its notices unflagged instead of failing
    suspect = models.CharField(
        _("suspect on receipt"), max_length=24, choices=Suspect, blank=True, default="", db_default=""
    )

    objects = TenantManager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["transaction_key"], name="notice_key_once"),
            models.UniqueConstraint(
                fields=["original_key"], condition=Q(kind="reversal"), name="notice_reversed_once"
            ),
            models.CheckConstraint(
                condition=Q(kind="payment", original_key="") | Q(kind="reversal") & ~Q(original_key=""),
                name="notice_reversal_names_original",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="notice_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["id"], condition=Q(applied_at__isnull=True), name="notice_waiting"),
            models.Index(fields=["biller", "key_date"], name="notice_biller_date"),
            models.Index(fields=["biller", "customer_number"], name="notice_biller_number"),
            # the payments page's paid-date filter (reconciliation)
            models.Index(fields=["biller", "paid_at"], name="notice_biller_paid"),
            models.Index(
                fields=["teller_file"], condition=Q(teller_file__isnull=False), name="notice_teller_file"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.transaction_key} {self.amount:,}"

    @classmethod
    def suspect_of(
        cls,
        *,
        key_date: datetime.date,
        paid_at: datetime.datetime,
        received_at: datetime.datetime,
        online_days: tuple[datetime.date | None, ...] | None = None,
    ) -> str:
        """Why a payment received at ``received_at`` looks wrong (a Suspect value), or "".

        ``online_days`` are the line's processing date and the previous one when the frame arrived; None
        for a teller file, which has no online day. The first finding wins: a processing date off the
        online days, then a paid-at in the future, then one long before the processing date.
        """
        if online_days is not None and key_date not in online_days:
            return cls.Suspect.PROCESSING_DATE_MISMATCH.value
        if paid_at > received_at + cls.PAID_AT_CLOCK_SKEW:
            return cls.Suspect.PAID_AT_FUTURE.value
        from payeasy.codec import JST

        paid_day = paid_at.astimezone(JST).date()
        if paid_day < key_date - datetime.timedelta(days=cls.PAID_AT_MAX_AGE_DAYS):
            return cls.Suspect.PAID_AT_TOO_OLD.value
        return ""


class LedgerEntry(models.Model):
    """The append-only ledger: what one notice did to the books (never updated, never deleted).

    A payment entry either pays its invoice (``paid``), is a second payment of a paid invoice
    (``double_payment``: counted, refund due while it stands), or is provisional (仮消込) with a
    reason. A reversal entry undoes one payment entry. Invoice status is derived from the standing
    entries under a lock on the invoice row.
    """

    rows_locked_by_workers = True  # billing.dbsecurity: the applier claims entries with FOR UPDATE

    # paid, double payment, provisional (仮消込), reversal: the outcomes billing records of the entries on
    # its bills (billing.models.InvoicePayment) are the ledger's own
    Outcome = InvoicePayment.Outcome

    class Reason(models.TextChoices):
        NONE = "", _("—")
        UNKNOWN_NUMBER = "unknown_number", _("Unknown customer or confirmation number")
        BANK_NOT_CONTRACTED = "bank_not_contracted", _("Bank not contracted on the payment date")
        CHANNEL_NOT_ALLOWED = "channel_not_allowed", _("Channel not allowed for this bank")
        CANCELLED = "cancelled", _("The bill was cancelled")
        NOT_PAYABLE = "not_payable", _("The bill is not payable")
        PAST_DUE = "past_due", _("Paid after the due date; the biller refuses late payment")
        AMOUNT_DIFFERS = "amount_differs", _("The amount differs from the bill")
        # flagged when the line or a teller file stored the payment: Notice.Suspect's values and labels
        PROCESSING_DATE_MISMATCH = (
            Notice.Suspect.PROCESSING_DATE_MISMATCH.value,
            Notice.Suspect.PROCESSING_DATE_MISMATCH.label,
        )
        PAID_AT_FUTURE = Notice.Suspect.PAID_AT_FUTURE.value, Notice.Suspect.PAID_AT_FUTURE.label
        PAID_AT_TOO_OLD = Notice.Suspect.PAID_AT_TOO_OLD.value, Notice.Suspect.PAID_AT_TOO_OLD.label

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    notice = models.OneToOneField(Notice, on_delete=models.PROTECT, related_name="entry")
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome)
    reason = models.CharField(_("reason"), max_length=24, choices=Reason, blank=True, default="")
    amount = models.BigIntegerField(_("amount"))  # yen: positive for payments, negative for reversals
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome="reversal", amount__lt=0, reverses__isnull=False)
                | ~Q(outcome="reversal") & Q(amount__gt=0, reverses__isnull=True),
                name="ledger_sign_matches_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["invoice"], condition=Q(invoice__isnull=False), name="ledger_invoice"),
            models.Index(fields=["biller", "created_at"], name="ledger_biller_time"),
            # the payments page's keyset (newest first per biller): without it a biller whose entries are
            # not the newest walks the whole ledger backwards (778 ms at 1.2 M entries, 0.24 ms with it)
            models.Index(fields=["biller", "id"], name="ledger_biller_id"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} {self.amount:,}"


class TellerFile(models.Model):
    """A teller batch file (一括消込データ, spec §6) as it was offered for import, accepted or not.

    An accepted file's records are notices (``source=teller_file``), stored in the same transaction as
    this row: a file is in the books whole or not at all. One accepted file per name; offering it again
    changes nothing, and a different file under an accepted name is refused as a conflict.
    """

    class Status(models.TextChoices):
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")

    class Via(models.TextChoices):
        COMMAND = "command", _("Command line")
        UPLOAD = "upload", _("Staff console upload")
        DROP_FOLDER = "drop_folder", _("Drop folder")

    name = models.CharField(_("file name"), max_length=100)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    size = models.PositiveIntegerField(_("size (bytes)"))
    status = models.CharField(_("status"), max_length=10, choices=Status)
    via = models.CharField(_("received via"), max_length=12, choices=Via)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    received_by = models.ForeignKey(
        "billing.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    biller = models.ForeignKey(
        Biller, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    bank_code = models.CharField(_("bank code"), max_length=4, blank=True)
    handling_date = models.DateField(_("handling date (取扱日)"), null=True, blank=True)
    payment_count = models.PositiveIntegerField(_("payments"), default=0)
    payment_total = models.BigIntegerField(_("payment total"), default=0)
    reversal_count = models.PositiveIntegerField(_("reversals"), default=0)
    reversal_total = models.BigIntegerField(_("reversal total"), default=0)
    known_count = models.PositiveIntegerField(_("records already stored"), default=0)
    error_record = models.PositiveIntegerField(_("error record"), null=True, blank=True)
    error_field = models.CharField(_("error field"), max_length=60, blank=True)
    error_offset = models.PositiveIntegerField(_("error byte offset"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    content = models.BinaryField(_("file as received"))

    objects = TenantManager()

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(status="accepted"), name="teller_file_accepted_once"
            ),
        ]
        indexes = [models.Index(fields=["received_at"], name="teller_file_time")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class LineNode(models.Model):
    """One communication server process's heartbeat (payeasy.line_nodes): whether it is the active one
    (holds the line lock and listens) or stands by, and its last minute of acknowledgements. Written by
    each commserver every ``COMMSERVER_HEARTBEAT_SECONDS`` from a thread of its own, never by a lane: the
    row is for the operations page and ``/metrics``, and no answer ever waits for it. Not a tenant's row
    (no biller): every commserver answers for every biller."""

    class Role(models.TextChoices):
        ACTIVE = "active", _("Active")
        STANDBY = "standby", _("Standing by")
        STOPPED = "stopped", _("Stopped")

    name = models.CharField(_("node"), max_length=100, unique=True)
    role = models.CharField(_("node role"), max_length=10, choices=Role, default=Role.STANDBY)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    role_since = models.DateTimeField(_("in this role since"), default=timezone.now)
    seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)
    ack_p50_ms = models.FloatField(_("acknowledgement p50 (ms)"), null=True, blank=True)
    ack_p99_ms = models.FloatField(_("acknowledgement p99 (ms)"), null=True, blank=True)
    frames_last_minute = models.PositiveIntegerField(_("frames in the last minute"), default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"
