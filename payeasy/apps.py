from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PayeasyConfig(AppConfig):
    name = "payeasy"
    verbose_name = _("Pay-easy")

    def ready(self) -> None:
        from payeasy import checks  # noqa: F401  (registers the system checks)
        from payeasy.sandbox import checks as sandbox_checks  # noqa: F401
