"""ASGI entry point: the event-stream service (``payeasy-events.service``), behind the opening limit of
``payeasy.live_admission`` (``EVENTS_OPENING_LIMIT``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (after Django is set up)

from payeasy.live_admission import OpeningLimit  # noqa: E402

application = OpeningLimit(django_application, settings.EVENTS_OPENING_LIMIT)
