"""Settings of the product itself: tenant hosts, invitations, imports, the communication server."""

import re

from django.core.exceptions import ImproperlyConfigured

from config.settings.env import DEBUG, RUN_DIR, env_bool, env_int, env_list, env_str

# Where `make run` serves the site in development: config/Procfile runs `runserver ${WEB_ADDR:-…}` with
# this default. The forms runserver takes: PORT, HOST:PORT or [IPv6]:PORT.
DEFAULT_WEB_ADDR = "127.0.0.1:8000"
_WEB_ADDR = re.compile(
    r"^(?:(?P<host>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*):)?(?P<port>\d{1,5})$"
)
# An address that listens everywhere is browsed at this machine's loopback.
_LISTEN_ALL = {"0": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}  # noqa: S104 - mapped away


def web_base_url(web_addr: str) -> str:
    """``http://host:port`` of the development server listening on ``web_addr`` (runserver's address,
    WEB_ADDR); an address that listens on every interface gives the loopback address."""
    found = _WEB_ADDR.match(web_addr.strip())
    port = int(found["port"]) if found else 0
    if found is None or not 0 < port < 65536:
        raise ImproperlyConfigured(
            f"WEB_ADDR must be PORT, HOST:PORT or [IPv6]:PORT as runserver takes it (e.g. 127.0.0.1:8100), "
            f"not {web_addr!r}"
        )
    host = found["host"] or "127.0.0.1"
    return f"http://{_LISTEN_ALL.get(host, host)}:{port}"


# Tenants are reached at <slug>.<PORTAL_DOMAIN> or at /b/<slug>/ on any host.
PORTAL_DOMAIN = (env_str("PORTAL_DOMAIN") or ("localhost" if DEBUG else "")).lower()
# The one base of every absolute link the product prints (scheme://host[:port]): in e-mails (invitations,
# pay-later links, password resets), on the PDF (the registration URL), in `demo_info`'s banner and in
# the API's and console's pay-later links. Production sets it; in development (DJANGO_DEBUG=1) it follows
# WEB_ADDR, the address `make run` serves on (http://127.0.0.1:8000 without it).
PORTAL_BASE_URL = (env_str("PORTAL_BASE_URL") or "").rstrip("/") or (
    web_base_url(env_str("WEB_ADDR") or DEFAULT_WEB_ADDR) if DEBUG else ""
)
INVITATION_TTL_HOURS = env_int("INVITATION_TTL_HOURS", 72)
# The events service (ASGI): how many event streams may be opening at once in one process, each with a
# database connection until its first status is sent (payeasy.live_admission).
EVENTS_OPENING_LIMIT = max(1, env_int("EVENTS_OPENING_LIMIT", 32))

# The customer portal (billing.portal). Invitation links for customers live longer than console ones:
# one comes with a bill that may be read days later.
PORTAL_INVITATION_TTL_HOURS = env_int("PORTAL_INVITATION_TTL_HOURS", 14 * 24)
# Login lockout: this many failures for one login at one biller within the window lock that login;
# this many failures from one client address (any login, any biller) lock the address.
PORTAL_LOGIN_MAX_FAILURES = env_int("PORTAL_LOGIN_MAX_FAILURES", 5)
PORTAL_LOGIN_MAX_FAILURES_PER_IP = env_int("PORTAL_LOGIN_MAX_FAILURES_PER_IP", 30)
PORTAL_LOGIN_WINDOW_SECONDS = env_int("PORTAL_LOGIN_WINDOW_SECONDS", 15 * 60)
# The client address is REMOTE_ADDR. Only when REMOTE_ADDR is one of these proxies (addresses or
# networks, comma-separated) is X-Forwarded-For read, from the right, skipping these proxies.
PORTAL_TRUSTED_PROXIES = env_list("PORTAL_TRUSTED_PROXIES", [])
# The console and the Django admin (iDC staff, tenant admins and operators; billing.two_factor): the same
# lockout, counted apart from the portal's. PORTAL_TRUSTED_PROXIES applies to it as well.
CONSOLE_LOGIN_MAX_FAILURES = env_int("CONSOLE_LOGIN_MAX_FAILURES", 5)
CONSOLE_LOGIN_MAX_FAILURES_PER_IP = env_int("CONSOLE_LOGIN_MAX_FAILURES_PER_IP", 20)
CONSOLE_LOGIN_WINDOW_SECONDS = env_int("CONSOLE_LOGIN_WINDOW_SECONDS", 15 * 60)

# Uploaded CSV files wait here between preview and import.
IMPORT_DIR = env_str("PAYEASY_IMPORT_DIR") or str(RUN_DIR / "imports")
IMPORT_MAX_BYTES = env_int("PAYEASY_IMPORT_MAX_BYTES", 512 * 1024 * 1024)

