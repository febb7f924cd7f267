#!/usr/bin/env bash
# Live comments benchmark (issue 21): starts a release build of matsuri on a fresh
# database and drives one room with `matsuri loadtest live`: first `ingest` (comments
# accepted a second into one room, every one through the rate limit and the spam check,
# the archive counted afterwards), then `fanout` (viewers on sockets, comments at a steady
# rate: post → receipt, what each viewer is sent a second, the sample's share).
#
#   bench/live.sh sqlite                           # SQLite, coord in memory, one node
#   bench/live.sh postgres [ADMIN_URL] [COORD_URL] # PostgreSQL + Redis (default redis://127.0.0.1:6379)
#   NODES=2 bench/live.sh postgres                 # two nodes; every other viewer on node 2
#
# USERS, CONCURRENCY and INGEST_SECONDS size the ingest run (4000, 256, 10); VIEWERS,
# POSTERS, RATE, DURATION and DISPLAY the fan-out run (10000, 200, 1000, 30, 25). MODES
# picks the runs ("ingest fanout"). The script raises `ulimit -n` as far as it may.
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:-sqlite}
shift || true
admin_url=postgres://postgres@127.0.0.1:5432/postgres
coord_url=memory://
[ "$backend" = postgres ] && coord_url=redis://127.0.0.1:6379
for arg in "$@"; do
  case "$arg" in
    postgres://* | postgresql://*) admin_url=$arg ;;
    memory://* | redis://* | rediss://*) coord_url=$arg ;;
    *) echo "usage: $0 sqlite|postgres [ADMIN_URL] [COORD_URL]" >&2; exit 2 ;;
  esac
done
users=${USERS:-4000}
concurrency=${CONCURRENCY:-256}
ingest_seconds=${INGEST_SECONDS:-10}
viewers=${VIEWERS:-10000}
posters=${POSTERS:-200}
rate=${RATE:-1000}
duration=${DURATION:-30}
display=${DISPLAY:-25}
modes=${MODES:-ingest fanout}
nodes=${NODES:-1}
port=${PORT:-18193}

case "$backend" in
  sqlite | postgres) ;;
  *) echo "usage: $0 sqlite|postgres [ADMIN_URL] [COORD_URL]" >&2; exit 2 ;;
esac
if [ "$nodes" = 2 ] && { [ "$backend" = sqlite ] || [ "$coord_url" = memory:// ]; }; then
  echo "two nodes need a shared database and Redis: $0 postgres [ADMIN_URL] [redis://…]" >&2
  exit 2
fi
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
source bench/lib.sh
case "$coord_url" in
  redis*) export MATSURI_COORD_PREFIX="bench$$" ;;
esac
stop_node2() {
  [ -n "${node2:-}" ] && kill "$node2" 2>/dev/null && wait "$node2" 2>/dev/null || true
  node2=""
}
bench_cleanup_extra() {
  stop_node2
  if [ -n "${MATSURI_COORD_PREFIX:-}" ] && command -v redis-cli >/dev/null; then
    redis-cli -u "$coord_url" --scan --pattern "$MATSURI_COORD_PREFIX:*" |
      xargs -r -n 500 redis-cli -u "$coord_url" DEL >/dev/null || true
  fi
}
fresh_database "$backend"
export MATSURI_DATABASE__MAX_CONNECTIONS=${MAX_CONNECTIONS:-16}
start_server "$port" --coord-url "$coord_url"
urls=(--url "http://127.0.0.1:$port")
if [ "$nodes" = 2 ]; then
  node1=$server
  # The second node serves sockets only; the first runs the workers.
  start_server $((port + 1)) --coord-url "$coord_url" --no-workers
  node2=$server
  server=$node1
  urls+=(--url2 "http://127.0.0.1:$((port + 1))")
fi

echo "backend: $backend, coord: ${coord_url%%://*}, nodes: $nodes; open files: $(ulimit -n);" \
  "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
status=0
for mode in $modes; do
  echo
  case "$mode" in
    ingest)
      "$bin" loadtest live ingest --url "http://127.0.0.1:$port" --users "$users" \
        --concurrency "$concurrency" --duration-seconds "$ingest_seconds" --baseline || status=$?
      ;;
    fanout)
      "$bin" loadtest live fanout "${urls[@]}" --viewers "$viewers" --posters "$posters" \
        --rate "$rate" --duration-seconds "$duration" --display-per-second "$display" || status=$?
      ;;
    *) echo "unknown mode $mode (ingest, fanout)" >&2; status=2 ;;
  esac
done
stop_node2
exit "$status"
