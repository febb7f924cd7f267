#!/usr/bin/env bash
# Inventory import benchmark: a sales file of ROWS rows (default 1,000,000) over the demo
# catalog's SKUs, imported with `matsuri inventory import` into a fresh SQLite database;
# prints the wall time and the peak resident memory of the whole import (both passes).
#
#   bench/inventory-import.sh            # ROWS=1000000
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${ROWS:-1000000}
port=${PORT:-18191}
source bench/lib.sh
fresh_database sqlite
# The demo catalog gives the SKUs; the server is stopped before the import.
start_server "$port" --demo
kill "$server" && wait "$server" 2>/dev/null || true
server=""
skus=(PENLIGHT TOWEL TOUR-TEE-M TOUR-TEE-L ACRYLIC-STAND)
file="$data/sales.csv"
python3 - "$rows" "$file" "${skus[@]}" <<'PY'
import sys, time
rows, path, skus = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
start = 1767225600  # 2026-01-01: one sale a second from then, so no two lines repeat
with open(path, "w") as out:
    out.write("store,sku,quantity,at\n")
    for i in range(rows):
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + i))
        out.write(f"main,{skus[i % len(skus)]},1,{at}\n")
PY
echo "file: $rows rows, $(du -h "$file" | cut -f1); machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
/usr/bin/time -f "wall %e s, peak RSS %M KiB" "$bin" inventory import --kind sales \
  --data-dir "$data" --database-url "$database_url" "$file" 2>&1 | tail -3
