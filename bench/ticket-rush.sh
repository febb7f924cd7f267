#!/usr/bin/env bash
# Ticket-rush benchmark (seed 003, LoadTest5): starts a release build of matsuri on a fresh
# database, drives it with `matsuri loadtest ticket-rush`, and prints the figures and the
# invariant checks.
#
#   bench/ticket-rush.sh sqlite [COORD_URL]                # embedded backend
#   bench/ticket-rush.sh postgres [ADMIN_URL] [COORD_URL]  # PostgreSQL (default postgres://postgres@127.0.0.1:5432/postgres)
#
# COORD_URL is where the queue lives: memory:// (the default) or redis://host:port, where
# this run's keys go under a prefix of their own.
# USERS, SEATS, MAX_ACTIVE and CONCURRENCY override the defaults (10000, 9000, 2000, 256);
# WAIT is how long waiting users ask the queue to hold a status request (default 20 s;
# 0 polls plainly); PICK is how users pick seats: random (the seed's bots, the default)
# or best (the server picks).
#
# When `wrk` is installed, the run ends with the floor it is measured against: the time
# `wrk` needs, on the same server in the same run, for as many `/healthz` requests as the
# rush answered (`loadtest` prints that count as "requests").
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:-sqlite}
shift || true
admin_url=postgres://postgres@127.0.0.1:5432/postgres
coord_url=memory://
for arg in "$@"; do
  case "$arg" in
    postgres://* | postgresql://*) admin_url=$arg ;;
    memory://* | redis://* | rediss://*) coord_url=$arg ;;
    *) echo "usage: $0 sqlite|postgres [ADMIN_URL] [COORD_URL]" >&2; exit 2 ;;
  esac
done
users=${USERS:-10000}
seats=${SEATS:-9000}
max_active=${MAX_ACTIVE:-2000}
concurrency=${CONCURRENCY:-256}
wait=${WAIT:-20}
pick=${PICK:-random}
port=${PORT:-18182}

case "$backend" in
  sqlite | postgres) ;;
  *) echo "usage: $0 sqlite|postgres [ADMIN_URL] [COORD_URL]" >&2; exit 2 ;;
esac
source bench/lib.sh
# Runs sharing one Redis must not see each other's queues; their keys go afterwards.
case "$coord_url" in
  redis*) export MATSURI_COORD_PREFIX="bench$$" ;;
esac
bench_cleanup_extra() {
  if [ -n "${MATSURI_COORD_PREFIX:-}" ] && command -v redis-cli >/dev/null; then
    redis-cli -u "$coord_url" --scan --pattern "$MATSURI_COORD_PREFIX:*" |
      xargs -r -n 500 redis-cli -u "$coord_url" DEL >/dev/null || true
  fi
}
fresh_database "$backend"
export MATSURI_DATABASE__MAX_CONNECTIONS=${MAX_CONNECTIONS:-4}
start_server "$port" --coord-url "$coord_url"

echo "backend: $backend, coord: ${coord_url%%://*}; machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
report=$(mktemp)
set +e
"$bin" loadtest ticket-rush --url "http://127.0.0.1:$port" --users "$users" --seats "$seats" \
  --max-active "$max_active" --concurrency "$concurrency" --wait "$wait" --pick "$pick" | tee "$report"
status=${PIPESTATUS[0]}
set -e
answered=$(awk '/^requests/ {print $2}' "$report")
rm -f "$report"
if command -v wrk >/dev/null && [ -n "$answered" ]; then
  # The floor: plain HTTP on this machine, measured now, beside the rush.
  wrk_out=$(wrk -t2 -c"$concurrency" -d10s "http://127.0.0.1:$port/healthz")
  rate=$(awk '/^Requests\/sec/ {print $2}' <<<"$wrk_out")
  awk -v n="$answered" -v r="$rate" 'BEGIN {
    printf "floor           wrk: %.0f /healthz requests/s; %d requests take %.2f s at that rate\n", r, n, n / r }'
fi
exit "$status"