# The communication server (manage.py commserver): where the MPN side connects. `make run` starts it and
# `make pay` (the MPN simulator) and the sandbox bank connect to it on this port: set COMMSERVER_PORT for
# both terminals to run it elsewhere.
COMMSERVER_HOST = env_str("COMMSERVER_HOST") or "127.0.0.1"
COMMSERVER_PORT = env_int("COMMSERVER_PORT", 7700)
# Frames committed together at most (one transaction, one fsync for all of them).
COMMSERVER_BATCH = env_int("COMMSERVER_BATCH", 256)
# Mutual TLS on the line (spec §1, payeasy.peers, docs/line.md): absolute paths to the server certificate
# chain, its key and the CA bundle that signs the MPN side's client certificates. Production refuses to
# start the commserver without them (or --insecure-plaintext); under DEBUG, none set means plain TCP.
COMMSERVER_TLS_CERT = env_str("COMMSERVER_TLS_CERT") or ""
COMMSERVER_TLS_KEY = env_str("COMMSERVER_TLS_KEY") or ""
COMMSERVER_TLS_CLIENT_CA = env_str("COMMSERVER_TLS_CLIENT_CA") or ""
# Client certificate subject → the sending-centre codes (H2) it may send, required with TLS:
# "CN=mpn-centre-1,O=MPN,C=JP:MPNC000001,MPNC000002;CN=mpn-dr,O=MPN,C=JP:MPNC000001".
COMMSERVER_PEERS = env_str("COMMSERVER_PEERS") or ""
# Addresses or networks the MPN side may connect from, comma-separated; empty: any.
COMMSERVER_ALLOWED_SOURCES = env_list("COMMSERVER_ALLOWED_SOURCES", [])
# Active/standby (payeasy.line_lock): several commservers may run for one line (two hosts behind a VIP, or
# the MPN side's list of addresses); only the holder of the line lock listens, the others stand by and
# try the lock every COMMSERVER_LOCK_RETRY_SECONDS. The lock is PostgreSQL's session advisory lock
# COMMSERVER_LOCK_KEY (a bigint, one per line; the beat's is PAYEASY_BEAT_LOCK_KEY), or on SQLite a
# flock() on a file in COMMSERVER_LOCK_DIR. A holder whose lock session broke answers 9001 while it tries
# to take the lock again, for COMMSERVER_LOCK_GRACE_SECONDS at most, then stops listening. A commserver
# on --port 0 (an ephemeral port: tests, benchmarks) takes no lock.
COMMSERVER_LOCK_KEY = env_int("COMMSERVER_LOCK_KEY", 0x7061796561736C6E)
COMMSERVER_LOCK_RETRY_SECONDS = float(env_str("COMMSERVER_LOCK_RETRY_SECONDS") or 1.0)
COMMSERVER_LOCK_GRACE_SECONDS = float(env_str("COMMSERVER_LOCK_GRACE_SECONDS") or 5.0)
COMMSERVER_LOCK_DIR = env_str("COMMSERVER_LOCK_DIR") or str(RUN_DIR)
# Each commserver's heartbeat row (payeasy.models.LineNode, the operations page): its name (default
# "<host name>:<pid>") and how often the row is written.
COMMSERVER_NODE_NAME = env_str("COMMSERVER_NODE_NAME") or ""
COMMSERVER_HEARTBEAT_SECONDS = float(env_str("COMMSERVER_HEARTBEAT_SECONDS") or 5.0)
# The commserver's own Prometheus endpoint (ack latency, frames by type and code, role), HOST:PORT, e.g.
# 127.0.0.1:9108; empty: off. It asks for PAYEASY_METRICS_TOKEN as /metrics does, when that is set.
COMMSERVER_METRICS_ADDR = env_str("COMMSERVER_METRICS_ADDR") or ""
# The client side of the line for the MPN simulator, the sandbox bank and the benchmarks: with a CA (the
# one that signed the commserver's certificate) they speak TLS, presenting this client certificate/key.
MPN_SIMULATOR_TLS_CA = env_str("MPN_SIMULATOR_TLS_CA") or ""
MPN_SIMULATOR_TLS_CERT = env_str("MPN_SIMULATOR_TLS_CERT") or ""
MPN_SIMULATOR_TLS_KEY = env_str("MPN_SIMULATOR_TLS_KEY") or ""
# A notice not applied this long after it arrived is applied by the sweeper, which beat runs this often.
PAYEASY_SWEEP_AFTER_SECONDS = env_int("PAYEASY_SWEEP_AFTER_SECONDS", 30)
PAYEASY_SWEEP_EVERY_SECONDS = env_int("PAYEASY_SWEEP_EVERY_SECONDS", 10)
# Teller batch files dropped into <dir>/incoming are imported by beat every PAYEASY_TELLER_DROP_EVERY
# seconds and moved to <dir>/accepted or <dir>/rejected (with a .error.txt report). "" turns it off.
PAYEASY_TELLER_DROP_DIR = env_str("PAYEASY_TELLER_DROP_DIR", str(RUN_DIR / "teller-drop"))
PAYEASY_TELLER_DROP_EVERY = env_int("PAYEASY_TELLER_DROP_EVERY", 30)

