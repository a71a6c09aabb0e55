"""Japanese first, English second. Times are stored in UTC and shown in JST."""

from django.utils.translation import gettext_lazy as _

from config.settings.env import BASE_DIR

LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "config" / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True
