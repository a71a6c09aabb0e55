"""Reconciliation's rule of the operator alerts (``payeasy.alerts.register_rule``): open findings.

Critical when the money itself differs — the centre's counters, a bank's teller file or its deposits
disagree with the line, the ledger disagrees with the bills, or a reversal names a payment nobody has:
until someone explains it, a yen is unaccounted for. A warning for the findings whose money is counted
and that only wait for a person (provisional payments to match, double payments to refund, late payments
to accept or refund).
"""

from __future__ import annotations

import datetime

from django.db.models import Count, Min, Q, Sum
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing.templatetags.humanize_yen import yen
from payeasy.alerts import CRITICAL, WARNING, Alert
from payeasy.templatetags.operations import duration
from reconciliation.models import Finding

MONEY_DIFFERS = (
    Finding.Kind.COUNTER_MISMATCH,
    Finding.Kind.BATCH_LINE_MISMATCH,
    Finding.Kind.DEPOSIT_SHORTFALL,
    Finding.Kind.DEPOSIT_EXCESS,
    Finding.Kind.LEDGER_INCONSISTENCY,
    Finding.Kind.UNKNOWN_REVERSAL,
)


def finding_alerts(now: datetime.datetime) -> list[Alert]:
    """Open findings: ``reconciliation_money_differs`` (critical) and ``reconciliation_findings_open``
    (warning). One aggregate on index finding_open_age (state first)."""
    differs = Q(kind__in=MONEY_DIFFERS)
    row = (
        Finding.objects.cross_tenant("health")
        .filter(state=Finding.State.OPEN)
        .aggregate(
            differs=Count("id", filter=differs),
            differs_amount=Sum("amount", filter=differs),
            differs_first=Min("found_at", filter=differs),
            others=Count("id", filter=~differs),
            others_amount=Sum("amount", filter=~differs),
            others_first=Min("found_at", filter=~differs),
        )
    )
    link, link_text = reverse("staff_reconciliation:summary"), _("Reconciliation summary")
    alerts = []
    if row["differs"]:
        alerts.append(
            Alert(
                key="reconciliation_money_differs",
                severity=CRITICAL,
                title=_("Reconciliation: the money does not add up"),
                detail=ngettext(
                    "%(count)s open finding where the amounts differ (counters, teller files, deposits, "
                    "ledger or an unknown reversal): %(amount)s at stake; the oldest found %(age)s ago.",
                    "%(count)s open findings where the amounts differ (counters, teller files, deposits, "
                    "ledger or an unknown reversal): %(amount)s at stake; the oldest found %(age)s ago.",
                    row["differs"],
                )
                % {
                    "count": f"{row['differs']:,}",
                    "amount": yen(row["differs_amount"] or 0),
                    "age": duration(int((now - row["differs_first"]).total_seconds())),
                },
                action=_(
                    "Open the reconciliation summary, then the biller's findings, oldest first. A counter "
                    "mismatch often clears when the centre resends (1700); otherwise compare with the "
                    "centre, the bank's teller file or its deposit statement before resolving. Never "
                    "edit the ledger."
                ),
                since=row["differs_first"],
                link=link,
                link_text=link_text,
            )
        )
    if row["others"]:
        alerts.append(
            Alert(
                key="reconciliation_findings_open",
                severity=WARNING,
                title=_("Reconciliation findings wait for a person"),
                detail=ngettext(
                    "%(count)s open finding (provisional, double or late payment): %(amount)s; the oldest "
                    "found %(age)s ago.",
                    "%(count)s open findings (provisional, double or late payments): %(amount)s; the oldest "
                    "found %(age)s ago.",
                    row["others"],
                )
                % {
                    "count": f"{row['others']:,}",
                    "amount": yen(row["others_amount"] or 0),
                    "age": duration(int((now - row["others_first"]).total_seconds())),
                },
                action=_(
                    "The billers' staff resolve these in their console (match to a bill, refund, write "
                    "off). Remind the billers with the oldest findings."
                ),
                since=row["others_first"],
                link=link,
                link_text=link_text,
            )
        )
    return alerts
