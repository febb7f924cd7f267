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
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/matsuri
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
case "$backend" in
  sqlite) exec "$bin" loadtest fanout "$@" ;;
  postgres)
    admin_url=postgres://postgres@127.0.0.1:5432/postgres
    if [ $# -gt 0 ] && [[ "$1" == postgres* ]]; then admin_url=$1; shift; fi
    db="matsuri_fanout_$$"
    psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null
    trap 'psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
    "$bin" loadtest fanout --database-url "${admin_url%/*}/$db" "$@"
    ;;
  *) echo "usage: $0 sqlite|postgres [ADMIN_URL] [loadtest flags]" >&2; exit 2 ;;
esac
