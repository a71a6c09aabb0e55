"""What ``manage.py prod_check`` verifies before production traffic: the settings, and the PostgreSQL,
Redis and Celery the product will run on, each item OK or FAIL with what to change.

``manage.py check --deploy`` sees settings only. What keeps payments safe also lives in the servers: a
role that bypasses row-level security, a Redis that evicts queued tasks, a database without WAL
archiving, a broker that hands a long task to a second worker while the first still runs it. Each check
here asks the server itself, with the credentials the product runs with (``DATABASE_URL``,
``REDIS_URL``), so what it reports is what the processes will get.

Every item is a failure, never a warning: a production installation is either fit or not. An item this
installation cannot satisfy on purpose (a managed PostgreSQL that hides its standby, say) is *waived*
by name (``--waive ID``, ``PAYEASY_PROD_CHECK_WAIVE``): still printed with its finding, as WAIVED.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from payeasy.prodcheck_items import (
    DEV_MAIL_BACKENDS,
    FAIL,
    HSTS_MIN_SECONDS,
    OK,
    SECRET_KEY_MIN_DISTINCT,
    SECRET_KEY_MIN_LENGTH,
    TOKEN_MIN_DISTINCT,
    TOKEN_MIN_LENGTH,
    WAIVE_SETTING,
    WAIVED,
    Item,
    each,
    fail,
    ok,
    strength,
)
from payeasy.prodcheck_servers import celery_items, postgres_items, redis_items

# --- Django's deployment checks ------------------------------------------------------------------------


def django_deploy_items() -> list[Item]:
    """``manage.py check --deploy --fail-level WARNING``: every warning or error of Django's deployment
    checks and the product's own (payeasy.W…, security.W… of Django 6.1) is one failed item."""
    from django.core import checks

    try:
        messages = checks.run_checks(include_deployment_checks=True, databases=["default"])
    except Exception as exc:  # a database check that cannot connect: reported by postgres.connect too
        return [fail("django.check_deploy", f"the checks did not run: {exc}", "see postgres.connect")]
    failing = [m for m in messages if m.level >= checks.WARNING and not m.is_silenced()]
    if not failing:
        return [ok("django.check_deploy", "manage.py check --deploy: no warnings, no errors")]
    return [
        fail(f"django.{m.id}", str(m.msg), str(m.hint or "see the Django deployment checklist"))
        for m in failing
    ]


# --- security settings ---------------------------------------------------------------------------------


def security_items() -> list[Item]:
    return each(
        "security",
        (
            _debug,
            _secret_key,
            _allowed_hosts,
            _https,
            _tls_proxy,
            _handoff_kek,
            _outbound,
            _sandbox,
            _commserver_tls,
            _metrics_token,
            _mail,
            _portal_base_url,
        ),
    )


def _debug() -> Item:
    if settings.DEBUG:
        return fail("security.debug", "DEBUG is on", "unset DJANGO_DEBUG: it is for development only")
    return ok("security.debug", "DEBUG is off")


def _secret_key() -> Item:
    weak = []
    for name, key in [("SECRET_KEY", settings.SECRET_KEY)] + [
        (f"SECRET_KEY_FALLBACKS[{i}]", k) for i, k in enumerate(getattr(settings, "SECRET_KEY_FALLBACKS", []))
    ]:
        length, distinct = strength(str(key))
        if (
            length < SECRET_KEY_MIN_LENGTH
            or distinct < SECRET_KEY_MIN_DISTINCT
            or str(key).startswith(("django-insecure", "dev-only-insecure"))
        ):
            weak.append(f"{name} ({length} characters, {distinct} different)")
    if weak:
        return fail(
            "security.secret_key",
            "weak: " + ", ".join(weak),
            f"set DJANGO_SECRET_KEY to at least {SECRET_KEY_MIN_LENGTH} random characters: "
            "python -c 'import secrets; print(secrets.token_urlsafe(64))'",
        )
    return ok("security.secret_key", f"set, {len(settings.SECRET_KEY)} characters")


def _allowed_hosts() -> Item:
    hosts = list(settings.ALLOWED_HOSTS)
    if not hosts or "*" in hosts:
        return fail(
            "security.allowed_hosts",
            f"ALLOWED_HOSTS = {hosts!r}",
            "set DJANGO_ALLOWED_HOSTS to the portal's host names (and .<PORTAL_DOMAIN>), never '*'",
        )
    return ok("security.allowed_hosts", ", ".join(hosts))


