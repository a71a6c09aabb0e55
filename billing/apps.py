from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self) -> None:
        # the biller cache's and the console login's signals
        from billing import tenancy, two_factor  # noqa: F401
