#!/usr/bin/env bash
# Flash-sale benchmark: starts a release build of matsuri on a fresh database, drives it
# with `matsuri loadtest flash-sale`, and prints the figures and the invariant checks.
#
#   bench/flash-sale.sh sqlite                 # embedded backend
#   bench/flash-sale.sh postgres [ADMIN_URL]   # PostgreSQL (default postgres://postgres@127.0.0.1:5432/postgres)
#   bench/flash-sale.sh redis [ADMIN_URL]      # PostgreSQL, with the allocation store in Redis
#                                              # (REDIS_URL, default redis://127.0.0.1:6379)
#
# BUYERS, STOCK, DECLINED_PCT and CONCURRENCY override the defaults (20000, 1000, 10, 256).
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:-sqlite}
admin_url=${2:-postgres://postgres@127.0.0.1:5432/postgres}
buyers=${BUYERS:-20000}
stock=${STOCK:-1000}
declined=${DECLINED_PCT:-10}
concurrency=${CONCURRENCY:-256}
port=${PORT:-18181}

case "$backend" in
  sqlite | postgres | redis) ;;
  *) echo "usage: $0 sqlite|postgres|redis [ADMIN_URL]" >&2; exit 2 ;;
esac
source bench/lib.sh
if [ "$backend" = redis ]; then
  fresh_database postgres
  export MATSURI_COORD_URL=${REDIS_URL:-redis://127.0.0.1:6379} MATSURI_COORD_PREFIX="bench-$$"
  bench_cleanup_extra() {
    redis-cli -u "$MATSURI_COORD_URL" --scan --pattern "$MATSURI_COORD_PREFIX:*" | xargs -r redis-cli -u "$MATSURI_COORD_URL" del >/dev/null
  }
else
  fresh_database "$backend"
fi
export MATSURI_DATABASE__MAX_CONNECTIONS=${MAX_CONNECTIONS:-32}
start_server "$port"

echo "backend: $backend; machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
"$bin" loadtest flash-sale --url "http://127.0.0.1:$port" --buyers "$buyers" --stock "$stock" \
  --declined-pct "$declined" --concurrency "$concurrency"
