#!/usr/bin/env bash
# Fan-out benchmark: events through the outbox to three consumer groups, end to end.
#
#   bench/fanout.sh sqlite                 # a fresh SQLite file
#   bench/fanout.sh postgres [ADMIN_URL]   # a fresh PostgreSQL database
#
# Extra arguments after the backend go to `matsuri loadtest fanout` (e.g. --preload,
# --events 200000, --keys 0, --workers 4).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
shift || true
admin_url=postgres://postgres@127.0.0.1:5432/postgres
case "$backend" in
  sqlite) ;;
  postgres)
    if [ $# -gt 0 ] && [[ "$1" == postgres* ]]; then admin_url=$1; shift; fi
    ;;
  *) echo "usage: $0 sqlite|postgres [ADMIN_URL] [loadtest flags]" >&2; exit 2 ;;
esac
source bench/lib.sh
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
case "$backend" in
  sqlite) "$bin" loadtest fanout "$@" ;;
  postgres)
    fresh_database postgres
    "$bin" loadtest fanout --database-url "$database_url" "$@"
    ;;
esac
