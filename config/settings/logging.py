"""Logging to standard error, which the process manager collects: JSON lines (config/logs.py) unless
LOG_FORMAT=plain, plain text by default under DEBUG. LOG_FILE adds JSON lines in a file of each process's
own (``{pid}`` and ``{role}`` in the path are replaced): the test suite's log scan reads them."""

from config.logs import logging_config
from config.settings.env import DEBUG, env_str

LOGGING = logging_config(
    debug=DEBUG,
    log_format=env_str("LOG_FORMAT"),
    log_file=env_str("LOG_FILE") or None,
    level=env_str("DJANGO_LOG_LEVEL", "INFO") or "INFO",
)