# Outbound webhooks (payeasy.services.webhooks, payeasy.outbound). Production sends to https:// URLs
# only, and only to public internet addresses. PAYEASY_WEBHOOK_ALLOW_PRIVATE (on under DEBUG only) also
# lets loopback and private addresses through, for a receiver on this machine; `check --deploy` warns
# when it is on with production settings. Link-local (cloud metadata) stays refused either way.
PAYEASY_WEBHOOK_REQUIRE_HTTPS = env_bool("PAYEASY_WEBHOOK_REQUIRE_HTTPS", not DEBUG)
PAYEASY_WEBHOOK_ALLOW_PRIVATE = env_bool("PAYEASY_WEBHOOK_ALLOW_PRIVATE", DEBUG)

# 情報リンク hand-off (payeasy.handoff, docs/handoff.md). The banks' AES keys are stored encrypted with a
# key-encryption key (payeasy.keywrap, which also wraps the webhook signing secrets): PAYEASY_HANDOFF_KEK,
# one or more keys (32 bytes as base64url or 64 hex digits) comma-separated, the one that wraps first,
# the others read only while `manage.py rewrap_secrets` moves everything to the first; or when empty
# one derived from DJANGO_SECRET_KEY (keys wrapped under an old secret listed in SECRET_KEY_FALLBACKS
# still open; `secret-key` in the list stands for these). Production entry URLs are https:// only.
PAYEASY_HANDOFF_KEK = env_str("PAYEASY_HANDOFF_KEK") or ""
PAYEASY_HANDOFF_REQUIRE_HTTPS = env_bool("PAYEASY_HANDOFF_REQUIRE_HTTPS", not DEBUG)

# The sandbox bank (/sandbox-bank/: plays a bank's internet banking and ATM against the commserver). On
# in development and in a demo installation (PAYEASY_DEMO=1), never in production: turning it on
# without either refuses to start. Its bank code is a real one from the 全銀 master.
PAYEASY_DEMO = env_bool("PAYEASY_DEMO", False)
PAYEASY_SANDBOX_BANK = env_bool("PAYEASY_SANDBOX_BANK", DEBUG or PAYEASY_DEMO)
if PAYEASY_SANDBOX_BANK and not (DEBUG or PAYEASY_DEMO):
    raise ImproperlyConfigured(
        "PAYEASY_SANDBOX_BANK is for development (DJANGO_DEBUG=1) and demo installations (PAYEASY_DEMO=1)"
    )
PAYEASY_SANDBOX_BANK_CODE = env_str("PAYEASY_SANDBOX_BANK_CODE") or "0033"

# Banks' logos in the 情報リンク bank chooser (payeasy.banks.bank_logo_url), for banks that allow theirs to be
# shown: "0001=payeasy/banks/0001.svg,0005=https://cdn.example.jp/mufg.svg" (a path under STATIC_URL or a
# URL; a URL's origin must also be in the Content-Security-Policy's img-src). A bank without one shows a
# monogram.
PAYEASY_BANK_LOGOS: dict[str, str] = {}
for _item in env_list("PAYEASY_BANK_LOGOS", []):
    _code, _sep, _logo = _item.partition("=")
    if not (_sep and _code.strip().isdigit() and len(_code.strip()) == 4 and _logo.strip()):
        raise ImproperlyConfigured(
            f"PAYEASY_BANK_LOGOS must be CODE=LOGO pairs separated by commas (0001=payeasy/banks/0001.svg), "
            f"not {_item!r}"
        )
    PAYEASY_BANK_LOGOS[_code.strip()] = _logo.strip()

# Prometheus metrics at /metrics (payeasy.metrics), for a scraper sending "Authorization: Bearer <token>";
# empty: the endpoint is off (404). Under gunicorn set PROMETHEUS_MULTIPROC_DIR too (docs/operators.md).
PAYEASY_METRICS_TOKEN = env_str("PAYEASY_METRICS_TOKEN") or ""
