"""Pay-easy's models, one module per concept; every model and public name is importable from here.

- ``contracts`` — channels and a biller's contracted banks;
- ``line`` — online state, message history, notices, the append-only ledger, teller files;
- ``webhooks`` — endpoints, deliveries and attempts;
- ``handoff`` — 情報リンク entry URLs, keys and used nonces.
"""

from payeasy.models.contracts import CHANNEL_FIELDS, Channel, ContractedBank, validate_known_bank
from payeasy.models.handoff import HandoffEndpoint, HandoffKey, HandoffNonce, validate_entry_url
from payeasy.models.line import LedgerEntry, LineState, Message, Notice, TellerFile
from payeasy.models.webhooks import (
    WEBHOOK_TEST_EVENT,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)

__all__ = [
    "CHANNEL_FIELDS",
    "WEBHOOK_TEST_EVENT",
    "Channel",
    "ContractedBank",
    "HandoffEndpoint",
    "HandoffKey",
    "HandoffNonce",
    "LedgerEntry",
    "LineState",
    "Message",
    "Notice",
    "TellerFile",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEventType",
    "validate_entry_url",
    "validate_known_bank",
]
