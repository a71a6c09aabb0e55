"""Settings of the product itself: tenant hosts, invitations, imports, the communication server."""

from config.settings.env import DEBUG, RUN_DIR, env_bool, env_int, env_str

# Tenants are reached at <slug>.<PORTAL_DOMAIN> or at /b/<slug>/ on any host.
PORTAL_DOMAIN = (env_str("PORTAL_DOMAIN") or ("localhost" if DEBUG else "")).lower()
# The address printed in e-mails for links (scheme://host[:port]).
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL") or ("http://127.0.0.1:8000" if DEBUG else "")
INVITATION_TTL_HOURS = env_int("INVITATION_TTL_HOURS", 72)

# Uploaded CSV files wait here between preview and import.
IMPORT_DIR = env_str("PAYEASY_IMPORT_DIR") or str(RUN_DIR / "imports")
IMPORT_MAX_BYTES = env_int("PAYEASY_IMPORT_MAX_BYTES", 512 * 1024 * 1024)

# The communication server (manage.py commserver): where the MPN side connects.
COMMSERVER_HOST = env_str("COMMSERVER_HOST") or "127.0.0.1"
COMMSERVER_PORT = env_int("COMMSERVER_PORT", 7700)
# Frames committed together at most (one transaction, one fsync for all of them).
COMMSERVER_BATCH = env_int("COMMSERVER_BATCH", 256)
# A notice not applied this long after it arrived is applied by the sweeper, which beat runs this often.
PAYEASY_SWEEP_AFTER_SECONDS = env_int("PAYEASY_SWEEP_AFTER_SECONDS", 30)
PAYEASY_SWEEP_EVERY_SECONDS = env_int("PAYEASY_SWEEP_EVERY_SECONDS", 10)
# Teller batch files dropped into <dir>/incoming are imported by beat every PAYEASY_TELLER_DROP_EVERY
# seconds and moved to <dir>/accepted or <dir>/rejected (with a .error.txt report). "" turns it off.
PAYEASY_TELLER_DROP_DIR = env_str("PAYEASY_TELLER_DROP_DIR", str(RUN_DIR / "teller-drop"))
PAYEASY_TELLER_DROP_EVERY = env_int("PAYEASY_TELLER_DROP_EVERY", 30)

# Outbound webhooks (payeasy.services.webhooks). Production sends to https:// URLs only, and never to
# this machine or a link-local address (169.254.0.0/16 holds cloud metadata services); development may.
PAYEASY_WEBHOOK_REQUIRE_HTTPS = env_bool("PAYEASY_WEBHOOK_REQUIRE_HTTPS", not DEBUG)
PAYEASY_WEBHOOK_ALLOW_LOOPBACK = env_bool("PAYEASY_WEBHOOK_ALLOW_LOOPBACK", DEBUG)
