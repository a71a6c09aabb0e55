"""Reconciliation's part of /metrics (``payeasy.metrics.register_part``): open findings by kind."""

from __future__ import annotations

import datetime

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from reconciliation.models import Finding


def finding_metrics(now: datetime.datetime) -> list[Metric]:
    """Open reconciliation findings by kind, every kind present (0 when none), one aggregate query."""
    counts = dict(
        Finding.objects.filter(state=Finding.State.OPEN)
        .values("kind")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("kind", "n")
    )
    family = GaugeMetricFamily(
        "payeasy_reconciliation_findings_open", "Open reconciliation findings, by kind.", labels=["kind"]
    )
    for kind in Finding.Kind.values:
        family.add_metric([kind], counts.get(kind, 0))
    return [family]
