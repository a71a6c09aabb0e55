"""Outgoing e-mail through Django 6.1's MAILERS.

Development prints messages readably on the console of the process that sends
them (the worker, for invitations): decoded headers and text, links one per
line, attachments by name and size (billing.dev_mail). DJANGO_EMAIL_BACKEND=console
prints the raw MIME instead; =file with DJANGO_EMAIL_FILE_PATH writes them to
files; production uses SMTP.
"""

from typing import Any

from config.settings.env import DEBUG, env_bool, env_int, env_str

_BACKENDS = {
    "readable": "billing.dev_mail.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
}

_kind = env_str("DJANGO_EMAIL_BACKEND") or ("readable" if DEBUG else "smtp")
_options: dict[str, Any] = {}
if _kind == "file":
    _options = {"file_path": env_str("DJANGO_EMAIL_FILE_PATH")}
elif _kind == "smtp":
    _options = {
        "host": env_str("DJANGO_EMAIL_HOST", "localhost"),
        "port": env_int("DJANGO_EMAIL_PORT", 25),
        "username": env_str("DJANGO_EMAIL_HOST_USER", ""),
        "password": env_str("DJANGO_EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("DJANGO_EMAIL_USE_TLS", False),
        "timeout": env_int("DJANGO_EMAIL_TIMEOUT", 20),
    }

MAILERS = {"default": {"BACKEND": _BACKENDS.get(_kind, _kind), "OPTIONS": _options}}
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "Pay-easy portal <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
