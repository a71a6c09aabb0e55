from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PayeasyConfig(AppConfig):
    name = "payeasy"
    verbose_name = _("Pay-easy")