def _https() -> Item:
    problems = []
    if not getattr(settings, "SECURE_SSL_REDIRECT", False):
        problems.append("SECURE_SSL_REDIRECT is off (DJANGO_SECURE_SSL_REDIRECT)")
    if not getattr(settings, "SESSION_COOKIE_SECURE", False):
        problems.append("SESSION_COOKIE_SECURE is off")
    if not getattr(settings, "CSRF_COOKIE_SECURE", False):
        problems.append("CSRF_COOKIE_SECURE is off")
    hsts = int(getattr(settings, "SECURE_HSTS_SECONDS", 0) or 0)
    if hsts < HSTS_MIN_SECONDS:
        problems.append(f"SECURE_HSTS_SECONDS is {hsts} (DJANGO_SECURE_HSTS_SECONDS), under a year")
    plain = [o for o in getattr(settings, "CSRF_TRUSTED_ORIGINS", []) if not o.startswith("https://")]
    if plain:
        problems.append(f"CSRF_TRUSTED_ORIGINS has non-https origins: {', '.join(plain)}")
    if problems:
        return fail(
            "security.https",
            "; ".join(problems),
            "production settings are strict by default: unset the DJANGO_SECURE_* overrides",
        )
    return ok("security.https", f"HTTPS redirect, secure cookies, HSTS {hsts} s")


def _wildcard_binds(binds: Iterable[str]) -> list[str]:
    found = []
    for bind in binds:
        if bind.startswith(("unix:", "fd://")):
            continue
        host = bind.rpartition(":")[0].strip("[]")
        if host in ("", "0.0.0.0", "::"):  # noqa: S104 - looked for, not bound
            found.append(bind)
    return found


def _tls_proxy() -> Item:
    """HTTPS is judged by X-Forwarded-Proto only when a proxy in front sets it: then nobody may reach
    gunicorn past the proxy. Without the proxy, gunicorn must terminate TLS itself."""
    binds = [b.strip() for b in os.environ.get("WEB_BIND", "127.0.0.1:8000").split(",") if b.strip()]
    header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if header:
        wild = _wildcard_binds(binds)
        if wild:
            return fail(
                "security.tls_proxy",
                f"X-Forwarded-Proto from the proxy is trusted, and gunicorn listens on every interface "
                f"({', '.join(wild)}): a client reaching it directly can claim HTTPS",
                "bind gunicorn to the loopback, a unix socket or the proxy-facing address (WEB_BIND)",
            )
        return ok("security.tls_proxy", f"TLS ends at the proxy; gunicorn listens on {', '.join(binds)}")
    if "--certfile" in os.environ.get("GUNICORN_CMD_ARGS", ""):
        return ok("security.tls_proxy", "gunicorn terminates TLS itself (GUNICORN_CMD_ARGS --certfile)")
    return fail(
        "security.tls_proxy",
        "DJANGO_BEHIND_TLS_PROXY is off and gunicorn has no certificate: every request arrives as plain "
        "HTTP and is redirected to HTTPS for ever",
        "put the TLS-terminating proxy in front (DJANGO_BEHIND_TLS_PROXY=1, the default), or give "
        "gunicorn --certfile/--keyfile in GUNICORN_CMD_ARGS",
    )


def _handoff_kek() -> Item:
    from payeasy import keywrap

    entries = [e.strip() for e in (settings.PAYEASY_HANDOFF_KEK or "").split(",") if e.strip()]
    fix = (
        "set PAYEASY_HANDOFF_KEK to a key of its own (python -c 'import secrets; "
        "print(secrets.token_hex(32))'), then run manage.py rewrap_secrets (docs/operators.md)"
    )
    if not entries:
        return fail(
            "payeasy.handoff_kek",
            "PAYEASY_HANDOFF_KEK is not set: the stored secrets are wrapped under a key derived from "
            "DJANGO_SECRET_KEY, and rotating that key would make them unreadable",
            fix,
        )
    try:
        keywrap.keks()
    except ImproperlyConfigured as exc:
        return fail("payeasy.handoff_kek", str(exc), fix)
    if entries[0] == keywrap.DERIVED:
        return fail("payeasy.handoff_kek", "the first key is the one derived from DJANGO_SECRET_KEY", fix)
    return ok("payeasy.handoff_kek", f"{len(entries)} key(s), the first one a key of its own")


def _outbound() -> Item:
    problems = []
    if settings.PAYEASY_WEBHOOK_ALLOW_PRIVATE:
        problems.append("PAYEASY_WEBHOOK_ALLOW_PRIVATE is on (webhooks may reach this machine's network)")
    if not settings.PAYEASY_WEBHOOK_REQUIRE_HTTPS:
        problems.append("PAYEASY_WEBHOOK_REQUIRE_HTTPS is off")
    if not settings.PAYEASY_HANDOFF_REQUIRE_HTTPS:
        problems.append("PAYEASY_HANDOFF_REQUIRE_HTTPS is off")
    if problems:
        return fail("payeasy.outbound", "; ".join(problems), "unset these variables (production defaults)")
    return ok("payeasy.outbound", "webhooks and hand-offs: https:// only, public addresses only")


