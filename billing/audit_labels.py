"""The audit trail in words: one place that turns what ``billing.services.audit`` stores into what a person
reads, in the reader's language.

- an action code (``contract.add``) → its label (``ACTION_LABELS``); an unknown code → a readable form
  built from its parts, never the dotted code;
- a before/after key → the verbose name of the target model's field, or ``KEY_LABELS`` for the keys that
  are not fields (``ip``, ``decision``, …), or the key with spaces;
- a value → the choice's label (``late_payment_policy: accept`` → 支払期限後も収納する), はい/いいえ for a
  boolean, a localized date and time (``2026年4月1日 09:05``, no seconds or microseconds) for a date
  stored as ISO text;
- the entry's actor (``system``, ``api-key:…``) and time.

Every action code recorded anywhere (billing, payeasy, reconciliation) has a label here:
tests/billing/test_audit_labels.py scans the source for the recording calls, so a new code without a
label fails. The codes are plain strings: nothing of payeasy or reconciliation is imported; the target's
model is found by its label in the app registry (``AuditEntry.target_type``).
"""

from __future__ import annotations

import datetime
import re
from functools import lru_cache
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.translation import get_language, gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from billing.models import AuditEntry, InvoiceApproval

EMPTY = "—"

ACTION_LABELS: dict[str, Promise] = {
    # the biller (収納企業) and its console
    "biller.create": _("Biller created"),
    "biller.update": _("Biller details changed"),
    "biller.activate": _("Biller activated"),
    "biller.suspend": _("Biller suspended"),
    "biller.reactivate": _("Biller reactivated"),
    "biller.console_totp_for_operators": _("Two-step verification rule for operators changed"),
    "biller.invoice_numbering": _("Invoice number pattern changed"),
    "membership.create": _("Console member added"),
    "membership.role": _("Console member's role changed"),
    "invitation.create": _("Console invitation sent"),
    "invitation.accept": _("Console invitation accepted"),
    "invitation.revoke": _("Console invitation revoked"),
    "user.create": _("User created"),
    "api_key.create": _("API key created"),
    "api_key.revoke": _("API key revoked"),
    "console.login": _("Signed in to the console"),
    "console.login_failed": _("Console sign-in failed"),
    "console.login_locked": _("Console sign-in locked"),
    "console.totp_on": _("Two-step verification turned on"),
    "console.totp_reset": _("Two-step verification reset"),
    "console.recovery_code_used": _("Recovery code used"),
    "console.recovery_codes_regenerate": _("Recovery codes renewed"),
    # customers and their portal accounts
    "customer.create": _("Customer created"),
    "customer.update": _("Customer details changed"),
    "customer.registration_code": _("Portal registration code issued"),
    "customer_account.create": _("Portal account created"),
    "customer_account.register": _("Portal account registered"),
    "customer_account.role": _("Portal account's role changed"),
    "customer_account.activate": _("Portal account unblocked"),
    "customer_account.block": _("Portal account blocked"),
    "customer_account.password_reset_request": _("Portal password reset requested"),
    "customer_account.totp_on": _("Portal two-step verification turned on"),
    "customer_account.totp_off": _("Portal two-step verification turned off"),
    "customer_invitation.create": _("Portal invitation sent"),
    "customer_invitation.accept": _("Portal invitation accepted"),
    "customer_invitation.revoke": _("Portal invitation revoked"),
    # invoices, payment requests, balances
    "invoice.create": _("Invoice created"),
    "invoice.update": _("Invoice changed"),
    "invoice.publish": _("Invoice published"),
    "invoice.cancel": _("Invoice cancelled"),
    "invoice.import": _("Invoices imported"),
    "invoice.approve": _("Invoice approved by the customer"),
    "invoice.reject": _("Invoice rejected by the customer"),
    "credit_note.issue": _("Credit note issued"),
    "payment_request.create": _("Payment request created"),
    "balance.create": _("Balance created"),
    "balance.set": _("Balance changed"),
    "balance.request": _("Chosen amount requested"),
    "balance.allocate": _("Payment applied to the balance"),
    "balance.unallocate": _("Payment taken off the balance"),
    # Pay-easy: contracts, 情報リンク, webhooks, teller files
    "contract.add": _("Contracted bank added"),
    "contract.update": _("Contracted bank changed"),
    "handoff_endpoint.create": _("Information link entry added"),
    "handoff_endpoint.update": _("Information link entry changed"),
    "handoff_key.create": _("Information link key created"),
    "handoff_key.retire": _("Information link key retired"),
    "webhook_endpoint.create": _("Webhook endpoint added"),
    "webhook_endpoint.update": _("Webhook endpoint changed"),
    "webhook_endpoint.activate": _("Webhook endpoint turned on"),
    "webhook_endpoint.deactivate": _("Webhook endpoint turned off"),
    "webhook_endpoint.rotate_secret": _("Webhook signing secret renewed"),
    "webhook_endpoint.test": _("Webhook test sent"),
    "webhook_delivery.resend": _("Webhook resent"),
    "teller_file.accepted": _("Teller file accepted"),
    "teller_file.rejected": _("Teller file rejected"),
    # reconciliation
    "finding.match": _("Finding matched to a bill"),
    "finding.refund": _("Refund requested for a finding"),
    "finding.write_off": _("Finding written off"),
    "finding.reopen": _("Finding reopened"),
    "finding.cleared": _("Finding cleared"),
    "finding.found_again": _("Finding found again"),
    "refund_account.create": _("Refund account added"),
    "refund_account.update": _("Refund account changed"),
    "transfer_file.create": _("Transfer file created"),
    "deposit_statement.import": _("Deposit statement imported"),
    "deposit_lag.save": _("Deposit timing saved"),
    "deposit_lag.delete": _("Deposit timing removed"),
}

