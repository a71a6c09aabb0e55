"""Settings, one module per concern, composed here. All values come from the environment.

DJANGO_DEBUG=1 turns on development defaults; without it the product refuses to
start until DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS are set.
"""

from config.settings.cache import *  # noqa: F403
from config.settings.core import *  # noqa: F403
from config.settings.database import *  # noqa: F403
from config.settings.email import *  # noqa: F403
from config.settings.env import BASE_DIR, DEBUG, RUN_DIR  # noqa: F401
from config.settings.i18n import *  # noqa: F403
from config.settings.logging import *  # noqa: F403
from config.settings.product import *  # noqa: F403
from config.settings.security import *  # noqa: F403
from config.settings.tasks import *  # noqa: F403
