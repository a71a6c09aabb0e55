#!/bin/sh
# Point-in-time restore (docs/operations.md, "Backup and point-in-time restore"): a pg_basebackup (plain
# format) plus the WAL archive, replayed up to a target time, into a NEW data directory. Run it as the
# operating-system user of PostgreSQL (postgres). Start the result with pg_ctl yourself: it recovers up
# to the target time, then promotes (opens for writes as a new timeline).
#
#   config/ops/pitr-restore.sh BASE_BACKUP_DIR WAL_ARCHIVE_DIR NEW_DATA_DIR 'YYYY-MM-DD HH:MM:SS.ffffff+00' [PORT]
#   /usr/lib/postgresql/15/bin/pg_ctl -D NEW_DATA_DIR -w -t 120 start
#
# The target time is a timestamptz: give the zone. Every transaction committed at or before it is
# restored; none committed after it.
set -eu
base="$1"; archive="$2"; data="$3"; target="$4"; port="${5:-}"
if [ -e "$data" ] && [ -n "$(ls -A "$data" 2>/dev/null)" ]; then
  echo "pitr-restore: $data is not empty: restore into a new directory" >&2
  exit 1
fi
[ -f "$base/PG_VERSION" ] || { echo "pitr-restore: $base is not a plain-format base backup" >&2; exit 1; }
mkdir -p "$data"
chmod 700 "$data"
cp -a "$base/." "$data/"
rm -f "$data/postmaster.pid" "$data/postmaster.opts"
# WAL from the backup's own pg_wal is replayed first; the archive supplies the rest
cat >> "$data/postgresql.auto.conf" <<CONF
# point-in-time restore $(date -u +%Y-%m-%dT%H:%M:%SZ)
restore_command = 'cp "$archive/%f" "%p"'
recovery_target_time = '$target'
recovery_target_inclusive = on
recovery_target_action = 'promote'
archive_mode = off
CONF
if [ -n "$port" ]; then
  echo "port = $port" >> "$data/postgresql.auto.conf"
fi
touch "$data/recovery.signal"
echo "pitr-restore: $data recovers to $target from $archive on start"
