"""Pay-easy: the contracts of a biller (which banks may take its bills, through which channels, when) and
the line — online state, message history (電文履歴), notices from the network and the payment ledger."""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import Biller
from billing.validators import validate_bank_code


class Channel(models.TextChoices):
    """チャネル区分 (spec §2, element 7)."""

    TELLER = "01", _("Teller (窓口)")
    ATM = "02", _("ATM")
    INTERNET_BANKING = "03", _("Internet banking (number entry)")
    MOBILE = "04", _("Mobile banking")
    INFO_LINK = "05", _("Information link (情報リンク)")
    TELEPHONE = "06", _("Telephone banking")


CHANNEL_FIELDS: dict[str, str] = {
    Channel.TELLER: "allows_teller",
    Channel.ATM: "allows_atm",
    Channel.INTERNET_BANKING: "allows_internet_banking",
    Channel.MOBILE: "allows_mobile",
    Channel.INFO_LINK: "allows_info_link",
    Channel.TELEPHONE: "allows_telephone",
}


def validate_known_bank(value: str) -> None:
    from payeasy.banks import bank_get

    validate_bank_code(value)
    if bank_get(value) is None:
        raise ValidationError(
            _("Bank code %(value)s is not in the 全銀 bank master."),
            code="unknown_bank",
            params={"value": value},
        )