# What an unknown code's first part is about (its label is then "<subject>: <rest>").
SUBJECT_LABELS: dict[str, Promise] = {
    "biller": _("Biller"),
    "membership": _("Console member"),
    "invitation": _("Console invitation"),
    "user": _("User"),
    "api_key": _("API key"),
    "console": pgettext_lazy("audit subject", "Console"),
    "customer": _("Customer"),
    "customer_account": _("Portal account"),
    "customer_invitation": _("Portal invitation"),
    "invoice": _("Invoice"),
    "credit_note": _("Credit note"),
    "payment_request": _("Payment request"),
    "balance": _("Balance"),
    "contract": _("Contracted bank"),
    "handoff_endpoint": _("Information link entry"),
    "handoff_key": _("Information link key"),
    "webhook_endpoint": _("Webhook endpoint"),
    "webhook_delivery": _("Webhook"),
    "teller_file": _("Teller file"),
    "finding": _("Finding"),
    "refund_account": _("Refund account"),
    "transfer_file": _("Transfer file"),
    "deposit_statement": _("Deposit statement"),
    "deposit_lag": _("Deposit timing"),
}

# Keys of before/after that are not a field of the entry's target.
KEY_LABELS: dict[str, Promise] = {
    "ip": _("IP address"),
    "customer": _("Customer"),
    "expires_at": _("Expires at"),
    "login": _("Login"),
    "via": pgettext_lazy("audit: how a person signed in", "Via"),
    "step": pgettext_lazy("audit: sign-in step", "Step"),
    "left": _("Recovery codes left"),
    "had_second_factor": _("Had two-step verification"),
    "payments": _("Payments"),
    "payment_total": _("Payment total"),
    "reversals": _("Reversals"),
    "reversal_total": _("Reversal total"),
    "count": _("Count"),
    "new": pgettext_lazy("audit: rows imported as new", "New"),
    "unchanged": _("Unchanged"),
    "errors": _("Errors"),
    "error": _("Error"),
    "refunds": _("Refunds"),
    "serial": _("Serial number"),
    "credit": _("Credit"),
    "business_days": _("Business days"),
    "user": _("User"),
    "payment": _("Payment"),
    "reversal": _("Reversal"),
}

# Keys whose meaning is a field of another model than the target (their label and choices come from it).
KEY_FIELDS: dict[str, tuple[type[models.Model], str]] = {
    "decision": (InvoiceApproval, "decision"),  # invoice.approve / invoice.reject: the target is the invoice
}

DATETIME_FORMATS = {"ja": "Y年n月j日 H:i", "en": "N j, Y, H:i"}
DATE_FORMATS = {"ja": "Y年n月j日", "en": "N j, Y"}
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _humanize(text: str) -> str:
    words = text.replace("_", " ").replace(".", " ").strip()
    return words[:1].upper() + words[1:] if words else ""


def action_label(code: str) -> str:
    """The translated label of an action code; an unknown one as "<subject>: <what>", never dotted."""
    label = ACTION_LABELS.get(code)
    if label is not None:
        return str(label)
    subject, _dot, rest = code.partition(".")
    if not rest:
        return _humanize(code) or EMPTY
    known = SUBJECT_LABELS.get(subject)
    return f"{known if known is not None else _humanize(subject)}: {rest.replace('_', ' ').replace('.', ' ')}"


