#!/usr/bin/env bash
# Likes benchmark (issue 20): starts a release build of matsuri on a fresh database, drives
# it with `matsuri loadtest likes`, and prints the figures and the invariant checks. On
# PostgreSQL it then runs bench/pgbench-hot-row.sh against the same server, so the hot-row
# ceiling is printed beside the hot post's likes/s.
#
#   bench/likes.sh sqlite                 # embedded backend
#   bench/likes.sh postgres [ADMIN_URL]   # PostgreSQL (default postgres://postgres@127.0.0.1:5432/postgres)
#
# USERS, POSTS, LIKES and CONCURRENCY override the defaults (20000, 1000, 20000, 256).
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:-sqlite}
admin_url=${2:-postgres://postgres@127.0.0.1:5432/postgres}
users=${USERS:-20000}
posts=${POSTS:-1000}
likes=${LIKES:-20000}
concurrency=${CONCURRENCY:-256}
port=${PORT:-18183}

case "$backend" in
  sqlite | postgres) ;;
  *) echo "usage: $0 sqlite|postgres [ADMIN_URL]" >&2; exit 2 ;;
esac
source bench/lib.sh
fresh_database "$backend"
export MATSURI_DATABASE__MAX_CONNECTIONS=${MAX_CONNECTIONS:-32}
start_server "$port"

echo "backend: $backend; machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
status=0
"$bin" loadtest likes --url "http://127.0.0.1:$port" --users "$users" --posts "$posts" \
  --likes "$likes" --concurrency "$concurrency" || status=$?
if [ "$backend" = postgres ]; then
  # The server is stopped first, so pgbench has the machine to itself.
  kill "$server" && wait "$server" 2>/dev/null || true
  server=""
  echo "hot-row ceiling (pgbench, one-row UPDATE):"
  bench/pgbench-hot-row.sh "$admin_url"
fi
exit "$status"
