#!/usr/bin/env bash
# Flash-sale benchmark: starts a release build of matsuri on a fresh database, drives it
# with `matsuri loadtest flash-sale`, and prints the figures and the invariant checks.
#
#   bench/flash-sale.sh sqlite                 # embedded backend
#   bench/flash-sale.sh postgres [ADMIN_URL]   # PostgreSQL (default postgres://postgres@127.0.0.1:5432/postgres)
#
# BUYERS, STOCK, DECLINED_PCT and CONCURRENCY override the defaults (20000, 1000, 10, 256).
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:-sqlite}
buyers=${BUYERS:-20000}
stock=${STOCK:-1000}
declined=${DECLINED_PCT:-10}
concurrency=${CONCURRENCY:-256}
port=${PORT:-18181}

cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/matsuri

data=$(mktemp -d)
db_name=""
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  if [ -n "$db_name" ]; then
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

case "$backend" in
  sqlite) database_url="sqlite://$data/matsuri.db" ;;
  postgres)
    admin_url=${2:-postgres://postgres@127.0.0.1:5432/postgres}
    db_name="matsuri_bench_$$"
    psql "$admin_url" -qc "CREATE DATABASE $db_name" >/dev/null
    database_url="${admin_url%/*}/$db_name"
    ;;
  *) echo "usage: $0 sqlite|postgres [ADMIN_URL]" >&2; exit 2 ;;
esac

export MATSURI_ADMIN_EMAIL=bench@matsuri.localhost MATSURI_ADMIN_PASSWORD=bench-password
# Registering 20,000 buyers is set-up, not what is measured: cheap password hashes keep it
# to seconds. Checkout itself never hashes a password.
export MATSURI_AUTH__ARGON2_MEMORY_KIB=64 MATSURI_AUTH__ARGON2_ITERATIONS=1
export MATSURI_DATABASE__MAX_CONNECTIONS=${MAX_CONNECTIONS:-32}
export MATSURI_LOG__FILTER=warn
"$bin" serve --bind "127.0.0.1:$port" --data-dir "$data" --database-url "$database_url" &
server=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.2
done

echo "backend: $backend; machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
"$bin" loadtest flash-sale --url "http://127.0.0.1:$port" --buyers "$buyers" --stock "$stock" \
  --declined-pct "$declined" --concurrency "$concurrency"
