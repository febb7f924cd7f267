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
# USERS, SEATS, MAX_ACTIVE and CONCURRENCY override the defaults (10000, 9000, 2000, 256).
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
port=${PORT:-18182}

cargo build --release --quiet -p matsuri
bin=${CARGO_TARGET_DIR:-target}/release/matsuri

data=$(mktemp -d)
db_name=""
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  if [ -n "$db_name" ]; then
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null || true
  fi
  if [ -n "${MATSURI_COORD_PREFIX:-}" ] && command -v redis-cli >/dev/null; then
    redis-cli -u "$coord_url" --scan --pattern "$MATSURI_COORD_PREFIX:*" |
      xargs -r -n 500 redis-cli -u "$coord_url" DEL >/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

case "$backend" in
  sqlite) database_url="sqlite://$data/matsuri.db" ;;
  postgres)
    db_name="matsuri_bench_$$"
    psql "$admin_url" -qc "CREATE DATABASE $db_name" >/dev/null
    database_url="${admin_url%/*}/$db_name"
    ;;
  *) echo "usage: $0 sqlite|postgres [ADMIN_URL] [COORD_URL]" >&2; exit 2 ;;
esac

# Runs sharing one Redis must not see each other's queues.
case "$coord_url" in
  redis*) export MATSURI_COORD_PREFIX="bench$$" ;;
esac

export MATSURI_ADMIN_EMAIL=bench@matsuri.localhost MATSURI_ADMIN_PASSWORD=bench-password
# Registering 10,000 users is set-up, not what is measured: cheap password hashes keep it
# to seconds. The rush itself never hashes a password.
export MATSURI_AUTH__ARGON2_MEMORY_KIB=64 MATSURI_AUTH__ARGON2_ITERATIONS=1
export MATSURI_DATABASE__MAX_CONNECTIONS=${MAX_CONNECTIONS:-4}
export MATSURI_LOG__FILTER=warn
"$bin" serve --bind "127.0.0.1:$port" --data-dir "$data" --database-url "$database_url" \
  --coord-url "$coord_url" &
server=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.2
done

echo "backend: $backend, coord: ${coord_url%%://*}; machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
"$bin" loadtest ticket-rush --url "http://127.0.0.1:$port" --users "$users" --seats "$seats" \
  --max-active "$max_active" --concurrency "$concurrency"
