#!/bin/sh
# archive_command of PostgreSQL's continuous archiving (docs/operations.md, "Backup and point-in-time
# restore"):
#   archive_command = '/path/to/config/ops/archive-wal.sh %p %f /var/lib/postgresql/wal-archive'
# Copies one finished WAL segment into the archive directory: never over an existing file of another
# content (a second cluster archiving into the same place must fail loudly, not overwrite), through a
# temporary name and fsync, so that a crash leaves either the whole segment or none. Exit 0 only when
# the segment is safely there: PostgreSQL keeps (and retries) a segment until then.
set -eu
src="$1"      # %p: path of the segment, relative to the data directory
name="$2"     # %f: its file name
archive="$3"  # the archive directory (on other storage than the data directory)
dest="$archive/$name"
if [ -f "$dest" ]; then
  # already archived (a retry after a crash between copy and acknowledgement): fine if identical
  cmp -s "$src" "$dest" && exit 0
  echo "archive-wal: $dest exists with other content" >&2
  exit 1
fi
cp "$src" "$dest.tmp"
sync "$dest.tmp" 2>/dev/null || sync
mv "$dest.tmp" "$dest"