class ContractedBank(models.Model):
    """A bank with which the biller has a Pay-easy collection contract for a period.

    Periods of the same biller and bank never overlap (checked by the service
    under a lock on the biller row). ``valid_to`` is inclusive; empty means open-ended.
    """

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="contracted_banks")
    bank_code = models.CharField(_("bank code"), max_length=4, validators=[validate_known_bank])
    allows_teller = models.BooleanField(_("teller (窓口)"), default=False)
    allows_atm = models.BooleanField(_("ATM"), default=False)
    allows_internet_banking = models.BooleanField(_("internet banking"), default=False)
    allows_mobile = models.BooleanField(_("mobile banking"), default=False)
    allows_info_link = models.BooleanField(_("information link (情報リンク)"), default=False)
    allows_telephone = models.BooleanField(_("telephone banking"), default=False)
    valid_from = models.DateField(_("contract start"))
    valid_to = models.DateField(_("contract end"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["bank_code", "valid_from"]
        indexes = [models.Index(fields=["biller", "bank_code"], name="contract_biller_bank")]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="contract_period_ordered",
                violation_error_message=_("The contract end must not be before its start."),
            ),
            models.CheckConstraint(
                condition=Q(allows_teller=True)
                | Q(allows_atm=True)
                | Q(allows_internet_banking=True)
                | Q(allows_mobile=True)
                | Q(allows_info_link=True)
                | Q(allows_telephone=True),
                name="contract_has_a_channel",
                violation_error_message=_("Choose at least one channel."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.biller.slug} {self.bank_code} {self.valid_from}–{self.valid_to or ''}"

    @property
    def bank(self):
        from payeasy.banks import bank_get

        return bank_get(self.bank_code)

    @property
    def channels(self) -> list[str]:
        return [code for code, field in CHANNEL_FIELDS.items() if getattr(self, field)]

    def get_channel_labels(self) -> list[str]:
        return [str(Channel(code).label) for code in self.channels]

    def allows(self, channel: str) -> bool:
        field = CHANNEL_FIELDS.get(channel)
        return bool(field and getattr(self, field))

    def covers(self, day: datetime.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def overlaps(self, start: datetime.date, end: datetime.date | None) -> bool:
        my_end = self.valid_to or datetime.date.max
        other_end = end or datetime.date.max
        return self.valid_from <= other_end and start <= my_end


# ---------------------------------------------------------------------------------------------------------
# The line (spec §5): online state, message history, what the network reported, and the ledger
# ---------------------------------------------------------------------------------------------------------


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

    class Outcome(models.TextChoices):
        PAID = "paid", _("Paid")
        DOUBLE_PAYMENT = "double_payment", _("Double payment (二重支払)")
        PROVISIONAL = "provisional", _("Provisional (仮消込)")
        REVERSAL = "reversal", _("Reversal (取消)")

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
        ]

    def __str__(self) -> str:
        return f"{self.outcome} {self.amount:,}"


class Receipt(models.Model):
    """A receipt e-mail sent for a ledger entry that paid a bill: the unique link makes sending it once."""

    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="receipt")
    sent_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"receipt for {self.entry_id}"


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


# ---------------------------------------------------------------------------------------------------------
# Outbound webhooks (payeasy.services.webhooks): the biller's own systems told what happened to its books
# ---------------------------------------------------------------------------------------------------------


class WebhookEventType(models.TextChoices):
    """The events an endpoint may subscribe to: those of payeasy.services.payments."""

    PAYMENT_RECEIVED = "payment.received", _("Payment received")
    PAYMENT_PROVISIONAL = "payment.provisional", _("Payment held as provisional (仮消込)")
    PAYMENT_DOUBLE = "payment.double", _("Double payment (二重支払)")
    PAYMENT_REVERSED = "payment.reversed", _("Payment reversed (取消)")
    INVOICE_PAID = "invoice.paid", _("Invoice paid")
    INVOICE_PAYABLE_AGAIN = "invoice.payable_again", _("Invoice payable again")


WEBHOOK_TEST_EVENT = "webhook.test"  # sent on demand from the console; nobody subscribes to it


class WebhookEndpoint(models.Model):
    """A URL of the biller's own system, sent the events it subscribes to, signed with HMAC-SHA256.

    After a rotation the previous secret signs too, until ``previous_secret_expires_at``, so the
    receiver can switch over without refusing a request. Both secrets are stored wrapped (AES-256-GCM
    under the key-encryption keys, bound to the endpoint's id: ``payeasy.keywrap``); signing unwraps
    them (``payeasy.services.webhooks.signing_secrets``); the console shows a new one once.
    """

    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(_("events"), default=list)  # WebhookEventType values
    active = models.BooleanField(_("active"), default=True)
    secret = models.CharField(max_length=200)  # wrapped: "w1.<iv>.<ciphertext>"
    previous_secret = models.CharField(max_length=200, blank=True)  # wrapped too
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url

    def get_event_type_labels(self) -> list[str]:
        labels = dict(WebhookEventType.choices)
        return [str(labels.get(t, t)) for t in self.event_types]


class WebhookDelivery(models.Model):
    """One event for one endpoint: the outbox row, written in the transaction that changed the books,
    then posted until the endpoint answers 2xx or ``give_up_at`` (three days) has passed.

    ``payload`` is the JSON body exactly as sent on every attempt (text, not jsonb, which would reorder
    its keys); ``event_id`` is in it and in a header, the same on every attempt and resend, so the
    receiver can drop duplicates. The ``last_*`` fields repeat the latest attempt; every attempt is a
    WebhookAttempt.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed (gave up)")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    event_id = models.UUIDField(_("event id"))
    event_type = models.CharField(_("event"), max_length=40)
    payload = models.TextField(_("payload (JSON)"))
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    give_up_at = models.DateTimeField(_("retried until"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_request_headers = models.JSONField(default=dict, blank=True)
    last_response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    last_response_headers = models.JSONField(default=dict, blank=True)
    last_response_body = models.TextField(blank=True)
    last_error = models.CharField(_("error"), max_length=500, blank=True)
    last_duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_delivery_due"
            ),
            models.Index(fields=["biller", "-id"], name="webhook_delivery_biller"),
            models.Index(fields=["biller", "status", "-id"], name="webhook_delivery_biller_status"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → {self.endpoint_id} ({self.status})"

    @property
    def request_body(self) -> str:
        return self.payload


class WebhookAttempt(models.Model):
    """The delivery log: one HTTP request of a delivery and what came back (or why nothing did)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.PROTECT, related_name="attempt_log")
    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    started_at = models.DateTimeField(_("sent at"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    url = models.CharField(_("URL"), max_length=500)
    request_headers = models.JSONField(default=dict)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)  # of a 2xx answer only: its first 200 characters
    error = models.CharField(_("error"), max_length=500, blank=True)
    succeeded = models.BooleanField(_("succeeded"), default=False)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        outcome = self.response_status or self.error
        return f"{self.delivery_id} at {self.started_at:%Y-%m-%d %H:%M:%S}: {outcome}"

    @property
    def body_excerpt(self) -> str:
        """What the log shows of the answer's body: nothing unless the answer was 2xx."""
        if self.response_status is None or not 200 <= self.response_status < 300:
            return ""
        return self.response_body


# ---------------------------------------------------------------------------------------------------------
# 情報リンク hand-off (payeasy.handoff, docs/handoff.md): the banks' entry URLs, their keys, used nonces
# ---------------------------------------------------------------------------------------------------------


def validate_entry_url(value: str) -> None:
    """An absolute http(s) URL, or a path on this site starting with "/" (the sandbox bank). Whether
    plain http and paths are allowed is a deployment rule, checked by the service."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if value.startswith("/") and not value.startswith("//") and not parts.scheme:
        return
    if parts.scheme in {"http", "https"} and parts.netloc and not parts.username and not parts.password:
        return
    raise ValidationError(
        _("Give an https:// URL of the bank (or a path on this site starting with /)."), code="entry_url"
    )


class HandoffEndpoint(models.Model):
    """A bank's 情報リンク entry: where the hand-off page POSTs the envelope. Configured by iDC staff.

    A bank supports 情報リンク when it has an enabled endpoint (and an active key to seal with).
    """

    bank_code = models.CharField(
        _("bank code"),
        max_length=4,
        unique=True,
        validators=[validate_known_bank],
        error_messages={"unique": _("This bank already has a 情報リンク endpoint.")},
    )
    entry_url = models.CharField(_("entry URL"), max_length=500, validators=[validate_entry_url])
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["bank_code"]

    def __str__(self) -> str:
        return f"{self.bank_code} {self.entry_url}"

    @property
    def bank(self):
        from payeasy.banks import bank_get

        return bank_get(self.bank_code)


class HandoffKey(models.Model):
    """An AES-256 key shared with one bank, named by ``kid``. One key per bank is active (it seals new
    envelopes); retiring ones still open envelopes; retired ones open nothing. The key material is kept
    encrypted (``payeasy.handoff.key_wrap``) and shown once, when it is created."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active (seals and opens)")
        RETIRING = "retiring", _("Retiring (opens only)")
        RETIRED = "retired", _("Retired")

    endpoint = models.ForeignKey(HandoffEndpoint, on_delete=models.PROTECT, related_name="keys")
    kid = models.CharField(_("key id"), max_length=40, unique=True)
    wrapped_key = models.CharField(max_length=200)
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.ACTIVE)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    retired_at = models.DateTimeField(_("retired"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint"], condition=Q(status="active"), name="handoff_key_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.status})"


class HandoffNonce(models.Model):
    """A hand-off nonce already opened: the unique constraint makes an envelope single-use. Rows are
    pruned once their envelope has expired (an expired envelope is refused anyway)."""

    nonce = models.CharField(max_length=64, unique=True)
    bank_code = models.CharField(max_length=4)
    kid = models.CharField(max_length=40)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="handoff_nonce_expiry")]

    def __str__(self) -> str:
        return self.nonce
