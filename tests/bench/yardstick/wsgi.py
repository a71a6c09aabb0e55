"""The yardstick's WSGI application (``gunicorn -c config/gunicorn.conf.py tests.bench.yardstick.wsgi``)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.bench.yardstick.settings")
application = get_wsgi_application()