def action_choices() -> list[tuple[str, str]]:
    """Every known action code with its label, sorted by label (a filter's options)."""
    return sorted(((code, str(label)) for code, label in ACTION_LABELS.items()), key=lambda c: c[1])


@lru_cache(maxsize=1)
def _models_by_label() -> dict[str, type[models.Model]]:
    return {model._meta.label: model for model in apps.get_models()}


def target_model(target_type: str) -> type[models.Model] | None:
    """The model an entry's ``target_type`` (``app_label.ModelName``) names, or None."""
    return _models_by_label().get(target_type) if target_type else None


def _field(model: type[models.Model] | None, key: str) -> models.Field | None:
    if key in KEY_FIELDS:
        other, name = KEY_FIELDS[key]
        return other._meta.get_field(name)  # type: ignore[return-value]
    if model is None:
        return None
    try:
        field = model._meta.get_field(key)
    except FieldDoesNotExist:
        return None
    return field if isinstance(field, models.Field) else None


def field_label(model: type[models.Model] | None, key: str) -> str:
    """What a before/after ``key`` is called: the field's verbose name (capitalised), a known extra key's
    label, or the key with spaces."""
    field = _field(model, key)
    name = str(field.verbose_name) if field is not None and field.verbose_name else ""
    if name and (name != key.replace("_", " ") or key not in KEY_LABELS):  # not the name Django made up
        return name[:1].upper() + name[1:]
    if key in KEY_LABELS:
        return str(KEY_LABELS[key])
    return _humanize(key)


def when(value: datetime.datetime | datetime.date | None) -> str:
    """A date and time as people of the current language write it: 2026年4月1日 09:05 / Apr 1, 2026, 09:05
    (the current time zone, to the minute); a date without its time."""
    if value is None:
        return EMPTY
    language = (get_language() or "ja").split("-")[0]
    if isinstance(value, datetime.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return date_format(value, DATETIME_FORMATS.get(language, "DATETIME_FORMAT"))
    return date_format(value, DATE_FORMATS.get(language, "DATE_FORMAT"))


def iso_instant(value: datetime.datetime | None) -> str:
    """A ``<time datetime>`` value: ISO 8601 to the second in the current time zone (no microseconds)."""
    if value is None:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.replace(microsecond=0).isoformat()


def _as_time(text: str) -> datetime.datetime | datetime.date | None:
    if _ISO_DATETIME.match(text):
        try:
            parsed = parse_datetime(text)
        except ValueError:
            return None
        if parsed is not None and timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, datetime.UTC)
        return parsed
    if _ISO_DATE.match(text):
        try:
            return parse_date(text)
        except ValueError:
            return None
    return None


def value_label(model: type[models.Model] | None, key: str, value: Any) -> str:
    """A stored before/after value as text: the choice's label, はい/いいえ, a localized date, or itself."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, list | tuple):
        return ", ".join(value_label(model, key, v) for v in value) if value else EMPTY
    if isinstance(value, dict):
        return ", ".join(
            f"{field_label(None, str(k))}: {value_label(None, str(k), v)}" for k, v in value.items()
        )
    field = _field(model, key)
    if field is not None and field.choices:
        for choice, label in field.flatchoices:
            if str(choice) == str(value):
                return str(label)
    if isinstance(value, str):
        moment = _as_time(value)
        if moment is not None:
            return when(moment)
    return str(value)


def actor_label(entry: AuditEntry) -> str:
    """Who: the login, "System" for the system, "API key <prefix> <name>" for a key."""
    label = entry.actor_label
    if label == "system":
        return gettext("System")
    if label.startswith("api-key:"):
        return gettext("API key %(key)s") % {"key": label.removeprefix("api-key:")}
    return label


def changes(entry: AuditEntry) -> list[tuple[str, str, str]]:
    """(label, before, after) of every key of the entry's before/after, in words."""
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    model = target_model(entry.target_type)
    keys = list(dict.fromkeys([*before, *after]))
    return [
        (
            field_label(model, key),
            value_label(model, key, before[key]) if key in before else EMPTY,
            value_label(model, key, after[key]) if key in after else EMPTY,
        )
        for key in keys
    ]


__all__ = [
    "ACTION_LABELS",
    "KEY_LABELS",
    "action_choices",
    "action_label",
    "actor_label",
    "changes",
    "field_label",
    "iso_instant",
    "target_model",
    "value_label",
    "when",
]