def _sandbox() -> Item:
    if settings.PAYEASY_DEMO or settings.PAYEASY_SANDBOX_BANK:
        return fail(
            "payeasy.sandbox",
            "the sandbox bank is mounted (PAYEASY_DEMO / PAYEASY_SANDBOX_BANK): anyone can pay any "
            "invoice without money",
            "unset PAYEASY_DEMO and PAYEASY_SANDBOX_BANK",
        )
    return ok("payeasy.sandbox", "no sandbox bank, not a demo installation")


def _commserver_tls() -> Item:
    """What ``manage.py commserver`` checks at start (without ``--insecure-plaintext``)."""
    from payeasy.peers import policy_from_settings

    try:
        policy = policy_from_settings()
    except ImproperlyConfigured as exc:
        return fail("commserver.tls", str(exc), "see docs/line.md: mutual TLS on the line")
    if policy.tls is None:
        return fail("commserver.tls", "the line would be plain TCP", "set the COMMSERVER_TLS_* settings")
    sources = ", ".join(str(n) for n in policy.sources) or "any source address"
    return ok("commserver.tls", f"mutual TLS, {len(policy.centres)} client subject(s), from {sources}")


def _metrics_token() -> Item:
    token = settings.PAYEASY_METRICS_TOKEN
    if not token:
        return ok("payeasy.metrics_token", "not set: /metrics is off")
    length, distinct = strength(token)
    if length < TOKEN_MIN_LENGTH or distinct < TOKEN_MIN_DISTINCT:
        return fail(
            "payeasy.metrics_token",
            f"PAYEASY_METRICS_TOKEN is weak ({length} characters, {distinct} different)",
            f"at least {TOKEN_MIN_LENGTH} random characters: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'",
        )
    return ok("payeasy.metrics_token", f"set, {length} characters")


def _mail() -> Item:
    mailer: dict[str, Any] = dict(settings.MAILERS["default"])
    backend = str(mailer.get("BACKEND", ""))
    options: dict[str, Any] = dict(mailer.get("OPTIONS") or {})
    problems = []
    if backend in DEV_MAIL_BACKENDS:
        problems.append(f"the mail backend is {backend}: nobody receives the e-mails")
    if (
        backend.endswith("smtp.EmailBackend")
        and options.get("password")
        and not (options.get("use_tls") or options.get("use_ssl"))
    ):
        problems.append("SMTP with a password but without TLS (DJANGO_EMAIL_USE_TLS): it crosses in clear")
    sender = str(settings.DEFAULT_FROM_EMAIL)
    if sender.rstrip(">").endswith("@localhost"):
        problems.append(f"DEFAULT_FROM_EMAIL is {sender}: receiving servers refuse it")
    if problems:
        return fail(
            "mail.backend",
            "; ".join(problems),
            "DJANGO_EMAIL_BACKEND=smtp with DJANGO_EMAIL_HOST, DJANGO_EMAIL_USE_TLS=1 and "
            "DJANGO_DEFAULT_FROM_EMAIL of the portal's domain",
        )
    return ok("mail.backend", f"{backend.rsplit('.', 2)[-2]} to {options.get('host', '-')}, from {sender}")


def _portal_base_url() -> Item:
    from django.http.request import validate_host

    url = settings.PORTAL_BASE_URL
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return fail(
            "portal.base_url",
            f"PORTAL_BASE_URL is {url!r}: links in e-mails and on PDFs would not be https://",
            "set PORTAL_BASE_URL=https://<the portal's host>",
        )
    if not validate_host(parts.hostname, settings.ALLOWED_HOSTS):
        return fail(
            "portal.base_url",
            f"the host of PORTAL_BASE_URL ({parts.hostname}) is not in ALLOWED_HOSTS: its links answer 400",
            "add it to DJANGO_ALLOWED_HOSTS",
        )
    return ok("portal.base_url", url)


# --- all of it ---------------------------------------------------------------------------------------------

SECTIONS: tuple[tuple[str, Callable[[], list[Item]]], ...] = (
    ("django", django_deploy_items),
    ("security", security_items),
    ("postgres", postgres_items),
    ("redis", redis_items),
    ("celery", celery_items),
)


def run(waive: Iterable[str] = ()) -> list[Item]:
    """Every item, in order; an item named in ``waive`` that fails is WAIVED. A section that breaks
    is one failed item naming the error, never a traceback that hides the other sections."""
    waived = {w.strip() for w in waive if w.strip()}
    items: list[Item] = []
    for section, check in SECTIONS:
        try:
            items += check()
        except Exception as exc:
            items.append(fail(f"{section}.error", f"{type(exc).__name__}: {exc}", "see the error"))
    for item in items:
        item.waived = not item.ok and item.id in waived
    return items


def waivers_from_environment() -> list[str]:
    return [w.strip() for w in os.environ.get("PAYEASY_PROD_CHECK_WAIVE", "").split(",") if w.strip()]


__all__ = ["FAIL", "OK", "WAIVED", "WAIVE_SETTING", "Item", "run", "waivers_from_environment"]
