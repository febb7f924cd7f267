#!/usr/bin/env bash
# Recommendation benchmark (issue 25): generates a synthetic shop with
# `matsuri dev gen-activity` (straight into the activity log of a fresh SQLite database,
# and as CSV), runs `matsuri batch recommend` under /usr/bin/time -v (wall time, peak RSS,
# the run's own timings and offline metrics), then fits PyPI `implicit`'s item-kNN
# (cosine and BM25) on the same events and the same split in a venv under /var/tmp, and
# finally drives `GET /api/v1/recommendations/me` with wrk when it is installed.
#
#   bench/recs.sh
#
# USERS, ITEMS, EVENTS, SEED override the defaults (100000, 20000, 10000000, 25).
set -euo pipefail
cd "$(dirname "$0")/.."

users=${USERS:-100000}
items=${ITEMS:-20000}
events=${EVENTS:-10000000}
seed=${SEED:-25}
port=${PORT:-18325}
venv=${VENV:-/var/tmp/recs-implicit-venv}

source bench/lib.sh
fresh_database sqlite
export MATSURI_LOG__FILTER=warn

echo "== generating $events events, $users users, $items items (seed $seed)"
start=$(date +%s.%N)
"$bin" dev gen-activity --users "$users" --items "$items" --events "$events" --seed "$seed" \
  --csv "$data/events.csv" --data-dir "$data" --database-url "$database_url"
echo "generated in $(echo "$(date +%s.%N) - $start" | bc) s"

echo "== matsuri batch recommend --days 7"
/usr/bin/time -v "$bin" batch recommend --days 7 --data-dir "$data" --database-url "$database_url" \
  >"$data/run.json" 2>"$data/run.time"
cat "$data/run.json"
grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$data/run.time"

echo "== implicit item-kNN on the same events and split"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet implicit
fi
"$venv/bin/python" bench/recs_implicit.py "$data/events.csv"

if command -v wrk >/dev/null; then
  echo "== wrk GET /api/v1/recommendations/me"
  start_server "$port"
  token=$(curl -sf "http://127.0.0.1:$port/api/v1/auth/register" -H 'content-type: application/json' \
    -d '{"email":"wrk@example.com","password":"correct horse battery","name":"wrk"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  wrk -t2 -c32 -d15s --latency -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$port/api/v1/recommendations/me?limit=20"
fi
