#!/usr/bin/env bash
# Chat benchmark: starts a release build of matsuri on a fresh database and drives its
# realtime gateway with `matsuri loadtest chat`: first `idle` (many sockets held open, the
# server's memory per connection), then `messages` (groups talking: deliveries a second,
# send→receive latency, every message to every member exactly once).
#
#   bench/chat.sh sqlite                           # SQLite, presence in memory, one node
#   bench/chat.sh postgres [ADMIN_URL] [COORD_URL] # PostgreSQL + Redis (default redis://127.0.0.1:6379)
#   NODES=2 bench/chat.sh postgres                 # two nodes on that database and Redis;
#                                                  # every other member of a group on node 2
#
# CONNECTIONS, USERS and SOURCES size the idle run (10000, 500, 8); CHATS, GROUP_SIZE,
# RATE (messages a second in all) and DURATION (seconds) the messages run (20, 10, 200, 10).
# MODES picks the runs ("idle messages"). Both the server and the load generator hold one
# file descriptor per socket: the script raises `ulimit -n` as far as it may.
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
connections=${CONNECTIONS:-10000}
users=${USERS:-500}
sources=${SOURCES:-8}
groups=${CHATS:-20}
group_size=${GROUP_SIZE:-10}
rate=${RATE:-200}
duration=${DURATION:-10}
modes=${MODES:-idle messages}
nodes=${NODES:-1}
port=${PORT:-18183}

case "$backend" in
  sqlite | postgres) ;;
  *) echo "usage: $0 sqlite|postgres [ADMIN_URL] [COORD_URL]" >&2; exit 2 ;;
esac
if [ "$nodes" = 2 ] && { [ "$backend" = sqlite ] || [ "$coord_url" = memory:// ]; }; then
  echo "two nodes need a shared database and Redis: $0 postgres [ADMIN_URL] [redis://…]" >&2
  exit 2
fi
# One descriptor per socket on each side, and the server inherits this shell's limit.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((connections + 1000)) ]; then
  echo "warning: open files are limited to $(ulimit -n) here (hard limit $(ulimit -Hn));" \
    "$connections sockets will not fit" >&2
fi
source bench/lib.sh
# Runs sharing one Redis must not see each other's presence; their keys go afterwards.
case "$coord_url" in
  redis*) export MATSURI_COORD_PREFIX="bench$$" ;;
esac
# The second node stops before lib.sh drops the database under it.
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
export MATSURI_DATABASE__MAX_CONNECTIONS=${MAX_CONNECTIONS:-8}
start_server "$port" --coord-url "$coord_url"
urls=(--url "http://127.0.0.1:$port")
if [ "$nodes" = 2 ]; then
  node1=$server
  start_server $((port + 1)) --coord-url "$coord_url"
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
    idle)
      "$bin" loadtest chat idle --url "http://127.0.0.1:$port" --server-pid "$server" \
        --connections "$connections" --users "$users" --sources "$sources" || status=$?
      ;;
    messages)
      "$bin" loadtest chat messages "${urls[@]}" --groups "$groups" --group-size "$group_size" \
        --rate "$rate" --duration-seconds "$duration" --sources "$sources" || status=$?
      ;;
    *) echo "unknown mode $mode (idle, messages)" >&2; status=2 ;;
  esac
done
stop_node2
exit "$status"
