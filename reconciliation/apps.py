from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    verbose_name = _("Reconciliation")

    def ready(self) -> None:
        # open findings by kind in /metrics (payeasy may not import reconciliation: it offers the hook)
        from payeasy.metrics import register_part
        from reconciliation.metrics import finding_metrics

        register_part(finding_metrics)
        # and the findings an operator must act on among the operations view's alerts
        from payeasy.alerts import register_rule
        from reconciliation.alerts import finding_alerts

        register_rule(finding_alerts)
