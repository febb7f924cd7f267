#!/usr/bin/env bash
# The hot-row limit of a PostgreSQL server: pgbench with every client updating one row,
# the ceiling for any design that decrements one stock row per sale.
#
#   bench/pgbench-hot-row.sh [ADMIN_URL]   (default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail
admin_url=${1:-postgres://postgres@127.0.0.1:5432/postgres}
clients=${CLIENTS:-32}
seconds=${SECONDS_TO_RUN:-20}
db="matsuri_pgbench_$$"
psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null
trap 'psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
url="${admin_url%/*}/$db"
psql "$url" -qc "CREATE TABLE stock (id int PRIMARY KEY, available bigint NOT NULL); INSERT INTO stock VALUES (1, 1000000000)"
script=$(mktemp)
echo 'UPDATE stock SET available = available - 1 WHERE id = 1 AND available >= 1;' > "$script"
pgbench -n -c "$clients" -j 2 -T "$seconds" -f "$script" "$url" | grep -E 'clients|tps'
rm -f "$script"
